/**
 * README "A new partner in five minutes" (issue 16), run as written from an installed package:
 * `npm pack` of the repository (prepack builds dist/), `npm install --prefix <tmp>/prefix` of the
 * tarball as a user would, then the README's `sh` block line by line through bash, with the
 * installed `as2` first on PATH, in an empty folder. Two changes only, because a test cannot use
 * fixed ports: `as2 receive --port 4080 &` runs as `as2 receive --port 0 --host 127.0.0.1 --json`
 * (its "listening" line gives the port), and later lines get that port instead of 4080. The
 * file the last line sends (`order.edi`) is the user's: the test puts one in the folder first.
 * Every line must exit 0; then the file must be in ACME's inbox, byte for byte, and MYCO's job
 * record must show a signed + encrypted message confirmed by a signed MDN. The step count and
 * the wall time (pack and install excluded) are printed for the issue's closing note.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join, relative } from "node:path";
import { test } from "node:test";
import { onCleanup, tempDir } from "../helpers/tools.js";

const REPO = process.cwd();
const README_SECTION = "## A new partner in five minutes";

interface Run { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; fd3: string; ms: number }

/** Runs a program to its end (killed after timeoutMs); fd 3 is a pipe the program may write to. */
function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe", "pipe"] });
    const out = { stdout: "", stderr: "", fd3: "" };
    child.stdout!.on("data", (d: Buffer) => { out.stdout += d.toString(); });
    child.stderr!.on("data", (d: Buffer) => { out.stderr += d.toString(); });
    (child.stdio[3] as NodeJS.ReadableStream).on("data", (d: Buffer) => { out.fd3 += d.toString(); });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("error", reject);
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, ...out, ms: performance.now() - t0 });
    });
  });
}

/** The environment of a user's shell: no npm_* variables from a surrounding `npm test`, no AS2_CONFIG. */
function userEnv(pathFirst: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== "AS2_CONFIG" && k !== "NODE_OPTIONS") env[k] = v;
  env.PATH = [...pathFirst, dirname(process.execPath), process.env.PATH ?? ""].join(delimiter);
  return env;
}

const show = (r: Run) => `exit ${r.status}${r.signal ? ` (${r.signal})` : ""}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** The README's walkthrough: the command lines of the first ```sh block after its heading. */
function walkthroughLines(): string[] {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const at = readme.indexOf(`\n${README_SECTION}\n`);
  assert.ok(at >= 0, `README.md has no "${README_SECTION}" section`);
  const block = /```sh\n([^]*?)\n```/.exec(readme.slice(at));
  assert.ok(block, "no ```sh block in the walkthrough");
  const lines: string[] = [];
  for (const raw of block[1]!.replace(/\\\n/g, " ").split("\n")) {
    const line = raw.trim();
    if (line && !line.startsWith("#")) lines.push(line);
  }
  return lines;
}

