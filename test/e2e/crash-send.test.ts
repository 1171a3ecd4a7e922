/**
 * Exactly-once send under SIGKILL (issue 11): `as2 send` with AS2KIT_CRASH_AT=<point> kills itself
 * at one durable mark of a three-file job; `as2 send --restart <runId>` then delivers what was not
 * confirmed, under the original Message-IDs, each file lands in ACME's inbox exactly once, and the
 * original job record is settled (SUCCESS, restartedBy the restart). Also: the sweep any `as2`
 * start does (a dead job becomes INTERRUPTED, its spool goes), and two simultaneous restarts of
 * one job (one runs, the other exits 2 naming the holder, nothing stored twice).
 *
 * MYCO sends (one data directory per test), ACME runs one `as2 receive` for the whole file; the
 * file names are distinct per test.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { before, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server, type Run } from "../helpers/as2-process.js";
import { freePort } from "../helpers/net.js";

const dir = tempDir("as2kit-crash-send-");
const inboxDir = join(dir, "acme-data", "inbox", "myco");
let acme: As2Server;

type Settled = JobRecord & { restartedBy?: string };

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  mkdirSync(join(dir, "out"), { recursive: true });
  acme = await startAs2Receive(cfg("acme", {
    dataDir: "./acme-data",
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { requireSigned: true } } },
  }));
});

/** MYCO with its own data directory: signed + encrypted, signed sync MDN, no retries. */
function myco(label: string, url: string): { config: string; data: string } {
  const config = cfg(`myco-${label}`, {
    dataDir: `./myco-${label}`,
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", retries: 0, connectTimeout: 5, readTimeout: 30, mdn: { request: "signed", mode: "sync" } } },
  });
  return { config, data: join(dir, `myco-${label}`) };
}

/** n files with distinct random content (small: this is about bookkeeping, not size). */
function files(label: string, n: number, size = 48 * 1024): string[] {
  return Array.from({ length: n }, (_, i) => {
    const p = join(dir, "out", `${label}-${i + 1}.bin`);
    writeFileSync(p, randomBytes(size + i));
    return p;
  });
}

