/**
 * Bad requests to `as2 receive` (issue 4; contract §4 limits; as2-reference §10-§12): each gets
 * the right answer (a negative MDN, signed as asked, or a clean 4xx), leaves nothing in the inbox
 * or the spool, is recorded as a FAILED receive where it got that far, and the server keeps
 * serving. Messages are built with openssl (test/helpers/openssl-sender.ts); raw sockets play
 * the misbehaving clients.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { before, test } from "node:test";
import { opensslIdentity, tempDir } from "../helpers/tools.js";
import { BC_CP } from "../helpers/openssl-receiver.js";
import { buildWithOpenssl, checkMdnWithOpenssl, type Layer, type OpensslMessage, type OpensslSenderOptions } from "../helpers/openssl-sender.js";
import { startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir();
const PAYLOAD = Buffer.from("UNB+UNOA:2+MYCO+ACME+261122:1200+1'UNH+1+ORDERS:D:96A:UN'\r\n".repeat(400));
const LIMITS = { maxMessageBytes: 2 * 1024 * 1024, maxInflatedBytes: 4 * 1024 * 1024, maxHeaderBytes: 16 * 1024, requestTimeout: 2 };
let server: As2Server;
let sender: OpensslSenderOptions;
let strangerSender: OpensslSenderOptions;
const inbox = join(dir, "acme-data", "inbox", "myco");
const spool = join(dir, "acme-data", "spool");
let n = 0;

before(async () => {
  const myco = opensslIdentity("myco", dir);
  const acme = opensslIdentity("acme", dir);
  const other = opensslIdentity("other", dir);
  execFileSync("javac", ["-cp", BC_CP, "-d", dir, join("test", "interop", "bc", "BcCompressed.java")], { stdio: "pipe" });
  sender = { dir, keyFile: myco.keyFile, certFile: myco.certFile, recipientCertFile: acme.certFile, bcClassDir: dir };
  // Signs as MYCO with a key ACME does not know, or encrypts for a certificate that is not ACME's.
  strangerSender = { dir, keyFile: other.keyFile, certFile: other.certFile, recipientCertFile: other.certFile, bcClassDir: dir };
  const config = join(dir, "acme.json");
  writeFileSync(config, JSON.stringify({
    dataDir: "./acme-data",
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", ...LIMITS },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"] } } },
  }));
  server = await startAs2Receive(config);
});

/** Files in the inbox (and its temp folder) and the spool. */
function leftovers(): string[] {
  const list = (d: string) => (existsSync(d) ? readdirSync(d).map((f) => join(d, f)) : []);
  return [...list(inbox).filter((f) => !f.endsWith(".as2kit-tmp")), ...list(join(inbox, ".as2kit-tmp")), ...list(spool)];
}

function as2Headers(msg: OpensslMessage, messageId: string, signedMdn = true): Record<string, string> {
  return {
    "AS2-Version": "1.2", "MIME-Version": "1.0", "AS2-From": "MYCO", "AS2-To": "ACME", "Message-ID": messageId,
    "Content-Type": msg.contentType, ...msg.extraHeaders,
    "Disposition-Notification-To": "edi@myco.example",
    ...(signedMdn ? { "Disposition-Notification-Options": "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256" } : {}),
  };
}

const newId = () => `<bad-${++n}-${Date.now()}@receive-bad.test>`;

/** POSTs the message, expects a 200 carrying a signed negative MDN with the given error, and a FAILED record. */
async function expectNegativeMdn(body: Buffer, msg: OpensslMessage, error: RegExp): Promise<Record<string, unknown>> {
  const messageId = newId();
  const res = await fetch(server.url, { method: "POST", headers: as2Headers(msg, messageId), body });
  const mdnBody = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, "X4: 2xx, the MDN says what went wrong");
  // P2: a signed receipt was asked for, so the negative MDN is signed too; openssl verifies it.
  const mdn = checkMdnWithOpenssl(dir, res.headers.get("content-type")!, mdnBody, join(dir, "acme.crt"));
  assert.equal(mdn.signed, true);
  assert.equal(mdn.fields["original-message-id"], messageId);
  assert.match(mdn.fields.disposition!, /;\s*processed\/error: /i);
  assert.match(mdn.fields.disposition!, error);
  const ev = await server.waitFor((e) => e.event === "message" && e.messageId === messageId);
  const record = JSON.parse(readFileSync(join(dir, "acme-data", "jobs", `${ev.runId as string}.json`), "utf8"));
  assert.equal(record.state, "FAILED");
  assert.equal(record.files[0].status, "FAILED");
  assert.ok(record.error.message, "the record says why");
  assert.deepEqual(leftovers(), [], "nothing in the inbox or the spool");
  return record;
}