/** Installs the package as a user would: npm pack of the built tree, then npm install of the tarball. */
async function installPackage(root: string): Promise<{ bin: string; notes: string[] }> {
  const env = userEnv([]);
  const packDir = join(root, "pack");
  mkdirSync(packDir);
  // --ignore-scripts: dist/ is already built (npm test's pretest); rebuilding it here (prepack)
  // would rewrite files that tests running beside this one are loading.
  const pack = await run("npm", ["pack", "--ignore-scripts", "--pack-destination", packDir, "--silent"], { cwd: REPO, env, timeoutMs: 180_000 });
  assert.equal(pack.status, 0, `npm pack: ${show(pack)}`);
  const tarballs = readdirSync(packDir).filter((f) => f.endsWith(".tgz"));
  assert.equal(tarballs.length, 1, `npm pack made ${tarballs.join(", ") || "nothing"}`);
  const tarball = join(packDir, tarballs[0]!);
  const prefix = join(root, "prefix");
  const notes = [`npm pack: ${tarballs[0]} in ${(pack.ms / 1000).toFixed(1)} s`];
  const install = (extra: string[]) =>
    run("npm", ["install", "--prefix", prefix, tarball, "--no-audit", "--no-fund", ...extra], { cwd: root, env, timeoutMs: 90_000 });
  let inst = await install(["--offline"]);
  notes.push(`npm install --offline: exit ${inst.status} in ${(inst.ms / 1000).toFixed(1)} s`);
  if (inst.status !== 0) {
    // The npm cache does not hold every dependency: the registry, as a user's install would.
    inst = await install([]);
    notes.push(`npm install (online): exit ${inst.status} in ${(inst.ms / 1000).toFixed(1)} s`);
  }
  assert.equal(inst.status, 0, `npm install of the tarball: ${show(inst)}`);
  const bin = join(prefix, "node_modules", ".bin");
  assert.ok(existsSync(join(bin, "as2")), "the package installs an as2 program");
  assert.ok(!existsSync(join(prefix, "node_modules", "typescript")), "nothing compiles on install: no typescript among the dependencies");
  // The command line comes pre-bundled (issue 14: scripts/bundle-cli.mjs); bin/as2.js runs it.
  assert.ok(existsSync(join(prefix, "node_modules", "as2kit", "dist", "bundle", "main.js")), "the package holds the CLI bundle");
  const version = await run(join(bin, "as2"), ["--version"], { cwd: root, env, timeoutMs: 30_000 });
  assert.equal(version.status, 0, show(version));
  notes.push(`first as2 --version of the installed package: ${version.ms.toFixed(0)} ms`);
  return { bin, notes };
}

interface Receiver { proc: ChildProcess; url: string; events: Array<Record<string, unknown>>; stderr: () => string; exited: Promise<void> }

/** `as2 receive ... &` as a child whose JSON lines the test reads. */
async function startReceiver(as2: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Receiver> {
  const proc = spawn(as2, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM"); // Ctrl-C/kill as a user stops it: graceful
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  onCleanup(stop);
  const events: Array<Record<string, unknown>> = [];
  let err = "";
  let buf = "";
  proc.stderr!.on("data", (d: Buffer) => { err += d.toString(); });
  const listening = new Promise<string>((resolve, reject) => {
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const e = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        events.push(e);
        if (e.event === "listening") resolve(String(e.url));
      }
    });
    void exited.then(() => reject(new Error(`as2 receive exited (${proc.exitCode ?? proc.signalCode}) before listening: ${err}`)));
    setTimeout(() => reject(new Error(`as2 receive did not listen within 30 s: ${err}`)), 30_000).unref();
  });
  return { proc, url: await listening, events, stderr: () => err, exited: exited.then(() => stop()) };
}

