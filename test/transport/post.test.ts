/**
 * The HTTP(S) transport against real servers and real proxies on 127.0.0.1: timeouts, retries
 * (identical bytes), redirects, chunked and Content-Length, TLS with a generated CA and client
 * certificates, basic auth, tinyproxy (HTTP forward and CONNECT) and danted (SOCKS4, SOCKS5).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as tls from "node:tls";
import { before, describe, test } from "node:test";
import { postMessage, type PostSpec, type RequestBody } from "../../src/transport/index.js";
import { As2Error, ErrorCodes } from "../../src/core/index.js";
import { onCleanup, tempDir } from "../helpers/tools.js";
import { freePort, makePki, PROXY_USER, SOCKS_USER, startDante, startTinyproxy, type TestPki } from "../helpers/net.js";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  sha256: string;
  bytes: number;
  clientCertCn?: string;
}

const payload = Buffer.alloc(300_000, "AS2 payload line\r\n");
const payloadHash = createHash("sha256").update(payload).digest("hex");
const body = (): RequestBody => ({ length: payload.length, open: () => (async function* () { for (let i = 0; i < payload.length; i += 65536) yield payload.subarray(i, i + 65536); })() });
const HEADERS = { "Message-ID": "<test-1@as2kit>", "Content-Type": "application/edi-x12", "AS2-From": "A", "AS2-To": "B" };

function spec(url: string, more: Partial<PostSpec> = {}): PostSpec {
  return { url, connectTimeoutMs: 5000, readTimeoutMs: 5000, retries: 0, retryIntervalMs: 0, followRedirects: false, chunked: false, ...more };
}

/** A server whose behaviour depends on the path; it records every request it completes. */
function handler(seen: Seen[], state: { flaky: number }) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const h = createHash("sha256");
    let bytes = 0;
    if (req.url === "/flaky" && state.flaky > 0) {
      state.flaky--;
      // Drop the connection once the request has arrived: a reset before any answer.
      req.on("data", () => undefined);
      req.on("end", () => { seen.push({ method: req.method!, url: req.url!, headers: req.headers, sha256: "", bytes: 0 }); req.socket.destroy(); });
      return;
    }
    req.on("data", (c: Buffer) => { h.update(c); bytes += c.length; });
    req.on("end", () => {
      const peer = (req.socket as tls.TLSSocket).getPeerCertificate?.();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, sha256: h.digest("hex"), bytes, clientCertCn: peer?.subject?.CN as string | undefined });
      if (req.url === "/slow") return; // never answers
      if (req.url === "/unavailable") { res.writeHead(503); res.end("try later"); return; }
      if (req.url === "/moved") { res.writeHead(307, { Location: "/ok?from=moved" }); res.end(); return; }
      if (req.url === "/loop") { res.writeHead(302, { Location: "/loop" }); res.end(); return; }
      if (req.url === "/auth") {
        const expected = `Basic ${Buffer.from("myco:s3cret").toString("base64")}`;
        if (req.headers.authorization !== expected) { res.writeHead(401, { "WWW-Authenticate": 'Basic realm="as2"' }); res.end("no"); return; }
      }
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end(`ok ${bytes}`);
    });
  };
}

