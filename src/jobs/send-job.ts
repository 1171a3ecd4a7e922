/**
 * A send job (contract §2, §5): each file becomes one AS2 message, built as a stream, spooled to
 * a temp file when the exact length or an identical resend is needed, posted, and judged by its
 * HTTP answer and MDN. The job record is updated after every step, under the store's lock, so a
 * receive server recording an async MDN at the same time loses nothing.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { hostname, userInfo } from "node:os";
import { randomBytes } from "node:crypto";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { As2Error, ErrorCodes, Headers, buildMessage, buildRelated, generateMessageId, isAs2Error, relatedBoundaryToken, parseMdn, tap, type BuiltMessage, type Certificate, type DigestAlgorithm } from "../core/index.js";
import type { As2Config, PartnerConfig } from "../config/schema.js";
import { signersAt, type KeyMaterial } from "../config/keys.js";
import { addWarnings, openStore, jobStateOf, setFileStatus, statusCodeOf, type As2MessageEntity, type JobRecordStore, type NotificationQueue, type FileEntry, type JobRecord, type SendDetail, type StoreConfig, type ResumeState } from "../store/index.js";
import { PartnerConnections, postMessage, type PostResponse, type PostSpec, type RequestBody, type RestartSpec } from "../transport/index.js";
import { buildOptionsFor, postSpecFor } from "./send-profile.js";
import { archiveSource, contentTypeFor, deleteSource } from "./source-files.js";
import { judgeResponse, responseHeaders, writeMdnFile, type Outcome } from "./receipts.js";
import { notify, notifyQueued, type NotifySpec } from "./notify.js";
import { crashPoint } from "./crash-point.js";
import { advertised } from "./advertised.js";
import { settleOriginal } from "./send-recovery.js";
import { SendJournal } from "./send-journal.js";

export interface SendEvents {
  fileStarted?(index: number, file: string, size: number): void;
  /** "build": source bytes read into the message; "send": message bytes posted. */
  progress?(index: number, phase: "build" | "send", bytes: number, total: number): void;
  attempt?(index: number, attempt: number, previousError?: Error): void;
  fileFinished?(index: number, entry: FileEntry, error?: { code: string; message: string }): void;
  warning?(text: string): void;
  /**
   * --verbose: the exchange as it happened - the request line and headers (Authorization and
   * Proxy-Authorization are added by the transport and never appear here), the answer's status
   * and headers, and the MDN's fields when there is one.
   */
  exchange?(index: number, e: Exchange): void;
}

export interface Exchange {
  request: { method: string; url: string; headers: Record<string, string> };
  response: { status: number; statusText: string; url: string; headers: Record<string, string> };
  mdn?: Record<string, string>;
}

/** An MDN's machine-readable fields, for --verbose; undefined when the answer is not one. */
function mdnFieldsOf(res: PostResponse): Record<string, string> | undefined {
  try {
    return parseMdn(responseHeaders(res), res.body).fields;
  } catch {
    return undefined;
  }
}

const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie)$/i;

function printable(h: Record<string, string | string[] | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k, v]) => v !== undefined && !SECRET_HEADER.test(k)).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v!]));
}

export interface SendFile {
  path: string;
  /** --restart: resend under the original Message-ID (RFC 6017 duplicate detection). */
  messageId?: string;
  /** --restart of a job whose process died mid-transfer: its built message, to resume (AS2 Restart). */
  resume?: ResumeState;
  /** A payload built in memory and written to `path` (CEM, issue 17): its own Content-Type ... */
  contentType?: string;
  /** ... and no Content-Disposition file name (null), or another name than the file's. */
  filename?: string | null;
}

