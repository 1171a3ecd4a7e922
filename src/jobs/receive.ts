/**
 * The AS2 receive server's HTTP side (RFC 4130 §7, as2-reference §11-§12): route and limits,
 * identify and authenticate the partner, then hand the message to the receive pipeline
 * (receive/pipeline.ts), which reserves, spools, opens, commits, records and answers it with
 * durable steps, and map its outcome to the response. Async MDNs for messages this station sent
 * are recognised here and recorded in their send jobs.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { hostname } from "node:os";
import type { TLSSocket } from "node:tls";
import { timingSafeEqual } from "node:crypto";
import {
  As2Error, ErrorCodes, Headers, buildMdn, chooseMicAlgorithm, collect, limitSize,
  isValidAs2Id, parseAs2Name, parseContentType, parseDispositionOptions, wantsSignedReceipt,
} from "../core/index.js";
import { partnerByAs2Id, type As2Config } from "../config/schema.js";
import type { KeyMaterial } from "../config/keys.js";
import { isStoreUnavailable, openStore, type StoredMdn } from "../store/index.js";
import { recordAsyncMdn } from "./async-mdn.js";
import { advertised } from "./advertised.js";
import { admitSpace } from "./disk-space.js";
import { InboxWriter } from "./inbox.js";
import { MdnDelivery } from "./receive/mdn-delivery.js";
import { receiveMessage, type Outcome } from "./receive/pipeline.js";
import { recoverAll, sweepSpool } from "./receive/recover.js";
import { markAnswered } from "./receive/record.js";
import { inboxOf, type ReceiveEvent, type Services } from "./receive/services.js";
import { collectPartials, heldBytes, rangeOf, restartEnabled, transferTag, upload, withRestartFeature } from "./receive/restart.js";
import { EDIINT_FEATURES } from "../core/message/build.js";
import { Partial, partialsDir, stepIndex } from "../store/index.js";
import { cemFollowUp } from "./cem/follow-up.js";
import { certificateReloader } from "./cem/reload-certificates.js";
import { cemFilesDir } from "./cem/records.js";

export { inboxOf, type ReceiveEvent } from "./receive/services.js";

export interface ReceiveContext {
  config: As2Config;
  keys: KeyMaterial;
  /** The configuration file: partner certificates changed in it are picked up, and CEM acceptances edit it (issue 17). */
  configPath?: string;
  onEvent(e: ReceiveEvent): void;
  /** Called after each message or MDN is fully handled (for --once). */
  onHandled?(): void;
  now?: () => Date;
}

/** An MDN POST is a few KiB; anything larger on that path is not one. */
const MAX_MDN_BYTES = 1024 * 1024;

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string = ""): void {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, "Content-Length": String(b.length) });
  res.end(b);
}

function refuse(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  // The rest of the body is not read: close the connection rather than drain gigabytes.
  send(res, status, { "Content-Type": "text/plain; charset=utf-8", Connection: "close", ...extra }, `${text}\n`);
}

function mdnHeaders(list: Array<{ name: string; value: string }>): Record<string, string> {
  return Object.fromEntries(list.map((h) => [h.name, h.value]));
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

/** The longest Message-ID taken (RFC 5322 §2.1.1's line limit). */
const MAX_MESSAGE_ID = 998;

/**
 * AS2-From, AS2-To (1-128 printable ASCII, RFC 4130 §6.2) and Message-ID (printable ASCII),
 * checked before anything uses them: a bad name must get a clear 400, not a failure later in
 * building an MDN that echoes it (issue 12 case 1). A header sent several times reaches us
 * joined with ", ", which is then not one valid name.
 */
function identify(req: IncomingMessage): { from: string; to: string; messageId: string } | { problem: string } {
  const name = (header: string): string | { problem: string } => {
    // Sent on several lines, a header reaches us joined with ", ": say so rather than take the join as a name.
    const lines = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === header).length;
    if (lines > 1) return { problem: `${header === "as2-from" ? "AS2-From" : "AS2-To"} appears ${lines} times; an AS2 message has one (RFC 4130 §6.2)` };
    const raw = req.headers[header];
    if (typeof raw !== "string" || !raw.trim()) return { problem: `${header === "as2-from" ? "AS2-From" : "AS2-To"} is missing or empty (RFC 4130 §6)` };
    const v = parseAs2Name(raw);
    if (!isValidAs2Id(v) || v !== v.trim()) return { problem: `${header === "as2-from" ? "AS2-From" : "AS2-To"} must be 1-128 printable ASCII characters (RFC 4130 §6.2); got ${raw.length} characters${/[^ -~]/.test(raw) ? " with control or non-ASCII characters" : ""}` };
    return v;
  };
  const from = name("as2-from");
  if (typeof from !== "string") return from;
  const to = name("as2-to");
  if (typeof to !== "string") return to;
  const messageId = String(req.headers["message-id"] ?? "").trim();
  if (!messageId) return { problem: "Message-ID is missing (RFC 4130 §6)" };
  if (messageId.length > MAX_MESSAGE_ID || /[^ -~]/.test(messageId)) return { problem: `Message-ID must be at most ${MAX_MESSAGE_ID} printable ASCII characters` };
  return { from, to, messageId };
}