async function listen(server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  server.on("secureConnection", (s: net.Socket) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  return (server.address() as net.AddressInfo).port;
}

describe("transport over plain HTTP", () => {
  const seen: Seen[] = [];
  const state = { flaky: 0 };
  let base = "";
  before(async () => { base = `http://127.0.0.1:${await listen(http.createServer(handler(seen, state)))}`; });

  test("Content-Length: the exact body arrives, with User-Agent and the AS2 headers", async () => {
    seen.length = 0;
    const res = await postMessage(HEADERS, body(), spec(`${base}/ok`, { userAgent: "as2kit-test/1" }));
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `ok ${payload.length}`);
    assert.equal(seen[0]!.sha256, payloadHash);
    assert.equal(seen[0]!.headers["content-length"], String(payload.length));
    assert.equal(seen[0]!.headers["transfer-encoding"], undefined);
    assert.equal(seen[0]!.headers["user-agent"], "as2kit-test/1");
    assert.equal(seen[0]!.headers["message-id"], "<test-1@as2kit>");
  });

  test("chunked transfer encoding, without a length", async () => {
    seen.length = 0;
    const res = await postMessage(HEADERS, { open: body().open }, spec(`${base}/ok`, { chunked: true }));
    assert.equal(res.status, 200);
    assert.equal(seen[0]!.headers["transfer-encoding"], "chunked");
    assert.equal(seen[0]!.headers["content-length"], undefined);
    assert.equal(seen[0]!.sha256, payloadHash);
  });

  test("retries after a dropped connection resend the same Message-ID and identical bytes", async () => {
    seen.length = 0;
    state.flaky = 2;
    const attempts: number[] = [];
    const res = await postMessage(HEADERS, body(), spec(`${base}/flaky`, { retries: 3, retryIntervalMs: 100 }), { onAttempt: (n) => attempts.push(n) });
    assert.equal(res.status, 200);
    assert.equal(res.attempts, 3);
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.equal(seen.length, 3);
    assert.ok(seen.every((s) => s.headers["message-id"] === "<test-1@as2kit>"));
    assert.equal(seen[2]!.sha256, payloadHash);
  });

  test("without retries a dropped connection fails at once", async () => {
    state.flaky = 1;
    await assert.rejects(postMessage(HEADERS, body(), spec(`${base}/flaky`)), (e: As2Error) => e.code === ErrorCodes.CONNECT_FAILED);
  });

  test("503 (any 5xx, 408, 425: as2-reference X5) is retried; when it persists the last answer is returned", async () => {
    seen.length = 0;
    const res = await postMessage(HEADERS, body(), spec(`${base}/unavailable`, { retries: 2, retryIntervalMs: 10 }));
    assert.equal(res.status, 503);
    assert.equal(res.attempts, 3);
    assert.equal(seen.length, 3);
  });

  test("read timeout: a server that never answers", async () => {
    const t0 = Date.now();
    await assert.rejects(postMessage(HEADERS, body(), spec(`${base}/slow`, { readTimeoutMs: 600 })), (e: As2Error) => e.code === ErrorCodes.TIMEOUT && /read timeout/.test(e.message));
    assert.ok(Date.now() - t0 < 4000);
  });

  test("connect timeout: a TCP server that never completes the TLS handshake", async () => {
    const silent = net.createServer(() => undefined);
    const port = await listen(silent);
    const t0 = Date.now();
    await assert.rejects(postMessage(HEADERS, body(), spec(`https://127.0.0.1:${port}/`, { connectTimeoutMs: 500, retries: 1, retryIntervalMs: 10 })),
      (e: As2Error) => e.code === ErrorCodes.TIMEOUT && /timed out after 0.5 s/.test(e.message) && /after 2 attempts/.test(e.message));
    assert.ok(Date.now() - t0 < 4000);
  });

  test("connection refused is a clear CONNECT_FAILED", async () => {
    const port = await freePort(); // listened on once, closed again: nothing answers there
    await assert.rejects(postMessage(HEADERS, body(), spec(`http://127.0.0.1:${port}/`)), (e: As2Error) => e.code === ErrorCodes.CONNECT_FAILED && /ECONNREFUSED/.test(e.message));
  });

  test("redirects: not followed by default, followed with the body when asked, bounded", async () => {
    seen.length = 0;
    const plain = await postMessage(HEADERS, body(), spec(`${base}/moved`));
    assert.equal(plain.status, 307);
    assert.equal(plain.headers.location, "/ok?from=moved");
    const followed = await postMessage(HEADERS, body(), spec(`${base}/moved`, { followRedirects: true }));
    assert.equal(followed.status, 200);
    assert.equal(followed.url, `${base}/ok?from=moved`);
    assert.equal(seen.at(-1)!.method, "POST");
    assert.equal(seen.at(-1)!.sha256, payloadHash);
    await assert.rejects(postMessage(HEADERS, body(), spec(`${base}/loop`, { followRedirects: true })), /more than 5 redirects/);
  });

  test("basic auth", async () => {
    assert.equal((await postMessage(HEADERS, body(), spec(`${base}/auth`))).status, 401);
    assert.equal((await postMessage(HEADERS, body(), spec(`${base}/auth`, { auth: { username: "myco", password: "s3cret" } }))).status, 200);
    assert.equal((await postMessage(HEADERS, body(), spec(`${base}/auth`, { auth: { username: "myco", password: "wrong" } }))).status, 401);
  });
});

