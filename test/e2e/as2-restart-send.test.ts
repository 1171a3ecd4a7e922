/**
 * AS2 Restart end to end (draft-harding-as2-restart-07; as2-reference E3-E5, E-8; issue 17):
 * `as2 send` -> a TCP relay written here -> `as2 receive`. The relay forwards bytes as they come,
 * counts the request-body bytes of every connection, and cuts the first POST at a random point
 * of its body (the receiver gets exactly the bytes before the cut, the sender a reset). The
 * sender's retry asks (HEAD) what arrived and sends only the rest.
 *
 * The 1 GiB case is the issue's: signed + encrypted, sync signed MDN, the stored file compared
 * by sha256 with the source, and each process's peak memory (VmHWM) read from /proc.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, createReadStream, mkdirSync, openSync, readFileSync, readdirSync, writeSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { before, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { onCleanup, opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir();
const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);
const MiB = 1024 * 1024;

interface Conn { method: string; headerBytes: number; bodyBytes: number; cut: boolean; loseResponse?: boolean }
interface Relay { url: string; conns: Conn[]; cutNextPostAt?: number; headAnswer?: string; onBody?: (c: Conn) => void; loseNextPostResponse?: boolean }

/**
 * A byte-level relay: headers are read to learn the method, then everything is forwarded with
 * back-pressure. The next POST is cut once `cutNextPostAt` body bytes have gone through: the
 * upstream side is ended after exactly those bytes, the client side reset.
 */