export interface SendJobOptions {
  config: As2Config;
  partnerName: string;
  /** The profile with this run's flags applied. */
  partner: PartnerConfig;
  keys: KeyMaterial;
  files: SendFile[];
  deleteSource: boolean;
  archiveDir?: string;
  runId: string;
  rerunOf?: string;
  restartOf?: string;
  signal: AbortSignal;
  events?: SendEvents;
  now?: () => Date;
  /**
   * RFC 6362: all the files go in ONE message, a multipart/related entity (E2), instead of one
   * message per file. The caller checked that the partner takes them (multiple-attachments.ts).
   */
  multipleAttachments?: boolean;
}

/** Above this size the MIC is computed on a worker thread, in parallel with the encryption. */
const WORKER_HASH_BYTES = 16 * 1024 * 1024;

export function notifySpecFor(config: As2Config, partner: PartnerConfig): NotifySpec | undefined {
  return partner.notify ?? config.notify;
}

function errorOf(e: unknown): { code: string; message: string } {
  if (isAs2Error(e)) return { code: e.code, message: e.suggestion ? `${e.message} (${e.suggestion})` : e.message };
  const err = e as NodeJS.ErrnoException;
  return { code: err.code ? `AS2_ERR_IO_${err.code}` : "AS2_ERR_INTERNAL", message: err.message };
}

/** Only a direct stream can be sent chunked without a spool: it cannot be resent byte for byte. */
function needsSpool(spec: PostSpec): boolean {
  return !spec.chunked || spec.retries > 0 || spec.followRedirects;
}

export function newSendRecord(o: Pick<SendJobOptions, "config" | "partnerName" | "partner" | "files" | "runId" | "rerunOf" | "restartOf">, sizes: number[], now: Date): JobRecord {
  return {
    runId: o.runId,
    type: "AS2 Send",
    command: "transfer",
    partner: o.partnerName,
    senderId: o.config.station.as2Id,
    receiverId: o.partner.as2Id,
    startedBy: safeUser(),
    host: hostname(),
    pid: process.pid,
    startTime: now.toISOString(),
    state: "ONGOING",
    statusCode: statusCodeOf("ONGOING"),
    files: o.files.map((f, i) => ({ name: f.path, size: sizes[i] ?? 0, status: "NOT_STARTED", statusCode: statusCodeOf("NOT_STARTED"), ...(f.messageId ? { as2MessageId: f.messageId } : {}) })),
    messages: [],
    sendDetails: [],
    ...(o.rerunOf ? { rerunOf: o.rerunOf } : {}),
    ...(o.restartOf ? { restartOf: o.restartOf } : {}),
  };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

/** Confirmed: the source may go (contract §2: only now, never for a failed or unconfirmed file). */
export async function disposeSource(detail: SendDetail): Promise<string | undefined> {
  if (!detail.onConfirmed) return undefined;
  const problems: string[] = [];
  // Multiple attachments: every file of the message goes (archivedTo names the first one's place).
  for (const [k, file] of (detail.files ?? [detail.file]).entries()) {
    try {
      if ("delete" in detail.onConfirmed) {
        await deleteSource(file);
        detail.sourceDeleted = true;
      } else {
        const to = await archiveSource(file, detail.onConfirmed.archiveDir);
        if (k === 0) detail.archivedTo = to;
      }
    } catch (e) {
      problems.push(`could not ${"delete" in detail.onConfirmed ? "delete" : "archive"} ${file}: ${(e as Error).message}`);
    }
  }
  return problems.length ? problems.join("; ") : undefined;
}

/** Applies an outcome to the record: file entry, message entity, MDN file destination, source. */
export async function applyOutcome(record: JobRecord, messageId: string, outcome: Outcome, partner: PartnerConfig, now: Date): Promise<void> {
  const detail = record.sendDetails?.find((d) => d.as2MessageId === messageId);
  // Several files share the message with multiple attachments (RFC 6362): one outcome for all.
  const entries = record.files.filter((f) => f.as2MessageId === messageId);
  const message = record.messages.find((m) => m.as2MessageId === messageId);
  if (!detail || !entries.length || !message) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `job ${record.runId} has no message ${messageId}`);
  const warnings = [...outcome.warnings];
  let status = outcome.status;
  let error = outcome.error;
  if (outcome.rawMdn && detail.mdnDestination === "file" && partner.mdn.file) {
    try {
      detail.mdnFile = await writeMdnFile(partner.mdn.file, outcome.rawMdn, partner.mdn.whenExists);
      if (!detail.mdnFile) warnings.push(`MDN not written: ${partner.mdn.file} exists (mdn.whenExists is "skip")`);
    } catch (e) {
      status = "FAILED";
      error = errorOf(e);
    }
  }
  message.deliveryStatus = outcome.deliveryStatus;
  message.mdnStatus = outcome.mdnStatus;
  if (outcome.mdnMessage) message.mdnMessage = { ...outcome.mdnMessage, persistedTimestamp: now.getTime() };
  if (outcome.mdnChecks) detail.mdnChecks = outcome.mdnChecks;
  for (const entry of entries) setFileStatus(entry, status);
  if (status === "SUCCESS") {
    const w = await disposeSource(detail);
    if (w) warnings.push(w);
  }
  if (error) {
    for (const entry of entries) entry.error = error;
  }
  addWarnings(record, ...warnings.map((w) => `${basename(detail.file)}: ${w}`));
}

