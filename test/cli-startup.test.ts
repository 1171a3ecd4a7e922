/**
 * Start-up (issue 14), not timed (bench/startup.bench.ts times it): what `as2` loads for
 * `--version`, `--help` and `as2 status` on an empty data folder, in both builds bin/as2.js can
 * run (the bundle in dist/bundle/ and tsc's dist/cli/); and bin/as2.js's second start with
 * --openssl-legacy-provider, only for the commands that may need OpenSSL's legacy provider, with
 * the signals passed on and the exit codes passed back.
 *
 * What is loaded is seen by a module loader hook (node:module register) that writes each loaded
 * file's URL to a list; a bundle file counts as the packages it contains (esbuild writes a
 * `// node_modules/<package>/...` line where each module starts).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { before, test } from "node:test";
import { onCleanup, opensslIdentity, tempDir } from "./helpers/tools.js";
import { isPidAlive } from "../src/store/process-owner.js";

const ROOT = process.cwd();
const BIN = join(ROOT, "bin", "as2.js");
const FLAG = "--openssl-legacy-provider";
const dir = tempDir("as2kit-startup-");

/** The two programs: the bundle, and tsc's output through a runner that calls main() as the bin does. */
const BUILDS = {
  bundle: join(ROOT, "dist", "bundle", "main.js"),
  tsc: join(ROOT, "dist", "cli", "main.js"),
} as const;

const CRYPTO_PACKAGES = ["pkijs", "asn1js", "node-forge", "@peculiar/asn1-schema", "bytestreamjs"];