describe("transport over HTTPS with a generated CA", () => {
  let pki: TestPki;
  const seen: Seen[] = [];
  let port = 0;
  let tls12Port = 0;
  before(async () => {
    pki = makePki(tempDir());
    const opts = { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: [readFileSync(pki.caCert)], requestCert: true, rejectUnauthorized: false };
    port = await listen(https.createServer(opts, handler(seen, { flaky: 0 })));
    tls12Port = await listen(https.createServer({ ...opts, maxVersion: "TLSv1.2" }, handler(seen, { flaky: 0 })));
  });
  const ca = () => [readFileSync(pki.caCert)];

  test("the server is checked against tls.ca; the client certificate is presented", async () => {
    seen.length = 0;
    const res = await postMessage(HEADERS, body(), spec(`https://127.0.0.1:${port}/ok`, { tls: { ca: ca(), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) } }));
    assert.equal(res.status, 200);
    assert.equal(seen[0]!.clientCertCn, "client");
    assert.equal(seen[0]!.sha256, payloadHash);
  });

  test("certificate checking is on by default: an unknown CA fails with a suggestion", async () => {
    await assert.rejects(postMessage(HEADERS, body(), spec(`https://127.0.0.1:${port}/ok`)), (e: As2Error) => e.code === ErrorCodes.TLS_FAILED && /tls\.ca/.test(e.suggestion ?? ""));
    await assert.rejects(postMessage(HEADERS, body(), spec(`https://127.0.0.1:${port}/ok`, { tls: { ca: [readFileSync(pki.otherCaCert)] } })), (e: As2Error) => e.code === ErrorCodes.TLS_FAILED);
    const res = await postMessage(HEADERS, body(), spec(`https://127.0.0.1:${port}/ok`, { tls: { rejectUnauthorized: false } }));
    assert.equal(res.status, 200);
  });

  test("minimum TLS version: TLSv1.3 required against a TLSv1.2 server fails; TLSv1.2 passes", async () => {
    await assert.rejects(postMessage(HEADERS, body(), spec(`https://127.0.0.1:${tls12Port}/ok`, { tls: { ca: ca(), minVersion: "TLSv1.3" } })), (e: As2Error) => e.code === ErrorCodes.TLS_FAILED);
    assert.equal((await postMessage(HEADERS, body(), spec(`https://127.0.0.1:${tls12Port}/ok`, { tls: { ca: ca(), minVersion: "TLSv1.2" } }))).status, 200);
  });

  test("chunked over TLS, with basic auth", async () => {
    seen.length = 0;
    const res = await postMessage(HEADERS, { open: body().open }, spec(`https://localhost:${port}/auth`, { chunked: true, tls: { ca: ca() }, auth: { username: "myco", password: "s3cret" } }));
    assert.equal(res.status, 200);
    assert.equal(seen[0]!.headers["transfer-encoding"], "chunked");
  });
});