/** Sets the job's state from its files, and the job error when it did not succeed. */
export function settleJob(record: JobRecord, now: Date): void {
  record.state = jobStateOf(record.files);
  if (record.state !== "ONGOING" && record.state !== "AWAITING_MDN") {
    record.endTime = now.toISOString();
    record.durationMs = now.getTime() - Date.parse(record.startTime);
  }
  const failed = record.files.filter((f) => f.status === "FAILED");
  if (record.state === "FAILED" || record.state === "PARTIAL") {
    const first = failed[0]?.error ?? { code: "AS2_ERR_FAILED", message: "failed" };
    record.error = failed.length === 1 ? first : { code: first.code, message: `${failed.length} of ${record.files.length} files failed; first: ${basename(failed[0]!.name)}: ${first.message}` };
  } else if (record.state !== "INTERRUPTED") {
    delete record.error;
  }
}

function interruption(signal: AbortSignal): { code: string; message: string } {
  return { code: ErrorCodes.ABORTED, message: `interrupted by ${String(signal.reason ?? "a signal")}` };
}

export interface SendJobResult {
  record: JobRecord;
}

export async function runSendJob(o: SendJobOptions): Promise<SendJobResult> {
  const now = o.now ?? (() => new Date());
  // One connection for the whole job (keep-alive.ts) unless the partner says keepAlive: false.
  const spec: PostSpec = { ...postSpecFor(o.partnerName, o.partner), connections: o.partner.keepAlive ? new PartnerConnections() : undefined };
  try {
    return await sendFiles(o, spec, now);
  } finally {
    spec.connections?.close();
  }
}

