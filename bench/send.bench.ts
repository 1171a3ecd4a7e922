// `npm run bench` (part 2): `as2 send` of a large file (default 2 GiB, BENCH_SEND_MB) to a
// loopback sink, sign sha256 + aes256-cbc, no MDN (the sink is not an AS2 server; issue 4's
// end-to-end bench adds the MDN). Peak RSS of the `as2` process (target: under 200 MB) and MB/s,
// with Content-Length (spooled) and chunked (streamed), against openssl cms | curl in the same run.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

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

const sink = spawn(process.execPath, ["bench/sink.mjs"], { stdio: ["ignore", "pipe", "inherit"] });
try {
  const port = await new Promise<number>((resolve, reject) => {
    sink.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    sink.once("exit", (c) => reject(new Error(`sink exited with ${c}`)));
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
  rmSync(dir, { recursive: true, force: true });
}