test("README 'A new partner in five minutes', as written, from the npm-packed and installed package", { timeout: 600_000 }, async (t) => {
  const root = tempDir("as2kit-walkthrough-");
  const { bin, notes } = await installPackage(root);
  for (const n of notes) t.diagnostic(n);
  const as2 = join(bin, "as2");
  const env = userEnv([bin]);
  const home = join(root, "walk");
  mkdirSync(home);

  const lines = walkthroughLines();
  const order = Buffer.from("ISA*00*          *00*          *ZZ*MYCO           *ZZ*ACME           *261122*1631*U*00401*000000001*0*P*>~\n".repeat(40));
  const steps: Array<{ line: string; ms: number; ran: string }> = [];
  let cwd = home;
  let receiver: Receiver | undefined;
  let readmePort: string | undefined;
  let sentFrom: string | undefined;
  const t0 = performance.now();
  for (const line of lines) {
    const bg = /^as2 receive\b(.*?)\s*&\s*(#.*)?$/.exec(line);
    if (bg) {
      // A fixed port cannot be used in a test: a free one on 127.0.0.1, announced on stdout.
      const args = bg[1]!.trim().split(/\s+/).filter(Boolean);
      const p = args.indexOf("--port");
      if (p >= 0) [readmePort] = args.splice(p, 2).slice(1);
      const ran = ["receive", ...args, "--port", "0", "--host", "127.0.0.1", "--json"];
      const s0 = performance.now();
      receiver = await startReceiver(as2, ran, cwd, env);
      steps.push({ line, ms: performance.now() - s0, ran: `as2 ${ran.join(" ")} &  -> ${receiver.url}` });
      continue;
    }
    let cmd = line;
    if (readmePort && receiver) cmd = cmd.replaceAll(`127.0.0.1:${readmePort}/`, `${new URL(receiver.url).host}/`);
    if (/^as2 send\b/.test(cmd)) {
      // The user's file, which the README takes as given.
      const name = /(\S+\.edi)\b/.exec(cmd.replace(/#.*$/, ""))?.[1] ?? "order.edi";
      if (!existsSync(join(cwd, name))) writeFileSync(join(cwd, name), order);
      sentFrom = join(cwd, name);
    }
    const r = await run("bash", ["-c", `set -eo pipefail\n${cmd}\nprintf '%s' "$PWD" >&3`], { cwd, env, timeoutMs: 120_000 });
    steps.push({ line, ms: r.ms, ran: cmd });
    assert.equal(r.status, 0, `step ${steps.length} in ${relative(root, cwd) || "."}: ${cmd}\n${show(r)}${receiver ? `\nas2 receive stderr: ${receiver.stderr()}` : ""}`);
    if (r.fd3) cwd = r.fd3;
  }
  const wallMs = performance.now() - t0;

  // The outcome: ACME has the file, byte for byte, in its inbox ...
  assert.ok(receiver, "the walkthrough starts ACME's receiver");
  assert.ok(sentFrom, "the walkthrough sends a file");
  const acme = join(home, "acme");
  const msg = receiver.events.find((e) => e.event === "message");
  assert.ok(msg, `as2 receive recorded no message: ${JSON.stringify(receiver.events)}\n${receiver.stderr()}`);
  const stored = String(msg.file);
  assert.ok(stored.startsWith(`${acme}/`), `the file is stored under ACME's folder: ${stored}`);
  assert.deepEqual(readFileSync(stored), order);
  // ... and MYCO's job says signed + encrypted, confirmed by a signed MDN (the modern preset).
  const status = await run(as2, ["status", "--json"], { cwd: dirname(sentFrom), env, timeoutMs: 60_000 });
  assert.equal(status.status, 0, show(status));
  const records = (JSON.parse(status.stdout) as { records: Array<Record<string, any>> }).records;
  assert.equal(records.length, 1);
  const m = records[0]!.messages[0];
  assert.deepEqual([m.signed, m.encrypted, m.mdnStatus, m.mdnMessage?.signed, m.mdnMessage?.mdnError], [true, true, "Received", true, false], JSON.stringify(records[0]));
  const acmeCfg = readFileSync(join(acme, ".as2rc.yaml"), "utf8");
  assert.match(acmeCfg, /as2Id: ACME/);

  const as2Steps = steps.filter((s) => /^as2 /.test(s.line)).length;
  const summary = [
    `walkthrough: ${steps.length} steps (${as2Steps} as2 commands, ${steps.length - as2Steps} mkdir/cd), ${(wallMs / 1000).toFixed(1)} s wall time (npm pack and install excluded)`,
    ...steps.map((s, i) => `  ${String(i + 1).padStart(2)}. ${(s.ms / 1000).toFixed(2).padStart(6)} s  ${s.ran.replace(/\s+#.*$/, "")}`),
  ];
  for (const n of notes) console.log(n);
  console.log(summary.join("\n"));
  t.diagnostic(summary[0]!);

  // Stopped as a user stops it (SIGTERM); it exits by itself.
  receiver.proc.kill("SIGTERM");
  await receiver.exited;
});
