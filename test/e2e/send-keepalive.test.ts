/**
 * `as2 send` of many files over one connection (issue 14), end to end: real `as2 send` processes
 * and one real `as2 receive` (plain HTTP, and HTTPS with an openssl-made CA), with a TCP relay in
 * front of the receiver that counts connections and the Message-IDs of the requests it forwards,
 * and can misbehave as servers and load balancers do: close a connection quietly as soon as an
 * answer has gone out (an idle timeout the client was not told of), or cut the first answer in
 * the middle. Each time: every file stored once in ACME's inbox, the job SUCCESS.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { basename, join } from "node:path";
import { before, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { onCleanup, opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";
import { makePki, type TestPki } from "../helpers/net.js";

const FILES = 20;
const dir = tempDir("as2kit-send-keepalive-");
let plain: As2Server;
let secure: As2Server;
let pki: TestPki;

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  pki = makePki(dir);
  const receiver = (tag: string, tls?: Record<string, unknown>) => cfg(`acme-${tag}`, {
    dataDir: `./acme-data-${tag}`,
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", ...(tls ? { tls } : {}) },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { requireSigned: true, requireEncrypted: true } } },
  });
  [plain, secure] = await Promise.all([
    startAs2Receive(receiver("plain")),
    startAs2Receive(receiver("tls", { key: pki.serverKey, certificate: pki.serverCert })),
  ]);
});

type Mode = "relay" | "close-when-answered" | "cut-first-answer";

/** A TCP relay to `upstream`: counts connections and the Message-IDs of the requests going through. */
async function relay(upstream: string, mode: Mode = "relay"): Promise<{ url: string; connections: () => number; forwarded: Map<string, number> }> {
  const target = new URL(upstream);
  let connections = 0;
  let cut = mode === "cut-first-answer";
  const forwarded = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    const up = net.connect({ host: target.hostname, port: Number(target.port) });
    for (const s of [client, up]) { sockets.add(s); s.on("close", () => sockets.delete(s)); }
    let head = "";
    client.on("data", (d: Buffer) => {
      // Message-IDs of the requests as they pass (plain HTTP only; TLS is opaque here).
      head = (head + d.toString("latin1")).slice(-65536);
      for (const m of head.matchAll(/\r\nMessage-ID: (<[^>\r\n]+>)\r\n/gi)) forwarded.set(m[1]!, (forwarded.get(m[1]!) ?? 0) + 1);
      head = head.replace(/\r\nMessage-ID: <[^>\r\n]+>\r\n/gi, "\r\n");
      up.write(d);
    });
    up.on("data", (d: Buffer) => {
      if (cut) {
        // Half of the first answer, then both connections go: the receiver has stored the file.
        cut = false;
        client.write(d.subarray(0, Math.floor(d.length / 2)), () => { client.destroy(); up.destroy(); });
        return;
      }
      client.write(d);
      // The answer went out: close as an idle timeout would, without a word (an MDN fits in one read or few).
      if (mode === "close-when-answered") setTimeout(() => { client.end(); up.end(); }, 5);
    });
    client.on("end", () => up.end());
    up.on("end", () => client.end());
    client.on("error", () => up.destroy());
    up.on("error", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `${target.protocol}//127.0.0.1:${port}${target.pathname}`, connections: () => connections, forwarded };
}

function sender(label: string, url: string, extra: Record<string, unknown> = {}): string {
  return cfg(`myco-${label}`, {
    dataDir: `./myco-${label}`,
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", connectTimeout: 10, readTimeout: 60, mdn: { request: "signed", mode: "sync" }, ...extra } },
  });
}

function files(label: string, n = FILES): string {
  const folder = join(dir, `out-${label}`);
  mkdirSync(folder, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(folder, `${label}-${String(i).padStart(2, "0")}.edi`), randomBytes(700 + i));
  return folder;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Runs the send, asserts SUCCESS and every file once (bytes identical) in the inbox of `tag`. */
async function sendAndCheck(label: string, config: string, tag: "plain" | "tls"): Promise<JobRecord> {
  const folder = files(label);
  const r = await as2(["send", "--config", config, "--partner", "acme", "--json", "--dir", folder]);
  assert.equal(r.status, 0, r.stderr + r.stdout.slice(0, 2000));
  const job = JSON.parse(r.stdout) as JobRecord;
  assert.equal(job.state, "SUCCESS");
  assert.deepEqual(new Set(job.files.map((f) => f.status)), new Set(["SUCCESS"]));
  const inbox = join(dir, `acme-data-${tag}`, "inbox", "myco");
  const stored = readdirSync(inbox).filter((n) => n.startsWith(`${label}-`)).sort();
  const sources = readdirSync(folder).sort();
  assert.deepEqual(stored, sources, "each file exactly once in ACME's inbox (no renamed second copy)");
  for (const s of sources) assert.equal(sha(readFileSync(join(inbox, s))), sha(readFileSync(join(folder, s))), `${basename(s)}: bytes identical`);
  return job;
}

test(`plain HTTP: ${FILES} files over one connection`, async () => {
  const r = await relay(plain.url);
  const job = await sendAndCheck("ka-plain", sender("ka-plain", r.url), "plain");
  assert.equal(r.connections(), 1, "one TCP connection for the whole job");
  assert.equal(r.forwarded.size, FILES);
  for (const f of job.files) assert.equal(r.forwarded.get(f.as2MessageId!), 1, `${f.as2MessageId} sent once`);
});

test(`HTTPS: ${FILES} files over one connection (one TLS handshake)`, async () => {
  const r = await relay(secure.url);
  await sendAndCheck("ka-tls", sender("ka-tls", r.url, { tls: { ca: [pki.caCert] } }), "tls");
  assert.equal(r.connections(), 1);
});

test(`keepAlive: false for the partner: ${FILES} connections, one per file`, async () => {
  const r = await relay(plain.url);
  await sendAndCheck("ka-off", sender("ka-off", r.url, { keepAlive: false }), "plain");
  assert.equal(r.connections(), FILES);
});

test("a server that closes each connection right after its answer, unannounced: every file forwarded once, stored once, job SUCCESS (retries 1 for a reuse that races the close)", async () => {
  const r = await relay(plain.url, "close-when-answered");
  const job = await sendAndCheck("ka-idle", sender("ka-idle", r.url, { retries: 1 }), "plain");
  assert.ok(r.connections() > 1, "the relay did close connections");
  // A stale connection fails before the request reaches the relay's upstream, or not at all.
  for (const f of job.files) assert.equal(r.forwarded.get(f.as2MessageId!), 1, `${f.as2MessageId} forwarded once`);
});

test("the first answer cut in the middle: resent under the same Message-ID (retries 1), the receiver answers the duplicate, the file is stored once", async () => {
  const r = await relay(plain.url, "cut-first-answer");
  const job = await sendAndCheck("ka-cut", sender("ka-cut", r.url, { retries: 1 }), "plain");
  const first = job.files[0]!.as2MessageId!;
  assert.equal(r.forwarded.get(first), 2, "the first message went to the receiver twice (the cut answer, then the retry)");
  const detail = (job as JobRecord & { sendDetails: Array<{ as2MessageId: string; attempts: number }> }).sendDetails.find((d) => d.as2MessageId === first)!;
  assert.equal(detail.attempts, 2);
  for (const f of job.files.slice(1)) assert.equal(r.forwarded.get(f.as2MessageId!), 1);
});
