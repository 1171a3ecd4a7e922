/**
 * Job notifications (contract §6): { jobId, status: Started | Completed | Failed, message } to
 * notify.url. A notification that fails is retried briefly and then becomes a warning; it never
 * changes the job's outcome. With a shared store (postgres) each one goes through the store's
 * notification queue first, so that one whose node dies before posting it is posted by a live
 * node (issue 15); delivery is then at least once (a node that dies between the post and the
 * removal of the entry leaves it to be posted again).
 */
import { randomBytes } from "node:crypto";
import { fromBytes } from "../core/index.js";
import type { NotificationQueue, QueuedNotification } from "../store/notify-queue.js";
import { postMessage, type PostSpec } from "../transport/index.js";
import { crashPoint } from "./crash-point.js";
import { defaultUserAgent } from "./send-profile.js";

export interface NotifySpec {
  url: string;
  method: "POST" | "PUT";
  headers: Record<string, string>;
}

export type NotifyStatus = "Started" | "Completed" | "Failed";

/** Brief: a job should not wait long on a monitoring hook. */
export const NOTIFY_TIMEOUT_MS = 5000;
export const NOTIFY_RETRIES = 2;
export const NOTIFY_RETRY_INTERVAL_MS = 500;

/** Sends one notification; resolves to a warning text when it could not be delivered. */
export async function notify(spec: NotifySpec | undefined, jobId: string, status: NotifyStatus, message: string): Promise<string | undefined> {
  if (!spec) return undefined;
  const body = Buffer.from(JSON.stringify({ jobId, status, message }));
  const post: PostSpec = {
    url: spec.url, method: spec.method, connectTimeoutMs: NOTIFY_TIMEOUT_MS, readTimeoutMs: NOTIFY_TIMEOUT_MS,
    retries: NOTIFY_RETRIES, retryIntervalMs: NOTIFY_RETRY_INTERVAL_MS, followRedirects: true, chunked: false, userAgent: defaultUserAgent(),
  };
  const headers = { ...spec.headers, "Content-Type": "application/json" };
  try {
    // postMessage retries connection failures, timeouts and 5xx (NOTIFY_RETRIES times).
    const res = await postMessage(headers, { length: body.length, open: () => fromBytes(body) }, post);
    return res.status >= 200 && res.status < 300 ? undefined : `notification "${status}" to ${spec.url} failed: HTTP ${res.status}`;
  } catch (e) {
    return `notification "${status}" to ${spec.url} failed: ${(e as Error).message}`;
  }
}

/**
 * One job's notifications, delivered in order (Started before Completed, even when Started is
 * retried), each failure recorded by `onWarning`, without holding up the transfer.
 */
export class JobNotifier {
  private chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly spec: NotifySpec | undefined,
    private readonly jobId: string,
    private readonly onWarning: (warning: string) => Promise<unknown>,
    private readonly route?: QueuedRoute,
  ) {}

  send(status: NotifyStatus, message: string): void {
    if (!this.spec) return;
    this.chain = this.chain
      .then(() => (this.route ? notifyQueued(this.spec, this.route, status, message) : notify(this.spec, this.jobId, status, message)))
      .then((w) => (w ? this.onWarning(w) : undefined))
      .then(() => undefined, () => undefined);
  }
}

/** Where a job's notification goes when the store has a notification queue (postgres, issue 15). */
export interface QueuedRoute {
  queue: NotificationQueue;
  runId: string;
  /** The partner whose `notify` applies (any node resolves the hook from its own configuration). */
  partner: string;
}

/** Ids this process is posting right now: its own sweep leaves them alone. */
const posting = new Set<string>();

/**
 * Queues the notification (claimed by this process), posts it, then removes it. Should this
 * process die in between, a live node finds the entry and posts it (`deliverLeftNotifications`).
 * A database that cannot take the entry does not hold the notification back: it is posted
 * directly, as with the files store. Resolves to a warning text as `notify` does.
 */
export async function notifyQueued(spec: NotifySpec | undefined, route: QueuedRoute, status: NotifyStatus, message: string): Promise<string | undefined> {
  if (!spec) return undefined;
  const entry: QueuedNotification = {
    id: `${route.runId}-${status}-${randomBytes(4).toString("hex")}`, runId: route.runId, partner: route.partner, status, message,
    // Another node looks at it only after this, and only once this process is dead.
    nextAttemptAt: Date.now() + NOTIFY_HANDOVER_MS, createdAt: new Date().toISOString(),
  };
  try {
    await route.queue.putClaimed(entry);
  } catch {
    return notify(spec, route.runId, status, message);
  }
  posting.add(entry.id);
  try {
    crashPoint("notify:queued");
    const warning = await notify(spec, route.runId, status, message);
    crashPoint("notify:posted");
    // Left in the queue if this fails: posted again by a live node later (at least once).
    await route.queue.remove(entry.id).catch(() => undefined);
    return warning;
  } finally {
    posting.delete(entry.id);
  }
}

/** How long a node has to post its own notification before another may take it (if it died). */
export const NOTIFY_HANDOVER_MS = 2000;

/**
 * Posts the notifications that dead nodes left in the queue (run by every `as2 receive` node
 * in its delivery loop). The hook is resolved from this node's configuration by the entry's
 * partner; a failure becomes a warning in the job record, as on the node that queued it.
 */
export async function deliverLeftNotifications(
  queue: NotificationQueue,
  specFor: (partner: string) => NotifySpec | undefined,
  onWarning: (runId: string, warning: string) => Promise<unknown>,
): Promise<number> {
  let delivered = 0;
  for (const due of await queue.due(Date.now())) {
    if (posting.has(due.id)) continue;
    const claim = await queue.claim(due.id);
    if (!claim.acquired) continue;
    posting.add(due.id);
    try {
      const entry = await queue.get(due.id);
      if (!entry) continue;
      const spec = specFor(entry.partner);
      const warning = spec
        ? await notify(spec, entry.runId, entry.status, entry.message)
        : `notification "${entry.status}" left by a stopped node was dropped: this node's configuration has no notify for partner ${entry.partner}`;
      await queue.remove(entry.id);
      delivered++;
      if (warning) await onWarning(entry.runId, warning);
    } finally {
      posting.delete(due.id);
      await claim.release().catch(() => undefined);
    }
  }
  return delivered;
}
