/**
 * Delivering queued async MDNs (RFC 4130 §7.3; as2-reference X2/X3). Each attempt is one POST;
 * a failed one is tried again later, with the schedule persisted in the queue entry, so the
 * retries a receipt has left survive a restart of the receiver. An entry is claimed with an
 * owner lock while it is being posted, so two receivers sharing a data folder never post it twice
 * at once.
 */
import { Buffer } from "node:buffer";
import { fromBytes } from "../../core/index.js";
import { addWarnings, type OutboundMdn } from "../../store/index.js";
import { postMessage } from "../../transport/index.js";
import { refusedAsyncMdnUrl } from "../async-mdn-urls.js";
import { crashPoint } from "../crash-point.js";
import { deliverLeftNotifications } from "../notify.js";
import { defaultUserAgent } from "../send-profile.js";
import type { Services } from "./services.js";

/** Attempts before a receipt is given up (about 18 minutes with the delays below). */
export const MDN_DELIVERY_ATTEMPTS = 10;

/** 2 s, 4 s, 8 s ... at most 5 minutes between attempts. */
export function retryDelayMs(attempt: number): number {
  return Math.min(2000 * 2 ** (attempt - 1), 300_000);
}

export class MdnDelivery {
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private notifying: Promise<void> | undefined;
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly s: Omit<Services, "deliver">) {}

  /** Delivers what is due now and every `intervalMs` after. */
  start(intervalMs = 1000): void {
    void this.deliverDue();
    this.timer = setInterval(() => void this.deliverDue(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for the attempts under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.inFlight.values(), this.notifying]);
  }

  async deliverDue(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      for (const entry of await this.s.store.outbox.due(Date.now())) await this.deliver(entry.id);
    } catch (e) {
      this.s.event({ event: "error", detail: `MDN queue: ${(e as Error).message}` });
    } finally {
      this.sweeping = false;
    }
    // Beside the MDNs, not in their way: a hook that does not answer takes its retries' time.
    this.notifying ??= this.deliverLeftNotifications().finally(() => { this.notifying = undefined; });
  }

  /** Job notifications that stopped nodes left in a shared store's queue (notify.ts). */
  private async deliverLeftNotifications(): Promise<void> {
    const { store, config } = this.s;
    if (!store.notifications) return;
    try {
      await deliverLeftNotifications(store.notifications, (partner) => config.partners[partner]?.notify ?? config.notify,
        (runId, w) => store.jobs.update(runId, (rec) => addWarnings(rec, w)).catch(() => undefined));
    } catch (e) {
      this.s.event({ event: "error", detail: `notification queue: ${(e as Error).message}` });
    }
  }

  /** One attempt for the entry now (if it is still queued and nobody else is posting it). */
  deliver(id: string): Promise<void> {
    const running = this.inFlight.get(id);
    if (running) return running;
    const p = this.attempt(id).finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, p);
    return p;
  }

  private async attempt(id: string): Promise<void> {
    const { store } = this.s;
    const claim = await store.outbox.claim(id);
    if (!claim.acquired) return;
    try {
      const entry = await store.outbox.get(id);
      if (!entry) return;
      if (!/^https?:/i.test(entry.url)) {
        await this.giveUp(entry, `the async MDN was not sent: ${entry.url} is not allowed (only http(s) Receipt-Delivery-Options are delivered)`);
        return;
      }
      const refused = refusedAsyncMdnUrl(this.s.config.partners[entry.partner], entry.url);
      if (refused) {
        await this.giveUp(entry, `the async MDN was not sent: ${refused}`);
        return;
      }
      let failure: string;
      try {
        const body = Buffer.from(entry.mdn.body, "base64");
        const headers = Object.fromEntries(entry.mdn.headers.map((h) => [h.name, h.value]));
        const r = await postMessage(headers, { length: body.length, open: () => fromBytes(body) }, {
          url: entry.url, connectTimeoutMs: 30_000, readTimeoutMs: 60_000, retries: 0, retryIntervalMs: 0, followRedirects: true, sameOriginRedirectsOnly: true, chunked: false, userAgent: defaultUserAgent(),
        });
        if (r.status >= 200 && r.status < 300) {
          crashPoint("receive:answered");
          await store.outbox.remove(id);
          this.s.event({ event: "mdn-sent", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, status: r.status, detail: entry.url });
          await store.jobs.update(entry.runId, (rec) => {
            rec.receiveDetails!.mdnSent = true;
            if (rec.messages[0]) rec.messages[0].mdnStatus = "Received";
          }).catch(() => undefined);
          return;
        }
        failure = `HTTP ${r.status}`;
      } catch (e) {
        failure = (e as Error).message;
      }
      await this.retryLater(entry, failure);
    } finally {
      await claim.release();
    }
  }

  private async retryLater(entry: OutboundMdn, why: string): Promise<void> {
    const attempts = entry.attempts + 1;
    if (attempts >= MDN_DELIVERY_ATTEMPTS) {
      await this.giveUp(entry, `async MDN to ${entry.url} failed ${attempts} times; last: ${why}`);
      return;
    }
    const delay = retryDelayMs(attempts);
    await this.s.store.outbox.put({ ...entry, attempts, nextAttemptAt: Date.now() + delay, lastError: why });
    this.s.event({ event: "mdn-failed", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, detail: `${entry.url}: ${why} (attempt ${attempts} of ${MDN_DELIVERY_ATTEMPTS}; next in ${delay / 1000} s)` });
  }

  private async giveUp(entry: OutboundMdn, why: string): Promise<void> {
    await this.s.store.outbox.remove(entry.id);
    this.s.event({ event: "mdn-failed", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, detail: why });
    await this.s.store.jobs.update(entry.runId, (rec) => addWarnings(rec, why)).catch(() => undefined);
  }
}