function flipByte(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x20;
  return c;
}

function build(layers: Layer[], s = sender): OpensslMessage {
  return buildWithOpenssl(s, PAYLOAD, `m${n}.edi`, "application/edifact", layers);
}

test("tampered signed content: processed/error: authentication-failed or integrity-check-failed, signed", async () => {
  const msg = build(["sign"]);
  const at = msg.body.indexOf("UNH+1");
  await expectNegativeMdn(flipByte(msg.body, at), msg, /(authentication|integrity-check)-failed/);
});

test("tampered signed + encrypted ciphertext: a negative MDN, nothing stored", async () => {
  const msg = build(["sign", "encrypt"]);
  await expectNegativeMdn(flipByte(msg.body, Math.floor(msg.body.length / 2)), msg, /(decryption|authentication|integrity-check)-failed/);
});

test("truncated content (valid HTTP, half a CMS structure): processed/error", async () => {
  const msg = build(["sign", "encrypt"]);
  await expectNegativeMdn(msg.body.subarray(0, Math.floor(msg.body.length / 2)), msg, /decryption-failed|unexpected-processing-error/);
});

test("encrypted for another certificate (wrong key): decryption-failed", async () => {
  const msg = build(["sign", "encrypt"], { ...sender, recipientCertFile: strangerSender.certFile });
  await expectNegativeMdn(msg.body, msg, /decryption-failed/);
});

test("signed by a key that is not the partner's: authentication-failed", async () => {
  const msg = build(["sign"], strangerSender);
  await expectNegativeMdn(msg.body, msg, /authentication-failed/);
});

test("an algorithm we do not support (ARIA-256 content encryption): a negative MDN naming it", async () => {
  const msg = buildWithOpenssl(sender, PAYLOAD, "aria.edi", "application/edifact", ["sign", "encrypt"], "sha256", "aria256");
  const record = await expectNegativeMdn(msg.body, msg, /decryption-failed|unexpected-processing-error/);
  assert.match((record.error as { message: string }).message, /algorithm|aria|2\.16\.410/i);
});

test("a compression bomb (64 MiB of zeros in 64 KiB) against maxInflatedBytes 4 MiB: decompression-failed", async () => {
  const bomb = join(dir, "bomb.bin");
  writeFileSync(bomb, Buffer.alloc(64 * 1024 * 1024));
  const msg = buildWithOpenssl(sender, readFileSync(bomb), "bomb.edi", "application/edifact", ["compress", "sign"]);
  assert.ok(msg.body.length < LIMITS.maxMessageBytes, "the bomb itself is small");
  await expectNegativeMdn(msg.body, msg, /decompression-failed/);
});

test("oversized, with Content-Length: 413 before any body is read, no record of a file", async () => {
  const res = await fetch(server.url, { method: "POST", headers: { ...as2Headers(build([]), newId()), "Content-Type": "application/edifact" }, body: Buffer.alloc(LIMITS.maxMessageBytes + 1, 0x41) });
  assert.equal(res.status, 413);
  assert.match(await res.text(), /larger than receive\.maxMessageBytes \(2097152 bytes\)/);
  assert.deepEqual(leftovers(), []);
});

/** Writes a raw request and collects whatever comes back until the server closes. */
function rawExchange(write: (s: net.Socket) => void, waitMs = 20_000): Promise<{ response: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const s = net.connect(new URL(server.url).port as unknown as number, "127.0.0.1");
    let response = "";
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`the server neither answered nor closed in ${waitMs} ms: ${response}`)); }, waitMs);
    s.on("data", (d: Buffer) => { response += d.toString("latin1"); });
    s.on("error", () => { /* a reset after the answer is fine */ });
    s.on("close", () => { clearTimeout(timer); resolve({ response, closedAfterMs: Date.now() - started }); });
    s.on("connect", () => write(s));
  });
}

function requestHead(messageId: string, extra: string[], contentType = "application/edifact"): string {
  const url = new URL(server.url);
  return [`POST ${url.pathname} HTTP/1.1`, `Host: ${url.host}`, "AS2-Version: 1.2", "AS2-From: MYCO", "AS2-To: ACME", `Message-ID: ${messageId}`, `Content-Type: ${contentType}`, ...extra, "", ""].join("\r\n");
}