/** Request headers worth keeping to open the body again after a crash: never credentials. */
function keptHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(req.headers)) {
    if (v === undefined || name === "authorization" || name === "proxy-authorization" || name === "cookie") continue;
    out[name] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

/** Constant-time comparison of a presented secret with the configured one. */
function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A temp file in a shared inbox untouched this long is a dead writer's (a live one writes, or is recovered within 30 s). */
const SHARED_INBOX_TEMP_IDLE_MS = 3_600_000;

/** At start-up: removes temp files a killed receiver left in the inboxes; returns how many. */
export async function sweepInboxes(config: As2Config, keep: ReadonlySet<string> = new Set()): Promise<number> {
  // A shared store means inboxes shared by several hosts: pids there say nothing (inbox.ts).
  const options = config.store.kind === "postgres" ? { minIdleMs: SHARED_INBOX_TEMP_IDLE_MS, keep } : { keep };
  let removed = 0;
  for (const name of Object.keys(config.partners)) {
    removed += await InboxWriter.sweep(inboxOf(config, name), options);
    removed += await InboxWriter.sweep(cemFilesDir(config.dataDir, "received", name), options);
  }
  return removed;
}

export interface Receiver {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /**
   * Before listening: finishes or fails every message a dead receiver left unfinished, then
   * removes temp and spool files nothing refers to, and starts the MDN delivery loop.
   */
  start(): Promise<{ recovered: number; swept: number }>;
  /**
   * Counts the server's connections: a request on a connection beyond receive.maxConnections is
   * answered 503 with Retry-After (issue 12 case 7); twice the limit is a hard cap where the
   * kernel-level accept is simply closed. With `surplus`, whoever accepted the connection has
   * counted it (the supervisor of several workers) and says which ones are beyond the limit.
   */
  watch(server: Server, surplus?: (socket: Socket) => boolean): void;
  /** After the server closed: waits for messages still in work, then stops the delivery loop (attempts under way finish). */
  stop(): Promise<void>;
}

/** Retry-After for refusals that pass with load (too many connections, too little disk). */
const BUSY_RETRY_AFTER_SECONDS = 5;

/** Retry-After while the shared store (PostgreSQL) cannot be reached: a restart takes seconds. */
const STORE_RETRY_AFTER_SECONDS = 5;

/** Retry-After when the disk is short of the reserve: space comes back when someone acts. */
const LOW_SPACE_RETRY_AFTER_SECONDS = 300;

/** How often expired AS2 Restart partials are looked for while the receiver runs. */
const PARTIALS_GC_INTERVAL_MS = 600_000;

/** Periodic recovery: messages whose receiver died while this one runs (another process on the data folder). */
const RECOVERY_INTERVAL_MS = 30_000;

export function createReceiver(ctx: ReceiveContext): Receiver {
  const now = ctx.now ?? (() => new Date());
  const { config, keys } = ctx;
  const store = openStore(config);
  const event = (e: Omit<ReceiveEvent, "time">) => ctx.onEvent({ time: now().toISOString(), ...e });
  const base = { config, keys, store, now, event, active: new Set<string>() };
  const delivery = new MdnDelivery(base);
  const s: Services = { ...base, deliver: (id) => delivery.deliver(id) };
  // CEM (issue 17): certificates changed in the file are taken before each message is verified;
  // requests are answered by policy after they are taken, and once at start.
  const refresh = ctx.configPath ? certificateReloader(ctx.configPath, config, keys, now, (w) => event({ event: "error", detail: w })) : undefined;
  if (refresh) s.refreshCertificates = refresh;
  const followUp = cemFollowUp(s, ctx.configPath, async () => { await refresh?.(); });
  const cemWork = new Set<Promise<void>>();
  s.cemTaken = (kind, partner, requestId) => {
    event({ event: "cem", partner, detail: kind === "request" ? `CEM request ${requestId} received (policy "${config.partners[partner]?.cem.policy ?? "manual"}")` : `CEM response to ${requestId} recorded` });
    if (kind !== "request") return;
    const w = followUp().catch((e: Error) => event({ event: "error", detail: `CEM: ${e.message}` })).finally(() => cemWork.delete(w));
    cemWork.add(w);
  };
  let recovery: NodeJS.Timeout | undefined;

  /** Requests whose work is not done (an async message goes on after its 200): stop() waits for them. */
  const inFlight = new Set<Promise<void>>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    const work = serve(req, res, remote).catch((e: unknown) => {
      event({ event: "error", remote, detail: (e as Error).message });
      // The shared store is down (a database restart): the partner tries again later, and no
      // MDN is answered that could not be recorded.
      if (!res.headersSent && isStoreUnavailable(e)) refuse(res, 503, "the message store is unavailable; try again later", { "Retry-After": String(STORE_RETRY_AFTER_SECONDS) });
      else if (!res.headersSent) refuse(res, 500, "internal error");
      else res.destroy();
    }).finally(() => {
      inFlight.delete(work);
      if (req.method === "POST") ctx.onHandled?.();
    });
    inFlight.add(work);
  };

  async function start(): Promise<{ recovered: number; swept: number }> {
    const recovered = await recoverAll(s);
    // A verified payload an unfinished entry still names stays, even when its writer is dead:
    // another worker may have taken the entry over and not yet adopted the file (recover.ts).
    const named = new Set((await store.received.unfinished()).flatMap((e) => [...(e.tmp ? [e.tmp] : []), ...(e.parts ?? []).map((p) => p.tmp).filter(Boolean)]));
    const swept = (await sweepInboxes(config, named)) + (await sweepSpool(s)) + (restartEnabled(config) ? await collectPartials(config, now()) : 0);
    delivery.start();
    const catchUp = followUp().catch((e: Error) => event({ event: "error", detail: `CEM: ${e.message}` })).finally(() => cemWork.delete(catchUp));
    cemWork.add(catchUp);
    let partialsCollected = Date.now();
    recovery = setInterval(() => {
      void recoverAll(s).catch((e: Error) => event({ event: "error", detail: `recovery: ${e.message}` }));
      // E5: stale partial uploads go (a HEAD for one also removes it; as2 prune does too).
      if (restartEnabled(config) && Date.now() - partialsCollected >= PARTIALS_GC_INTERVAL_MS) {
        partialsCollected = Date.now();
        void collectPartials(config, now()).catch((e: Error) => event({ event: "error", detail: `restart partials: ${e.message}` }));
      }
    }, RECOVERY_INTERVAL_MS);
    recovery.unref();
    return { recovered, swept };
  }

  async function stop(): Promise<void> {
    if (recovery) clearInterval(recovery);
    await Promise.allSettled([...inFlight]);
    await Promise.allSettled([...cemWork]);
    await delivery.stop();
  }

  const surplus = new WeakSet<Socket>();
  let connections = 0;
  function watch(server: Server, counted?: (socket: Socket) => boolean): void {
    if (counted) {
      server.on("connection", (socket: Socket) => { if (counted(socket)) surplus.add(socket); });
      return;
    }
    server.maxConnections = config.receive.maxConnections * 2;
    server.on("connection", (socket: Socket) => {
      connections++;
      if (connections > config.receive.maxConnections) surplus.add(socket);
      socket.once("close", () => { connections--; });
    });
  }

  return { handle, start, stop, watch };

  async function serve(req: IncomingMessage, res: ServerResponse, remote: string): Promise<void> {
    if (surplus.has(req.socket)) {
      event({ event: "rejected", remote, status: 503, detail: `more than receive.maxConnections (${config.receive.maxConnections}) connections` });
      return refuse(res, 503, `too many connections (receive.maxConnections is ${config.receive.maxConnections}); try again later`, { "Retry-After": String(BUSY_RETRY_AFTER_SECONDS) });
    }
    if (req.rawHeaders.length / 2 > config.receive.maxHeaderCount) {
      event({ event: "rejected", remote, status: 431, detail: `more than receive.maxHeaderCount (${config.receive.maxHeaderCount}) header lines` });
      return refuse(res, 431, `more than ${config.receive.maxHeaderCount} header lines (receive.maxHeaderCount)`);
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== config.receive.path) return refuse(res, 404, `no AS2 endpoint at ${url.pathname}; it is ${config.receive.path}`);
    if (req.method === "HEAD") return answerHead(req, res, remote);
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

    const identity = identify(req);
    if ("problem" in identity) {
      event({ event: "rejected", remote, status: 400, detail: identity.problem });
      for await (const _ of rest) { /* read the rest so the answer reaches the sender */ }
      return refuse(res, 400, `not an AS2 message: ${identity.problem}`);
    }
    const { from, to, messageId } = identity;
    const match = partnerByAs2Id(config, from);
    const dno = parseDispositionOptions(req.headers["disposition-notification-options"] as string | undefined);
    const mdnWanted = req.headers["disposition-notification-to"] !== undefined;
    const asyncUrl = req.headers["receipt-delivery-option"] as string | undefined;
    const signMdn = mdnWanted && wantsSignedReceipt(dno);
    const micChoice = chooseMicAlgorithm(dno);

    if (to !== config.station.as2Id || !match) {
      const detail = to !== config.station.as2Id ? `AS2-To "${to}" is not this station (${config.station.as2Id})` : `no partner with AS2 ID "${from}" is configured`;
      event({ event: "rejected", remote, messageId, detail });
      for await (const _ of rest) { /* read the rest so the answer reaches the sender */ }
      if (!mdnWanted) return refuse(res, 403, detail);
      const mdn = buildMdn({
        original: { messageId, from, to, subject: req.headers.subject as string | undefined, date: req.headers.date },
        disposition: { type: "processed", modifier: "error", description: "unexpected-processing-error" },
        detail: `unknown trading relationship: ${detail}`,
        sign: signMdn ? { digest: micChoice?.algorithm && micChoice.algorithm !== "md5" ? micChoice.algorithm : "sha256", key: keys.station.key, certificate: keys.station.certificate } : false,
        reportingUa: `as2kit on ${hostname()}`,
        now,
      });
      return send(res, 200, mdnHeaders(mdn.headers.list), mdn.body);
    }
    const [partnerName, partner] = match;
    const user = basicUser(req);
    if (partner.inbound.users.length) {
      if (!user || !partner.inbound.users.some((u) => sameSecret(u.username, user.username) && sameSecret(u.password, user.password))) {
        event({ event: "rejected", remote, partner: partnerName, messageId, status: 401, detail: user ? `wrong credentials for user "${user.username}"` : "no credentials" });
        return refuse(res, 401, "authentication required", { "WWW-Authenticate": 'Basic realm="as2kit", charset="UTF-8"' });
      }
    }
    if (partner.inbound.requireClientCertificate && !(req.socket as TLSSocket).authorized) {
      event({ event: "rejected", remote, partner: partnerName, messageId, status: 403, detail: "no trusted client certificate" });
      return refuse(res, 403, "a trusted TLS client certificate is required");
    }

    // The free-space reserve, before reading a byte (issue 12 case 6): the inbox and the spool.
    const needed = Number.isFinite(length) ? length : 0;
    for (const where of [inboxOf(config, partnerName), config.dataDir]) {
      try {
        await admitSpace(where, config.receive.minFreeBytes, needed);
      } catch (e) {
        event({ event: "rejected", remote, partner: partnerName, messageId, status: 503, detail: (e as Error).message });
        return refuse(res, 503, `${(e as Error).message}; try again later`, { "Retry-After": String(LOW_SPACE_RETRY_AFTER_SECONDS) });
      }
    }
    // AS2 Restart (E3-E5): a POST with a strong ETag is kept as a partial upload first.
    const range = restartEnabled(config) ? rangeOf(req.headers, Number.isFinite(length) ? length : undefined) : undefined;
    if (range && !(await takenAlready(from, messageId))) {
      const held = async () => (await new Partial(partialsDir(config.dataDir), from, range.etag).meta())?.durable ?? 0;
      if ("problem" in range) {
        event({ event: "rejected", remote, partner: partnerName, messageId, status: 416, detail: range.problem });
        return refuse(res, 416, range.problem, { "Content-Range": `bytes */${await held()}` });
      }
      if (range.total > config.receive.maxMessageBytes) {
        event({ event: "rejected", remote, partner: partnerName, messageId, status: 413, detail: `Content-Range total ${range.total}: ${tooLarge}` });
        return refuse(res, 413, tooLarge);
      }
      const result = await upload({
        config, now, from, messageId, range, body: rest,
        deliver: async (whole, total) => {
          const kind = await deliver(whole, total, () => undefined);
          return kind === "answer" || kind === "accepted";
        },
      });
      switch (result.kind) {
        case "complete":
          return;
        case "locked":
          event({ event: "rejected", remote, partner: partnerName, messageId, status: 500, detail: `ETag ${range.etag} is being written by another transfer (${result.by})` });
          return refuse(res, 500, `another transfer of ETag ${range.etag} is in progress (AS2 Restart: one at a time)`);
        case "bad-range":
          event({ event: "rejected", remote, partner: partnerName, messageId, status: 416, detail: result.why });
          return refuse(res, 416, `range not satisfiable: ${result.why}`, { "Content-Range": `bytes */${result.held}` });
        case "partial": {
          event({ event: "partial", remote, partner: partnerName, messageId, bytes: result.held, detail: `AS2 Restart ${range.etag}: ${result.held} of ${result.total} bytes held${result.broken !== undefined ? ` (${(bodyProblem(result.broken) ?? (result.broken as Error)).message})` : ""}` });
          if (result.broken !== undefined) {
            if (req.socket.destroyed) return;
            return refuse(res, overLimit() ? 413 : 400, (bodyProblem(result.broken) ?? (result.broken as Error)).message);
          }
          // A POST of one part: kept; the sender goes on with the next range.
          return send(res, 202, { "Content-Type": "text/plain", "Content-Range": `bytes 0-${result.held - 1}/${result.total}` }, `${result.held} of ${result.total} bytes held\n`);
        }
      }
    }
    await deliver(rest, Number.isFinite(length) ? length : undefined, bodyProblem);
    return;

    /** The pipeline on a whole message (from the request, or from a completed partial) and its answer. */
    async function deliver(body: AsyncIterable<Uint8Array>, declared: number | undefined, problem: (e: unknown) => As2Error | undefined): Promise<Outcome["kind"]> {
      const outcome: Outcome = await receiveMessage(s, {
        from, messageId, partner: partnerName, headers: { ...keptHeaders(req), ...(declared !== undefined ? { "content-length": String(declared) } : {}) },
        mdnRequest: {
          wanted: mdnWanted, signed: signMdn, to,
          ...(asyncUrl ? { asyncUrl } : {}),
          ...(micChoice ? { micAlgorithm: micChoice.algorithm, micToken: micChoice.token } : {}),
          ...(req.headers.subject ? { subject: req.headers.subject as string } : {}),
          ...(req.headers.date ? { date: req.headers.date } : {}),
        },
      }, {
        remote, body, startedBy: `${from} from ${remote}`, bodyProblem: problem, ...(declared !== undefined ? { declaredBytes: declared } : {}),
        details: {
          remoteAddress: req.socket.remoteAddress, remotePort: req.socket.remotePort, serverPort: req.socket.localPort,
          username: user?.username, contentType,
          mdnType: mdnWanted ? (asyncUrl ? "async" : "sync") : undefined, mdnSigned: signMdn, mdnSent: false,
          ...advertised(req.headers),
        },
        acceptNow: async () => { send(res, 200, {}); },
      });
      switch (outcome.kind) {
        case "accepted":
          break;
        case "refused":
          refuse(res, outcome.status, outcome.text);
          break;
        case "busy":
          event({ event: "rejected", remote, partner: partnerName, messageId, status: 503, detail: outcome.text });
          refuse(res, 503, outcome.text, { "Retry-After": String(outcome.retryAfter) });
          break;
        case "answer": {
          const entry = outcome.entry;
          const delivered = !req.socket.destroyed;
          if (delivered) answerSync(res, entry.mdn, entry.outcome === "failed" ? entry.error : undefined);
          // A duplicate's entry is answered already; a new message's becomes so now.
          if (entry.step !== "answered") await markAnswered(s, entry, { delivered }, outcome.record);
          break;
        }
      }
      return outcome.kind;
    }
  }

  /**
   * A message the ledger has finished (and not failed): a resend of it, ranged or whole, is a
   * duplicate as always (X6) and goes straight to the pipeline, which answers the same MDN.
   */
  async function takenAlready(from: string, messageId: string): Promise<boolean> {
    const held = await store.received.get(from, messageId);
    return !!held && stepIndex(held.step) >= stepIndex("recorded") && held.outcome !== "failed";
  }

  /**
   * X3: HEAD on the endpoint answers 200 with an empty body. With AS2 Restart (E4) and an ETag
   * (or If-Match) from a configured partner, Content-Length is the number of bytes held of that
   * transfer (0: none, or expired); the answer echoes the ETag and advertises AS2-Restart.
   */
  async function answerHead(req: IncomingMessage, res: ServerResponse, remote: string): Promise<void> {
    const etag = restartEnabled(config) ? transferTag(req.headers) : undefined;
    const rawFrom = req.headers["as2-from"];
    const from = typeof rawFrom === "string" ? parseAs2Name(rawFrom) : undefined;
    const match = from !== undefined ? partnerByAs2Id(config, from) : undefined;
    if (!etag || !match || !from) {
      res.writeHead(200, { "Content-Length": "0", ...(restartEnabled(config) ? { "EDIINT-Features": withRestartFeature(EDIINT_FEATURES), "AS2-Version": "1.2" } : {}) });
      res.end();
      return;
    }
    const [partnerName, partner] = match;
    if (partner.inbound.users.length) {
      const user = basicUser(req);
      if (!user || !partner.inbound.users.some((u) => sameSecret(u.username, user.username) && sameSecret(u.password, user.password))) {
        event({ event: "rejected", remote, partner: partnerName, status: 401, detail: "HEAD without credentials" });
        return refuse(res, 401, "authentication required", { "WWW-Authenticate": 'Basic realm="as2kit", charset="UTF-8"' });
      }
    }
    const held = await heldBytes(config, from, etag, now());
    res.writeHead(200, { "Content-Length": String(held), ETag: etag, "EDIINT-Features": withRestartFeature(EDIINT_FEATURES), "AS2-Version": "1.2" });
    res.end();
  }

  /** X1/X4: the sync MDN is the 200 response, also when it reports an error. */
  function answerSync(res: ServerResponse, mdn: StoredMdn | undefined, failure?: { code: string; message: string; disposition?: string }): void {
    if (mdn) {
      const headers = mdnHeaders(mdn.headers);
      // EDIINT-Features is an HTTP header, outside what the MDN's signature covers.
      if (restartEnabled(config)) headers["EDIINT-Features"] = withRestartFeature(headers["EDIINT-Features"]);
      return send(res, 200, headers, Buffer.from(mdn.body, "base64"));
    }
    send(res, failure ? 400 : 200, { "Content-Type": "text/plain" }, failure ? `${failure.disposition ?? "unexpected-processing-error"}: ${failure.message}\n` : "");
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
      event({
        event: "mdn", remote, partner: result.record.partner, messageId: result.messageId, runId: result.runId, disposition: result.outcome.mdnMessage?.disposition,
        detail: result.notApplied ? `not applied: it failed verification (${result.notApplied})` : result.outcome.error?.message,
      });
      // X3: the receiver of an async MDN answers 2xx with an empty body.
      send(res, 200, {});
    } catch (e) {
      if (isStoreUnavailable(e)) {
        event({ event: "rejected", remote, status: 503, detail: (e as Error).message });
        return refuse(res, 503, "the message store is unavailable; try again later", { "Retry-After": String(STORE_RETRY_AFTER_SECONDS) });
      }
      event({ event: "rejected", remote, status: 400, detail: (e as Error).message });
      refuse(res, 400, (e as Error).message);
    }
  }
}

/** The HTTP handler alone, for callers that need no recovery or delivery loop (tests, embedding). */
export function createReceiveHandler(ctx: ReceiveContext): (req: IncomingMessage, res: ServerResponse) => void {
  return createReceiver(ctx).handle;
}