async function sendFiles(o: SendJobOptions, spec: PostSpec, now: () => Date): Promise<SendJobResult> {
  const { jobs: store, sent: index, notifications } = openStore(o.config);
  const baseOptions = buildOptionsFor(o.config, o.partnerName, o.partner, o.keys, now());
  // The partner's certificates in their window (CEM rollover, issue 17): an MDN signed with a key past its `until` is refused.
  const partnerCerts: Certificate[] = signersAt(o.keys.partners[o.partnerName], now());
  const notifySpec = notifySpecFor(o.config, o.partner);
  const spoolDir = join(o.config.dataDir, "spool");
  const sizes = await Promise.all(o.files.map((f) => stat(f.path).then((s) => s.size, () => 0)));
  const record = newSendRecord(o, sizes, now());
  await store.save(record);
  const journal = await SendJournal.open(o.config.dataDir, o.runId);
  // The record is rewritten at every step of every file, fsynced only when the job ends; the
  // journal holds the durable marks meanwhile (send-journal.ts says why).
  const step = { durable: false, reuse: true };
  crashPoint("send:started");

  const warnings: string[] = [];
  const warn = (w: string | undefined) => {
    if (!w) return;
    warnings.push(w);
    o.events?.warning?.(w);
  };
  const started = notifications ? (m: string) => notifyQueued(notifySpec, { queue: notifications, runId: o.runId, partner: o.partnerName }, "Started", m) : (m: string) => notify(notifySpec, o.runId, "Started", m);
  warn(await started(`sending ${o.files.length} file${o.files.length === 1 ? "" : "s"} to ${o.partnerName} (${o.partner.as2Id})`));

  // One message per file; with multiple attachments one message for all of them (RFC 6362),
  // whose files share its Message-ID, outcome and MDN in the record.
  const units: number[][] = o.multipleAttachments ? [o.files.map((_, k) => k)] : o.files.map((_, k) => [k]);
  for (const idx of units) {
    const i = idx[0]!;
    const file = o.files[i]!;
    if (o.signal.aborted) break;
    for (const k of idx) o.events?.fileStarted?.(k, o.files[k]!.path, sizes[k] ?? 0);
    // --restart of a transfer a dead process began: its built message, if still whole, is resumed.
    const resumed = await resumedMessage(file);
    const spool = resumed ? file.resume!.spool : join(spoolDir, `${o.runId}.${i}.body`);
    let messageId: string | undefined;
    try {
      const size = idx.reduce((n, k) => n + (sizes[k] ?? 0), 0);
      const progress = counter((n) => o.events?.progress?.(i, "build", n, size));
      const read = (k: number) => tap(createReadStream(o.files[k]!.path, { highWaterMark: 256 * 1024 }), progress);
      // The first part takes the profile's content type; the others are typed by their names
      // (README "Multiple attachments"). A resumed message keeps the type it was built with.
      const types = resumed ? [] : await Promise.all(idx.map(async (k, j) => (j === 0 && (o.files[k]!.contentType ?? o.partner.contentType)) || contentTypeFor(o.files[k]!.path)));
      // The Message-ID first: the multipart/related boundary follows from it (a restart repeats both).
      const id = o.multipleAttachments ? file.messageId ?? generateMessageId(now(), randomBytes(8).toString("hex"), o.config.station.as2Id) : file.messageId;
      const related = o.multipleAttachments && !resumed
        ? buildRelated(idx.map((k, j) => ({ contentType: types[j]!, filename: basename(o.files[k]!.path), body: () => read(k) })), relatedBoundaryToken(id!), o.partner.quirks.quoteFilename)
        : undefined;
      const contentType = resumed ? (headerOf(file.resume!.headers, "content-type") ?? "application/octet-stream") : related?.contentType ?? types[0]!;
      const built = resumed ?? buildMessage({
        ...baseOptions,
        payload: related ? related.body() : read(i),
        contentType,
        ...(related || file.filename === null ? {} : { filename: file.filename ?? basename(file.path) }),
        messageId: id,
        hashing: size >= WORKER_HASH_BYTES ? "worker" : "inline",
      });
      messageId = built.messageId;
      for (const w of built.warnings) warn(w);
      const detail: SendDetail = {
        as2MessageId: built.messageId, file: file.path, ...(related ? { files: idx.map((k) => o.files[k]!.path) } : {}), contentType, url: spec.url, mic: "", micAlgorithm: "", bodyBytes: 0, attempts: 0,
        mdnRequest: o.partner.mdn.request, mdnMode: o.partner.mdn.mode, mdnDestination: o.partner.mdn.destination,
        ...(o.deleteSource ? { onConfirmed: { delete: true as const } } : o.archiveDir ? { onConfirmed: { archiveDir: o.archiveDir } } : {}),
      };
      const entity: As2MessageEntity = {
        as2MessageId: built.messageId, persistedTimestamp: now().getTime(), compressed: built.compressed !== false, encrypted: built.encrypted, signed: built.signed,
        ...(o.partner.subject !== undefined ? { subject: o.partner.subject } : {}),
        receiverId: o.partner.as2Id, senderId: o.config.station.as2Id, deliveryStatus: "No Status",
        mdnStatus: o.partner.mdn.request === "none" ? "Not Requested" : "Pending",
        partnerType: o.partner.type === "test" ? "Test" : "Production",
        attachments: idx.map((k) => ({ name: basename(o.files[k]!.path), size: sizes[k] ?? 0 })),
      };
      const headers = built.headers.toObject();
      let body: RequestBody;
      // The message is built (and spooled) before the record names it: a crash while building
      // leaves the file NOT_STARTED, with nothing sent, and the one durable write below covers
      // the file's start, its Message-ID and (spooled) its MIC together.
      let restart: RestartSpec | undefined;
      if (resumed) {
        const r = file.resume!;
        Object.assign(detail, { mic: r.mic, micAlgorithm: r.micAlgorithm, bodyBytes: r.bodyBytes });
        body = { length: r.bodyBytes, open: () => createReadStream(spool, { highWaterMark: 256 * 1024 }) };
        restart = restartSpecFor(o, spec, headers, r.bodyBytes, spool, i, r.etag);
      } else if (needsSpool(spec)) {
        await mkdir(spoolDir, { recursive: true, mode: 0o700 });
        await pipeline(Readable.from(built.body), createWriteStream(spool, { mode: 0o600 }), { signal: o.signal });
        const { mic, bodyBytes } = await built.done;
        Object.assign(detail, { mic: mic.base64, micAlgorithm: mic.algorithm, bodyBytes });
        body = { length: bodyBytes, open: () => createReadStream(spool, { highWaterMark: 256 * 1024 }) };
        restart = restartSpecFor(o, spec, headers, bodyBytes, spool, i);
      } else {
        body = { open: () => built.body, replayable: false };
      }
      if (restart) {
        body.restart = restart;
        detail.resume = {
          spool, etag: restart.etag, headers, bodyBytes: detail.bodyBytes, mic: detail.mic, micAlgorithm: detail.micAlgorithm,
          signed: built.signed, encrypted: built.encrypted, compressed: built.compressed,
        };
      }
      // Before the POST, durably: the Message-ID under which a restart resends this file (so the
      // receiver's duplicate check applies, RFC 6017), and the send index entry by which the
      // receive server finds this job when an async MDN comes back at once.
      await index.add(built.messageId, o.runId);
      for (const k of idx) await journal.mark({ i: k, as2MessageId: built.messageId, status: "ONGOING" });
      await store.update(o.runId, (r) => {
        for (const k of idx) {
          setFileStatus(r.files[k]!, "ONGOING");
          r.files[k]!.as2MessageId = built.messageId;
        }
        r.messages = r.messages.filter((m) => m.as2MessageId !== built.messageId).concat(entity);
        r.sendDetails = (r.sendDetails ?? []).filter((d) => d.as2MessageId !== built.messageId).concat({ ...detail });
      }, step);
      // Streamed: the MIC is recorded as soon as the body is complete; an async MDN may come
      // back before the POST's own response does, and is checked against it (RFC 4130 §7.3.1).
      const micRecorded = body.replayable === false ? built.done.then(async ({ mic, bodyBytes }) => {
        Object.assign(detail, { mic: mic.base64, micAlgorithm: mic.algorithm, bodyBytes });
        await store.update(o.runId, (r) => { Object.assign(r.sendDetails!.find((x) => x.as2MessageId === built.messageId)!, { mic: mic.base64, micAlgorithm: mic.algorithm, bodyBytes }); }, step);
      }) : Promise.resolve();
      micRecorded.catch(() => undefined);
      crashPoint("send:spooled");
      const total = body.length ?? 0;
      const res = await postMessage(headers, body, spec, {
        onAttempt: (n, _url, prev) => o.events?.attempt?.(i, n, prev),
        onProgress: (n) => o.events?.progress?.(i, "send", n, total),
      }, o.signal);
      await micRecorded;
      crashPoint("send:posted");
      if (o.events?.exchange) {
        o.events.exchange(i, {
          request: { method: "POST", url: spec.url, headers: printable(headers) },
          response: { status: res.status, statusText: res.statusText, url: res.url, headers: printable(res.headers) },
          mdn: mdnFieldsOf(res),
        });
      }
      detail.attempts = res.attempts;
      detail.httpStatus = res.status;
      const outcome = judgeResponse(res, { detail, partnerCertificates: partnerCerts, now: now(), quirks: o.partner.quirks });
      const updated = await store.update(o.runId, async (r) => {
        const d = r.sendDetails!.find((x) => x.as2MessageId === built.messageId)!;
        const { as2Version, ediintFeatures } = advertised(res.headers);
        delete d.resume;
        Object.assign(d, { attempts: res.attempts, httpStatus: res.status, ...(res.restart ? { restart: res.restart } : {}), ...(as2Version ? { partnerAs2Version: as2Version } : {}), ...(ediintFeatures ? { partnerFeatures: ediintFeatures } : {}) });
        const m = r.messages.find((x) => x.as2MessageId === built.messageId)!;
        m.transportStatusReceived = res.status;
        // An async MDN may have been recorded already by the receive server: keep it.
        if (r.files[i]!.status !== "ONGOING") return;
        await applyOutcome(r, built.messageId, outcome, o.partner, now());
      }, step);
      for (const k of idx) {
        const entry = updated.files[k]!;
        await journal.mark({ i: k, status: entry.status, ...(entry.error ? { error: entry.error } : {}) });
      }
      crashPoint("send:recorded");
      for (const k of idx) o.events?.fileFinished?.(k, updated.files[k]!, updated.files[k]!.error);
    } catch (e) {
      const interrupted = o.signal.aborted;
      const error = interrupted ? interruption(o.signal) : errorOf(e);
      const updated = await store.update(o.runId, (r) => {
        for (const k of idx) {
          const entry = r.files[k]!;
          setFileStatus(entry, interrupted ? "INTERRUPTED" : "FAILED");
          entry.error = error;
        }
        const m = messageId ? r.messages.find((x) => x.as2MessageId === messageId) : undefined;
        if (m && !interrupted) m.deliveryStatus = "Not Delivered";
        const d = messageId ? r.sendDetails?.find((x) => x.as2MessageId === messageId) : undefined;
        if (d) delete d.resume; // the spool goes now
      }, step);
      for (const k of idx) await journal.mark({ i: k, status: updated.files[k]!.status, error });
      for (const k of idx) o.events?.fileFinished?.(k, updated.files[k]!, error);
    } finally {
      await rm(spool, { force: true });
    }
  }

  const final = await store.update(o.runId, (r) => {
    if (o.signal.aborted) {
      r.error = interruption(o.signal);
      r.state = "INTERRUPTED";
      const t = now();
      r.endTime = t.toISOString();
      r.durationMs = t.getTime() - Date.parse(r.startTime);
    } else {
      settleJob(r, now());
    }
    addWarnings(r, ...warnings);
  }, { reuse: true });
  await journal.finish();
  await notifyEnd(store, notifySpec, final, notifications);
  await settleOriginal(openStore(o.config), final, now());
  return { record: (await store.load(o.runId)) ?? final };
}

