/**
 * POSTing an AS2 message (RFC 4130 §5, §7.3): one HTTP request over a connection from connect.ts,
 * with read timeout, retries that resend the identical bytes, redirects and basic auth. Knows
 * nothing of configuration files or job records: it takes a resolved spec and callbacks.
 */
import * as http from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { As2Error, ErrorCodes } from "../core/index.js";
import { basicCredentials, isUnreachable, openConnection, type ProxySpec, type TlsSpec } from "./connect.js";
import { CONNECT_REQUEST, type ConnectRequest, type PartnerConnections } from "./keep-alive.js";

export interface PostSpec {
  url: string;
  /** POST for AS2; PUT is allowed for notifications (contract §6); HEAD asks an AS2 Restart server what it holds. */
  method?: "POST" | "PUT" | "HEAD";
  /** Milliseconds; 0 = no limit (explicit, contract §4). */
  connectTimeoutMs: number;
  /** Longest silence on the socket, while sending or waiting for the answer; 0 = wait forever. */
  readTimeoutMs: number;
  /** Further attempts after a connection failure, a timeout, 408, 425 or 5xx (as2-reference X5). */
  retries: number;
  retryIntervalMs: number;
  followRedirects: boolean;
  /** With followRedirects: only to the same origin (async MDNs: a partner must not steer our POSTs elsewhere). */
  sameOriginRedirectsOnly?: boolean;
  userAgent?: string;
  /** Transfer-Encoding: chunked instead of Content-Length. */
  chunked: boolean;
  auth?: { username: string; password: string };
  tls?: TlsSpec;
  proxy?: ProxySpec;
  /** The largest response body we read (an MDN is a few KiB; an error page is not our problem). */
  maxResponseBytes?: number;
  /**
   * Kept-alive connections shared by the posts of one job (keep-alive.ts); without it every
   * request opens its own connection and closes it after the answer (`Connection: close`).
   */
  connections?: PartnerConnections;
}

/** The body, re-openable so that a retry sends exactly the same bytes (RFC 6017 AS2-Reliability). */
export interface RequestBody {
  open(): AsyncIterable<Uint8Array> | Readable;
  /** Exact length, required unless chunked. */
  length?: number;
  /**
   * False when open() yields the bytes only once (a message streamed as it is built): such a
   * body never goes over a reused connection, where a stale socket would need a resend.
   */
  replayable?: boolean;
  /** AS2 Restart (draft-harding-as2-restart-07): the body by byte offset, and how to resume. */
  restart?: RestartSpec;
}

/**
 * AS2 Restart for one message (as2-reference E3, E4): every POST carries the ETag and a
 * Content-Range; after a broken attempt, a HEAD with the ETag asks how many bytes the server
 * holds, and the next POST sends only the rest.
 */
export interface RestartSpec {
  /** A strong entity tag, quotes included: `"<globally unique id>"`. */
  etag: string;
  /** The body from byte `start` on (a spooled message: the same bytes every time). */
  openFrom(start: number): AsyncIterable<Uint8Array> | Readable;
  /** AS2-From, AS2-To (as on the POST) for the HEAD (E4: MUST). */
  headHeaders: Record<string, string>;
  /**
   * true: the Content-Length of any 2xx HEAD answer is what the server holds (the draft);
   * false: only when the answer shows restart support (AS2-Restart in EDIINT-Features, or our
   * ETag echoed) - a server that knows nothing of restart may answer HEAD with the length of
   * some page, and resuming at it would send a broken message.
   */
  trustAnyHead: boolean;
  /** Ask (HEAD) before the first attempt too: a transfer an earlier, dead process began. */
  resumeFirst?: boolean;
}

/** What AS2 Restart did for the POST that got the final answer. */
export interface RestartOutcome {
  etag: string;
  /** The first byte that POST sent (0: the whole message). */
  resumedAt: number;
  /** Message bytes that POST sent. */
  bytesSent: number;
  /** Message bytes sent over all attempts. */
  totalBytesSent: number;
}

export interface PostResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: string;
  attempts: number;
  restart?: RestartOutcome;
}

export interface PostEvents {
  /** Before each attempt: 1-based number, and why the previous one failed. */
  onAttempt?(attempt: number, url: string, previousError?: Error): void;
  /** Bytes of the body written so far in this attempt. */
  onProgress?(sent: number): void;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
export const MAX_REDIRECTS = 5;
/** How long a kept-alive request may take to finish writing after its answer came (see postOnce). */
const REQUEST_END_GRACE_MS = 1000;
const REDIRECT = new Set([301, 302, 303, 307, 308]);
/** Answers worth the same resend (as2-reference X5): request timeout, too early, server faults. */
const retryStatus = (s: number) => s === 408 || s === 425 || (s >= 500 && s <= 599);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function* counting(source: AsyncIterable<Uint8Array>, onProgress?: (n: number) => void): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const c of source) {
    n += c.byteLength;
    yield c;
    onProgress?.(n);
  }
}