test("oversized and chunked (no Content-Length): 413 once the limit is crossed, nothing written", async () => {
  const id = newId();
  const { response } = await rawExchange((s) => {
    s.write(requestHead(id, ["Transfer-Encoding: chunked"]));
    const piece = Buffer.alloc(256 * 1024, 0x42);
    let sent = 0;
    const more = () => {
      while (sent < 3 * 1024 * 1024) {
        sent += piece.length;
        if (!s.write(`${piece.length.toString(16)}\r\n`) || !s.write(piece) || !s.write("\r\n")) { s.once("drain", more); return; }
      }
      s.end("0\r\n\r\n");
    };
    s.on("error", () => { /* the server may close while we still write */ });
    more();
  });
  assert.match(response, /^HTTP\/1\.1 413 /);
  const ev = await server.waitFor((e) => e.messageId === id && e.status === 413);
  assert.match(String(ev.detail), /larger than receive\.maxMessageBytes \(2097152 bytes\)/);
  assert.deepEqual(leftovers(), []);
});

test("headers over receive.maxHeaderBytes: 431, nothing written", async () => {
  const { response } = await rawExchange((s) => s.end(requestHead(newId(), [`X-Padding: ${"p".repeat(LIMITS.maxHeaderBytes + 100)}`, "Content-Length: 0"])));
  assert.match(response, /^HTTP\/1\.1 431 /);
  assert.deepEqual(leftovers(), []);
});

test("truncated in transit, early (within the first 16 KiB): a rejected event naming the cut, nothing stored", async () => {
  const msg = build(["sign", "encrypt"]);
  const id = newId();
  await rawExchange((s) => {
    s.write(requestHead(id, [`Content-Length: ${msg.body.length}`], msg.contentType));
    s.write(msg.body.subarray(0, 1000), () => setTimeout(() => s.destroy(), 200));
  });
  const ev = await server.waitFor((e) => e.event === "rejected" && e.messageId === id);
  assert.match(String(ev.detail), new RegExp(`closed the connection after 1000 of ${msg.body.length} bytes`));
  assert.deepEqual(leftovers(), []);
});

test("truncated in transit (the client goes away mid-body): no file, a FAILED record, the server lives on", async () => {
  const msg = buildWithOpenssl(sender, Buffer.concat([PAYLOAD, PAYLOAD, PAYLOAD]), "big.edi", "application/edifact", ["sign", "encrypt"]);
  const id = newId();
  await rawExchange((s) => {
    s.write(requestHead(id, [`Content-Length: ${msg.body.length}`], msg.contentType));
    s.write(msg.body.subarray(0, msg.body.length >> 1), () => setTimeout(() => s.destroy(), 200));
  });
  const ev = await server.waitFor((e) => e.event === "message" && e.messageId === id);
  const record = JSON.parse(readFileSync(join(dir, "acme-data", "jobs", `${ev.runId as string}.json`), "utf8"));
  assert.equal(record.state, "FAILED");
  assert.match(record.error.message, new RegExp(`incomplete: the sender closed the connection after ${msg.body.length >> 1} of ${msg.body.length} bytes`));
  assert.equal(record.error.code, "AS2_ERR_TRUNCATED");
  assert.deepEqual(leftovers(), []);
  assert.equal((await fetch(server.url, { method: "HEAD" })).status, 200, "still serving");
});

test("a client that stalls mid-body is cut off after receive.requestTimeout (2 s): 408 or a close, no file", async () => {
  const msg = buildWithOpenssl(sender, Buffer.concat([PAYLOAD, PAYLOAD, PAYLOAD]), "stall.edi", "application/edifact", ["sign", "encrypt"]);
  const id = newId();
  const { response, closedAfterMs } = await rawExchange((s) => {
    s.write(requestHead(id, [`Content-Length: ${msg.body.length}`], msg.contentType));
    s.write(msg.body.subarray(0, 40_000)); // ...and then nothing
  });
  assert.ok(closedAfterMs >= 1900 && closedAfterMs < 8000, `closed after ${closedAfterMs} ms`);
  assert.ok(response === "" || /^HTTP\/1\.1 408 /.test(response), response);
  const ev = await server.waitFor((e) => e.event === "message" && e.messageId === id);
  const record = JSON.parse(readFileSync(join(dir, "acme-data", "jobs", `${ev.runId as string}.json`), "utf8"));
  assert.equal(record.state, "FAILED");
  assert.match(record.error.message, /receive\.requestTimeout \(2 s\) ran out with 40000 of \d+ bytes received/);
  assert.deepEqual(leftovers(), []);
});

test("after all of that, a good message still goes through", async () => {
  const msg = build(["sign", "encrypt"]);
  const res = await fetch(server.url, { method: "POST", headers: as2Headers(msg, newId()), body: msg.body });
  assert.equal(res.status, 200);
  const mdn = checkMdnWithOpenssl(dir, res.headers.get("content-type")!, Buffer.from(await res.arrayBuffer()), join(dir, "acme.crt"));
  assert.match(mdn.fields.disposition!, /;\s*processed$/);
  assert.deepEqual(leftovers().map((f) => readFileSync(f).equals(PAYLOAD)), [true], "exactly one file: this one");
});
