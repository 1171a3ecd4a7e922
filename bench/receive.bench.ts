// `npm run bench` (receive throughput, issue 14): how many 1 KiB messages per second `as2 receive`
// takes, against the crypto-only ceiling measured in the same run.
//
//   1. Crypto-only ceiling: the receiver's cryptographic work per message (RSA-2048 decryption of
//      the content key, AES-256-CBC and SHA-256 over 1 KiB, RSA-2048 verification of the
//      sender's signature, RSA-2048 signature of the MDN) in a tight loop on every core
//      (worker_threads), in messages per second.
//   2. The messages are built before the receiver starts (sign sha256 + aes256-cbc, signed sync
//      MDN requested), so the load generator's own CPU during the run is small: 8 keep-alive
//      connections POST them, and count the MDNs that say "processed" without a modifier.
//      Bounded: BENCH_RECV_MSGS messages (default 2000) or BENCH_RECV_SECONDS (default 60).
//   3. `as2 receive` runs under /usr/bin/time -v with receive.workers = 1 and = the number of
//      cores (BENCH_RECV_WORKERS, comma-separated, to choose); every stored file is counted
//      in the inbox afterwards.
//
// BENCH_AS2_ROOT runs another checkout's `bin/as2.js` as the receiver (an older version, for
// before/after figures in one session); its config has no receive.workers (older versions have none).
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { buildMessage, loadCertificates, loadPrivateKey } from "../dist/index.js";

const MSGS = Number(process.env.BENCH_RECV_MSGS ?? 2000);
const SECONDS = Number(process.env.BENCH_RECV_SECONDS ?? 60);
const CONNECTIONS = 8;
const CORES = availableParallelism();
const WORKERS = (process.env.BENCH_RECV_WORKERS ?? (process.env.BENCH_AS2_ROOT ? "1" : `1,${CORES}`)).split(",").map(Number);
/** Extra node options for the receiver, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it. */
const NODE_ARGS = (process.env.BENCH_RECV_NODE_ARGS ?? "").split(" ").filter(Boolean);
/** A command the receiver runs under, e.g. "strace -f -c -o /tmp/syscalls" to count its system calls per message. */
const WRAP = (process.env.BENCH_RECV_WRAP ?? "").split(" ").filter(Boolean);
const ROOT = resolve(process.env.BENCH_AS2_ROOT ?? ".");
const dir = mkdtempSync(join(tmpdir(), "as2kit-recv-bench-"));
const f = (n: string) => join(dir, n);

// --- 1. crypto-only ceiling -------------------------------------------------------------------