/**
 * An agent that hands out the one connection we opened (proxy and TLS already done), once. No
 * socket limit, so that Node marks the request `Connection: close` (RFC 9112 §9.6): the server
 * need not keep a connection we will not use again.
 */
export function onceAgent(socket: Socket): http.Agent {
  const agent = new http.Agent({ keepAlive: false });
  (agent as unknown as { createConnection: () => Socket }).createConnection = () => socket;
  return agent;
}

/**
 * A reused keep-alive connection failed while the request was still being written, with no
 * answer: the server had closed it while it sat idle (RFC 9112 §9.3.1: a client may retry such
 * a request on a new connection). The server cannot have had the whole message, so it is sent
 * again at once on a fresh connection, outside the retry count (same bytes, same Message-ID).
 * A connection that fails after the whole request went out is another matter - the server may
 * have stored the message and lost only its answer - and is left to the retry policy, as on a
 * fresh connection (a resend is then answered as a duplicate, RFC 6017).
 */
class StaleConnection extends As2Error {}

/** Where the request goes and how its connection is made (fresh, or from the job's pool). */
function connectRequest(url: URL, spec: PostSpec, signal?: AbortSignal): ConnectRequest {
  const secure = url.protocol === "https:";
  const port = Number(url.port || (secure ? 443 : 80));
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return { target: { host, port, secure }, proxy: spec.proxy, tls: spec.tls, timeoutMs: spec.connectTimeoutMs, signal };
}

/** A plain-HTTP target through an HTTP(S) proxy is asked for by absolute URI (connect.ts). */
function viaForwardProxy(c: ConnectRequest): boolean {
  return !!c.proxy && (c.proxy.type === "http" || c.proxy.type === "https") && !c.target.secure;
}

