/**
 * The AS2 receive handler (RFC 4130 §7, as2-reference §11-§12): identify the partner, enforce
 * auth and limits, detect duplicates, stream decrypt -> inflate -> verify into a temp file in the
 * partner's inbox, fsync and rename, record the job, and only then answer with the MDN (sync in
 * the response, async by POST to Receipt-Delivery-Option). Async MDNs for messages this station
 * sent are recognised and recorded in their send jobs.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { hostname } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { TLSSocket } from "node:tls";
import {
  As2Error, ErrorCodes, Headers, buildMdn, chooseMicAlgorithm, collect, isAs2Error, limitSize, openMessage,
  parseAs2Name, parseContentType, parseDispositionOptions, wantsSignedReceipt, fromBytes,
  type BuiltMdn, type DigestAlgorithm, type DispositionSpec, type OpenedMessage,
} from "../core/index.js";
import { partnerByAs2Id, type As2Config } from "../config/schema.js";
import type { KeyMaterial } from "../config/keys.js";
import { JobStore, ReceivedMessageIndex, addWarnings, newRunId, setFileStatus, statusCodeOf, type FileEntry, type JobRecord } from "../store/index.js";
import { postMessage } from "../transport/index.js";
import { recordAsyncMdn } from "./async-mdn.js";
import { InboxWriter, sanitizeFilename } from "./inbox.js";
import { JobNotifier } from "./notify.js";
import { defaultUserAgent } from "./send-profile.js";

export interface ReceiveEvent {
  time: string;
  event: "message" | "mdn" | "duplicate" | "rejected" | "error" | "mdn-sent" | "mdn-failed";
  remote?: string;
  partner?: string;
  messageId?: string;
  runId?: string;
  file?: string;
  bytes?: number;
  disposition?: string;
  status?: number;
  detail?: string;
}

export interface ReceiveContext {
  config: As2Config;
  keys: KeyMaterial;
  onEvent(e: ReceiveEvent): void;
  /** Called after each message or MDN is fully handled (for --once). */
  onHandled?(): void;
  now?: () => Date;
}

/** An MDN POST is a few KiB; anything larger on that path is not one. */
const MAX_MDN_BYTES = 1024 * 1024;
/** How many times an async MDN is posted before giving up, and the pause between. */
export const ASYNC_MDN_RETRIES = 3;
export const ASYNC_MDN_RETRY_INTERVAL_MS = 2000;

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string = ""): void {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, "Content-Length": String(b.length) });
  res.end(b);
}

function refuse(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  // The rest of the body is not read: close the connection rather than drain gigabytes.
  send(res, status, { "Content-Type": "text/plain; charset=utf-8", Connection: "close", ...extra }, `${text}\n`);
}

function mdnHeaders(m: BuiltMdn): Record<string, string> {
  return Object.fromEntries(m.headers.list.map((h) => [h.name, h.value]));
}

