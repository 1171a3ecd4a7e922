// `npm run bench`: build and open a large payload (sign sha256 + aes256-cbc, and with compression)
// with as2kit and with `openssl cms` in the same run; MB/s, the ratio, and peak RSS per process.
// Size: BENCH_MB (default 1024 = 1 GiB). Everything stays on this machine; nothing goes to the network.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, openSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

const MB = Number(process.env.BENCH_MB ?? 1024);
const dir = mkdtempSync(join(tmpdir(), "as2kit-bench-"));
const f = (n: string) => join(dir, n);

function makePayload(path: string, mb: number): void {
  // EDI-like text with varying numbers: compressible, as real EDI is (about 5:1 with zlib).
  const lines: string[] = [];
  for (let i = 0; lines.join("").length < 1024 * 1024; i++) lines.push(`LIN+${i}++${randomBytes(6).toString("hex")}:SRS'QTY+21:${(i * 7919) % 1000}'PRI+AAA:${(i * 31) % 997}.${i % 100}'\n`);
  const block = Buffer.from(lines.join("")).subarray(0, 1024 * 1024);
  const fd = openSync(path, "w");
  for (let i = 0; i < mb; i++) writeSync(fd, block);
  closeSync(fd);
}

interface Run { seconds: number; rssMb: number }

/** Runs a command under /usr/bin/time -v: wall time and peak RSS (kB) of the whole process tree's largest member. */
function timed(cmd: string, args: string[], shell = false): Run {
  const start = process.hrtime.bigint();
  const r = shell
    ? spawnSync("/usr/bin/time", ["-v", "bash", "-c", cmd], { encoding: "utf8", maxBuffer: 1 << 26 })
    : spawnSync("/usr/bin/time", ["-v", cmd, ...args], { encoding: "utf8", maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { seconds, rssMb: rss ? Number(rss[1]) / 1024 : NaN };
}

function row(name: string, bytes: number, ours: Run, theirs?: Run): string {
  const mbps = (r: Run) => bytes / 1e6 / r.seconds;
  const o = `${mbps(ours).toFixed(1).padStart(7)} MB/s  peak RSS ${ours.rssMb.toFixed(0).padStart(4)} MB`;
  const t = theirs ? `${mbps(theirs).toFixed(1).padStart(7)} MB/s  peak RSS ${theirs.rssMb.toFixed(0).padStart(5)} MB   ratio ${(mbps(ours) / mbps(theirs)).toFixed(2)}x` : "(openssl here has no zlib)";
  return `${name.padEnd(28)} ours ${o}   openssl ${t}`;
}

try {
  process.stderr.write(`bench: ${MB} MiB payload in ${dir}\n`);
  for (const n of ["a", "b"]) execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f(`${n}.key`), "-out", f(`${n}.crt`), "-days", "2", "-subj", `/CN=bench-${n}`], { stdio: "pipe" });
  makePayload(f("payload"), MB);
  const bytes = statSync(f("payload")).size;
  const node = [process.execPath, "--openssl-legacy-provider", "bench/worker.mjs"];
  const lines: string[] = [];

  const build = timed(node[0]!, [...node.slice(1), "build", f("payload"), f("ours.p7m"), f("ours.json"), f("a.key"), f("a.crt"), f("b.crt")]);
  const open = timed(node[0]!, [...node.slice(1), "open", f("ours.p7m"), f("ours.json"), f("b.key"), f("b.crt"), f("a.crt")]);
  const oBuild = timed(`openssl cms -sign -binary -stream -in ${f("payload")} -signer ${f("a.crt")} -inkey ${f("a.key")} -md sha256 | openssl cms -encrypt -binary -stream -aes256 -outform DER -out ${f("openssl.p7m")} ${f("b.crt")}`, [], true);
  const oOpen = timed(`openssl cms -decrypt -binary -inform DER -in ${f("openssl.p7m")} -inkey ${f("b.key")} -recip ${f("b.crt")} | openssl cms -verify -binary -CAfile ${f("a.crt")} -purpose any -out /dev/null`, [], true);
  lines.push(row("sign sha256 + aes256-cbc", bytes, build, oBuild));
  lines.push(row("decrypt + verify", bytes, open, oOpen));

  const cbuild = timed(node[0]!, [...node.slice(1), "build", f("payload"), f("ours-z.p7m"), f("ours-z.json"), f("a.key"), f("a.crt"), f("b.crt"), "compress"]);
  const copen = timed(node[0]!, [...node.slice(1), "open", f("ours-z.p7m"), f("ours-z.json"), f("b.key"), f("b.crt"), f("a.crt")]);
  lines.push(row("compress+sign+encrypt", bytes, cbuild));
  lines.push(row("decrypt+verify+inflate", bytes, copen));
  process.stdout.write(`\nas2kit core benchmark, ${(bytes / 1048576).toFixed(0)} MiB payload, RSA-2048, Node ${process.version}\n${lines.join("\n")}\n` +
    `compressed message: ${(statSync(f("ours-z.p7m")).size / 1048576).toFixed(1)} MiB\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
