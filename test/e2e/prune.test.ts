/**
 * `as2 prune` and `receive.retention` end to end (contract §7, issue 14): usage and configuration
 * errors, and pruning on both stations while `as2 receive` takes messages from three `as2 send`
 * processes at once: every file arrives once, every job of the run stays, old finished jobs go,
 * unfinished old ones stay.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { JobStore, newRunId, type JobRecord, type JobState } from "../../src/store/index.js";
import { opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir();
const DAY = 86_400_000;

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

const acmeConfig = (extra: Record<string, unknown> = {}) => cfg("acme", {
  dataDir: "./acme-data",
  station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
  receive: { host: "127.0.0.1", port: 0, path: "/as2", retention: { olderThan: "30d" }, ...extra },
  partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt" } },
});

/** Old jobs as an earlier month left them: finished ones (to go) and unfinished ones (to stay). */
async function seed(dataDir: string, type: JobRecord["type"]): Promise<{ finished: string[]; unfinished: string[] }> {
  const store = new JobStore(dataDir);
  const out = { finished: [] as string[], unfinished: [] as string[] };
  for (let i = 0; i < 60; i++) {
    const start = new Date(Date.now() - (40 + i) * DAY);
    const state: JobState = i % 10 === 0 ? "AWAITING_MDN" : i % 10 === 5 ? "ONGOING" : i % 3 ? "SUCCESS" : "FAILED";
    const runId = newRunId(start);
    await store.save({
      runId, type, command: "transfer", partner: type === "AS2 Send" ? "acme" : "myco", senderId: "MYCO", receiverId: "ACME", startedBy: "seed", host: "h", pid: 1,
      startTime: start.toISOString(), ...(state === "SUCCESS" || state === "FAILED" ? { endTime: start.toISOString() } : {}),
      state, statusCode: 0, files: [], messages: [],
    });
    (state === "SUCCESS" || state === "FAILED" ? out.finished : out.unfinished).push(runId);
  }
  return out;
}

let acme: As2Server;
let acmeOld: { finished: string[]; unfinished: string[] };
let mycoOld: { finished: string[]; unfinished: string[] };

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  mkdirSync(join(dir, "out"), { recursive: true });
  acmeOld = await seed(join(dir, "acme-data"), "AS2 Receive");
  mycoOld = await seed(join(dir, "myco-data"), "AS2 Send");
});

test("usage: --older-than is required and takes 30m, 12h, 90d or 2w; a bad receive.retention names its key", async () => {
  const config = acmeConfig();
  const none = await as2(["prune", "--config", config]);
  assert.equal(none.status, 2, none.stderr);
  assert.match(none.stderr, /--older-than is required.*30m, 12h, 90d or 2w/);
  for (const bad of ["90", "3 months", "1y", "0d"]) {
    const r = await as2(["prune", "--config", config, "--older-than", bad, "--json"]);
    assert.equal(r.status, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`not "${bad}"`));
    assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code !== undefined, true, "--json: an error document on stdout");
  }
  const badConfig = acmeConfig({ retention: { olderThan: "3 months" } });
  const r = await as2(["prune", "--config", badConfig, "--older-than", "30d"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /receive\.retention\.olderThan/);
  assert.match(r.stderr, /30m, 12h, 90d or 2w/);
  const extraKey = await as2(["prune", "--config", acmeConfig({ retention: { olderThan: "30d", every: "1d" } }), "--older-than", "30d"]);
  assert.equal(extraKey.status, 2, extraKey.stderr);
});

test("pruning both stations while three senders send to a running receiver: every file once, every new job kept, old finished jobs gone, unfinished ones kept", async () => {
  acme = await startAs2Receive(acmeConfig(), [], { AS2KIT_RETENTION_DELAY_MS: "0" });
  const pruned = await acme.waitFor((e) => e.event === "pruned");
  assert.match(String(pruned.detail), new RegExp(`retention 30d: ${acmeOld.finished.length} job\\(s\\)`));

  // A dry run on the sender side first: counts, nothing removed.
  const mycoConfig = cfg("myco", {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url: acme.url, certificate: "acme.crt", mdn: { request: "signed" } } },
  });
  const dry = await as2(["prune", "--config", mycoConfig, "--older-than", "30d", "--dry-run", "--json"]);
  assert.equal(dry.status, 0, dry.stderr);
  const dryReport = JSON.parse(dry.stdout) as { dryRun: boolean; jobs: { count: number; bytes: number } };
  assert.equal(dryReport.dryRun, true);
  assert.equal(dryReport.jobs.count, mycoOld.finished.length);
  assert.ok(dryReport.jobs.bytes > 0);
  const text = await as2(["prune", "--config", mycoConfig, "--older-than", "30d", "--dry-run"]);
  assert.match(text.stdout, /dry run: nothing removed/);
  assert.equal(readdirSync(join(dir, "myco-data", "jobs")).filter((n) => n.endsWith(".json")).length, 60);

  const sends = [0, 1, 2].map((s) => {
    const files = Array.from({ length: 4 }, (_, i) => {
      const p = join(dir, "out", `s${s}-${i}.edi`);
      writeFileSync(p, `UNB+UNOA:2+MYCO+ACME+261122:1200+${s}${i}'\r\n`.repeat(50));
      return p;
    });
    return as2(["send", "--config", mycoConfig, "--partner", "acme", "--json", ...files]);
  });
  let sending = true;
  const all = Promise.all(sends).finally(() => { sending = false; });
  let prunes = 0;
  while (sending || prunes < 2) {
    const [a, m] = await Promise.all([
      as2(["prune", "--config", acmeConfig(), "--older-than", "30d", "--json"]),
      as2(["prune", "--config", mycoConfig, "--older-than", "30d", "--json"]),
    ]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(m.status, 0, m.stderr);
    prunes++;
  }
  for (const r of await all) assert.equal(r.status, 0, r.stderr);

  const inbox = readdirSync(join(dir, "acme-data", "inbox", "myco")).filter((n) => !n.startsWith(".")).sort();
  assert.deepEqual(inbox, [0, 1, 2].flatMap((s) => [0, 1, 2, 3].map((i) => `s${s}-${i}.edi`)).sort(), "every file once");

  for (const [config, old, newJobs] of [[acmeConfig(), acmeOld, 12], [mycoConfig, mycoOld, 3]] as const) {
    const list = await as2(["status", "--config", config, "--json", "--page-length", "500"]);
    assert.equal(list.status, 0, list.stderr);
    const page = JSON.parse(list.stdout) as { totalRecords: number; records: JobRecord[] };
    const ids = new Set(page.records.map((r) => r.runId));
    assert.equal(page.totalRecords, newJobs + old.unfinished.length, config);
    for (const id of old.unfinished) assert.ok(ids.has(id), `unfinished ${id} kept`);
    for (const id of old.finished) assert.ok(!ids.has(id), `finished ${id} pruned`);
    const fresh = page.records.filter((r) => !old.unfinished.includes(r.runId));
    assert.equal(fresh.length, newJobs);
    for (const r of fresh) assert.equal(r.state, "SUCCESS", `${r.runId} ${r.type}`);
  }
  // The receiver's duplicate entries are days younger than the resend window: all kept.
  assert.equal(readdirSync(join(dir, "acme-data", "index", "received")).filter((n) => /^[0-9a-f]{64}$/.test(n)).length, 12);
});
