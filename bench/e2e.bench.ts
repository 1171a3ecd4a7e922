// `npm run bench` (part 3), end to end on loopback: `as2 send` -> `as2 receive`, both real
// processes under /usr/bin/time -v.
//   1. A large file (BENCH_E2E_MB, default 1024 = 1 GiB), sign sha256 + aes256-cbc, signed sync
//      MDN: MB/s from start to verified MDN, and the peak RSS of the sender and of the receiver
//      (target: each under 200 MB); Content-Length (spooled) and chunked (streamed). In the same
//      run, openssl cms | openssl cms | curl to a sink gives the sender-side reference.
//      BENCH_E2E_MB=0 skips it.
//   2. 1 KiB messages: 8 `as2 send` processes at once, each sending BENCH_E2E_MSGS files
//      (default 100) as one job, every message signed + encrypted with a signed sync MDN:
//      messages per second to `as2 receive` and to bench/mdn-sink.mjs (the senders' ceiling),
//      for this checkout's senders and a baseline checkout's (bench/send-rate.ts); peak RSS.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { baselineCheckout, mdnSink, senderConfig, sendDir, smallFiles } from "./send-rate.js";

const MB = Number(process.env.BENCH_E2E_MB ?? 1024);
const MSGS = Number(process.env.BENCH_E2E_MSGS ?? 100);
const SENDERS = 8;
const dir = mkdtempSync(join(tmpdir(), "as2kit-e2e-bench-"));
const f = (n: string) => join(dir, n);
const AS2 = ["--openssl-legacy-provider", "bin/as2.js"];

interface Run { seconds: number; rssMb: number; code: number | null; stdout: string; stderr: string }

function rssOf(stderr: string): number {
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Runs a command under /usr/bin/time -v; resolves when it exits. */
function timed(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const c = spawn("/usr/bin/time", ["-v", cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    c.on("close", (code) => resolve({ seconds: Number(process.hrtime.bigint() - start) / 1e9, rssMb: rssOf(stderr), code, stdout, stderr }));
  });
}

/** `as2 receive` under /usr/bin/time -v: its URL once listening, and its Run once stopped. */
async function receiver(config: string): Promise<{ url: string; stop: () => Promise<Run> }> {
  const c = spawn("/usr/bin/time", ["-v", process.execPath, ...AS2, "receive", "--config", config, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  c.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => c.once("close", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    c.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /"event":"listening","url":"([^"]+)"/.exec(buf);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`as2 receive exited with ${code}: ${stderr}`)));
  });
  return {
    url,
    stop: async () => {
      // SIGTERM to the node child of /usr/bin/time: graceful stop, then time prints its figures.
      for (const pid of readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, "utf8").trim().split(/\s+/)) process.kill(Number(pid), "SIGTERM");
      const code = await exited;
      return { seconds: 0, rssMb: rssOf(stderr), code, stdout: "", stderr };
    },
  };
}

function writeFile(path: string, mb: number): number {
  const block = randomBytes(1024 * 1024);
  const fd = openSync(path, "w");
  for (let i = 0; i < mb; i++) writeSync(fd, block);
  closeSync(fd);
  return statSync(path).size;
}

function configs(tag: string, chunked: boolean, url?: string): { acme: string; myco: string } {
  const acme = f(`acme-${tag}.json`);
  writeFileSync(acme, JSON.stringify({
    dataDir: f(`acme-data-${tag}`),
    station: { as2Id: "ACME", key: { pem: f("acme.key"), certificate: f("acme.crt") } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", maxMessageBytes: 4 * 1024 ** 3, requestTimeout: 3600 },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/unused", certificate: f("myco.crt"), inbound: { requireSigned: true, requireEncrypted: true } } },
  }));
  const myco = f(`myco-${tag}.json`);
  writeFileSync(myco, JSON.stringify({
    dataDir: f(`myco-data-${tag}`),
    station: { as2Id: "MYCO", key: { pem: f("myco.key"), certificate: f("myco.crt") } },
    partners: { acme: { as2Id: "ACME", url: url ?? "http://127.0.0.1:9/as2", certificate: f("acme.crt"), sign: "sha256", encrypt: "aes256-cbc", chunked, readTimeout: 3600, mdn: { request: "signed", mode: "sync" } } },
  }));
  return { acme, myco };
}