describe("transport through real proxies (tinyproxy, danted)", () => {
  const seen: Seen[] = [];
  let httpBase = "";
  let httpsBase = "";
  let pki: TestPki;
  let tiny = 0;
  let socks4 = 0;
  let socks5 = 0;
  let tlsFront = 0;
  before(async () => {
    const dir = tempDir();
    pki = makePki(dir);
    httpBase = `http://127.0.0.1:${await listen(http.createServer(handler(seen, { flaky: 0 })))}`;
    httpsBase = `https://127.0.0.1:${await listen(https.createServer({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert) }, handler(seen, { flaky: 0 })))}`;
    [tiny, socks4, socks5] = await Promise.all([startTinyproxy(dir), startDante(dir, "socks4"), startDante(dir, "socks5-auth")]);
    // An "https" proxy: TLS in front of tinyproxy (the proxy is reached over TLS, RFC 9110 §3.7).
    tlsFront = await listen(tls.createServer({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert) }, (s) => {
      const up = net.connect({ host: "127.0.0.1", port: tiny });
      s.pipe(up).pipe(s);
      s.on("error", () => up.destroy());
      up.on("error", () => s.destroy());
    }));
  });
  const ca = () => [readFileSync(pki.caCert)];

  for (const target of ["http", "https"] as const) {
    test(`HTTP proxy with credentials to an ${target} partner`, async () => {
      seen.length = 0;
      const url = `${target === "http" ? httpBase : httpsBase}/ok`;
      const res = await postMessage(HEADERS, body(), spec(url, { tls: { ca: ca() }, proxy: { type: "http", host: "127.0.0.1", port: tiny, ...PROXY_USER } }));
      assert.equal(res.status, 200);
      assert.equal(seen[0]!.sha256, payloadHash);
      // The credentials are for the proxy, never passed on to the partner.
      assert.equal(seen[0]!.headers["proxy-authorization"], undefined);
    });

    test(`SOCKS5 with username/password and SOCKS4 to an ${target} partner`, async () => {
      seen.length = 0;
      const url = `${target === "http" ? httpBase : httpsBase}/ok`;
      assert.equal((await postMessage(HEADERS, body(), spec(url, { tls: { ca: ca() }, proxy: { type: "socks5", host: "127.0.0.1", port: socks5, ...SOCKS_USER } }))).status, 200);
      assert.equal((await postMessage(HEADERS, body(), spec(url, { tls: { ca: ca() }, proxy: { type: "socks4", host: "127.0.0.1", port: socks4, username: "as2kit" } }))).status, 200);
      assert.equal(seen.length, 2);
      assert.ok(seen.every((s) => s.sha256 === payloadHash));
    });
  }

  test("wrong proxy credentials are a PROXY_FAILED with a suggestion (HTTP and SOCKS5)", async () => {
    await assert.rejects(postMessage(HEADERS, body(), spec(`${httpsBase}/ok`, { tls: { ca: ca() }, proxy: { type: "http", host: "127.0.0.1", port: tiny, username: "proxyuser", password: "nope" } })),
      (e: As2Error) => e.code === ErrorCodes.PROXY_FAILED && /40[17]/.test(e.message) && /proxy\.password/.test(e.suggestion ?? ""));
    // A small body: the proxy answers without reading it, and a large one would be cut off by its close.
    const small: RequestBody = { length: 5, open: () => (async function* () { yield Buffer.from("hello"); })() };
    const plain = await postMessage(HEADERS, small, spec(`${httpBase}/ok`, { proxy: { type: "http", host: "127.0.0.1", port: tiny, username: "proxyuser", password: "nope" } }));
    assert.ok(plain.status === 407 || plain.status === 401);
    await assert.rejects(postMessage(HEADERS, body(), spec(`${httpBase}/ok`, { proxy: { type: "socks5", host: "127.0.0.1", port: socks5, username: SOCKS_USER.username, password: "nope" } })),
      (e: As2Error) => e.code === ErrorCodes.PROXY_FAILED);
  });

  test("the alternate proxy host is used when the primary does not answer", async () => {
    seen.length = 0;
    // 127.0.0.2 is loopback too, but nothing listens there on this port.
    const res = await postMessage(HEADERS, body(), spec(`${httpsBase}/ok`, { tls: { ca: ca() }, proxy: { type: "http", host: "127.0.0.2", alternateHost: "127.0.0.1", port: tiny, ...PROXY_USER } }));
    assert.equal(res.status, 200);
    await assert.rejects(postMessage(HEADERS, body(), spec(`${httpsBase}/ok`, { tls: { ca: ca() }, proxy: { type: "socks5", host: "127.0.0.2", alternateHost: "127.0.0.3", port: socks5, ...SOCKS_USER } })),
      (e: As2Error) => e.code === ErrorCodes.CONNECT_FAILED && /127\.0\.0\.3/.test(e.message));
  });

  test("an https proxy (TLS to the proxy, then CONNECT)", async () => {
    seen.length = 0;
    const res = await postMessage(HEADERS, body(), spec(`${httpsBase}/ok`, { tls: { ca: ca() }, proxy: { type: "https", host: "127.0.0.1", port: tlsFront, ...PROXY_USER } }));
    assert.equal(res.status, 200);
    assert.equal(seen[0]!.sha256, payloadHash);
  });
});
