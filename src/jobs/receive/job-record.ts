/**
 * The receive job record (contract §5) as the ledger entry describes it. Writing it is
 * idempotent (the record's one file and one message entity are set, not appended), so recovery
 * can apply it again after a crash between the ledger write and the record write.
 */
import { hostname } from "node:os";
import type { PartnerConfig } from "../../config/schema.js";
import { addWarnings, setFileStatus, statusCodeOf, type FileEntry, type JobRecord, type LedgerEntry, type ReceiveDetails } from "../../store/index.js";
import { sanitizeFilename } from "../inbox.js";
import type { Services } from "./services.js";

export function newReceiveRecord(s: Services, entry: LedgerEntry, startedBy: string, details: ReceiveDetails): JobRecord {
  return {
    runId: entry.runId, type: "AS2 Receive", command: "transfer", partner: entry.partner, senderId: entry.from, receiverId: entry.mdnRequest.to,
    startedBy, host: hostname(), pid: process.pid, startTime: s.now().toISOString(),
    state: "ONGOING", statusCode: statusCodeOf("ONGOING"), files: [], messages: [], receiveDetails: details,
  };
}

/** The record's outcome from an entry at `recorded`. */
export function applyEntry(r: JobRecord, entry: LedgerEntry, partner: PartnerConfig | undefined, end: Date, warnings: string[] = []): void {
  const o = entry.opened;
  const failed = entry.outcome === "failed";
  const fileEntry = (name: string, size: number): FileEntry => {
    const file: FileEntry = { name, size, status: "ONGOING", statusCode: 0, as2MessageId: entry.messageId, ...(entry.error ? { error: { code: entry.error.code, message: entry.error.message } } : {}) };
    setFileStatus(file, failed ? "FAILED" : "SUCCESS");
    return file;
  };
  const size = o?.size ?? 0;
  // Multiple attachments (RFC 6362): one file entry per part, each with its own outcome name.
  const parts = entry.parts?.map((p) => ({ name: p.file ?? p.name, size: p.size, stored: !!p.file }));
  r.files = parts ? parts.map((p) => fileEntry(p.name, p.size)) : [fileEntry(entry.file ?? sanitizeFilename(o?.filename, entry.messageId), size)];
  const attachments = failed ? [] : parts ? parts.filter((p) => p.stored).map((p) => ({ name: p.name, size: p.size })) : entry.file ? [{ name: entry.file, size }] : [];
  r.messages = [{
    as2MessageId: entry.messageId, persistedTimestamp: end.getTime(), compressed: !!o?.compressed, encrypted: !!o?.encrypted, signed: !!o?.signed,
    ...(entry.mdnRequest.subject ? { subject: entry.mdnRequest.subject } : {}),
    receiverId: entry.mdnRequest.to, senderId: entry.from, mdnStatus: entry.mdnRequest.wanted ? "Pending" : "Not Requested",
    partnerType: partner?.type === "test" ? "Test" : "Production",
    attachments,
  }];
  r.receiveDetails ??= {};
  Object.assign(r.receiveDetails, { encryptionAlgorithm: o?.cipher, signatureAlgorithm: o?.signature, mic: o?.mic.base64, micAlgorithm: o?.mic.algorithm });
  addWarnings(r, ...(o?.warnings ?? []), ...warnings);
  r.state = failed ? "FAILED" : "SUCCESS";
  if (failed && entry.error) r.error = { code: entry.error.code, message: entry.error.message };
  else delete r.error;
  r.endTime = end.toISOString();
  r.durationMs = end.getTime() - Date.parse(r.startTime);
}

/** Where a live request came from, for a record first written at its end (see `startRecord`). */
export interface Origin {
  startedBy: string;
  details: ReceiveDetails;
}

/**
 * Whether the ONGOING record is written when the message is reserved. A message whose body is
 * declared small is over in milliseconds: its record is written once, with its outcome (saving a
 * whole record write per message, issue 14); a large or chunked one is listed as ONGOING while it
 * streams. With notifications configured the record exists from the start, because a failed
 * notification is added to it as a warning at any time (contract §6).
 */
export function startRecord(s: Services, entry: LedgerEntry, declaredBytes: number | undefined): boolean {
  const partner = s.config.partners[entry.partner];
  if (partner?.notify ?? s.config.notify) return true;
  return declaredBytes === undefined || !(declaredBytes <= SMALL_MESSAGE_BYTES);
}

/** Up to this declared size a message has no ONGOING record (startRecord). */
export const SMALL_MESSAGE_BYTES = 1024 * 1024;

/** Writes the outcome; creates the record (once, whole) when none was written before: a small message, or a crash before the first save. */
export async function recordEntry(s: Services, entry: LedgerEntry, warnings: string[] = [], origin?: Origin, knownNew = false): Promise<JobRecord> {
  const partner = s.config.partners[entry.partner];
  const end = s.now();
  if (knownNew || !(await s.store.jobs.load(entry.runId))) {
    // Nothing else writes a record that does not exist yet (notifications imply an early record).
    const r = newReceiveRecord(s, entry, origin?.startedBy ?? `${entry.from} (recovered)`, origin?.details ?? {});
    applyEntry(r, entry, partner, end, warnings);
    await s.store.jobs.save(r);
    return r;
  }
  return s.store.jobs.update(entry.runId, (r) => applyEntry(r, entry, partner, end, warnings));
}

/**
 * A job that ends without an outcome to record (refused, or stopped before the body was whole);
 * a message that had no record yet (startRecord) gets one, FAILED.
 */
export async function failJob(s: Services, entry: LedgerEntry, error: { code: string; message: string }, origin?: Origin): Promise<void> {
  const end = s.now();
  const runId = entry.runId;
  if (!(await s.store.jobs.load(runId))) {
    const r = newReceiveRecord(s, entry, origin?.startedBy ?? `${entry.from} (recovered)`, origin?.details ?? {});
    r.state = "FAILED";
    r.error = error;
    r.endTime = end.toISOString();
    r.durationMs = end.getTime() - Date.parse(r.startTime);
    await s.store.jobs.save(r);
    return;
  }
  await s.store.jobs.update(runId, (r) => {
    r.state = "FAILED";
    r.error = error;
    for (const f of r.files) if (f.status === "ONGOING") setFileStatus(f, "FAILED");
    r.endTime = end.toISOString();
    r.durationMs = end.getTime() - Date.parse(r.startTime);
  });
}
