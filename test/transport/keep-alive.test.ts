/**
 * Kept-alive connections (issue 14): the posts of one job share one connection - plain HTTP, TLS,
 * through an HTTP CONNECT proxy (tinyproxy) and SOCKS5 (danted) - counted on the real servers;
 * a connection the server closes while idle, or drops when the next request arrives, costs a
 * resend on a fresh connection and never a second delivery; an answer cut in the middle is a
 * failure the retry policy handles, not a truncated success; without a pool every post has its
 * own connection.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { before, describe, test } from "node:test";
import { As2Error, ErrorCodes } from "../../src/core/index.js";
import { PartnerConnections, postMessage, type PostSpec, type RequestBody } from "../../src/transport/index.js";
import { onCleanup, tempDir } from "../helpers/tools.js";
import { makePki, SOCKS_USER, PROXY_USER, startDante, startTinyproxy, type TestPki } from "../helpers/net.js";

const FILES = 20;
const payload = Buffer.alloc(1024, "AS2 payload\r\n");
const body = (): RequestBody => ({ length: payload.length, open: () => (async function* () { yield payload; })() });
const headers = (n: number) => ({ "Message-ID": `<keepalive-${n}@as2kit>`, "Content-Type": "application/edi-x12", "AS2-From": "A", "AS2-To": "B" });

function spec(url: string, more: Partial<PostSpec> = {}): PostSpec {
  return { url, connectTimeoutMs: 5000, readTimeoutMs: 5000, retries: 0, retryIntervalMs: 0, followRedirects: false, chunked: false, ...more };
}

/** What a server saw: TCP connections accepted, and each complete request by its Message-ID. */
interface Counts {
  connections: number;
  delivered: Map<string, number>;
}

type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, nthOnSocket: number) => boolean;

/** Answers 200 after reading the whole body, unless `behave` took the request over (returned true). */
function countingHandler(counts: Counts, behave?: Behaviour) {
  const perSocket = new WeakMap<net.Socket, number>();
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const nth = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, nth);
    if (behave?.(req, res, nth)) return;
    let bytes = 0;
    req.on("data", (c: Buffer) => { bytes += c.length; });
    req.on("end", () => {
      const id = String(req.headers["message-id"]);
      counts.delivered.set(id, (counts.delivered.get(id) ?? 0) + 1);
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end(`ok ${bytes}`);
    });
  };
}