/** One request and its response, over a kept-alive connection of spec.connections or a fresh one. */
async function postOnce(url: URL, headers: Record<string, string>, body: RequestBody, spec: PostSpec, events: PostEvents, signal?: AbortSignal, fresh = false): Promise<Omit<PostResponse, "attempts">> {
  const c = connectRequest(url, spec, signal);
  const forwardProxy = viaForwardProxy(c);
  // A body that cannot be read twice gets a connection of its own: no stale-socket resend needed.
  const pooled = spec.connections !== undefined && body.replayable !== false && !fresh;
  const oneShot = pooled ? undefined : (await openConnection(c)).socket;
  const agent = oneShot ? onceAgent(oneShot) : spec.connections!.agent;
  const h: Record<string, string> = { ...headers, Host: url.host };
  if (spec.userAgent) h["User-Agent"] = spec.userAgent;
  if (spec.auth) h.Authorization = basicCredentials(spec.auth.username, spec.auth.password);
  if (forwardProxy && spec.proxy?.username !== undefined) h["Proxy-Authorization"] = basicCredentials(spec.proxy.username, spec.proxy.password ?? "");
  if (spec.method === "HEAD") { /* no body, no length */ }
  else if (spec.chunked) h["Transfer-Encoding"] = "chunked";
  else if (body.length !== undefined) h["Content-Length"] = String(body.length);
  else throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "a body without a known length needs chunked transfer encoding");

  return new Promise((resolve, reject) => {
    let settled = false;
    let res: http.IncomingMessage | undefined;
    const finish = (e: Error | undefined, value?: Omit<PostResponse, "attempts">) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      // A kept-alive connection goes back to the pool by itself once the answer is read and the
      // request written; in every other case (one-shot connection, failure, an answer that
      // came before the whole body was sent) it is closed now.
      if (e || !pooled || !req.shouldKeepAlive) {
        req.destroy();
        oneShot?.destroy();
      } else if (!req.writableFinished) {
        // The answer is complete; the request's own end is usually a moment behind (Node returns
        // the socket to the pool on it). A server that answered without reading the whole body
        // would leave it busy for good: then the connection goes.
        const late = setTimeout(() => req.destroy(), REQUEST_END_GRACE_MS);
        req.once("finish", () => clearTimeout(late));
      }
      if (e) reject(e); else resolve(value!);
    };
    const options: http.RequestOptions & { [CONNECT_REQUEST]: ConnectRequest } = {
      method: spec.method ?? "POST",
      path: forwardProxy ? url.href : `${url.pathname}${url.search}`,
      host: c.target.host,
      port: c.target.port,
      headers: h,
      agent,
      setHost: false,
      [CONNECT_REQUEST]: c,
    };
    const req = http.request(options);
    const onAbort = () => finish(signal!.reason as Error);
    signal?.addEventListener("abort", onAbort, { once: true });
    // 0 also clears an idle timeout a reused socket may still carry from the pool.
    req.setTimeout(spec.readTimeoutMs, spec.readTimeoutMs > 0
      ? () => finish(new As2Error(ErrorCodes.TIMEOUT, `no data from ${url.host} for ${spec.readTimeoutMs / 1000} s (read timeout)`, { suggestion: "raise readTimeout (0 waits forever) if the partner is slow to answer" }))
      : undefined);
    let written = false;
    req.once("finish", () => { written = true; });
    const failed = (e: Error) => {
      if (pooled && req.reusedSocket && !written && res === undefined && !signal?.aborted) {
        return finish(new StaleConnection(ErrorCodes.CONNECT_FAILED, `the kept-alive connection to ${url.host} was closed by the server: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e }));
      }
      finish(e);
    };
    // A server may answer (401, 407, 413) and close before it has read the whole body; the
    // write then fails. Its answer is what the user needs to see, so keep it when it came.
    let answered: (() => void) | undefined;
    req.on("error", (e) => (answered ? answered() : setTimeout(() => (answered ? answered() : failed(e)), 100)));
    req.on("response", (r) => {
      res = r;
      const max = spec.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
      const chunks: Buffer[] = [];
      let n = 0;
      const complete = () => finish(undefined, { status: r.statusCode ?? 0, statusText: r.statusMessage ?? "", headers: r.headers, body: Buffer.concat(chunks), url: url.href });
      // The connection closed in the middle of the answer: no answer at all, as far as we know
      // (a cut MDN cannot be judged), and worth the same resend (as2-reference X5).
      // An authentication challenge (401, 407) is whole in its status line and headers: a server
      // or proxy that refuses us often closes while our body is still coming, and the reset may
      // cut its page short (CI saw tinyproxy's 401 end after 388 bytes). Its body matters to no one.
      const cut = () => (r.complete || r.statusCode === 401 || r.statusCode === 407 ? complete() : finish(new As2Error(ErrorCodes.CONNECT_FAILED, `the connection to ${url.host} closed in the middle of the answer (HTTP ${r.statusCode}, ${n} bytes of the body)`)));
      answered = cut;
      r.on("data", (chunk: Buffer) => {
        n += chunk.length;
        if (n > max) return finish(new As2Error(ErrorCodes.LIMIT_EXCEEDED, `the response from ${url.host} is larger than ${max} bytes`));
        chunks.push(chunk);
      });
      r.on("error", cut);
      r.on("close", cut);
      r.on("end", complete);
    });
    const source = body.open();
    pipeline(Readable.from(counting(source, events.onProgress), { objectMode: false }), req).catch((e: Error) => {
      if (!settled) setTimeout(() => (answered ? answered() : failed(e)), 100);
    });
  });
}

function describe(e: unknown, url: URL): Error {
  if (e instanceof As2Error) return e;
  const err = e as NodeJS.ErrnoException;
  return new As2Error(ErrorCodes.CONNECT_FAILED, `the connection to ${url.host} failed: ${err.code ?? err.message}`, { cause: e });
}

/** A response worth trying again, or a failure that says the partner may not have our message. */
function retriable(e: unknown): boolean {
  if (e instanceof As2Error) return e.code === ErrorCodes.TIMEOUT || e.code === ErrorCodes.CONNECT_FAILED;
  return isUnreachable(e) || (e as Error).message === "socket hang up";
}

/**
 * Posts the message: retries resend the identical body (and so the same Message-ID, RFC 6017
 * §3); redirects are followed only when asked (the partner's URL is part of the agreement), with
 * the credentials dropped when the origin changes. Returns the final response, whatever its
 * status; throws As2Error when no response came.
 */
export async function postMessage(headers: Record<string, string>, body: RequestBody, spec: PostSpec, events: PostEvents = {}, signal?: AbortSignal): Promise<PostResponse> {
  let url = new URL(spec.url);
  let current = spec;
  let attempts = 0;
  let redirects = 0;
  let previous: Error | undefined;
  let fresh = false;
  const restart = body.restart && body.length !== undefined && !spec.chunked ? body.restart : undefined;
  let start = 0;
  let totalBytesSent = 0;
  for (let retry = 0; ; ) {
    attempts++;
    events.onAttempt?.(attempts, url.href, previous);
    let res: Omit<PostResponse, "attempts">;
    let sent = 0;
    try {
      // E4: after a broken attempt, ask what arrived (a stale kept-alive socket sent nothing).
      if (restart && ((previous && !(previous instanceof StaleConnection)) || (restart.resumeFirst && attempts === 1))) start = await resumePoint(url, restart, body.length!, current, signal);
      const part = restart ? rangedBody(restart, body.length!, start) : undefined;
      const h = part ? { ...headers, ...part.headers } : headers;
      res = await postOnce(url, h, part?.body ?? body, current, { ...events, onProgress: (n) => { sent = n; events.onProgress?.(n); } }, signal, fresh);
      totalBytesSent += sent;
      fresh = false;
      if (restart) res = { ...res, restart: { etag: restart.etag, resumedAt: start, bytesSent: body.length! - start, totalBytesSent } } as Omit<PostResponse, "attempts">;
    } catch (e) {
      totalBytesSent += sent;
      if (signal?.aborted) throw new As2Error(ErrorCodes.ABORTED, "the transfer was interrupted", { cause: signal.reason });
      if (e instanceof StaleConnection && !fresh) {
        // Once per attempt, at once, on a new connection (see StaleConnection).
        fresh = true;
        previous = e;
        continue;
      }
      fresh = false;
      const err = describe(e, url);
      if (!retriable(e) || retry >= spec.retries) {
        if (retry > 0) err.message += ` (after ${retry + 1} attempts)`;
        throw err;
      }
      retry++;
      previous = err;
      await sleep(spec.retryIntervalMs, signal);
      continue;
    }
    // AS2 Restart: 416 says the server holds another length than we asked from (E5): ask again.
    if ((retryStatus(res.status) || (restart && res.status === 416)) && retry < spec.retries) {
      retry++;
      previous = new As2Error(ErrorCodes.HTTP_STATUS, `HTTP ${res.status} ${res.statusText}`);
      await sleep(spec.retryIntervalMs, signal);
      continue;
    }
    if (REDIRECT.has(res.status) && spec.followRedirects) {
      const location = res.headers.location;
      if (!location) return { ...res, attempts };
      if (++redirects > MAX_REDIRECTS) throw new As2Error(ErrorCodes.HTTP_STATUS, `more than ${MAX_REDIRECTS} redirects, the last to ${location}`);
      const next = new URL(location, url);
      if (next.protocol !== "http:" && next.protocol !== "https:") throw new As2Error(ErrorCodes.HTTP_STATUS, `redirected to an unsupported URL: ${next.href}`);
      if (spec.sameOriginRedirectsOnly && next.origin !== url.origin) throw new As2Error(ErrorCodes.HTTP_STATUS, `redirected to another origin (${next.origin}), which is not followed`);
      // AS2 needs the POST and its body at the new place (RFC 9110 §15.4: 307/308 keep the
      // method; for 301/302/303 browsers switch to GET, which would lose the message).
      if (next.origin !== url.origin) current = { ...current, auth: undefined };
      url = next;
      previous = undefined;
      continue;
    }
    return { ...res, attempts };
  }
}

/** E3: the POST from `start`: ETag and Content-Range on every one, the body from that byte. */
function rangedBody(r: RestartSpec, total: number, start: number): { headers: Record<string, string>; body: RequestBody } {
  return {
    headers: { ETag: r.etag, "Content-Range": `bytes ${start}-${total - 1}/${total}` },
    body: { length: total - start, open: () => r.openFrom(start) },
  };
}

/**
 * E4: HEAD with the ETag (and If-Match with the same tag, for servers that key on it) asks how
 * many bytes the server holds. Any non-2xx, or an answer not to be trusted (RestartSpec
 * trustAnyHead), means "send everything"; everything held means "send the last byte" (the
 * server needs a POST to answer with the MDN). A HEAD that fails to connect is thrown: the
 * retry policy tries the HEAD again rather than starting from 0 (E5).
 */
async function resumePoint(url: URL, r: RestartSpec, total: number, spec: PostSpec, signal?: AbortSignal): Promise<number> {
  const headSpec: PostSpec = { ...spec, method: "HEAD", chunked: false, connections: undefined };
  const res = await postOnce(url, { ...r.headHeaders, "AS2-Version": "1.2", ETag: r.etag, "If-Match": r.etag }, { length: 0, open: () => Readable.from([]) }, headSpec, {}, signal, true);
  if (res.status < 200 || res.status > 299) return 0;
  const features = String(res.headers["ediint-features"] ?? "").split(",").map((t) => t.trim().toLowerCase());
  const shows = features.includes("as2-restart") || String(res.headers.etag ?? "").trim() === r.etag;
  if (!r.trustAnyHead && !shows) return 0;
  const held = Number(res.headers["content-length"] ?? "0");
  if (!Number.isSafeInteger(held) || held <= 0 || held > total) return 0;
  return Math.min(held, total - 1);
}
