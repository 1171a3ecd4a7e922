/**
 * Job notifications (contract §6): { jobId, status: Started | Completed | Failed, message } to
 * notify.url. A notification that fails is retried briefly and then becomes a warning; it never
 * changes the job's outcome.
 */
import { fromBytes } from "../core/index.js";
import { postMessage, type PostSpec } from "../transport/index.js";
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
  ) {}

  send(status: NotifyStatus, message: string): void {
    if (!this.spec) return;
    this.chain = this.chain
      .then(() => notify(this.spec, this.jobId, status, message))
      .then((w) => (w ? this.onWarning(w) : undefined))
      .then(() => undefined, () => undefined);
  }
}