async function sink(): Promise<{ port: number; stop: () => void }> {
  const s = spawn(process.execPath, ["bench/sink.mjs"], { stdio: ["ignore", "pipe", "ignore"] });
  const port = await new Promise<number>((resolve) => s.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
  return { port, stop: () => s.kill() };
}

try {
  for (const n of ["myco", "acme"]) execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f(`${n}.key`), "-out", f(`${n}.crt`), "-days", "2", "-subj", `/CN=${n}`], { stdio: "pipe" });
  if (MB > 0) await largeFile();
  await manySenders();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function largeFile(): Promise<void> {
  const bytes = writeFile(f("big.bin"), MB);
  process.stderr.write(`e2e bench: ${MB} MiB in ${dir}\n`);
  const mbps = (r: Run) => bytes / 1e6 / r.seconds;

  const large = async (chunked: boolean) => {
    const tag = chunked ? "chunked" : "spooled";
    const server = await receiver(configs(tag, chunked).acme);
    const send = await timed(process.execPath, [...AS2, "send", "--config", configs(tag, chunked, server.url).myco, "--partner", "acme", "--quiet", f("big.bin")]);
    const recv = await server.stop();
    if (send.code !== 0) throw new Error(`as2 send (${tag}) exited ${send.code}: ${send.stderr}`);
    const stored = readdirSync(f(`acme-data-${tag}/inbox/myco`)).filter((n) => !n.startsWith("."));
    if (stored.length !== 1 || statSync(f(`acme-data-${tag}/inbox/myco/${stored[0]}`)).size !== bytes) throw new Error(`the receiver did not store the file whole (${stored.join(", ")})`);
    rmSync(f(`acme-data-${tag}`), { recursive: true, force: true });
    return { send, recv };
  };
  const spooled = await large(false);
  const streamed = await large(true);
  const s = await sink();
  const opensslRun = await timed("bash", ["-c", `openssl cms -sign -binary -stream -in ${f("big.bin")} -signer ${f("myco.crt")} -inkey ${f("myco.key")} -md sha256 | openssl cms -encrypt -binary -stream -aes256 -outform DER ${f("acme.crt")} | curl -sS -o /dev/null -X POST -H 'Content-Type: application/pkcs7-mime' -T - http://127.0.0.1:${s.port}/as2`]);
  s.stop();
  rmSync(f("big.bin"), { force: true });

  const row = (name: string, r: { send: Run; recv: Run }) =>
    `${name.padEnd(36)} ${mbps(r.send).toFixed(1).padStart(7)} MB/s  ${(mbps(r.send) / mbps(opensslRun)).toFixed(2)}x  RSS send ${r.send.rssMb.toFixed(0).padStart(4)} MB, receive ${r.recv.rssMb.toFixed(0).padStart(4)} MB`;
  process.stdout.write(`\nend to end, as2 send -> as2 receive on loopback, ${(bytes / 1048576).toFixed(0)} MiB, sign sha256 + aes256-cbc, signed sync MDN, RSA-2048, Node ${process.version}\n` +
    `${row("Content-Length (spooled)", spooled)}\n${row("chunked (streamed)", streamed)}\n` +
    `${"openssl cms | openssl cms | curl".padEnd(36)} ${mbps(opensslRun).toFixed(1).padStart(7)} MB/s  (sender side only, to a sink; the ratios above are against it)\n`);
  const worst = Math.max(spooled.send.rssMb, spooled.recv.rssMb, streamed.send.rssMb, streamed.recv.rssMb);
  process.stdout.write(`peak RSS of any as2 process: ${worst.toFixed(0)} MB (target < 200 MB): ${worst < 200 ? "PASS" : "FAIL"}\n`);
  if (worst >= 200) process.exitCode = 1;
}

/**
 * Many small messages (issue 14): SENDERS `as2 send` processes at once, each one job of MSGS
 * files of 1 KiB, sign + encrypt + signed sync MDN; this checkout's senders and a baseline
 * checkout's (bench/send-rate.ts), each to `as2 receive` (end to end: what the receiver allows)
 * and to bench/mdn-sink.mjs (decrypt, verify, signed MDN, nothing stored: the senders' ceiling).
 */
async function manySenders(): Promise<void> {
  const baseline = baselineCheckout();
  try {
    const folders = Array.from({ length: SENDERS }, (_, p) => smallFiles(f(`out-${p}`), MSGS, 1024, `order-${p}`));
    const rows: string[] = [];
    const rates = new Map<string, number>();
    for (const [who, root] of [[baseline.label, baseline.root], ["this checkout", process.cwd()]] as const) {
      for (const to of ["as2 receive", "mdn-sink"] as const) {
        const tag = `many-${rates.size}`;
        let stop: () => Promise<{ rssMb: number; connections: number }>;
        let url: string;
        if (to === "as2 receive") {
          const server = await receiver(configs(tag, false).acme);
          url = server.url;
          stop = async () => ({ rssMb: (await server.stop()).rssMb, connections: NaN });
        } else {
          const s = await mdnSink(dir);
          url = s.url;
          stop = async () => ({ rssMb: NaN, connections: (await s.stop()).connections });
        }
        const t0 = process.hrtime.bigint();
        const senders = await Promise.all(folders.map((folder, p) => sendDir(root, senderConfig(dir, `${tag}-${p}`, url), folder)));
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const stopped = await stop();
        if (to === "as2 receive") {
          const received = readdirSync(f(`acme-data-${tag}/inbox/myco`)).filter((n) => !n.startsWith(".")).length;
          if (received !== SENDERS * MSGS) throw new Error(`the receiver stored ${received} of ${SENDERS * MSGS} messages`);
        }
        const rate = SENDERS * MSGS / seconds;
        rates.set(`${who}|${to}`, rate);
        const sendRss = Math.max(...senders.map((r) => r.rssMb));
        rows.push(`${who.padEnd(26)} -> ${to.padEnd(12)} ${rate.toFixed(1).padStart(7)} messages/s  ${seconds.toFixed(1).padStart(6)} s  sender peak RSS ${sendRss.toFixed(0).padStart(4)} MB` +
          (to === "as2 receive" ? `  receiver peak RSS ${stopped.rssMb.toFixed(0).padStart(4)} MB` : `  ${stopped.connections} connections`));
        rmSync(f(`acme-data-${tag}`), { recursive: true, force: true });
      }
    }
    const e2e = rates.get("this checkout|as2 receive")!;
    process.stdout.write(`\n${SENDERS} as2 send x ${MSGS} files of 1 KiB at once, sign sha256 + aes256-cbc, signed sync MDN, loopback (process starts included)\n${rows.join("\n")}\n` +
      `end to end ${e2e.toFixed(1)} messages/s (goal >= 100): ${e2e >= 100 ? "PASS" : "FAIL"}; senders' ceiling (to mdn-sink) ${rates.get("this checkout|mdn-sink")!.toFixed(1)} messages/s\n`);
  } finally {
    baseline.dispose();
  }
}