async function serve(server: http.Server, counts: Counts): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => { counts.connections++; sockets.add(s); s.on("close", () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  return (server.address() as net.AddressInfo).port;
}

const fresh = (): Counts => ({ connections: 0, delivered: new Map() });

/** Posts FILES messages one after the other, as a send job does; returns the attempts of each. */
async function postAll(s: PostSpec, pause = 0): Promise<number[]> {
  const attempts: number[] = [];
  for (let i = 1; i <= FILES; i++) {
    const res = await postMessage(headers(i), body(), s);
    assert.equal(res.status, 200, `message ${i}: ${res.body.toString()}`);
    assert.equal(res.body.toString(), `ok ${payload.length}`);
    attempts.push(res.attempts);
    if (pause) await new Promise((r) => setTimeout(r, pause));
  }
  return attempts;
}

function assertEachOnce(counts: Counts): void {
  assert.equal(counts.delivered.size, FILES, "every message arrived");
  for (const [id, n] of counts.delivered) assert.equal(n, 1, `${id} arrived ${n} times`);
}

describe("keep-alive over plain HTTP", () => {
  test(`${FILES} posts with a connection pool share one TCP connection`, async () => {
    const counts = fresh();
    const port = await serve(http.createServer(countingHandler(counts)), counts);
    const connections = new PartnerConnections();
    try {
      const attempts = await postAll(spec(`http://127.0.0.1:${port}/as2`, { connections }));
      assert.deepEqual(attempts, Array(FILES).fill(1));
    } finally {
      connections.close();
    }
    assert.equal(counts.connections, 1, "the server accepted one connection");
    assert.equal(connections.opened, 1);
    assertEachOnce(counts);
  });

  test(`without a pool (keepAlive false) each of ${FILES} posts has its own connection, closed after the answer`, async () => {
    const counts = fresh();
    const closes: string[] = [];
    const port = await serve(http.createServer(countingHandler(counts, (req) => { closes.push(String(req.headers.connection)); return false; })), counts);
    await postAll(spec(`http://127.0.0.1:${port}/as2`));
    assert.equal(counts.connections, FILES);
    assert.deepEqual(new Set(closes), new Set(["close"]), "each request says Connection: close");
    assertEachOnce(counts);
  });

  test("a kept-alive connection that fails while the request is still being written (the server had closed it): resent at once on a fresh connection (retries 0), delivered once", async () => {
    const counts = fresh();
    let dropped = 0;
    // 8 MiB: still being written when the server drops the connection on seeing the headers.
    const big = Buffer.alloc(8 * 1024 * 1024, "x");
    const bigBody = (): RequestBody => ({ length: big.length, open: () => (async function* () { for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536); })() });
    const port = await serve(http.createServer(countingHandler(counts, (req, _res, nth) => {
      if (nth < 2) return false;
      dropped++;
      req.socket.destroy();
      return true;
    })), counts);
    const connections = new PartnerConnections();
    const attempts: number[] = [];
    try {
      for (let i = 1; i <= 4; i++) {
        const res = await postMessage(headers(i), bigBody(), spec(`http://127.0.0.1:${port}/as2`, { connections }));
        assert.equal(res.status, 200);
        attempts.push(res.attempts);
      }
    } finally {
      connections.close();
    }
    assert.ok(dropped >= 1, "the server dropped a reused connection");
    assert.ok(attempts.some((a) => a === 2), `a stale connection was resent: ${attempts.join(",")}`);
    assert.equal(counts.delivered.size, 4);
    for (const [id, n] of counts.delivered) assert.equal(n, 1, `${id} arrived ${n} times`);
  });

  test("a kept-alive connection closed after the whole request went out, without an answer: the retry policy decides (retries 0: a failure; retries 1: resent)", async () => {
    const counts = fresh();
    let lose = 0;
    // The message arrives; the answer is lost (the server may have stored it).
    const port = await serve(http.createServer(countingHandler(counts, (req, _res, nth) => {
      if (nth < 2 || lose <= 0) return false;
      lose--;
      req.resume();
      req.on("end", () => req.socket.destroy());
      return true;
    })), counts);
    const connections = new PartnerConnections();
    try {
      const s = spec(`http://127.0.0.1:${port}/as2`, { connections });
      await postMessage(headers(1), body(), s);
      lose = 1;
      await assert.rejects(postMessage(headers(2), body(), s), (e: As2Error) => e.code === ErrorCodes.CONNECT_FAILED);
      await postMessage(headers(3), body(), s);
      lose = 1;
      const res = await postMessage(headers(4), body(), { ...s, retries: 1 });
      assert.equal(res.attempts, 2);
    } finally {
      connections.close();
    }
  });

  test("a server that closes idle connections after 30 ms without saying so: every message delivered once (retries 1, for a reuse that races the close)", async () => {
    const counts = fresh();
    const idle = new Map<net.Socket, NodeJS.Timeout>();
    // keepAliveTimeout would announce itself (Keep-Alive: timeout=N), which the client honours;
    // this server closes quietly, as proxies and load balancers in front of partners do.
    const server = http.createServer(countingHandler(counts, (req, res) => {
      clearTimeout(idle.get(req.socket));
      res.on("finish", () => idle.set(req.socket, setTimeout(() => req.socket.destroy(), 30)));
      return false;
    }));
    server.keepAliveTimeout = 0;
    const port = await serve(server, counts);
    const connections = new PartnerConnections();
    try {
      await postAll(spec(`http://127.0.0.1:${port}/as2`, { connections, retries: 1 }), 60);
    } finally {
      connections.close();
    }
    assert.ok(counts.connections > 1, "the server did close idle connections");
    assertEachOnce(counts);
  });

  test("a server with keepAliveTimeout 1 ms (it says timeout=0): no connection is reused, all delivered once", async () => {
    const counts = fresh();
    const server = http.createServer(countingHandler(counts));
    server.keepAliveTimeout = 1;
    const port = await serve(server, counts);
    const connections = new PartnerConnections();
    try {
      assert.deepEqual(await postAll(spec(`http://127.0.0.1:${port}/as2`, { connections })), Array(FILES).fill(1));
    } finally {
      connections.close();
    }
    assert.equal(counts.connections, FILES);
    assertEachOnce(counts);
  });

  test("a connection cut in the middle of the answer: a failure (CONNECT_FAILED), resent by the retry policy, never a truncated success", async () => {
    const counts = fresh();
    let cuts = 1;
    const port = await serve(http.createServer(countingHandler(counts, (req, res) => {
      if (cuts === 0) return false;
      req.on("data", () => undefined);
      req.on("end", () => {
        if (cuts-- <= 0) return;
        res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": "1000" });
        res.write("ok, the start of a longer answer", () => res.socket?.destroy());
      });
      return true;
    })), counts);
    const connections = new PartnerConnections();
    try {
      const url = `http://127.0.0.1:${port}/as2`;
      const res = await postMessage(headers(1), body(), spec(url, { connections, retries: 1 }));
      assert.equal(res.status, 200);
      assert.equal(res.attempts, 2);
      assert.equal(res.body.toString(), `ok ${payload.length}`);
      cuts = 1;
      await assert.rejects(postMessage(headers(2), body(), spec(url, { connections, retries: 0 })),
        (e: As2Error) => e.code === ErrorCodes.CONNECT_FAILED && /middle of the answer/.test(e.message));
    } finally {
      connections.close();
    }
  });

  test("a body that can be read once never goes over a reused connection", async () => {
    const counts = fresh();
    const port = await serve(http.createServer(countingHandler(counts)), counts);
    const connections = new PartnerConnections();
    try {
      const s = spec(`http://127.0.0.1:${port}/as2`, { connections });
      await postMessage(headers(1), body(), s);
      await postMessage(headers(2), { ...body(), replayable: false }, s);
      await postMessage(headers(3), body(), s);
    } finally {
      connections.close();
    }
    assert.equal(counts.connections, 2, "the pooled connection served 1 and 3; 2 had its own");
  });
});

