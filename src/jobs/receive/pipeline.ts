/**
 * The receive pipeline (architecture.md §4, README "Receive pipeline"): a message's life as
 * named steps, each leaving a durable mark in the ledger before the next begins:
 *
 *   reserve -> spool (async) -> open -> commit -> record -> answer
 *
 * `finishFrom` runs the steps from wherever an entry stands, for a live request and for
 * recovery alike; a concurrent copy of a message in progress waits for its outcome and gets the
 * same MDN (`reserveOrJoin`). The HTTP handler (../receive.ts) only maps outcomes to responses.
 */
import { createReadStream } from "node:fs";
import { As2Error, ErrorCodes, isAs2Error } from "../../core/index.js";
import { isStoreUnavailable, newRunId, sameOwner, stepIndex, thisProcess, type JobRecord, type LedgerEntry, type MdnRequest, type ReceiveDetails } from "../../store/index.js";
import { crashPoint } from "../crash-point.js";
import { JobNotifier } from "../notify.js";
import { addWarnings } from "../../store/index.js";
import { commitStep } from "./commit.js";
import { failJob, newReceiveRecord, startRecord } from "./job-record.js";
import { openStep } from "./open.js";
import { recoverEntry } from "./recover.js";
import { answerAsync, recordStep } from "./record.js";
import { spoolStep } from "./spool.js";
import type { Services } from "./services.js";

/** How long a copy of a message waits for the first copy's outcome before answering 503. */
export const WAIT_FOR_FIRST_COPY_MS = 60_000;
/** Retry-After for that 503, in seconds. */
export const RETRY_AFTER_SECONDS = 30;

/** What the HTTP side gives the pipeline. */
export interface Request {
  remote: string;
  body: AsyncIterable<Uint8Array>;
  startedBy: string;
  details: ReceiveDetails;
  /** Async: answers 200 now (the body is on disk). */
  acceptNow(): Promise<void>;
  /** Content-Length, when the partner declared one. */
  declaredBytes?: number;
  /** The body's own problem (too large, cut off), if that is what an error was. */
  bodyProblem(e: unknown): As2Error | undefined;
}

export type Outcome =
  /**
   * Sync: answer with entry.mdn (or plainly, when none was requested); then call `answered`.
   * `record`: the job record as this run wrote it, when nothing else writes it (markAnswered).
   */
  | { kind: "answer"; entry: LedgerEntry; record?: JobRecord }
  /** Async: the 200 went out already; the MDN is queued. */
  | { kind: "accepted" }
  | { kind: "refused"; status: number; text: string }
  | { kind: "busy"; retryAfter: number; text: string };

export interface Inbound {
  from: string;
  messageId: string;
  partner: string;
  mdnRequest: MdnRequest;
  /** Request headers without credentials (for opening the body again after a crash). */
  headers: Record<string, string>;
}

function asAs2Error(e: unknown): As2Error {
  if (isAs2Error(e)) return e;
  const err = e as NodeJS.ErrnoException;
  return new As2Error(err.code ? ErrorCodes.STORE_FAILED : ErrorCodes.MALFORMED_MIME, err.message, { cause: e });
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    for await (const _ of body) { /* read so that the answer reaches the sender */ }
  } catch { /* the sender went away: nothing to answer */ }
}

/** A live request for a message: reserve it, or join the copy that holds it. */
export async function receiveMessage(s: Services, inbound: Inbound, req: Request): Promise<Outcome> {
  const fresh: LedgerEntry = {
    from: inbound.from, messageId: inbound.messageId, runId: newRunId(s.now()), partner: inbound.partner,
    owner: thisProcess(), step: "reserved", at: s.now().toISOString(), mdnRequest: inbound.mdnRequest, headers: inbound.headers,
  };
  // Marked active before the reservation exists, so periodic recovery never takes it for an orphan.
  s.active.add(fresh.runId);
  try {
    const joined = await reserveOrJoin(s, fresh, req);
    if (joined) return joined;
    return await processReserved(s, fresh, req);
  } finally {
    s.active.delete(fresh.runId);
  }
}

