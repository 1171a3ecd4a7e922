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
  const name = entry.file ?? sanitizeFilename(o?.filename, entry.messageId);
  const size = o?.size ?? 0;
  const file: FileEntry = { name, size, status: "ONGOING", statusCode: 0, as2MessageId: entry.messageId, ...(entry.error ? { error: { code: entry.error.code, message: entry.error.message } } : {}) };
  setFileStatus(file, failed ? "FAILED" : "SUCCESS");
  r.files = [file];
  r.messages = [{
    as2MessageId: entry.messageId, persistedTimestamp: end.getTime(), compressed: !!o?.compressed, encrypted: !!o?.encrypted, signed: !!o?.signed,
    ...(entry.mdnRequest.subject ? { subject: entry.mdnRequest.subject } : {}),
    receiverId: entry.mdnRequest.to, senderId: entry.from, mdnStatus: entry.mdnRequest.wanted ? "Pending" : "Not Requested",
    partnerType: partner?.type === "test" ? "Test" : "Production",
    attachments: entry.file && !failed ? [{ name: entry.file, size }] : [],
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

/** Writes the outcome; creates the record if a crash came before it was first saved. */
export async function recordEntry(s: Services, entry: LedgerEntry, warnings: string[] = []): Promise<JobRecord> {
  const partner = s.config.partners[entry.partner];
  const end = s.now();
  if (!(await s.store.jobs.load(entry.runId))) {
    await s.store.jobs.save(newReceiveRecord(s, entry, `${entry.from} (recovered)`, {}));
  }
  return s.store.jobs.update(entry.runId, (r) => applyEntry(r, entry, partner, end, warnings));
}

/** A job that ends without an outcome to record (refused, or stopped before the body was whole). */
export async function failJob(s: Services, runId: string, error: { code: string; message: string }): Promise<void> {
  const end = s.now();
  if (!(await s.store.jobs.load(runId))) return;
  await s.store.jobs.update(runId, (r) => {
    r.state = "FAILED";
    r.error = error;
    for (const f of r.files) if (f.status === "ONGOING") setFileStatus(f, "FAILED");
    r.endTime = end.toISOString();
    r.durationMs = end.getTime() - Date.parse(r.startTime);
  });
}