const CEILING_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const c = require("node:crypto");
const { recipientKey, senderKey, stationKey, ms } = workerData;
const rPriv = c.createPrivateKey(recipientKey), rPub = c.createPublicKey(rPriv);
const sPriv = c.createPrivateKey(senderKey), sPub = c.createPublicKey(sPriv);
const mPriv = c.createPrivateKey(stationKey);
const cek = c.randomBytes(32), iv = c.randomBytes(16), payload = c.randomBytes(1024);
const wrapped = c.publicEncrypt({ key: rPub, padding: c.constants.RSA_PKCS1_PADDING }, cek);
const enc = c.createCipheriv("aes-256-cbc", cek, iv); const ct = Buffer.concat([enc.update(payload), enc.final()]);
const senderSig = c.sign("sha256", payload, sPriv);
let n = 0; const end = Date.now() + ms;
while (Date.now() < end) {
  // Raw RSA, as the receiver does (Node 20 refuses PKCS#1 v1.5 decryption, CVE-2023-46809); the key is the tail.
  const key = c.privateDecrypt({ key: rPriv, padding: c.constants.RSA_NO_PADDING }, wrapped).subarray(-32); // content key
  const d = c.createDecipheriv("aes-256-cbc", key, iv); const plain = Buffer.concat([d.update(ct), d.final()]); // AES
  const digest = c.createHash("sha256").update(plain).digest();                                      // MIC
  if (!c.verify("sha256", plain, sPub, senderSig)) throw new Error("verify");                        // sender's signature
  c.sign("sha256", digest, mPriv);                                                                    // the MDN's signature
  n++;
}
parentPort.postMessage(n);
`;

async function cryptoCeiling(keys: { recipientKey: string; senderKey: string; stationKey: string }, ms: number): Promise<number> {
  const counts = await Promise.all(Array.from({ length: CORES }, () => new Promise<number>((res, rej) => {
    const w = new Worker(CEILING_WORKER, { eval: true, workerData: { ...keys, ms } });
    w.once("message", res);
    w.once("error", rej);
  })));
  return counts.reduce((a, b) => a + b, 0) / (ms / 1000);
}

// --- 2. messages built ahead -------------------------------------------------------------------

interface Prebuilt { headers: Record<string, string>; body: Buffer }

async function prebuild(n: number): Promise<Prebuilt[]> {
  const key = loadPrivateKey(readFileSync(f("myco.key")));
  const certificate = loadCertificates(readFileSync(f("myco.crt")))[0]!;
  const recipient = loadCertificates(readFileSync(f("acme.crt")))[0]!;
  const out: Prebuilt[] = [];
  for (let i = 0; i < n; i++) {
    const m = buildMessage({
      from: "MYCO", to: "ACME", payload: Buffer.from(randomBytes(512).toString("hex")),
      contentType: "application/edi-x12", filename: `order-${i}.edi`,
      sign: { digest: "sha256", key, certificate },
      encrypt: { cipher: "aes256-cbc", recipients: [{ certificate: recipient }] },
      receipt: { notificationTo: "mailto:as2@myco.example", signed: true, micAlgorithms: ["sha256"] },
    });
    const parts: Buffer[] = [];
    for await (const c of m.body) parts.push(Buffer.from(c));
    await m.done;
    out.push({ headers: m.headers.toObject(), body: Buffer.concat(parts) });
  }
  return out;
}

// --- 3. the receiver under load -----------------------------------------------------------------

/** User + system CPU seconds of the receiver and its workers (/usr/bin/time counts waited-for children). */
function cpuOf(stderr: string): number {
  const u = /User time \(seconds\): ([\d.]+)/.exec(stderr);
  const s = /System time \(seconds\): ([\d.]+)/.exec(stderr);
  if (process.env.BENCH_RECV_VERBOSE) process.stderr.write(`receiver CPU: user ${u?.[1]} s, system ${s?.[1]} s\n`);
  return u && s ? Number(u[1]) + Number(s[1]) : NaN;
}

function rssOf(stderr: string): number {
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Every process in the tree below `pid` (the receiver's workers included). */
function descendants(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch { /* gone */ }
  return kids.flatMap((k) => [k, ...descendants(k)]);
}

/** Peak RSS (VmHWM) of each process under `pid`, sampled until the tree is gone. */
function watchRss(pid: number): { stop: () => number } {
  const peaks = new Map<number, number>();
  const sample = () => {
    for (const p of descendants(pid)) {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
        if (m) peaks.set(p, Math.max(peaks.get(p) ?? 0, Number(m[1]) / 1024));
      } catch { /* exited */ }
    }
  };
  const t = setInterval(sample, 200);
  return { stop: () => { sample(); clearInterval(t); return Math.max(0, ...peaks.values()); } };
}

async function startReceiver(config: string): Promise<{ url: string; pid: number; stop: () => Promise<{ code: number | null; rssMb: number; cpu: number; stderr: string }> }> {
  const c = spawn("/usr/bin/time", ["-v", ...WRAP, process.execPath, ...NODE_ARGS, "--openssl-legacy-provider", join(ROOT, "bin/as2.js"), "receive", "--config", config, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  c.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
  c.stdout.resume();
  const exited = new Promise<number | null>((res) => c.once("close", res));
  const url = await new Promise<string>((res, rej) => {
    let buf = "";
    c.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /"event":"listening","url":"([^"]+)"/.exec(buf);
      if (m) res(m[1]!);
    });
    void exited.then((code) => rej(new Error(`as2 receive exited with ${code}: ${stderr}`)));
  });
  const watcher = watchRss(c.pid!);
  return {
    url, pid: c.pid!,
    stop: async () => {
      const rss = watcher.stop();
      // SIGTERM to the top `as2 receive` process (under /usr/bin/time, and maybe a BENCH_RECV_WRAP).
      const top = descendants(c.pid!).find((p) => { try { return readFileSync(`/proc/${p}/cmdline`, "utf8").includes("as2.js"); } catch { return false; } });
      if (top) process.kill(top, "SIGTERM");
      const code = await exited;
      return { code, rssMb: Math.max(rss, rssOf(stderr)), cpu: cpuOf(stderr), stderr };
    },
  };
}

function post(agent: http.Agent, url: URL, m: Prebuilt): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = http.request(url, { method: "POST", agent, headers: { ...m.headers, "Content-Length": String(m.body.length) } }, (r) => {
      const parts: Buffer[] = [];
      r.on("data", (d: Buffer) => parts.push(d));
      r.on("end", () => res({ status: r.statusCode ?? 0, body: Buffer.concat(parts).toString("latin1") }));
      r.on("error", rej);
    });
    req.on("error", rej);
    req.end(m.body);
  });
}

/** POSTs `msgs` over CONNECTIONS keep-alive connections; stops early at `deadline`. */
async function load(url: string, msgs: Prebuilt[], deadline: number): Promise<{ ok: number; bad: string[]; seconds: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const target = new URL(url);
  let next = 0;
  let ok = 0;
  const bad: string[] = [];
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (next < msgs.length && Date.now() < deadline) {
      const r = await post(agent, target, msgs[next++]!);
      // A positive MDN says "processed" with no modifier (RFC 4130 §7.4.3).
      if (r.status === 200 && /Disposition: automatic-action\/MDN-sent-automatically; processed\r?\n/i.test(r.body)) ok++;
      else bad.push(`${r.status} ${r.body.slice(0, 300)}`);
    }
  }));
  agent.destroy();
  return { ok, bad, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

function receiverConfig(tag: string, workers: number | undefined): string {
  const path = f(`acme-${tag}.json`);
  writeFileSync(path, JSON.stringify({
    dataDir: f(`acme-data-${tag}`),
    station: { as2Id: "ACME", key: { pem: f("acme.key"), certificate: f("acme.crt") } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", ...(workers !== undefined ? { workers } : {}) },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/unused", certificate: f("myco.crt"), inbound: { requireSigned: true, requireEncrypted: true } } },
  }));
  return path;
}

try {
  for (const n of ["myco", "acme"]) execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f(`${n}.key`), "-out", f(`${n}.crt`), "-days", "2", "-subj", `/CN=${n}`], { stdio: "pipe" });
  const pem = (n: string) => readFileSync(f(`${n}.key`), "utf8");
  const ceiling = await cryptoCeiling({ recipientKey: pem("acme"), senderKey: pem("myco"), stationKey: pem("acme") }, 3000);
  process.stderr.write(`receive bench: crypto-only ceiling ${ceiling.toFixed(0)} messages/s on ${CORES} cores; building ${MSGS + 20} messages per run\n`);
  const lines: string[] = [];
  for (const workers of WORKERS) {
    const msgs = await prebuild(MSGS + 20);
    const tag = `w${workers}`;
    const server = await startReceiver(receiverConfig(tag, process.env.BENCH_AS2_ROOT ? undefined : workers));
    // Warm-up (JIT, first folders), not counted.
    await load(server.url, msgs.slice(0, 20), Date.now() + 30_000);
    const r = await load(server.url, msgs.slice(20), Date.now() + SECONDS * 1000);
    const stopped = await server.stop();
    const stored = readdirSync(f(`acme-data-${tag}/inbox/myco`)).filter((n) => !n.startsWith(".")).length;
    if (r.bad.length) process.stderr.write(`${r.bad.length} answers were not positive MDNs; first: ${r.bad[0]}\n`);
    if (stopped.code !== 0) process.stderr.write(`as2 receive exited ${stopped.code}: ${stopped.stderr.slice(-2000)}\n`);
    if (stored !== r.ok + 20) throw new Error(`${r.ok + 20} positive MDNs but ${stored} files in the inbox`);
    const rate = r.ok / r.seconds;
    lines.push(`receive.workers=${workers}: ${rate.toFixed(1)} messages/s (${r.ok} in ${r.seconds.toFixed(1)} s, ${r.bad.length} not positive), ${(rate / ceiling).toFixed(3)}x the ceiling; receiver CPU ${(stopped.cpu * 1000 / (r.ok + 20)).toFixed(1)} ms/message (start-up included), peak RSS ${stopped.rssMb.toFixed(0)} MB (largest process)`);
    rmSync(f(`acme-data-${tag}`), { recursive: true, force: true });
  }
  process.stdout.write(`\nas2 receive, 1 KiB sign sha256 + aes256-cbc, signed sync MDN, RSA-2048, ${CONNECTIONS} keep-alive connections, Node ${process.version}, ${CORES} cores${process.env.BENCH_AS2_ROOT ? `, receiver from ${ROOT}` : ""}\n` +
    `crypto-only ceiling (RSA decrypt + RSA verify + RSA sign + AES-256-CBC + SHA-256 over 1 KiB, all cores): ${ceiling.toFixed(0)} messages/s\n${lines.join("\n")}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
