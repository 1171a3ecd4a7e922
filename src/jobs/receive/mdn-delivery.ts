/**
 * Delivering queued async MDNs (RFC 4130 §7.3; as2-reference X2/X3). Each attempt is one POST,
 * or for a mailto: Receipt-Delivery-Option one mail through the smtp relay (issue 17: the same
 * queue, schedule and crash safety; a 5xx reply to the mail transaction is final);
 * a failed one is tried again later, with the schedule persisted in the queue entry, so the
 * retries a receipt has left survive a restart of the receiver. An entry is claimed with an
 * owner lock while it is being posted, so two receivers sharing a data folder never post it twice
 * at once.
 */
import { Buffer } from "node:buffer";
import { fromBytes } from "../../core/index.js";
import { addWarnings, type JobRecord, type MdnDeliveryRecord, type OutboundMdn } from "../../store/index.js";
import { postMessage } from "../../transport/index.js";
import { isMailto, mailtoAddress, refusedAsyncMdnUrl } from "../async-mdn-urls.js";
import { MailFailure, mailMdn, type SmtpSettings } from "../mdn-mail.js";
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
      const smtp = this.s.config.smtp;
      if (!/^https?:/i.test(entry.url) && !isMailto(entry.url)) {
        await this.giveUp(entry, `the async MDN was not sent: ${entry.url} is not allowed (only http(s) and mailto: Receipt-Delivery-Options are delivered)`);
        return;
      }
      const refused = refusedAsyncMdnUrl(this.s.config.partners[entry.partner], entry.url, smtp);
      if (refused) {
        await this.giveUp(entry, `the async MDN was not sent: ${refused}`);
        return;
      }
      const result = isMailto(entry.url) ? await this.mail(entry, smtp!) : await this.post(entry);
      if (result.delivered) {
        crashPoint("receive:answered");
        await store.outbox.remove(id);
        this.s.event({ event: "mdn-sent", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, status: result.status,
          detail: result.record.via === "smtp" ? `${entry.url} via smtp ${result.record.relay}: ${result.record.response}` : entry.url });
        await this.recordDelivery(entry, { ...result.record, attempts: entry.attempts + 1, delivered: true }, (rec) => {
          rec.receiveDetails!.mdnSent = true;
          if (rec.messages[0]) rec.messages[0].mdnStatus = "Received";
        });
        return;
      }
      if (result.permanent) {
        const attempts = entry.attempts + 1;
        await this.giveUp(entry, `async MDN to ${result.to} failed for good after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${result.failure}`, { ...result.record, attempts });
        return;
      }
      await this.retryLater(entry, result.failure, result.record);
    } finally {
      await claim.release();
    }
  }

  /** One POST to the http(s) Receipt-Delivery-Option (X2/X3). */
  private async post(entry: OutboundMdn): Promise<AttemptResult> {
    const base = { via: "http" as const, to: entry.url };
    try {
      const body = Buffer.from(entry.mdn.body, "base64");
      const headers = Object.fromEntries(entry.mdn.headers.map((h) => [h.name, h.value]));
      const r = await postMessage(headers, { length: body.length, open: () => fromBytes(body) }, {
        url: entry.url, connectTimeoutMs: 30_000, readTimeoutMs: 60_000, retries: 0, retryIntervalMs: 0, followRedirects: true, sameOriginRedirectsOnly: true, chunked: false, userAgent: defaultUserAgent(),
      });
      const record = { ...base, response: `HTTP ${r.status}` };
      if (r.status >= 200 && r.status < 300) return { delivered: true, status: r.status, to: entry.url, record };
      return { delivered: false, to: entry.url, failure: `HTTP ${r.status}`, record: { ...record, error: `HTTP ${r.status}` } };
    } catch (e) {
      return { delivered: false, to: entry.url, failure: (e as Error).message, record: { ...base, error: (e as Error).message } };
    }
  }

  /** One mail through the smtp relay to the mailto: Receipt-Delivery-Option (issue 17). */
  private async mail(entry: OutboundMdn, smtp: SmtpSettings): Promise<AttemptResult> {
    const parsed = mailtoAddress(entry.url);
    const to = "address" in parsed ? parsed.address : entry.url;
    const base = { via: "smtp" as const, to, relay: `${smtp.host}:${smtp.port}` };
    try {
      if (!("address" in parsed)) throw new MailFailure(parsed.refused, true);
      const { response } = await mailMdn(smtp, parsed.address, entry.mdn);
      return { delivered: true, to, record: { ...base, response } };
    } catch (e) {
      const f = e instanceof MailFailure ? e : new MailFailure((e as Error).message, false);
      const failure = `${f.message} (relay ${base.relay})`;
      return { delivered: false, permanent: f.permanent, to, failure, record: { ...base, error: f.message, ...(f.response ? { response: f.response } : {}) } };
    }
  }

  private async retryLater(entry: OutboundMdn, why: string, record?: DeliveryNote): Promise<void> {
    const attempts = entry.attempts + 1;
    if (attempts >= MDN_DELIVERY_ATTEMPTS) {
      await this.giveUp(entry, `async MDN to ${record?.to ?? entry.url} failed ${attempts} times; last: ${why}`, record && { ...record, attempts });
      return;
    }
    const delay = retryDelayMs(attempts);
    const next = Date.now() + delay;
    await this.s.store.outbox.put({ ...entry, attempts, nextAttemptAt: next, lastError: why });
    this.s.event({ event: "mdn-failed", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, detail: `${entry.url}: ${why} (attempt ${attempts} of ${MDN_DELIVERY_ATTEMPTS}; next in ${delay / 1000} s)` });
    if (record) await this.recordDelivery(entry, { ...record, attempts, delivered: false, nextAttemptAt: new Date(next).toISOString() });
  }

  private async giveUp(entry: OutboundMdn, why: string, record?: DeliveryNote & { attempts: number }): Promise<void> {
    await this.s.store.outbox.remove(entry.id);
    this.s.event({ event: "mdn-failed", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, detail: why });
    const note: DeliveryNote & { attempts: number } = record ?? {
      via: isMailto(entry.url) ? "smtp" : "http", to: entry.url, attempts: entry.attempts, error: why,
    };
    await this.recordDelivery(entry, { ...note, delivered: false, gaveUp: true }, (rec) => addWarnings(rec, why));
  }

  /** The job record's receiveDetails.mdnDelivery (and whatever else `also` changes). */
  private async recordDelivery(entry: OutboundMdn, d: Omit<MdnDeliveryRecord, "at">, also?: (rec: JobRecord) => void): Promise<void> {
    await this.s.store.jobs.update(entry.runId, (rec) => {
      rec.receiveDetails ??= {};
      rec.receiveDetails.mdnDelivery = { ...d, at: this.s.now().toISOString() };
      also?.(rec);
    }).catch(() => undefined);
  }
}

type DeliveryNote = Omit<MdnDeliveryRecord, "at" | "attempts" | "delivered">;

type AttemptResult =
  | { delivered: true; to: string; status?: number; record: DeliveryNote }
  | { delivered: false; permanent?: boolean; to: string; failure: string; record: DeliveryNote };
