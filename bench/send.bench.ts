// `npm run bench` (part 2): `as2 send` of a large file (default 2 GiB, BENCH_SEND_MB) to a
// loopback sink, sign sha256 + aes256-cbc, no MDN (the sink is not an AS2 server; issue 4's
// end-to-end bench adds the MDN). Peak RSS of the `as2` process (target: under 200 MB) and MB/s,
// with Content-Length (spooled) and chunked (streamed), against openssl cms | curl in the same run.
// Then (issue 14) one `as2 send` of BENCH_SEND_FILES (default 1000) files of 1 KiB, signed sync
// MDN, to bench/mdn-sink.mjs: files per second of this checkout and of a baseline checkout
// (bench/send-rate.ts), the ratio, connections opened, peak RSS. BENCH_SEND_MB=0 skips the large file.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { baselineCheckout, identities, mdnSink, senderConfig, sendDir, smallFiles, type Run as TimedRun } from "./send-rate.js";

const MB = Number(process.env.BENCH_SEND_MB ?? 2048);
const dir = mkdtempSync(join(tmpdir(), "as2kit-send-bench-"));
const f = (n: string) => join(dir, n);

interface Run { seconds: number; rssMb: number; stderr: string }

function timed(cmd: string, args: string[]): Run {
  const start = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-v", cmd, ...args], { encoding: "utf8", maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { seconds, rssMb: rss ? Number(rss[1]) / 1024 : NaN, stderr: r.stderr };
}

const sink = MB > 0 ? spawn(process.execPath, ["bench/sink.mjs"], { stdio: ["ignore", "pipe", "inherit"] }) : undefined;
if (sink) try {
  const port = await new Promise<number>((resolve, reject) => {
    sink!.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    sink!.once("exit", (c) => reject(new Error(`sink exited with ${c}`)));
  });
  process.stderr.write(`send bench: ${MB} MiB file in ${dir}, sink on 127.0.0.1:${port}\n`);
  for (const n of ["myco", "acme"]) execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f(`${n}.key`), "-out", f(`${n}.crt`), "-days", "2", "-subj", `/CN=${n}`], { stdio: "pipe" });
  const block = randomBytes(1024 * 1024);
  const fd = openSync(f("big.edi"), "w");
  for (let i = 0; i < MB; i++) writeSync(fd, block);
  closeSync(fd);
  const bytes = statSync(f("big.edi")).size;
  const config = (chunked: boolean) => {
    const file = f(`as2rc-${chunked}.json`);
    writeFileSync(file, JSON.stringify({
      dataDir: f("data"),
      station: { as2Id: "MYCO", key: { pem: f("myco.key"), certificate: f("myco.crt") } },
      partners: { acme: { as2Id: "ACME", url: `http://127.0.0.1:${port}/as2`, certificate: f("acme.crt"), sign: "sha256", encrypt: "aes256-cbc", chunked, mdn: { request: "none" } } },
    }));
    return file;
  };
  const as2 = (chunked: boolean) => timed(process.execPath, ["--openssl-legacy-provider", "bin/as2.js", "send", "--config", config(chunked), "--partner", "acme", "--quiet", f("big.edi")]);
  const spooled = as2(false);
  const streamed = as2(true);
  const sh = `openssl cms -sign -binary -stream -in ${f("big.edi")} -signer ${f("myco.crt")} -inkey ${f("myco.key")} -md sha256 | openssl cms -encrypt -binary -stream -aes256 -outform DER ${f("acme.crt")} | curl -sS -o /dev/null -X POST -H 'Content-Type: application/pkcs7-mime' -T - http://127.0.0.1:${port}/as2`;
  const openssl = timed("bash", ["-c", sh]);
  const mbps = (r: Run) => bytes / 1e6 / r.seconds;
  const row = (name: string, r: Run) => `${name.padEnd(40)} ${mbps(r).toFixed(1).padStart(7)} MB/s  peak RSS ${r.rssMb.toFixed(0).padStart(4)} MB  ratio ${(mbps(r) / mbps(openssl)).toFixed(2)}x`;
  process.stdout.write(`\nas2 send benchmark, ${(bytes / 1048576).toFixed(0)} MiB file, sign sha256 + aes256-cbc, RSA-2048, loopback, Node ${process.version}\n` +
    `${row("as2 send, Content-Length (spooled)", spooled)}\n${row("as2 send, chunked (streamed)", streamed)}\n` +
    `${"openssl cms | openssl cms | curl (chunked)".padEnd(40)} ${mbps(openssl).toFixed(1).padStart(7)} MB/s  peak RSS ${openssl.rssMb.toFixed(0).padStart(4)} MB (largest process)\n`);
  const worst = Math.max(spooled.rssMb, streamed.rssMb);
  process.stdout.write(`peak RSS of as2 send: ${worst.toFixed(0)} MB (target < 200 MB): ${worst < 200 ? "PASS" : "FAIL"}\n`);
  if (worst >= 200) process.exitCode = 1;
} finally {
  sink.kill();
}

// Many small files in one send (issue 14): the same runs of both checkouts, one after the other.
const FILES = Number(process.env.BENCH_SEND_FILES ?? 1000);
if (FILES > 0) {
  const baseline = baselineCheckout();
  try {
    identities(dir);
    const folder = smallFiles(f("small"), FILES);
    const runs: Array<{ name: string; run: TimedRun; connections: number }> = [];
    const variants: Array<[string, string, Record<string, unknown>]> = [
      [baseline.label, baseline.root, {}],
      ["this checkout (keep-alive)", process.cwd(), {}],
      ["this checkout, keepAlive: false", process.cwd(), { keepAlive: false }],
    ];
    for (const [name, root, extra] of variants) {
      const sinkRun = await mdnSink(dir);
      const run = await sendDir(root, senderConfig(dir, `files-${runs.length}`, sinkRun.url, extra), folder);
      const counts = await sinkRun.stop();
      if (counts.messages !== FILES) throw new Error(`${name}: the sink answered ${counts.messages} of ${FILES} messages`);
      runs.push({ name, run, connections: counts.connections });
    }
    const rate = (r: TimedRun) => FILES / r.seconds;
    const old = runs[0]!.run;
    process.stdout.write(`\none as2 send of ${FILES} files of 1 KiB, sign sha256 + aes256-cbc, signed sync MDN, to bench/mdn-sink.mjs (loopback)\n` +
      runs.map(({ name, run, connections }) => `${name.padEnd(34)} ${rate(run).toFixed(1).padStart(6)} files/s  ${run.seconds.toFixed(1).padStart(6)} s  CPU ${run.cpuSeconds.toFixed(1).padStart(5)} s  ${String(connections).padStart(4)} connections  peak RSS ${run.rssMb.toFixed(0).padStart(4)} MB  ratio ${(rate(run) / rate(old)).toFixed(2)}x`).join("\n") + "\n");
    const ratio = rate(runs[1]!.run) / rate(old);
    process.stdout.write(`per-file rate against the baseline: ${ratio.toFixed(2)}x (goal >= 2x): ${ratio >= 2 ? "PASS" : "FAIL"}\n`);
  } finally {
    baseline.dispose();
  }
}
rmSync(dir, { recursive: true, force: true });