describe("keep-alive over TLS and through proxies", () => {
  let pki: TestPki;
  let dir = "";
  before(() => {
    dir = tempDir();
    pki = makePki(dir);
  });
  const tlsServer = (counts: Counts) => serve(https.createServer({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert) }, countingHandler(counts)), counts);

  test(`TLS: ${FILES} posts, one TCP connection and one handshake`, async () => {
    const counts = fresh();
    let handshakes = 0;
    const server = https.createServer({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert) }, countingHandler(counts));
    server.on("secureConnection", () => { handshakes++; });
    const port = await serve(server, counts);
    const connections = new PartnerConnections();
    try {
      await postAll(spec(`https://127.0.0.1:${port}/as2`, { connections, tls: { ca: [readFileSync(pki.caCert)] } }));
    } finally {
      connections.close();
    }
    assert.equal(counts.connections, 1);
    assert.equal(handshakes, 1);
    assertEachOnce(counts);
  });

  test(`HTTP CONNECT proxy (tinyproxy) to a TLS partner: ${FILES} posts through one tunnel`, async () => {
    const counts = fresh();
    const port = await tlsServer(counts);
    const proxyPort = await startTinyproxy(dir);
    const connections = new PartnerConnections();
    try {
      await postAll(spec(`https://127.0.0.1:${port}/as2`, { connections, tls: { ca: [readFileSync(pki.caCert)] }, proxy: { type: "http", host: "127.0.0.1", port: proxyPort, ...PROXY_USER } }));
    } finally {
      connections.close();
    }
    assert.equal(counts.connections, 1, "the partner saw one connection (one CONNECT tunnel)");
    assertEachOnce(counts);
  });

  test(`SOCKS5 (danted) to a TLS partner: ${FILES} posts over one connection`, async () => {
    const counts = fresh();
    const port = await tlsServer(counts);
    const socksPort = await startDante(dir, "socks5-auth");
    const connections = new PartnerConnections();
    try {
      await postAll(spec(`https://127.0.0.1:${port}/as2`, { connections, tls: { ca: [readFileSync(pki.caCert)] }, proxy: { type: "socks5", host: "127.0.0.1", port: socksPort, ...SOCKS_USER } }));
    } finally {
      connections.close();
    }
    assert.equal(counts.connections, 1);
    assertEachOnce(counts);
  });
});