function jobOf(r: Run, what: string): Settled {
  assert.ok(r.stdout.trim(), `${what}: no JSON on stdout (exit ${r.status}, signal ${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Settled;
}

/** The only job of a fresh data directory (the killed send printed nothing). */
function onlyJob(data: string): Settled {
  const names = readdirSync(join(data, "jobs")).filter((f) => f.endsWith(".json") && !f.startsWith("."));
  assert.equal(names.length, 1, `one job record in ${data}/jobs: ${names.join(", ")}`);
  return readJob(data, names[0]!.slice(0, -5));
}

function readJob(data: string, runId: string): Settled {
  return JSON.parse(readFileSync(join(data, "jobs", `${runId}.json`), "utf8")) as Settled;
}

const spoolOf = (data: string, runId: string) => (existsSync(join(data, "spool")) ? readdirSync(join(data, "spool")) : []).filter((f) => f.startsWith(runId));

/** Each source in the inbox exactly once (no renamed second copy), bytes identical. */
function assertStoredOnce(sources: string[], label: string): void {
  const ours = readdirSync(inboxDir).filter((n) => n.startsWith(`${label}-`)).sort();
  assert.deepEqual(ours, sources.map((s) => basename(s)).sort(), `each file of ${label} exactly once in ACME's inbox`);
  for (const s of sources) assert.equal(sha256(readFileSync(join(inboxDir, basename(s)))), sha256(readFileSync(s)), `${basename(s)}: bytes identical`);
}

function assertKilled(r: Run, point: string): void {
  assert.equal(r.signal, "SIGKILL", `as2 send was not killed at ${point} (AS2KIT_CRASH_AT): exit ${r.status}, signal ${r.signal}; stderr: ${r.stderr}`);
}

interface SendCase {
  crashAt: string;
  /** The original record as the killed process left it. */
  expectAtCrash(job: Settled, data: string, sources: string[]): void;
}

const CASES: SendCase[] = [
  {
    crashAt: "send:started",
    expectAtCrash: (job) => {
      assert.deepEqual(job.files.map((f) => f.status), ["NOT_STARTED", "NOT_STARTED", "NOT_STARTED"], "killed before the first file");
    },
  },
  {
    crashAt: "send:spooled@2",
    expectAtCrash: (job, data) => {
      assert.deepEqual(job.files.map((f) => f.status), ["SUCCESS", "ONGOING", "NOT_STARTED"], "killed before the second POST");
      assert.ok(job.files[1]!.as2MessageId, "the second file's Message-ID was recorded before the POST");
      assert.ok(spoolOf(data, job.runId).length >= 1, "the second message was in the spool");
    },
  },
  {
    crashAt: "send:posted",
    expectAtCrash: (job, _data, sources) => {
      assert.deepEqual(job.files.map((f) => f.status), ["ONGOING", "NOT_STARTED", "NOT_STARTED"], "killed with the first MDN in hand, not recorded");
      assert.ok(job.files[0]!.as2MessageId);
      // ACME had stored it and answered: the restart's resend is a duplicate it must not store again.
      assert.ok(existsSync(join(inboxDir, basename(sources[0]!))), "ACME stored the first file before the sender died");
    },
  },
  {
    crashAt: "send:recorded@2",
    expectAtCrash: (job) => {
      assert.deepEqual(job.files.map((f) => f.status), ["SUCCESS", "SUCCESS", "NOT_STARTED"], "killed after recording the second file");
    },
  },
];

for (const c of CASES) {
  const label = `s-${c.crashAt.replace(/[:@]/g, "-")}`;
  test(`${c.crashAt}: SIGKILL mid-job, then --restart delivers the rest under the original Message-IDs; each file once; the original job SUCCESS with restartedBy; no spool file left`, async () => {
    const m = myco(label, acme.url);
    const sources = files(label, 3);
    const killed = await as2(["send", "--config", m.config, "--partner", "acme", "--json", ...sources], { env: { AS2KIT_CRASH_AT: c.crashAt } });
    assertKilled(killed, c.crashAt);
    const atCrash = onlyJob(m.data);
    c.expectAtCrash(atCrash, m.data, sources);

    const again = await as2(["send", "--config", m.config, "--restart", atCrash.runId, "--json"]);
    assert.equal(again.status, 0, again.stderr + again.stdout);
    const restarted = jobOf(again, "as2 send --restart");
    assert.equal(restarted.state, "SUCCESS");
    assert.equal(restarted.restartOf, atCrash.runId);
    // Every file not yet confirmed, and only those; each under the Message-ID it already had.
    const pending = atCrash.files.filter((f) => f.status !== "SUCCESS");
    assert.deepEqual(restarted.files.map((f) => f.name), pending.map((f) => f.name), "the restart sends the unconfirmed files");
    for (const f of pending.filter((x) => x.as2MessageId)) {
      assert.equal(restarted.files.find((x) => x.name === f.name)!.as2MessageId, f.as2MessageId, `${basename(f.name)} keeps its Message-ID`);
    }
    assertStoredOnce(sources, label);

    const original = readJob(m.data, atCrash.runId);
    assert.equal(original.state, "SUCCESS", "the original job is settled SUCCESS");
    assert.deepEqual(original.files.map((f) => f.status), ["SUCCESS", "SUCCESS", "SUCCESS"]);
    assert.equal(original.restartedBy, restarted.runId, "the original job names its restart");
    const shown = jobOf(await as2(["status", atCrash.runId, "--json", "--config", m.config]), "as2 status");
    assert.equal(shown.state, "SUCCESS");
    assert.deepEqual(spoolOf(m.data, atCrash.runId), [], "no spool file of the original job");
    assert.deepEqual(spoolOf(m.data, restarted.runId), [], "no spool file of the restart");
  });
}

test("send:spooled@2 then `as2 status <runId>` alone: the dead job becomes INTERRUPTED, its ONGOING file INTERRUPTED, the others keep their state, its spool file is gone", async () => {
  const label = "s-sweep";
  const m = myco(label, acme.url);
  const sources = files(label, 3);
  const killed = await as2(["send", "--config", m.config, "--partner", "acme", "--json", ...sources], { env: { AS2KIT_CRASH_AT: "send:spooled@2" } });
  assertKilled(killed, "send:spooled@2");
  const atCrash = onlyJob(m.data);
  assert.equal(atCrash.state, "ONGOING", "the killed process could not settle its job");
  assert.equal(atCrash.files[1]!.status, "ONGOING");
  assert.ok(spoolOf(m.data, atCrash.runId).length >= 1, "the killed process left its spool file");

  const shown = await as2(["status", atCrash.runId, "--json", "--config", m.config]);
  assert.equal(shown.status, 0, shown.stderr);
  const job = jobOf(shown, "as2 status");
  assert.equal(job.state, "INTERRUPTED");
  assert.deepEqual(job.files.map((f) => f.status), ["SUCCESS", "INTERRUPTED", "NOT_STARTED"]);
  assert.equal(job.files[1]!.as2MessageId, atCrash.files[1]!.as2MessageId, "the interrupted file keeps its Message-ID");
  const onDisk = readJob(m.data, atCrash.runId);
  assert.equal(onDisk.state, "INTERRUPTED", "the record on disk says so too");
  assert.equal(onDisk.files[1]!.status, "INTERRUPTED");
  assert.deepEqual(spoolOf(m.data, atCrash.runId), [], "the sweep removed the dead job's spool file");
});

test("send:recorded on the last file: every file has its outcome, only the job was not settled; the sweep settles it SUCCESS without an error, and a restart has nothing to send", async () => {
  const label = "s-last";
  const m = myco(label, acme.url);
  const sources = files(label, 2);
  const killed = await as2(["send", "--config", m.config, "--partner", "acme", "--json", ...sources], { env: { AS2KIT_CRASH_AT: "send:recorded@2" } });
  assertKilled(killed, "send:recorded@2");
  const atCrash = onlyJob(m.data);
  assert.equal(atCrash.state, "ONGOING");
  assert.deepEqual(atCrash.files.map((f) => f.status), ["SUCCESS", "SUCCESS"]);
  const job = jobOf(await as2(["status", atCrash.runId, "--json", "--config", m.config]), "as2 status");
  assert.equal(job.state, "SUCCESS");
  assert.equal(job.error, undefined, "no job error: nothing failed");
  assert.ok(job.warnings?.some((w) => /ended without finishing/.test(w)), "a warning says the process died");
  const again = await as2(["send", "--config", m.config, "--restart", atCrash.runId]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /nothing to restart/);
  for (const f of sources) assert.equal(readdirSync(inboxDir).filter((n) => n.startsWith(basename(f, ".bin"))).length, 1, `${basename(f)} stored once`);
});

test("two `as2 send --restart` of one 20-file job at the same moment: one exits 0, the other exits 2 naming the holder; each file stored once", async () => {
  const label = "s-twice";
  // First every file fails: nothing listens on the partner's port.
  const closed = `http://127.0.0.1:${await freePort()}/as2`;
  let m = myco(label, closed);
  const sources = files(label, 20, 16 * 1024);
  const failed = await as2(["send", "--config", m.config, "--partner", "acme", "--json", ...sources]);
  assert.equal(failed.status, 1, failed.stderr);
  const job = jobOf(failed, "as2 send");
  assert.equal(job.state, "FAILED");
  assert.equal(job.files.filter((f) => f.status === "FAILED").length, 20);

  // The URL fixed, ACME up: two restarts at once.
  m = myco(label, acme.url);
  const args = ["send", "--config", m.config, "--restart", job.runId, "--json"];
  const both = await Promise.all([as2(args), as2(args)]);
  const codes = both.map((r) => r.status).sort();
  assert.deepEqual(codes, [0, 2], `exit codes ${both.map((r) => `${r.status} (${r.stderr.trim()})`).join(" / ")}`);
  const winner = both.find((r) => r.status === 0)!;
  const loser = both.find((r) => r.status === 2)!;
  assert.match(loser.stderr + loser.stdout, /being (run|restarted) by/, "the refused restart says which process holds the job");
  const restarted = jobOf(winner, "the winning --restart");
  assert.equal(restarted.state, "SUCCESS");
  assert.equal(restarted.files.length, 20);
  assert.deepEqual(restarted.files.map((f) => f.as2MessageId), job.files.map((f) => f.as2MessageId), "the original Message-IDs");
  assertStoredOnce(sources, label);

  const original = readJob(m.data, job.runId);
  assert.equal(original.state, "SUCCESS");
  assert.equal(original.restartedBy, restarted.runId);
  assert.deepEqual(spoolOf(m.data, job.runId), []);
});