/** The environment of a child that did not get the legacy provider from its parent. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

before(() => {
  writeFileSync(join(dir, "hooks.mjs"), [
    'import { appendFileSync } from "node:fs";',
    "export async function load(url, context, next) {",
    '  if (url.startsWith("file:")) appendFileSync(process.env.AS2KIT_LOAD_LOG, `${url}\\n`);',
    "  return next(url, context);",
    "}",
  ].join("\n"));
  writeFileSync(join(dir, "register.mjs"), `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)});\n`);
  for (const [name, main] of Object.entries(BUILDS)) {
    writeFileSync(join(dir, `run-${name}.mjs`), `const { main } = await import(${JSON.stringify(pathToFileURL(main).href)});\nprocess.exitCode = await main(process.argv);\n`);
  }
  // A station whose data folder is empty: status reads the configuration and lists nothing.
  writeFileSync(join(dir, "as2.json"), JSON.stringify({
    dataDir: "./data",
    station: { as2Id: "MYCO", key: { pem: "none.key", certificate: "none.crt" } },
    partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "none.crt" } },
  }));
});

interface Loaded { status: number | null; stdout: string; stderr: string; files: string[]; packages: Set<string> }

/** Runs `script args` under the loader hook; returns the files it loaded and the packages in them. */
function loaded(script: string, args: string[], nodeArgs: string[] = []): Loaded {
  const log = join(dir, `load-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(log, "");
  const r = spawnSync(process.execPath, [...nodeArgs, "--import", join(dir, "register.mjs"), script, ...args], { cwd: dir, encoding: "utf8", env: cleanEnv({ AS2KIT_LOAD_LOG: log }) });
  const files = readFileSync(log, "utf8").split("\n").filter(Boolean).map((u) => fileURLToPath(u));
  const packages = new Set<string>();
  for (const f of files) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
    if (m) packages.add(m[1]!);
    if (f.startsWith(join(ROOT, "dist", "bundle"))) {
      for (const b of readFileSync(f, "utf8").matchAll(/^\/\/ node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)) packages.add(b[1]!);
    }
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, files, packages };
}

for (const [build, main] of Object.entries(BUILDS)) {
  const runner = () => join(dir, `run-${build}.mjs`);

  test(`${build}: as2 --version and --help load commander and no other package`, () => {
    assert.ok(existsSync(main), `${main} is missing: npm run build makes it`);
    for (const args of [["--version"], ["--help"], []]) {
      const r = loaded(runner(), args);
      assert.equal(r.status, args.length ? 0 : 2, r.stderr); // no command: the help, as a usage error
      assert.deepEqual([...r.packages], ["commander"], `as2 ${args.join(" ")} loaded ${[...r.packages].join(", ")}`);
    }
  });

  test(`${build}: as2 status on an empty data folder loads no crypto library and no spinner`, () => {
    const r = loaded(runner(), ["status", "--config", join(dir, "as2.json")]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "no jobs");
    for (const p of [...CRYPTO_PACKAGES, "ora", "string-width"]) assert.ok(!r.packages.has(p), `as2 status loaded ${p}`);
    // What it does need, seen by the same means (the check above can fail).
    for (const p of ["commander", "zod", "cosmiconfig"]) assert.ok(r.packages.has(p), `as2 status did not load ${p}? ${[...r.packages].join(", ")}`);
  });

  test(`${build}: a .cjs configuration that import() cannot load is reported with the parser's message (cosmiconfig's require fallback works in the bundle)`, () => {
    const cwd = join(dir, `cjs-${build}`);
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, "as2.config.cjs"), 'module.exports = { dataDir: "./data", station: { as2Id: "X" } ;\n');
    const r = spawnSync(process.execPath, [runner(), "status"], { cwd, encoding: "utf8", env: cleanEnv() });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /\(file\): cannot be read: Unexpected token ';'/);
  });

  test(`${build}: a command that makes a key pair and certificate does load the crypto libraries (the hook sees them)`, () => {
    const r = loaded(runner(), ["init", "--as2-id", "T", "--dir", join(dir, `init-${build}`)]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.packages.has("pkijs") && r.packages.has("asn1js"), [...r.packages].join(", "));
  });
}

test("bin/as2.js runs the bundle when it is at least as new as tsc's output", () => {
  const r = loaded(BIN, ["--version"]);
  assert.equal(r.status, 0, r.stderr);
  const bundleTime = existsSync(BUILDS.bundle) ? statTime(BUILDS.bundle) : -1;
  const expected = bundleTime >= statTime(BUILDS.tsc) ? BUILDS.bundle : BUILDS.tsc;
  assert.ok(r.files.includes(expected), r.files.join("\n"));
  assert.deepEqual([...r.packages], ["commander"]);
});

function statTime(f: string): number {
  const r = spawnSync("stat", ["-c", "%.9Y", f], { encoding: "utf8" });
  return Number(r.stdout);
}

test("bin/as2.js starts Node a second time (with the legacy provider) only for commands that may need it", () => {
  const starts = (args: string[]) => {
    const r = loaded(BIN, args);
    assert.ok(r.status === 0 || r.status === 2, `as2 ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
    return r.files.filter((f) => f === BIN).length;
  };
  const config = join(dir, "as2.json");
  assert.equal(starts(["--version"]), 1);
  assert.equal(starts(["--help"]), 1);
  assert.equal(starts(["help", "send"]), 1);
  assert.equal(starts(["--config", config, "status"]), 1);
  assert.equal(starts(["-c", config, "--data-dir", "send", "status"]), 1, "the value of --data-dir is not the command");
  assert.equal(starts(["init", "--help"]), 1);
  assert.equal(starts(["bogus"]), 1);
  for (const cmd of ["send", "receive", "mdn-verify", "keys", "check", "ping", "partner"]) {
    assert.equal(starts([cmd, "--help"]), 2, cmd);
    assert.equal(starts(["--data-dir", "status", cmd, "--help"]), 2, cmd);
  }
  // Started with the flag (or with it in NODE_OPTIONS), it never starts again.
  const withFlag = loaded(BIN, ["send", "--help"], [FLAG]);
  assert.equal(withFlag.files.filter((f) => f === BIN).length, 1);
});

/** The pid of the only child of `pid` (the second Node), from /proc. */
function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
}

