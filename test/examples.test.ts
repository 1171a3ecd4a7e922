/**
 * Every file in examples/ is run here as a user would run it, so none of them rots:
 * - loopback/: make-keys.sh, then ACME's `as2 receive` and MYCO's `as2 send` with the two
 *   configs (sync and async MDN), then `as2 status`. Only the two port numbers are changed, to
 *   free ones, since tests run side by side.
 * - cron/as2-send-outbox.sh: an outbox sent and archived (exit 0, no alert), an empty outbox
 *   (exit 0, nothing sent), a partner that is down (exit 1 and an alert naming the job).
 * - ci/github-actions.yml: the step's `run:` script, with the secrets it expects, passes when
 *   the partner confirms and fails the pipeline when not.
 * - systemd/as2-receive.service: its ExecStart runs, receives, and a SIGTERM (its KillSignal)
 *   ends it with exit 0, so Restart=on-failure does not restart a clean stop.
 * - library/round-trip.mjs: runs through the package's own name, as an installed user's would.
 * `as2` on the PATH is a shim for this checkout's bin/as2.js.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import type { JobRecord } from "../src/store/index.js";
import { freePort } from "./helpers/net.js";
import { onCleanup, tempDir } from "./helpers/tools.js";
import { BIN, as2, startAs2Receive, type As2Server } from "./helpers/as2-process.js";

const EXAMPLES = join(process.cwd(), "examples");
const dir = tempDir();
const loopback = join(dir, "loopback");
const shimDir = join(dir, "bin");
const env = { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}`, NO_COLOR: "1" };
let acme: As2Server;
let acmePort = 0;
let mycoPort = 0;

/** Runs a command; resolves with its exit code and output. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { cwd: opts.cwd, env: { ...env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    c.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  mkdirSync(shimDir, { recursive: true });
  writeFileSync(join(shimDir, "as2"), `#!/bin/sh\nexec "${process.execPath}" --openssl-legacy-provider "${BIN}" "$@"\n`);
  chmodSync(join(shimDir, "as2"), 0o755);
  cpSync(join(EXAMPLES, "loopback"), loopback, { recursive: true });
  cpSync(join(EXAMPLES, "sample-order.edi"), join(dir, "sample-order.edi"));
  acmePort = await freePort();
  mycoPort = await freePort();
  for (const f of ["acme.as2rc.json", "myco.as2rc.json"]) {
    const p = join(loopback, f);
    writeFileSync(p, readFileSync(p, "utf8").replaceAll("4080", String(acmePort)).replaceAll("4081", String(mycoPort)));
  }
  const keys = await run("sh", [join(loopback, "make-keys.sh")]);
  assert.equal(keys.code, 0, keys.stderr);
  assert.match(keys.stdout, /myco\.key, myco\.crt: subject=O = as2kit example, CN = MYCO/);
  assert.match(keys.stdout, /acme\.key, acme\.crt: subject=O = as2kit example, CN = ACME/);
  acme = await startAs2Receive(join(loopback, "acme.as2rc.json"));
});

test("loopback/: make-keys.sh, ACME receives, MYCO sends with a sync and then an async MDN, as2 status shows both sides", async () => {
  const sync = await as2(["send", "-c", "myco.as2rc.json", "--partner", "acme", "--json", "../sample-order.edi"], { cwd: loopback });
  assert.equal(sync.status, 0, sync.stderr);
  assert.equal((JSON.parse(sync.stdout) as JobRecord).state, "SUCCESS");
  assert.deepEqual(readFileSync(join(loopback, "acme-data", "inbox", "myco", "sample-order.edi")), readFileSync(join(EXAMPLES, "sample-order.edi")));

  const mycoServer = await startAs2Receive(join(loopback, "myco.as2rc.json"));
  const async = await as2(["send", "-c", "myco.as2rc.json", "--partner", "acme", "--mdn-mode", "async", "--wait-mdn", "30", "--json", "../sample-order.edi"], { cwd: loopback });
  assert.equal(async.status, 0, async.stderr);
  assert.equal((JSON.parse(async.stdout) as JobRecord).state, "SUCCESS");
  mycoServer.proc.kill("SIGTERM");
  assert.equal((await mycoServer.exited).code, 0);

  const status = await as2(["status", "-c", "acme.as2rc.json"], { cwd: loopback });
  assert.equal(status.status, 0);
  assert.equal(status.stdout.match(/AS2 Receive\s+transfer\s+.*MYCO\s+ACME\s+.*SUCCESS/g)?.length, 2, status.stdout);
});

test("cron/as2-send-outbox.sh: sends and archives an outbox (exit 0, no alert); an empty outbox is no error; a partner that is down exits 1 and alerts", async () => {
  const script = join(EXAMPLES, "cron", "as2-send-outbox.sh");
  const outbox = join(dir, "outbox");
  mkdirSync(outbox, { recursive: true });
  for (const n of ["orders-1.edi", "orders-2.edi"]) cpSync(join(EXAMPLES, "sample-order.edi"), join(outbox, n));
  const alert = join(dir, "alert.txt");
  const vars = { AS2_CONFIG: join(loopback, "myco.as2rc.json"), ALERT: `cat > ${alert}` };
  const ok = await run("sh", [script, "acme", outbox, "*.edi"], { env: vars });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(readdirSync(join(outbox, "sent")).sort(), ["orders-1.edi", "orders-2.edi"]);
  assert.equal(existsSync(alert), false);

  const jobs = () => readdirSync(join(loopback, "myco-data", "jobs")).length;
  const before = jobs();
  const empty = await run("sh", [script, "acme", outbox, "*.edi"], { env: vars });
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(jobs(), before, "nothing was sent, no job was made");

  // The partner is down: the same station, pointed at a port nothing listens on.
  const down = join(loopback, "myco-down.as2rc.json");
  writeFileSync(down, readFileSync(join(loopback, "myco.as2rc.json"), "utf8").replace(`127.0.0.1:${acmePort}/as2`, `127.0.0.1:${await freePort()}/as2`));
  cpSync(join(EXAMPLES, "sample-order.edi"), join(outbox, "orders-3.edi"));
  const failed = await run("sh", [script, "acme", outbox, "*.edi"], { env: { ...vars, AS2_CONFIG: down } });
  assert.equal(failed.code, 1, failed.stderr);
  const text = readFileSync(alert, "utf8");
  const runId = /job (\S+)\)/.exec(text)?.[1];
  assert.ok(runId && /^\d{8}T/.test(runId), text);
  assert.match(text, /as2 send to acme exited 1/);
  assert.match(text, /"status": "FAILED"/);
  assert.match(text, new RegExp(`as2 send --restart ${runId}`));
  assert.ok(existsSync(join(outbox, "orders-3.edi")), "the file stays in the outbox for the next run");
});

test("ci/github-actions.yml: the step's script delivers the files (exit 0) and fails the pipeline when the partner does not confirm", async () => {
  const yaml = readFileSync(join(EXAMPLES, "ci", "github-actions.yml"), "utf8");
  const block = /^( +)run: \|\n((?:\1  .*\n|\n)+)/m.exec(yaml);
  assert.ok(block, "a run: | block");
  const script = block[2]!.split("\n").map((l) => l.slice(block[1]!.length + 2)).join("\n");
  const workspace = join(dir, "workspace");
  mkdirSync(join(workspace, "out"), { recursive: true });
  writeFileSync(join(workspace, "out", "invoice-1.xml"), "<Invoice><ID>1</ID></Invoice>\n");
  const config = (url: string) => JSON.stringify({
    dataDir: "./as2-data",
    station: { as2Id: "MYCO", key: { pem: "station.key", certificate: join(loopback, "myco.crt") } },
    partners: { acme: { as2Id: "ACME", url, certificate: join(loopback, "acme.crt"), mdn: { request: "signed" } } },
  });
  const secrets = (url: string, temp: string) => ({
    AS2_CONFIG_JSON: config(url), AS2_KEY_PEM: readFileSync(join(loopback, "myco.key"), "utf8"),
    RUNNER_TEMP: temp, GITHUB_WORKSPACE: workspace, AS2_PARTNER: "acme",
  });
  mkdirSync(join(dir, "runner-ok"));
  const ok = await run("bash", ["-c", script], { env: secrets(acme.url, join(dir, "runner-ok")) });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /as2 send exit code: 0/);
  assert.match(ok.stdout, /State\s+SUCCESS \(0\)/);
  assert.equal((JSON.parse(readFileSync(join(dir, "runner-ok", "as2", "job.json"), "utf8")) as JobRecord).files[0]!.status, "SUCCESS");

  mkdirSync(join(dir, "runner-fail"));
  const failed = await run("bash", ["-c", script], { env: secrets(`http://127.0.0.1:${await freePort()}/as2`, join(dir, "runner-fail")) });
  assert.equal(failed.code, 1, failed.stdout + failed.stderr);
  assert.match(failed.stdout, /as2 send exit code: 1/);
});

test("systemd/as2-receive.service: ExecStart receives; SIGTERM (KillSignal) stops it cleanly with exit 0", async () => {
  const unit = readFileSync(join(EXAMPLES, "systemd", "as2-receive.service"), "utf8");
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(unit)?.[1];
  for (const section of ["[Unit]", "[Service]", "[Install]"]) assert.ok(unit.includes(section), section);
  assert.equal(value("KillSignal"), "SIGTERM");
  assert.equal(value("Restart"), "on-failure");
  const port = await freePort();
  const config = join(loopback, "systemd-as2rc.json"); // beside the keys it names
  writeFileSync(config, readFileSync(join(loopback, "acme.as2rc.json"), "utf8").replace(String(acmePort), String(port)).replace("./acme-data", join(dir, "systemd-data")));
  const [cmd, ...args] = value("ExecStart")!.replace("/etc/as2/as2rc.json", config).split(" ");
  const service = spawn(cmd!, args, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((r) => service.on("exit", (code) => r(code)));
  onCleanup(() => { if (service.exitCode === null) service.kill("SIGKILL"); });
  let log = "";
  await new Promise<void>((resolve, reject) => {
    service.stderr.on("data", (d: Buffer) => { log += d.toString(); if (log.includes("listening on")) resolve(); });
    void exited.then((c) => reject(new Error(`exited ${c}: ${log}`)));
  });
  const myco = join(loopback, "myco-systemd.as2rc.json");
  writeFileSync(myco, readFileSync(join(loopback, "myco.as2rc.json"), "utf8").replace(`127.0.0.1:${acmePort}/as2`, `127.0.0.1:${port}/as2`));
  const sent = await as2(["send", "-c", myco, "--partner", "acme", join(dir, "sample-order.edi")]);
  assert.equal(sent.status, 0, sent.stderr);
  service.kill(value("KillSignal") as NodeJS.Signals);
  assert.equal(await exited, 0, log);
  assert.match(log, /SIGTERM: no new connections; finishing what is in flight/);
  assert.ok(existsSync(join(dir, "systemd-data", "inbox", "myco", "sample-order.edi")));
});

test("library/round-trip.mjs: build, open, MDN and its verification through the package's public API", () => {
  const r = spawnSync(process.execPath, [join(EXAMPLES, "library", "round-trip.mjs")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /ACME received order\.edi \(65 bytes, signed, encrypted, compressed before-signing\)/);
  assert.equal(r.stdout.match(/^PASS /gm)?.length, 5, r.stdout);
  assert.match(r.stdout, /confirmed: the MDN proves ACME received exactly what MYCO sent/);
});
