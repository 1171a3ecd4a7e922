/**
 * The `record` and `answer` steps. `record` fixes the outcome: the MDN is built (it cannot fail:
 * reply-mdn.ts), stored in the ledger (which makes it the answer every resend gets), and the job
 * record is settled. `answer` delivers it: in the HTTP response (sync), or through the persisted
 * outbound queue (async), and then the ledger entry is `answered`.
 */
import { rm } from "node:fs/promises";
import type { As2Error, DispositionSpec } from "../../core/index.js";
import { addWarnings, type JobRecord, type LedgerEntry } from "../../store/index.js";
import { crashPoint } from "../crash-point.js";
import { recordEntry, startRecord, type Origin } from "./job-record.js";
import { dispositionText, replyMdn } from "./reply-mdn.js";
import { removeTemps, type Services } from "./services.js";

function hiddenCause(e: As2Error): string {
  const cause = e.cause as { message?: string } | undefined;
  return e.code === "AS2_ERR_DECRYPTION_FAILED" && cause?.message && cause.message !== e.message ? ` (inside: ${cause.message})` : "";
}

/**
 * `record` returns the entry at `recorded`, and the job record when this run is its only writer
 * (a live request whose record it created here: see startRecord), so that the answer's update
 * needs no lock and no read.
 */
export async function recordStep(s: Services, entry: LedgerEntry, failure?: As2Error, origin?: Origin & { declaredBytes?: number }): Promise<{ entry: LedgerEntry; record?: JobRecord }> {
  const skipped = !failure && entry.outcome === "skipped";
  const disposition: DispositionSpec = failure
    ? { type: "processed", modifier: "error", description: failure.disposition ?? "unexpected-processing-error" }
    : skipped ? { type: "processed", modifier: "warning", description: "duplicate-filename" } : { type: "processed" };
  const skippedNames = entry.parts ? entry.parts.filter((p) => !p.file).map((p) => p.name).join(", ") : entry.name;
  const detail = failure ? failure.message : skipped ? `a file named ${skippedNames} exists; kept the existing one (inbound.whenExists "skip")` : undefined;
  const reply = replyMdn(s, entry, disposition, detail, failure ? undefined : entry.opened);
  const recorded: LedgerEntry = {
    ...entry, step: "recorded", at: s.now().toISOString(),
    outcome: failure ? "failed" : skipped ? "skipped" : "stored",
    // The MDN says only failure.message; the record also keeps a hidden cause (a content failure
    // behind "decryption failed", see core openDecrypted) for the operator.
    ...(failure ? { error: { code: failure.code, message: `${failure.message}${hiddenCause(failure)}`, disposition: failure.disposition } } : {}),
    ...(reply.mdn ? { mdn: reply.mdn } : {}),
  };
  delete recorded.tmp;
  await s.store.received.advance(recorded);
  // The outcome is durable: the verified temp file(s) (linked into the inbox, or skipped) can go.
  await removeTemps(entry);
  const sole = !!origin && !startRecord(s, entry, origin.declaredBytes);
  const record = await recordEntry(s, recorded, [...reply.warnings, ...(skipped && detail ? [detail] : [])], origin, sole);
  if (entry.spool) await rm(entry.spool, { force: true });
  crashPoint("receive:recorded");
  s.event({
    event: "message", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, file: recorded.file,
    ...(recorded.parts && !failure ? { files: recorded.parts.flatMap((p) => (p.file ? [p.file] : [])) } : {}),
    bytes: entry.opened?.size ?? 0, disposition: dispositionText(disposition), detail: failure?.message ?? detail,
  });
  return { entry: recorded, ...(sole ? { record } : {}) };
}

/** Async: the MDN goes into the outbound queue, then one delivery attempt right away. */
export async function answerAsync(s: Services, entry: LedgerEntry, url: string, id = entry.runId): Promise<void> {
  if (!entry.mdn) return markAnswered(s, entry);
  await s.store.outbox.put({
    id, runId: entry.runId, partner: entry.partner, messageId: entry.messageId, url, mdn: entry.mdn,
    attempts: 0, nextAttemptAt: 0, createdAt: s.now().toISOString(),
  });
  crashPoint("receive:queued");
  if (entry.step !== "answered") await markAnswered(s, entry);
  await s.deliver(id);
}

/**
 * The answer is out (or, for a sync message whose connection is gone, cannot go out: the
 * partner's resend will get the recorded MDN).
 */
export async function markAnswered(s: Services, entry: LedgerEntry, sync?: { delivered: boolean }, record?: JobRecord): Promise<void> {
  if (sync?.delivered) crashPoint("receive:answered");
  // Not fsynced: lost, it leaves `recorded`, which recovery answers again (async: the MDN is
  // queued a second time, which the partner ignores as a copy; sync: a warning only).
  await s.store.received.advance({ ...entry, step: "answered", at: s.now().toISOString() }, { durable: false });
  if (!sync || !entry.mdnRequest.wanted) return;
  const change = (r: JobRecord) => {
    if (sync.delivered) {
      r.receiveDetails!.mdnSent = true;
      if (r.messages[0]) r.messages[0].mdnStatus = "Received";
    } else {
      addWarnings(r, "the sender's connection was gone before the MDN could be sent; a resend of the message gets the same MDN");
    }
  };
  if (record) {
    // This run created the record and is its only writer (recordStep): no lock, no read.
    change(record);
    await s.store.jobs.save(record);
    return;
  }
  await s.store.jobs.update(entry.runId, change);
}