/** Undefined when `fresh` now holds the reservation; else the answer for this copy. */
async function reserveOrJoin(s: Services, fresh: LedgerEntry, req: Request): Promise<Outcome | undefined> {
  const ledger = s.store.received;
  let drained: Promise<void> | undefined;
  const deadline = Date.now() + WAIT_FOR_FIRST_COPY_MS;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    const r = drained ? { reserved: false as const, entry: (await ledger.get(fresh.from, fresh.messageId)) ?? fresh } : await ledger.reserve(fresh);
    if (r.reserved) return undefined;
    const held = r.entry;
    if (held === fresh) {
      // Released while we waited (the first copy stopped before its body was whole); our own body
      // is drained, so the partner must send again.
      await drained;
      return { kind: "busy", retryAfter: 1, text: "an earlier copy of this message was abandoned; send it again" };
    }
    const finished = stepIndex(held.step) >= stepIndex("recorded");
    if (finished && held.outcome === "failed" && !drained && (held.step === "answered" || !(await s.store.alive(held.owner)))) {
      // A message that failed earlier is processed anew when it comes again (the partner may
      // have fixed what failed); the failed run keeps its job record.
      if (await ledger.replace(held.runId, fresh)) return undefined;
      continue;
    }
    if (finished) {
      await (drained ?? drain(req.body));
      return duplicate(s, held, fresh, req);
    }
    if (!s.active.has(held.runId) && (sameOwner(held.owner, thisProcess()) || !(await s.store.alive(held.owner)))) {
      // Its receiver died (on any node of a shared store: its lease ran out) (or, in this process, the request working on it gave up on an error):
      // finish or fail its work now, then look again.
      await recoverEntry(s, held);
      continue;
    }
    // A copy in progress elsewhere (another connection, or another process): wait for it.
    drained ??= drain(req.body);
    if (Date.now() > deadline) {
      await drained;
      return { kind: "busy", retryAfter: RETRY_AFTER_SECONDS, text: `a copy of ${fresh.messageId} is still being processed; send it again later` };
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** X6: a resend of a message we already took gets the same MDN, and no second file. */
async function duplicate(s: Services, held: LedgerEntry, fresh: LedgerEntry, req: Request): Promise<Outcome> {
  s.event({ event: "duplicate", remote: req.remote, partner: held.partner, messageId: held.messageId, runId: held.runId, file: held.file });
  const url = fresh.mdnRequest.asyncUrl;
  if (url && fresh.mdnRequest.wanted && held.mdn) {
    await req.acceptNow();
    await answerAsync(s, { ...held, step: "answered" }, url, `${held.runId}-dup-${fresh.runId.slice(-12)}`);
    return { kind: "accepted" };
  }
  return { kind: "answer", entry: { ...held, step: "answered" } };
}

async function processReserved(s: Services, fresh: LedgerEntry, req: Request): Promise<Outcome> {
  if (startRecord(s, fresh, req.declaredBytes)) await s.store.jobs.save(newReceiveRecord(s, fresh, req.startedBy, req.details));
  crashPoint("receive:reserved");
  const notifier = notifierFor(s, fresh);
  notifier.send("Started", `receiving ${fresh.messageId} from ${fresh.partner} (${fresh.from})`);
  let entry = fresh;
  let source = req.body;
  const url = fresh.mdnRequest.wanted ? fresh.mdnRequest.asyncUrl : undefined;
  if (url) {
    // X2: for an async MDN, 2xx as soon as the last byte is in and on disk, before any processing.
    try {
      entry = await spoolStep(s, entry, req.body);
    } catch (e) {
      const err = req.bodyProblem(e) ?? asAs2Error(e);
      return refuse(s, entry, notifier, err.code === ErrorCodes.LIMIT_EXCEEDED ? 413 : 400, err, req);
    }
    await req.acceptNow();
    crashPoint("receive:accepted");
    source = createReadStream(entry.spool!);
  }
  const done = await finishFrom(s, entry, source, req, notifier);
  return done;
}

async function refuse(s: Services, entry: LedgerEntry, notifier: JobNotifier, status: number, err: As2Error, req: Request | undefined): Promise<Outcome> {
  await failJob(s, entry, { code: err.code, message: err.message }, req);
  await s.store.received.release(entry.from, entry.messageId, entry.runId);
  notifier.send("Failed", err.message);
  s.event({ event: "rejected", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, status, detail: err.message });
  return { kind: "refused", status, text: err.message };
}

export function notifierFor(s: Services, entry: LedgerEntry): JobNotifier {
  const partner = s.config.partners[entry.partner];
  // Notifications run beside the transfer, in order; a failed one becomes a warning (contract §6).
  const queue = s.store.notifications;
  return new JobNotifier(partner?.notify ?? s.config.notify, entry.runId, (w) => s.store.jobs.update(entry.runId, (r) => addWarnings(r, w)).then(() => undefined),
    queue ? { queue, runId: entry.runId, partner: entry.partner } : undefined);
}

/**
 * Runs the remaining steps of an entry: open (needs `source` when the entry is before
 * `verified`), commit, record, answer. `req` is the live request (sync answers go back to it);
 * without one (recovery), a sync MDN is kept for the partner's resend.
 */
export async function finishFrom(s: Services, start: LedgerEntry, source: AsyncIterable<Uint8Array> | undefined, req: Request | undefined, notifier: JobNotifier): Promise<Outcome> {
  let entry = start;
  let failure: As2Error | undefined;
  if (stepIndex(entry.step) < stepIndex("verified")) {
    try {
      entry = await openStep(s, entry, source!);
    } catch (e) {
      // The store is unreachable (a database restart): nothing is recorded as failed, the entry
      // stays where the store last has it and recovery (or the partner's resend) goes on from there.
      if (isStoreUnavailable(e)) throw e;
      // The HTTP body's own problems (cut off, too large) apply only while it is what is being
      // read: an async message is opened from the spool after its 200, when the socket may be long gone.
      const problem = entry.spool ? undefined : req?.bodyProblem(e);
      if (problem?.code === ErrorCodes.LIMIT_EXCEEDED && !entry.spool) return refuse(s, entry, notifier, 413, problem, req);
      failure = problem ?? asAs2Error(e);
    }
  }
  if (!failure && stepIndex(entry.step) < stepIndex("committed")) {
    try {
      entry = await commitStep(s, entry);
    } catch (e) {
      // After the link but before the ledger says so, a failure recorded now would let a resend
      // store the message a second time: leave it to recovery, which finds the link by inode.
      if (isStoreUnavailable(e)) throw e;
      failure = asAs2Error(e);
    }
  }
  let record: JobRecord | undefined;
  if (stepIndex(entry.step) < stepIndex("recorded")) ({ entry, record } = await recordStep(s, entry, failure, req));
  notifier.send(entry.outcome === "failed" ? "Failed" : "Completed", entry.outcome === "failed" ? entry.error!.message : `stored ${entry.file ?? "(skipped)"}`);
  const url = entry.mdnRequest.wanted ? entry.mdnRequest.asyncUrl : undefined;
  if (url) {
    await answerAsync(s, entry, url);
    return { kind: "accepted" };
  }
  return { kind: "answer", entry, ...(record ? { record } : {}) };
}