function basicUser(req: IncomingMessage): { username: string; password: string } | undefined {
  const h = req.headers.authorization;
  if (!h || !/^basic /i.test(h)) return undefined;
  const decoded = Buffer.from(h.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Reads up to n bytes of the body, then hands back a stream that starts with them. */
async function peek(source: AsyncIterable<Uint8Array>, n: number): Promise<{ head: Buffer; rest: AsyncIterable<Uint8Array> }> {
  const it = source[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let len = 0;
  let done = false;
  while (len < n) {
    const r = await it.next();
    if (r.done) { done = true; break; }
    parts.push(Buffer.from(r.value));
    len += r.value.byteLength;
  }
  const head = Buffer.concat(parts);
  const rest = (async function* () {
    yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  return { head, rest };
}

/** multipart/report, or multipart/signed whose first part is multipart/report (as2-reference V1). */
function isMdnRequest(contentType: string, head: Buffer): boolean {
  const ct = parseContentType(contentType);
  if (ct.mediaType === "multipart/report") return true;
  if (ct.mediaType !== "multipart/signed" || !ct.params.boundary) return false;
  const text = head.toString("latin1");
  const start = text.indexOf(`--${ct.params.boundary}`);
  if (start < 0) return false;
  const part = text.slice(start + ct.params.boundary.length + 2);
  const headerEnd = part.search(/\r?\n\r?\n/);
  return /content-type:\s*multipart\/report/i.test(headerEnd < 0 ? part : part.slice(0, headerEnd));
}

/** The partner's inbox: inbound.inbox, else <dataDir>/inbox/<partner>. */
export function inboxOf(config: As2Config, partnerName: string): string {
  return config.partners[partnerName]?.inbound.inbox ?? join(config.dataDir, "inbox", partnerName);
}

/** At start-up: removes temp files a killed receiver left in the inboxes; returns how many. */
export async function sweepInboxes(config: As2Config): Promise<number> {
  let removed = 0;
  for (const name of Object.keys(config.partners)) removed += await InboxWriter.sweep(inboxOf(config, name));
  return removed;
}

export function createReceiveHandler(ctx: ReceiveContext): (req: IncomingMessage, res: ServerResponse) => void {
  const now = ctx.now ?? (() => new Date());
  const { config, keys } = ctx;
  const store = new JobStore(config.dataDir);
  const received = new ReceivedMessageIndex(config.dataDir);
  const event = (e: Omit<ReceiveEvent, "time">) => ctx.onEvent({ time: now().toISOString(), ...e });
  return (req: IncomingMessage, res: ServerResponse) => {
    const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    handle(req, res, remote).catch((e: unknown) => {
      event({ event: "error", remote, detail: (e as Error).message });
      if (!res.headersSent) refuse(res, 500, "internal error");
      else res.destroy();
    }).finally(() => { if (req.method === "POST") ctx.onHandled?.(); });
  };

  async function handle(req: IncomingMessage, res: ServerResponse, remote: string): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== config.receive.path) return refuse(res, 404, `no AS2 endpoint at ${url.pathname}; it is ${config.receive.path}`);
    // X3: HEAD on the endpoint answers 200 with an empty body.
    if (req.method === "HEAD") { res.writeHead(200, { "Content-Length": "0" }); res.end(); return; }
    if (req.method !== "POST") return refuse(res, 405, "AS2 messages are POSTed", { Allow: "POST, HEAD" });
    const length = Number(req.headers["content-length"] ?? NaN);
    const tooLarge = `the message is larger than receive.maxMessageBytes (${config.receive.maxMessageBytes} bytes)`;
    if (Number.isFinite(length) && length > config.receive.maxMessageBytes) {
      event({ event: "rejected", remote, messageId: req.headers["message-id"] as string | undefined, status: 413, detail: `Content-Length ${length}: ${tooLarge}` });
      return refuse(res, 413, tooLarge);
    }
    const started = Date.now();
    let bytesIn = 0;
    const counted = (async function* () { for await (const c of req as AsyncIterable<Buffer>) { bytesIn += c.length; yield c; } })();
    const body = limitSize(counted, config.receive.maxMessageBytes, "the message");
    const overLimit = () => bytesIn > config.receive.maxMessageBytes;
    /** A body that stopped coming: the sender went away, or receive.requestTimeout cut it off. */
    const incomplete = (e: unknown): As2Error | undefined => {
      if (!req.readableAborted && !req.socket.destroyed) return undefined;
      const got = `${bytesIn}${Number.isFinite(length) ? ` of ${length}` : ""} bytes`;
      const why = Date.now() - started >= config.receive.requestTimeout * 1000
        ? `receive.requestTimeout (${config.receive.requestTimeout} s) ran out with ${got} received`
        : `the sender closed the connection after ${got}`;
      return new As2Error(ErrorCodes.TRUNCATED, `the message is incomplete: ${why}`, { cause: e });
    };
    /** What went wrong with the body itself (too large, or incomplete), if anything did. */
    const bodyProblem = (e: unknown): As2Error | undefined =>
      overLimit() ? new As2Error(ErrorCodes.LIMIT_EXCEEDED, tooLarge, { cause: e }) : incomplete(e);
    const contentType = String(req.headers["content-type"] ?? "");
    let peeked: Awaited<ReturnType<typeof peek>>;
    try {
      peeked = await peek(body, 16 * 1024);
    } catch (e) {
      const why = (bodyProblem(e) ?? (e as Error)).message;
      const status = overLimit() ? 413 : 400;
      event({ event: "rejected", remote, messageId: req.headers["message-id"] as string | undefined, status, detail: why });
      return refuse(res, status, why);
    }
    const { head, rest } = peeked;
    if (isMdnRequest(contentType, head)) return handleMdn(req, res, remote, rest);

    const fromRaw = req.headers["as2-from"];
    const toRaw = req.headers["as2-to"];
    const messageId = String(req.headers["message-id"] ?? "").trim();
    if (typeof fromRaw !== "string" || typeof toRaw !== "string" || !messageId) {
      event({ event: "rejected", remote, status: 400, detail: "AS2-From, AS2-To or Message-ID missing" });
      return refuse(res, 400, "not an AS2 message: AS2-From, AS2-To and Message-ID are required (RFC 4130 §6)");
    }
    const from = parseAs2Name(fromRaw);
    const to = parseAs2Name(toRaw);
    const match = partnerByAs2Id(config, from);
    const dno = parseDispositionOptions(req.headers["disposition-notification-options"] as string | undefined);
    const mdnWanted = req.headers["disposition-notification-to"] !== undefined;
    const asyncUrl = req.headers["receipt-delivery-option"] as string | undefined;
    const signMdn = mdnWanted && wantsSignedReceipt(dno);
    const micChoice = chooseMicAlgorithm(dno);
    const original = { messageId, from, to, subject: req.headers.subject as string | undefined, date: req.headers.date };

    const makeMdn = (disposition: DispositionSpec, detail?: string, opened?: OpenedMessage): BuiltMdn => buildMdn({
      original, disposition, detail,
      mic: opened ? { base64: opened.mic.base64, algorithm: opened.mic.algorithm, token: opened.signed ? undefined : micChoice?.token } : undefined,
      // P2: a signed receipt was asked for, so it is signed even when processing failed.
      sign: signMdn ? { digest: (opened?.signed ? opened.mic.algorithm : micChoice?.algorithm) ?? "sha256", key: keys.station.key, certificate: keys.station.certificate } : false,
      reportingUa: `as2kit on ${hostname()}`,
      now,
    });

    if (to !== config.station.as2Id || !match) {
      const detail = to !== config.station.as2Id ? `AS2-To "${to}" is not this station (${config.station.as2Id})` : `no partner with AS2 ID "${from}" is configured`;
      event({ event: "rejected", remote, messageId, detail });
      for await (const _ of rest) { /* read the rest so the answer reaches the sender */ }
      if (!mdnWanted) return refuse(res, 403, detail);
      const mdn = makeMdn({ type: "processed", modifier: "error", description: "unexpected-processing-error" }, `unknown trading relationship: ${detail}`);
      return send(res, 200, mdnHeaders(mdn), mdn.body);
    }
    const [partnerName, partner] = match;
    if (partner.inbound.users.length) {
      const user = basicUser(req);
      if (!user || !partner.inbound.users.some((u) => u.username === user.username && u.password === user.password)) {
        event({ event: "rejected", remote, partner: partnerName, messageId, status: 401, detail: user ? `wrong credentials for user "${user.username}"` : "no credentials" });
        return refuse(res, 401, "authentication required", { "WWW-Authenticate": 'Basic realm="as2kit", charset="UTF-8"' });
      }
    }
    if (partner.inbound.requireClientCertificate && !(req.socket as TLSSocket).authorized) {
      event({ event: "rejected", remote, partner: partnerName, messageId, status: 403, detail: "no trusted client certificate" });
      return refuse(res, 403, "a trusted TLS client certificate is required");
    }

    // X6: a resend of a message we already took gets the same MDN, and no second file.
    const earlier = await received.get(from, messageId);
    if (earlier) {
      for await (const _ of rest) { /* drained: the payload is not stored again */ }
      event({ event: "duplicate", remote, partner: partnerName, messageId, runId: earlier.runId, file: earlier.file });
      const headers = earlier.mdn ? new Headers(earlier.mdn.headers) : undefined;
      const mdnBody = earlier.mdn ? Buffer.from(earlier.mdn.body, "base64") : undefined;
      if (asyncUrl && headers && mdnBody) {
        send(res, 200, {});
        await postAsyncMdn(asyncUrl, headers.toObject(), mdnBody, earlier.runId, partnerName, messageId);
        return;
      }
      if (headers && mdnBody) return send(res, 200, headers.toObject(), mdnBody);
      return send(res, 200, {});
    }

    const runId = newRunId(now());
    const startTime = now();
    const inboxDir = inboxOf(config, partnerName);
    const record: JobRecord = {
      runId, type: "AS2 Receive", command: "transfer", partner: partnerName, senderId: from, receiverId: to,
      startedBy: `${from} from ${remote}`, host: hostname(), pid: process.pid, startTime: startTime.toISOString(),
      state: "ONGOING", statusCode: statusCodeOf("ONGOING"), files: [], messages: [],
      receiveDetails: {
        remoteAddress: req.socket.remoteAddress, remotePort: req.socket.remotePort, serverPort: req.socket.localPort,
        username: basicUser(req)?.username, contentType,
        mdnType: mdnWanted ? (asyncUrl ? "async" : "sync") : undefined, mdnSigned: signMdn, mdnSent: false,
      },
    };
    await store.save(record);
    // Notifications run beside the transfer, in order; a failed one becomes a warning (contract §6).
    const notifier = new JobNotifier(partner.notify ?? config.notify, runId, (w) => store.update(runId, (r) => addWarnings(r, w)));
    notifier.send("Started", `receiving ${messageId} from ${partnerName} (${from})`);

    // X2: for an async MDN, 2xx as soon as the last byte is in, before any processing: spool first.
    let source: AsyncIterable<Uint8Array> = rest;
    let spool: string | undefined;
    if (asyncUrl && mdnWanted) {
      const spoolDir = join(config.dataDir, "spool");
      await mkdir(spoolDir, { recursive: true, mode: 0o700 });
      spool = join(spoolDir, `in-${runId}.body`);
      try {
        await pipeline(Readable.from(rest), createWriteStream(spool, { mode: 0o600 }));
      } catch (e) {
        await rm(spool, { force: true });
        const err = bodyProblem(e) ?? (e as Error);
        await failRecord(runId, err);
        notifier.send("Failed", err.message);
        const status = overLimit() ? 413 : 400;
        event({ event: "rejected", remote, partner: partnerName, messageId, runId, status, detail: err.message });
        return refuse(res, status, err.message);
      }
      send(res, 200, {});
      source = createReadStream(spool);
    }

    let writer: InboxWriter | undefined;
    let opened: OpenedMessage | undefined;
    let stored: string | undefined;
    let failure: As2Error | undefined;
    try {
      opened = await openMessage({
        headers: req.headers, body: source,
        decryptionKeys: keys.decryptionKeys,
        signerCertificates: keys.partners[partnerName]?.signatureCertificates ?? [],
        micAlgorithm: micChoice?.algorithm as DigestAlgorithm | undefined,
        requireSigned: partner.inbound.requireSigned,
        requireEncrypted: partner.inbound.requireEncrypted,
        limits: { maxInflatedBytes: config.receive.maxInflatedBytes },
        onPayload: async (_info, payload) => {
          writer = await InboxWriter.create(inboxDir);
          await writer.write(payload);
        },
      });
      // Only now, with the signature checked, does the file appear in the inbox (fsync + rename).
      stored = await writer!.commit(sanitizeFilename(opened.payload.filename, messageId), partner.inbound.whenExists);
    } catch (e) {
      await writer?.discard();
      const problem = bodyProblem(e);
      if (problem?.code === ErrorCodes.LIMIT_EXCEEDED && !spool) {
        await failRecord(runId, problem);
        notifier.send("Failed", problem.message);
        event({ event: "rejected", remote, partner: partnerName, messageId, runId, status: 413, detail: tooLarge });
        return refuse(res, 413, tooLarge);
      }
      failure = problem ?? (isAs2Error(e) ? e : new As2Error(ErrorCodes.MALFORMED_MIME, (e as Error).message, { cause: e }));
    } finally {
      if (spool) await rm(spool, { force: true });
    }

    const disposition: DispositionSpec = failure
      ? { type: "processed", modifier: "error", description: failure.disposition }
      : stored ? { type: "processed" } : { type: "processed", modifier: "warning", description: "duplicate-filename" };
    const name = stored ?? sanitizeFilename(opened?.payload.filename, messageId);
    const detail = failure ? failure.message : stored ? undefined : `a file named ${name} exists; kept the existing one (inbound.whenExists "skip")`;
    const mdn = mdnWanted ? makeMdn(disposition, detail, failure ? undefined : opened) : undefined;
    const end = now();
    const size = opened?.payload.size ?? 0;
    await store.update(runId, (r) => {
      const entry: FileEntry = { name, size, status: "ONGOING", statusCode: 0, as2MessageId: messageId, ...(failure ? { error: { code: failure.code, message: failure.message } } : {}) };
      setFileStatus(entry, failure ? "FAILED" : "SUCCESS");
      r.files.push(entry);
      r.messages.push({
        as2MessageId: messageId, persistedTimestamp: end.getTime(), compressed: !!opened?.compressed, encrypted: !!opened?.encrypted, signed: !!opened?.signed,
        ...(original.subject ? { subject: original.subject } : {}),
        receiverId: to, senderId: from, mdnStatus: mdnWanted ? "Pending" : "Not Requested",
        partnerType: partner.type === "test" ? "Test" : "Production",
        attachments: stored ? [{ name: stored, size }] : [],
      });
      Object.assign(r.receiveDetails!, {
        encryptionAlgorithm: opened?.encryption?.cipher, signatureAlgorithm: opened?.signature ? `${opened.signature.digest}${opened.signature.scheme === "rsassa-pss" ? " (RSASSA-PSS)" : ""}` : undefined,
        mic: opened?.mic.base64, micAlgorithm: opened?.mic.algorithm,
      });
      addWarnings(r, ...(opened?.warnings ?? []), ...(detail && !failure ? [detail] : []));
      r.state = failure ? "FAILED" : "SUCCESS";
      if (failure) r.error = { code: failure.code, message: failure.message };
      r.endTime = end.toISOString();
      r.durationMs = end.getTime() - startTime.getTime();
    });
    // The duplicate index gets the MDN before it goes out: a resend racing this one gets the same.
    if (!failure) await received.put(from, messageId, { runId, file: stored, ...(mdn ? { mdn: { headers: mdn.headers.list, body: mdn.body.toString("base64") } } : {}) });
    event({ event: "message", remote, partner: partnerName, messageId, runId, file: stored, bytes: size, disposition: `${disposition.type}${disposition.modifier ? `/${disposition.modifier}: ${disposition.description}` : ""}`, detail: failure?.message ?? detail });
    notifier.send(failure ? "Failed" : "Completed", failure ? failure.message : `stored ${stored ?? "(skipped)"}`);

    if (!mdn) {
      if (!spool) send(res, failure ? 400 : 200, { "Content-Type": "text/plain" }, failure ? `${failure.disposition}: ${failure.message}\n` : "");
      return;
    }
    if (spool || asyncUrl) {
      await postAsyncMdn(asyncUrl!, mdnHeaders(mdn), mdn.body, runId, partnerName, messageId);
      return;
    }
    if (req.socket.destroyed) {
      await store.update(runId, (r) => addWarnings(r, "the sender had closed the connection; the MDN was not delivered"));
      return;
    }
    // X1/X4: the sync MDN is the 200 response, also when it reports an error.
    send(res, 200, mdnHeaders(mdn), mdn.body);
    await store.update(runId, (r) => { r.receiveDetails!.mdnSent = true; r.messages[0]!.mdnStatus = "Received"; });
  }

  async function failRecord(runId: string, e: unknown): Promise<void> {
    const end = now();
    await store.update(runId, (r) => {
      r.state = "FAILED";
      r.error = { code: isAs2Error(e) ? e.code : "AS2_ERR_INTERNAL", message: (e as Error).message };
      r.endTime = end.toISOString();
      r.durationMs = end.getTime() - Date.parse(r.startTime);
    });
  }

  async function postAsyncMdn(url: string, headers: Record<string, string>, body: Buffer, runId: string, partnerName: string, messageId: string): Promise<void> {
    if (!/^https?:/i.test(url)) {
      const why = `cannot deliver an MDN to ${url}: only http(s) Receipt-Delivery-Options are supported`;
      event({ event: "mdn-failed", partner: partnerName, messageId, runId, detail: why });
      await store.update(runId, (rec) => addWarnings(rec, why));
      return;
    }
    try {
      const r = await postMessage(headers, { length: body.length, open: () => fromBytes(body) }, {
        url, connectTimeoutMs: 30_000, readTimeoutMs: 60_000, retries: ASYNC_MDN_RETRIES, retryIntervalMs: ASYNC_MDN_RETRY_INTERVAL_MS, followRedirects: true, chunked: false, userAgent: defaultUserAgent(),
      });
      const ok = r.status >= 200 && r.status < 300;
      event({ event: ok ? "mdn-sent" : "mdn-failed", partner: partnerName, messageId, runId, status: r.status, detail: url });
      await store.update(runId, (rec) => { rec.receiveDetails!.mdnSent = ok; if (ok) rec.messages[0]!.mdnStatus = "Received"; else addWarnings(rec, `async MDN to ${url}: HTTP ${r.status}`); });
    } catch (e) {
      event({ event: "mdn-failed", partner: partnerName, messageId, runId, detail: `${url}: ${(e as Error).message}` });
      await store.update(runId, (rec) => addWarnings(rec, `async MDN to ${url} failed: ${(e as Error).message}`));
    }
  }

  async function handleMdn(req: IncomingMessage, res: ServerResponse, remote: string, body: AsyncIterable<Uint8Array>): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await collect(body, MAX_MDN_BYTES);
    } catch (e) {
      event({ event: "rejected", remote, status: 413, detail: (e as Error).message });
      return refuse(res, 413, "an MDN is at most 1 MiB");
    }
    try {
      const result = await recordAsyncMdn({ config, keys, headers: Headers.from(req.headers as Record<string, string>), body: bytes, now });
      if (!result) {
        event({ event: "rejected", remote, status: 404, detail: "an MDN for a message this station did not send" });
        return refuse(res, 404, "no message with that Original-Message-ID was sent from here");
      }
      event({ event: "mdn", remote, partner: result.record.partner, messageId: result.messageId, runId: result.runId, disposition: result.outcome.mdnMessage?.disposition, detail: result.outcome.error?.message });
      // X3: the receiver of an async MDN answers 2xx with an empty body.
      send(res, 200, {});
    } catch (e) {
      event({ event: "rejected", remote, status: 400, detail: (e as Error).message });
      refuse(res, 400, (e as Error).message);
    }
  }
}