async function startRelay(target: string): Promise<Relay> {
  const t = new URL(target);
  const relay: Relay = { url: "", conns: [] };
  const server = net.createServer((client) => {
    const conn: Conn = { method: "", headerBytes: 0, bodyBytes: 0, cut: false };
    relay.conns.push(conn);
    const up = net.connect(Number(t.port), t.hostname);
    let head = Buffer.alloc(0);
    let limit: number | undefined;
    client.on("data", (chunk: Buffer) => {
      if (conn.cut) return;
      if (!conn.method) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        conn.method = head.subarray(0, head.indexOf(" ")).toString("latin1");
        conn.headerBytes = end + 4;
        if (conn.method === "HEAD" && relay.headAnswer) {
          conn.cut = true;
          client.end(relay.headAnswer);
          up.destroy();
          return;
        }
        if (conn.method === "POST" && relay.loseNextPostResponse) {
          relay.loseNextPostResponse = false;
          conn.loseResponse = true;
        }
        if (conn.method === "POST" && relay.cutNextPostAt !== undefined) {
          limit = relay.cutNextPostAt;
          relay.cutNextPostAt = undefined;
        }
        up.write(head.subarray(0, end + 4));
        chunk = head.subarray(end + 4);
      }
      if (limit !== undefined && conn.bodyBytes + chunk.length >= limit) {
        up.end(chunk.subarray(0, limit - conn.bodyBytes));
        conn.bodyBytes = limit;
        conn.cut = true;
        client.resetAndDestroy();
        return;
      }
      conn.bodyBytes += chunk.length;
      relay.onBody?.(conn);
      if (!up.write(chunk)) {
        client.pause();
        up.once("drain", () => client.resume());
      }
    });
    up.on("data", (d: Buffer) => {
      // The answer is lost on its way back: the sender sees its connection reset.
      if (conn.loseResponse) { conn.cut = true; client.resetAndDestroy(); up.destroy(); return; }
      if (!client.destroyed) client.write(d);
    });
    client.on("end", () => { if (!conn.cut) up.end(); });
    up.on("end", () => client.end());
    client.on("error", () => { if (!conn.cut) up.destroy(); });
    up.on("error", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  relay.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/as2`;
  return relay;
}

/** A deterministic file of `bytes` (xorshift32 blocks, each 16 MiB block stamped with its index); returns its sha256. */
function makeSource(path: string, bytes: number): string {
  const block = Buffer.alloc(16 * MiB);
  const words = new Uint32Array(block.buffer, block.byteOffset, block.length / 4);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  const hash = createHash("sha256");
  const fd = openSync(path, "w");
  try {
    for (let off = 0, n = 0; off < bytes; off += block.length, n++) {
      block.writeUInt32LE(n, 0);
      const piece = block.subarray(0, Math.min(block.length, bytes - off));
      writeSync(fd, piece);
      hash.update(piece);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(path, { highWaterMark: 4 * MiB })) h.update(c as Buffer);
  return h.digest("hex");
}

/** Peak resident memory of a process in bytes (VmHWM), or undefined once it is gone. */
function peakOf(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

let restartReceiver: As2Server;
let plainReceiver: As2Server;

function receiverCfg(name: string, restart: boolean): string {
  return cfg(name, {
    dataDir: `./${name}-data`,
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    // One process, so that its memory is the receiver's memory.
    receive: { host: "127.0.0.1", port: 0, path: "/as2", workers: 1, requestTimeout: 1800, ...(restart ? { restart: { enabled: true } } : {}) },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { requireSigned: true, requireEncrypted: true } } },
  });
}

function senderCfg(name: string, url: string, partner: Record<string, unknown> = {}): string {
  return cfg(name, {
    dataDir: `./${name}-data`,
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: {
      acme: {
        as2Id: "ACME", url, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", mdn: { request: "signed" },
        retries: 2, retryInterval: 1, readTimeout: 0, ...partner,
      },
    },
  });
}

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  mkdirSync(join(dir, "out"), { recursive: true });
  restartReceiver = await startAs2Receive(receiverCfg("acme", true));
  plainReceiver = await startAs2Receive(receiverCfg("acme-plain", false));
});

function jobOf(stdout: string, stderr: string): JobRecord {
  try {
    return JSON.parse(stdout) as JobRecord;
  } catch {
    throw new Error(`no JSON on stdout: ${stdout}\n${stderr}`);
  }
}

test("1 GiB, signed + encrypted, sync signed MDN: cut at a random point, resumed; the second POST carries about what was missing; the stored file is whole; memory stays flat", { timeout: 1_800_000 }, async (t) => {
  const source = join(dir, "out", "big-1g.bin");
  const started = Date.now();
  const sourceSha = makeSource(source, 1024 * MiB);
  t.diagnostic(`source made in ${Date.now() - started} ms`);
  const relay = await startRelay(restartReceiver.url);
  // The built message is a little larger than the file; the cut falls in 10%-90% of it.
  const cutAt = Math.floor(1024 * MiB * (0.1 + 0.8 * Math.random()));
  relay.cutNextPostAt = cutAt;
  t.diagnostic(`cut after ${cutAt} body bytes`);

  let senderPid = 0;
  let senderPeak = 0;
  const poll = setInterval(() => { const p = senderPid && peakOf(senderPid); if (p) senderPeak = Math.max(senderPeak, p); }, 200);
  const sent = Date.now();
  const r = await as2(["send", "--config", senderCfg("myco", relay.url), "--partner", "acme", "--json", source], { onSpawn: (pid) => { senderPid = pid; } });
  clearInterval(poll);
  t.diagnostic(`as2 send took ${Date.now() - sent} ms`);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const job = jobOf(r.stdout, r.stderr);
  assert.equal(job.state, "SUCCESS", JSON.stringify(job.files));
  const detail = job.sendDetails![0]!;
  const total = detail.bodyBytes;

  const posts = relay.conns.filter((c) => c.method === "POST");
  assert.equal(posts.length, 2, JSON.stringify(relay.conns));
  assert.equal(posts[0]!.bodyBytes, cutAt);
  assert.ok(posts[0]!.cut);
  assert.ok(relay.conns.some((c) => c.method === "HEAD"), "the sender asked what arrived");
  const missing = total - cutAt;
  const again = posts[1]!.bodyBytes;
  t.diagnostic(`message ${total} bytes; first POST ${posts[0]!.bodyBytes}, second POST ${again} (missing ${missing})`);
  assert.ok(Math.abs(again - missing) <= MiB, `the second POST sent ${again} bytes; ${missing} were missing`);
  assert.ok(posts[1]!.headerBytes < 4096);
  assert.equal(detail.restart!.resumedAt, total - again);
  assert.equal(detail.restart!.bytesSent, again);
  // What the sender wrote: at least what went through the relay (some was still in socket buffers at the cut).
  assert.ok(detail.restart!.totalBytesSent >= cutAt + again && detail.restart!.totalBytesSent < total + 64 * MiB, JSON.stringify(detail.restart));
  assert.match(detail.restart!.etag, /^"[^"]+"$/);

  // The MDN: signed, processed, with the MIC of the whole message.
  assert.equal(detail.mdnChecks!.signature.verdict, "pass");
  assert.equal(detail.mdnChecks!.mic.verdict, "pass");
  assert.match(job.messages[0]!.mdnMessage!.disposition ?? "", /processed$/);
  const stored = join(dir, "acme-data", "inbox", "myco", "big-1g.bin");
  assert.equal(await sha256File(stored), sourceSha, "the stored file is the source, byte for byte");
  assert.deepEqual(readdirSync(join(dir, "acme-data", "spool", "restart")).filter((n) => n.endsWith(".part")), [], "the partial's bytes are gone");
  assert.deepEqual(readdirSync(join(dir, "myco-data", "spool")), [], "the sender's spool is gone");

  const receiverPeak = peakOf(restartReceiver.proc.pid!)!;
  t.diagnostic(`peak memory: as2 send ${Math.round(senderPeak / MiB)} MiB, as2 receive ${Math.round(receiverPeak / MiB)} MiB`);
  assert.ok(senderPeak > 0 && senderPeak < 200 * MiB, `as2 send peaked at ${senderPeak} bytes`);
  assert.ok(receiverPeak < 200 * MiB, `as2 receive peaked at ${receiverPeak} bytes`);
});

const HEAD_ANSWERS = {
  "as2kit-plain": undefined,
  "405": "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  // A server that knows nothing of restart and gives HEAD the length of some page: "auto" must not resume at it.
  "page": "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5120\r\nConnection: close\r\n\r\n",
} as const;
for (const [name, variant] of [["HEAD answered 200 with Content-Length 0 and no AS2-Restart", "as2kit-plain"], ["HEAD refused (405)", "405"], ["HEAD answered 200 with a page's Content-Length and no sign of restart", "page"]] as const) {
  test(`a receiver without restart (${name}): the sender resends everything; stored once`, { timeout: 300_000 }, async (t) => {
    const file = `plain-${variant}.bin`;
    const source = join(dir, "out", file);
    const sourceSha = makeSource(source, 24 * MiB);
    const relay = await startRelay(plainReceiver.url);
    const answer = HEAD_ANSWERS[variant];
    if (answer) relay.headAnswer = answer;
    const cutAt = Math.floor(24 * MiB * (0.1 + 0.8 * Math.random()));
    relay.cutNextPostAt = cutAt;
    t.diagnostic(`cut after ${cutAt} body bytes`);
    const r = await as2(["send", "--config", senderCfg(`myco-plain-${variant}`, relay.url), "--partner", "acme", "--json", source]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const job = jobOf(r.stdout, r.stderr);
    const detail = job.sendDetails![0]!;
    const posts = relay.conns.filter((c) => c.method === "POST");
    assert.deepEqual(posts.map((c) => c.bodyBytes), [cutAt, detail.bodyBytes], "the second POST is the whole message");
    assert.ok(relay.conns.some((c) => c.method === "HEAD"));
    assert.equal(detail.restart!.resumedAt, 0);
    assert.equal(detail.mdnChecks!.mic.verdict, "pass");
    const inbox = join(dir, "acme-plain-data", "inbox", "myco");
    assert.deepEqual(readdirSync(inbox).filter((n) => n.startsWith(file.replace(/\.bin$/, ""))), [file], "stored once");
    assert.equal(await sha256File(join(inbox, file)), sourceSha);
  });
}

test("as2 send SIGKILLed mid-transfer: its built message stays; as2 send --restart asks (HEAD) first and sends only the rest, same ETag and Message-ID; stored once, MIC verified", { timeout: 300_000 }, async (t) => {
  const source = join(dir, "out", "killed-64m.bin");
  const sourceSha = makeSource(source, 64 * MiB);
  const relay = await startRelay(restartReceiver.url);
  const killAt = Math.floor(64 * MiB * (0.1 + 0.8 * Math.random()));
  t.diagnostic(`SIGKILL after ${killAt} body bytes`);
  let pid = 0;
  let killed = false;
  relay.onBody = (c) => {
    if (!killed && c.method === "POST" && c.bodyBytes >= killAt) {
      killed = true;
      process.kill(pid, "SIGKILL");
    }
  };
  const config = senderCfg("myco-killed", relay.url);
  const first = await as2(["send", "--config", config, "--partner", "acme", "--json", source], { onSpawn: (p) => { pid = p; } });
  assert.equal(first.signal, "SIGKILL", first.stderr);
  relay.onBody = undefined;
  const jobsDir = join(dir, "myco-killed-data", "jobs");
  const runId = readdirSync(jobsDir).find((n) => n.endsWith(".json"))!.replace(/\.json$/, "");
  const killedId = (JSON.parse(readFileSync(join(jobsDir, `${runId}.json`), "utf8")) as JobRecord).files[0]!.as2MessageId;
  // The receiver kept what arrived before the connection died with the sender.
  await restartReceiver.waitFor((e) => e.event === "partial" && e.messageId === killedId && Number(e.bytes) > 0);
  // Read once the connection has ended: bytes in socket buffers went on after the kill.
  const forwarded = relay.conns.filter((c) => c.method === "POST")[0]!.bodyBytes;

  const again = await as2(["send", "--config", config, "--restart", runId, "--json"]);
  assert.equal(again.status, 0, again.stderr + again.stdout);
  const job = jobOf(again.stdout, again.stderr);
  assert.equal(job.state, "SUCCESS");
  const original = JSON.parse(readFileSync(join(jobsDir, `${runId}.json`), "utf8")) as JobRecord;
  assert.equal(job.files[0]!.as2MessageId, original.files[0]!.as2MessageId, "the same Message-ID");
  const detail = job.sendDetails![0]!;
  assert.equal(detail.restart!.etag, original.sendDetails![0]!.resume!.etag, "the same ETag: the partner's partial is found");
  const conns = relay.conns.slice(1);
  assert.equal(conns[0]!.method, "HEAD", "the restart asks before it sends");
  const posts = conns.filter((c) => c.method === "POST");
  assert.equal(posts.length, 1);
  const missing = detail.bodyBytes - forwarded;
  t.diagnostic(`message ${detail.bodyBytes} bytes; before the kill ${forwarded}; after the restart ${posts[0]!.bodyBytes} (missing ${missing})`);
  assert.ok(Math.abs(posts[0]!.bodyBytes - missing) <= MiB, `sent ${posts[0]!.bodyBytes}, ${missing} were missing`);
  assert.equal(detail.restart!.resumedAt, detail.bodyBytes - posts[0]!.bodyBytes);
  assert.equal(detail.mdnChecks!.mic.verdict, "pass");
  assert.equal(detail.mdnChecks!.signature.verdict, "pass");
  const inbox = join(dir, "acme-data", "inbox", "myco");
  assert.deepEqual(readdirSync(inbox).filter((n) => n.startsWith("killed-64m")), ["killed-64m.bin"]);
  assert.equal(await sha256File(join(inbox, "killed-64m.bin")), sourceSha);
  assert.deepEqual(readdirSync(join(dir, "myco-killed-data", "spool")), [], "the kept message is gone once resent");
});

test("the answer to the POST that completed the message is lost: the retry's HEAD says all is held, one byte is sent again, and the recorded MDN comes back as a duplicate; stored once", { timeout: 300_000 }, async () => {
  const source = join(dir, "out", "lost-answer.bin");
  const sourceSha = makeSource(source, 24 * MiB);
  const relay = await startRelay(restartReceiver.url);
  relay.loseNextPostResponse = true;
  const r = await as2(["send", "--config", senderCfg("myco-lost", relay.url), "--partner", "acme", "--json", source]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const job = jobOf(r.stdout, r.stderr);
  const detail = job.sendDetails![0]!;
  assert.deepEqual(relay.conns.map((c) => [c.method, c.bodyBytes]), [["POST", detail.bodyBytes], ["HEAD", 0], ["POST", 1]]);
  assert.deepEqual({ resumedAt: detail.restart!.resumedAt, bytesSent: detail.restart!.bytesSent }, { resumedAt: detail.bodyBytes - 1, bytesSent: 1 });
  assert.equal(detail.mdnChecks!.mic.verdict, "pass");
  assert.equal(detail.mdnChecks!.signature.verdict, "pass");
  await restartReceiver.waitFor((e) => e.event === "duplicate" && e.messageId === job.files[0]!.as2MessageId);
  const inbox = join(dir, "acme-data", "inbox", "myco");
  assert.deepEqual(readdirSync(inbox).filter((n) => n.startsWith("lost-answer")), ["lost-answer.bin"]);
  assert.equal(await sha256File(join(inbox, "lost-answer.bin")), sourceSha);
});