/** Completed / Failed (an interruption is Failed with the reason); a failure to notify becomes a warning. */
export async function notifyEnd(store: JobRecordStore, spec: NotifySpec | undefined, record: JobRecord, queue?: NotificationQueue): Promise<void> {
  if (!spec || record.state === "ONGOING") return;
  const ok = record.state === "SUCCESS" || record.state === "AWAITING_MDN";
  const message = ok
    ? record.state === "AWAITING_MDN" ? `${record.files.length} file(s) accepted; waiting for the MDN` : `${record.files.length} file(s) sent and confirmed`
    : `${record.state}: ${record.error?.message ?? "failed"}`;
  const status = ok ? "Completed" : "Failed";
  const w = queue ? await notifyQueued(spec, { queue, runId: record.runId, partner: record.partner }, status, message) : await notify(spec, record.runId, status, message);
  if (w) await store.update(record.runId, (r) => addWarnings(r, w));
}

/**
 * AS2 Restart for a spooled message (draft-harding-as2-restart-07; as2-reference E3, E4): the
 * partner's `restart` is not false and the message is at least restartMinBytes. The ETag is
 * globally unique (run ID, file index, 64 random bits); the spool holds the identical bytes
 * for every resume, for as long as the job sends this file.
 */
function restartSpecFor(o: SendJobOptions, spec: PostSpec, headers: Record<string, string>, bodyBytes: number, spool: string, i: number, etag?: string): RestartSpec | undefined {
  if (o.partner.restart === false || bodyBytes < o.partner.restartMinBytes || spec.chunked || bodyBytes === 0) return undefined;
  const pick = (name: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  const headHeaders: Record<string, string> = {};
  for (const [name, key] of [["AS2-From", "as2-from"], ["AS2-To", "as2-to"], ["Message-ID", "message-id"]] as const) {
    const v = pick(key);
    if (v !== undefined) headHeaders[name] = v;
  }
  return {
    etag: etag ?? `"${o.runId}-${i}-${randomBytes(8).toString("hex")}"`,
    openFrom: (start) => createReadStream(spool, { start, highWaterMark: 256 * 1024 }),
    headHeaders,
    trustAnyHead: o.partner.restart === true,
    // A transfer a dead process began: ask what arrived before sending anything.
    ...(etag ? { resumeFirst: true } : {}),
  };
}

function headerOf(headers: Record<string, string>, name: string): string | undefined {
  return Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
}

/**
 * The message a dead process built and began to send (SendDetail.resume), standing in for a new
 * build: the identical bytes from its spool, with its headers, Message-ID and MIC. Undefined
 * when there is none, or its spool is not whole any more (then the file is built anew: a
 * different message under the same Message-ID, which a partner holding part of the old one
 * never confuses with it, since the ETag differs).
 */
async function resumedMessage(file: SendFile): Promise<BuiltMessage | undefined> {
  const r = file.resume;
  if (!r || !file.messageId || headerOf(r.headers, "message-id") !== file.messageId) return undefined;
  const size = await stat(r.spool).then((s) => s.size, () => -1);
  if (size !== r.bodyBytes) return undefined;
  const mic = { algorithm: r.micAlgorithm as DigestAlgorithm, base64: r.mic, digest: Buffer.from(r.mic, "base64") };
  return {
    messageId: file.messageId, date: new Date(headerOf(r.headers, "date") ?? Date.now()), headers: Headers.from(r.headers),
    body: (async function* () { /* the body is the spool */ })(), done: Promise.resolve({ mic, bodyBytes: r.bodyBytes }),
    signed: r.signed, encrypted: r.encrypted, compressed: r.compressed, warnings: [],
  };
}

function counter(report: (n: number) => void): (c: Uint8Array) => void {
  let n = 0;
  return (c) => report((n += c.byteLength));
}

/**
 * --wait-mdn: waits until a receive server (same data directory, or any node on the shared
 * database) has recorded the MDN of every
 * file still AWAITING_MDN. Returns the latest record and whether time ran out.
 */
export async function waitForMdns(config: StoreConfig, runId: string, seconds: number, signal: AbortSignal): Promise<{ record: JobRecord; timedOut: boolean }> {
  const store = openStore(config).jobs;
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const record = (await store.load(runId))!;
    if (!record.files.some((f) => f.status === "AWAITING_MDN")) return { record, timedOut: false };
    if (Date.now() >= deadline || signal.aborted) return { record, timedOut: true };
    await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))));
  }
}
