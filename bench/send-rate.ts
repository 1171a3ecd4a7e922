// Shared by bench/send.bench.ts and bench/e2e.bench.ts for the many-small-files figures of issue
// 14: the same `as2 send` runs of this checkout and of a baseline checkout, in one benchmark run.
//   BENCH_SEND_BASELINE=<dir>  an as2kit checkout with dist/ built (default: a git worktree of
//                              BENCH_SEND_BASELINE_REF, default e693efc, the commit before keep-alive,
//                              made in a temp folder with this node_modules linked, built, removed after).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";

export interface Run { seconds: number; rssMb: number; cpuSeconds: number; code: number | null; stdout: string; stderr: string }

/** Runs a command under /usr/bin/time -v (wall time, peak RSS, user + system CPU). */
export function timed(cmd: string, args: string[], cwd?: string): Promise<Run> {
  return new Promise((done) => {
    const start = process.hrtime.bigint();
    const c = spawn("/usr/bin/time", ["-v", cmd, ...args], { stdio: ["ignore", "pipe", "pipe"], cwd });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    c.on("close", (code) => {
      const num = (re: RegExp) => Number(re.exec(stderr)?.[1] ?? NaN);
      done({
        seconds: Number(process.hrtime.bigint() - start) / 1e9,
        rssMb: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
        cpuSeconds: num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/),
        code, stdout, stderr,
      });
    });
  });
}

/** An as2kit checkout to compare with: its root (bin/as2.js, dist/) and how to dispose of it. */
export function baselineCheckout(): { root: string; label: string; dispose: () => void } {
  const given = process.env.BENCH_SEND_BASELINE;
  if (given) return { root: resolve(given), label: `baseline ${given}`, dispose: () => undefined };
  const ref = process.env.BENCH_SEND_BASELINE_REF ?? "e693efc";
  const root = join(mkdtempSync(join(tmpdir(), "as2kit-baseline-")), "as2kit");
  execFileSync("git", ["worktree", "add", "--detach", root, ref], { stdio: "pipe" });
  symlinkSync(resolve("node_modules"), join(root, "node_modules"));
  execFileSync(process.execPath, [resolve("node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: root, stdio: "pipe" });
  return { root, label: `baseline ${ref}`, dispose: () => { execFileSync("git", ["worktree", "remove", "--force", root], { stdio: "pipe" }); } };
}

/** The two identities (RSA-2048, openssl) every run uses: dir/myco.* sends, dir/acme.* receives. */
export function identities(dir: string): void {
  for (const n of ["myco", "acme"]) {
    if (!existsSync(join(dir, `${n}.key`))) execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, `${n}.key`), "-out", join(dir, `${n}.crt`), "-days", "2", "-subj", `/CN=${n}`], { stdio: "pipe" });
  }
}

/** n files of `bytes` random hex text each, in a fresh folder. */
export function smallFiles(folder: string, n: number, bytes = 1024, prefix = "order"): string {
  mkdirSync(folder, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(folder, `${prefix}-${String(i).padStart(5, "0")}.edi`), randomBytes(bytes / 2).toString("hex"));
  return folder;
}

/** A sender configuration: MYCO -> ACME at url, sign sha256 + aes256-cbc, signed sync MDN. */
export function senderConfig(dir: string, tag: string, url: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, `myco-${tag}.json`);
  writeFileSync(file, JSON.stringify({
    dataDir: join(dir, `myco-data-${tag}`),
    station: { as2Id: "MYCO", key: { pem: join(dir, "myco.key"), certificate: join(dir, "myco.crt") } },
    partners: { acme: { as2Id: "ACME", url, certificate: join(dir, "acme.crt"), sign: "sha256", encrypt: "aes256-cbc", readTimeout: 3600, mdn: { request: "signed", mode: "sync" }, ...extra } },
  }));
  return file;
}

/**
 * bench/mdn-sink.mjs (decrypt, verify, signed MDN; stores nothing): the sender's ceiling. stop()
 * says how many messages it answered and how many connections it accepted.
 */
export async function mdnSink(dir: string): Promise<{ url: string; stop: () => Promise<{ messages: number; connections: number }> }> {
  const s = spawn(process.execPath, ["bench/mdn-sink.mjs", join(dir, "acme.key"), join(dir, "acme.crt"), join(dir, "myco.crt")], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  s.stdout!.on("data", (d: Buffer) => { out += d.toString(); });
  const port = await new Promise<number>((ok, fail) => {
    const check = () => { const m = /^(\d+)\n/.exec(out); if (m) ok(Number(m[1])); };
    s.stdout!.on("data", check);
    s.once("exit", (c) => fail(new Error(`mdn-sink exited with ${c}`)));
  });
  const exited = new Promise<void>((ok) => s.once("close", () => ok()));
  return {
    url: `http://127.0.0.1:${port}/as2`,
    stop: async () => {
      s.kill("SIGTERM");
      await exited;
      const counts = /\{.*\}/.exec(out)?.[0];
      return counts ? JSON.parse(counts) as { messages: number; connections: number } : { messages: NaN, connections: NaN };
    },
  };
}

/** `as2 send --dir folder` of one checkout; throws unless every file succeeded. */
export async function sendDir(root: string, config: string, folder: string): Promise<Run> {
  const r = await timed(process.execPath, ["--openssl-legacy-provider", join(root, "bin/as2.js"), "send", "--config", config, "--partner", "acme", "--quiet", "--dir", folder]);
  if (r.code !== 0) throw new Error(`as2 send (${root}) exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r;
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