function childOf(pid: number): number {
  const children = childrenOf(pid);
  assert.equal(children.length, 1, `children of ${pid}: ${children.join(", ")}`);
  return children[0]!;
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

interface Started { pid: number; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; out: () => string; stdout: () => string }

/** bin/as2.js as a user starts it (no flag, no NODE_OPTIONS). */
function startBin(args: string[]): Started {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let stdout = "";
  proc.stdout.on("data", (d: Buffer) => { out += d.toString(); stdout += d.toString(); });
  proc.stderr.on("data", (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  onCleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await exited;
  });
  return { pid: proc.pid!, exited, out: () => out, stdout: () => stdout };
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 25))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

/** `as2 receive --json` through bin/as2.js with its own configuration and data folder, once it listens. */
async function startReceiveBin(name: string, receive: Record<string, unknown> = {}): Promise<Started> {
  opensslIdentity("acme", dir);
  opensslIdentity("myco", dir);
  const config = join(dir, `${name}.json`);
  writeFileSync(config, JSON.stringify({
    dataDir: `./${name}-data`,
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", ...receive },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt" } },
  }));
  const s = startBin(["receive", "--config", config, "--json"]);
  await until("the listening line", () => s.out().includes('"event":"listening"'));
  return s;
}

test("as2 receive through bin/as2.js: the server runs with the legacy provider; SIGTERM to the bin stops it gracefully (exit 0), no process left", async () => {
  const s = await startReceiveBin("receive");
  const child = childOf(s.pid);
  assert.ok(readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0").includes(FLAG), "the receiver has the legacy provider");
  process.kill(s.pid, "SIGTERM");
  assert.deepEqual(await s.exited, { code: 0, signal: null }, s.out());
  assert.match(s.out(), /SIGTERM: no new connections/);
  assert.equal(alive(child), false, "the receiver ended with the bin");
});

test("as2 receive through bin/as2.js: the bin killed outright (SIGKILL) takes the receiver and its workers with it; the port is free again", async () => {
  const s = await startReceiveBin("receive-kill", { workers: 2 });
  const port = Number(/"url":"http:\/\/127\.0\.0\.1:(\d+)\//.exec(s.out())![1]);
  const child = childOf(s.pid);
  const workers = childrenOf(child);
  assert.equal(workers.length, 2, "two workers under the receiver");
  // Should this fail, the receiver must not outlive the test (it holds the runner's pipes).
  onCleanup(() => { for (const pid of [child, ...workers]) if (isPidAlive(pid)) process.kill(pid, "SIGKILL"); });
  process.kill(s.pid, "SIGKILL");
  assert.deepEqual(await s.exited, { code: null, signal: "SIGKILL" });
  await until("the receiver and its workers to end", () => ![child, ...workers].some(isPidAlive), 10_000);
  // Nothing holds the port: a new server can take it.
  const probe = http.createServer();
  await new Promise<void>((resolve, reject) => { probe.once("error", reject); probe.listen(port, "127.0.0.1", resolve); });
  await new Promise<void>((r) => probe.close(() => r()));
});

for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  test(`as2 send through bin/as2.js: ${sig} to the bin interrupts the send in the second Node, exit ${code}`, async () => {
    opensslIdentity("acme", dir);
    opensslIdentity("myco", dir);
    // A partner that takes the request and never answers.
    let held = 0;
    const server = http.createServer((req) => { held++; req.resume(); });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    onCleanup(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    const config = join(dir, `send-${sig}.json`);
    writeFileSync(config, JSON.stringify({
      dataDir: `./send-${sig}-data`,
      station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
      partners: { acme: { as2Id: "ACME", url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/as2`, certificate: "acme.crt", retries: 0, readTimeout: 60 } },
    }));
    const file = join(dir, `order-${sig}.edi`);
    writeFileSync(file, "UNB+UNOA:2+MYCO+ACME+261122:1200+1'\r\n");
    const s = startBin(["send", "--config", config, "--partner", "acme", "--json", file]);
    await until("the request at the partner", () => held === 1);
    const child = childOf(s.pid);
    process.kill(s.pid, sig);
    assert.deepEqual(await s.exited, { code, signal: null }, s.out());
    const record = JSON.parse(s.stdout()) as { state: string };
    assert.equal(record.state, "INTERRUPTED");
    assert.equal(alive(child), false);
  });
}
