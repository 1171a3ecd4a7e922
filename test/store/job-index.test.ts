// The job index behind `as2 status` (src/store/job-index.ts): hour segments built when missing,
// appended to by every save, brought up to date when records change behind its back, compacted,
// never the truth.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { JobIndex, JobStore, newRunId, queryJobs, type JobQuery, type JobRecord } from "../../src/store/index.js";
import { tempDir } from "../helpers/tools.js";

function record(runId: string, partner = "acme"): JobRecord {
  return {
    runId, type: "AS2 Send", command: "transfer", partner, senderId: "MYCO", receiverId: "ACME", startedBy: "test", host: "h", pid: 1,
    startTime: new Date().toISOString(), state: "ONGOING", statusCode: 2, files: [], messages: [],
  };
}

/** n run IDs, one per `stepMs` from 2026-01-01 (a step of an hour or more puts each in its own segment). */
const ids = (n: number, stepMs = 1000) => Array.from({ length: n }, (_, i) => newRunId(new Date(Date.UTC(2026, 0, 1) + i * stepMs)));
const segment = (dataDir: string, runId: string) => join(dataDir, "index", "jobs", `${runId.slice(0, 11)}.idx`);
const lineCount = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean).length;

test("missing: the first list reads every record and marks the index complete; later saves append to their hour's segment", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a, b, c] = ids(3);
  await store.save(record(a!));
  await store.save(record(b!));
  assert.equal(existsSync(join(dataDir, "index", "jobs", ".complete")), false, "appends alone do not make an index complete");
  assert.deepEqual((await store.summaries()).map((s) => s.runId), [b, a], "newest first");
  assert.ok(existsSync(join(dataDir, "index", "jobs", ".complete")));
  const seg = segment(dataDir, a!);
  assert.equal(lineCount(seg), 4, "an intent and a summary line per save");
  await store.save(record(c!));
  await store.update(a!, (r) => {
    r.state = "SUCCESS";
    r.files.push({ name: "x", size: 1, status: "SUCCESS", statusCode: 0 });
    r.messages.push({ as2MessageId: "<m>", persistedTimestamp: 0, compressed: false, encrypted: true, signed: true, receiverId: "ACME", senderId: "MYCO", mdnStatus: "Received", partnerType: "Production", attachments: [] });
  });
  const list = await store.summaries();
  assert.deepEqual(list.map((s) => s.runId), [c, b, a]);
  assert.deepEqual({ state: list[2]!.state, files: list[2]!.files, mdn: list[2]!.mdn }, { state: "SUCCESS", files: 1, mdn: "Received" });
  assert.equal(lineCount(seg), 8, "two more saves, the last line for a runId wins");
});

test("stale: records written or deleted behind the index's back are picked up", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a, b, c] = ids(3);
  await store.save(record(a!));
  await store.save(record(b!));
  await store.summaries();
  await sleep(20); // a later mtime than the stamp's
  // An older as2kit (or a copy from another machine) writes a record without touching the index.
  writeFileSync(join(store.dir, `${c}.json`), JSON.stringify({ ...record(c!, "beta"), state: "FAILED" }));
  rmSync(join(store.dir, `${a}.json`));
  const list = await store.summaries();
  assert.deepEqual(list.map((s) => [s.runId, s.partner, s.state]), [[c, "beta", "FAILED"], [b, "acme", "ONGOING"]]);
});

test("stale: an unfinished job's record changed by hand is re-read", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a] = ids(1);
  await store.save(record(a!));
  await store.summaries();
  await sleep(20);
  // Atomically, as every writer of records does (a write in place would not change the folder).
  writeFileSync(join(store.dir, ".tmp"), JSON.stringify({ ...record(a!), state: "FAILED" }));
  renameSync(join(store.dir, ".tmp"), join(store.dir, `${a}.json`));
  assert.equal((await store.summaries())[0]!.state, "FAILED");
});

test("a torn last line (a crash mid-append) costs only itself, even with the next append glued to it; superseded lines are compacted away", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a] = ids(1);
  await store.save(record(a!));
  await store.summaries();
  for (let i = 0; i < 30; i++) await store.update(a!, (r) => { r.startedBy = `run ${i}`; });
  const file = segment(dataDir, a!);
  writeFileSync(file, `${readFileSync(file, "utf8")}["2026`, { flag: "w" });
  await store.update(a!, (r) => { r.state = "SUCCESS"; });
  assert.match(readFileSync(file, "utf8"), /\["2026\["2026/, "the next append is glued to the torn line");
  assert.equal(lineCount(file), 64, "(1 + 30) x (intent + summary) + the torn line with the update's intent glued to it + its summary");
  const index = new JobIndex(join(dataDir, "index"), store.dir, { compactSlack: 10 });
  const page = await index.query({ offset: 0, length: 10 });
  assert.deepEqual(page.records.map((s) => [s.runId, s.state]), [[a, "SUCCESS"]], "the update glued to the torn line was read");
  assert.equal(lineCount(file), 1, "one line per job after compaction");
  assert.equal((await index.all())[0]!.state, "SUCCESS");
});

test("queries over many hour segments give the same as filtering every summary; a damaged line is left out", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const all = ids(60, 20 * 60_000); // 3 per hour, 20 segments
  const states = ["SUCCESS", "FAILED", "ONGOING", "PARTIAL"] as const;
  for (const [i, id] of all.entries()) {
    const start = new Date(Date.UTC(2026, 0, 1) + i * 20 * 60_000).toISOString();
    await store.save({ ...record(id, i % 3 ? "acme" : "beta"), startTime: start, state: states[i % 4]!, type: i % 5 ? "AS2 Send" : "AS2 Receive" });
  }
  const everything = await store.summaries(); // builds the index
  assert.equal(everything.length, 60);
  const queries: JobQuery[] = [
    { offset: 0, length: 10 }, { offset: 2, length: 10 }, { offset: 55, length: 10 }, { offset: 70, length: 10 },
    { partner: "beta", offset: 0, length: 50 }, { partner: "beta", offset: 4, length: 5 }, { state: "FAILED", direction: "send", offset: 2, length: 3 },
    { direction: "receive", offset: 1, length: 4 },
    { since: new Date(Date.UTC(2026, 0, 1, 10, 30)), offset: 0, length: 50 }, // cuts through an hour
    { since: new Date(Date.UTC(2026, 0, 1, 10, 30)), state: "SUCCESS", offset: 3, length: 2 },
    { since: new Date(Date.UTC(2026, 0, 1, 10)), offset: 0, length: 5 }, { partner: "nobody", offset: 0, length: 5 },
  ];
  for (const q of queries) assert.deepEqual(await store.query(q), queryJobs(everything, q), JSON.stringify(q));
  for (const q of queries) assert.deepEqual(await store.query(q), queryJobs(everything, q), `${JSON.stringify(q)}, from the catalog`);
  // A line damaged in the middle of a segment (not only a torn last one): that job is left out.
  const file = segment(dataDir, all[30]!);
  const lines = readFileSync(file, "utf8").split("\n");
  lines[1] = lines[1]!.replace(/"acme"|"beta"/, "acme]");
  writeFileSync(file, lines.join("\n"));
  // Index files edited by hand: the catalog trusts them unchanged until a save moves the stamp,
  // so it goes too (README: delete catalog.json, or the whole index/jobs folder).
  rmSync(join(dataDir, "index", "jobs", "catalog.json"));
  const page = await store.query({ offset: 0, length: 100 });
  assert.equal(page.records.length, 59);
  assert.equal(page.totalRecords, 59);
});

test("stale: a finished job's summary is taken from the index; deleting the index folder has every record re-read", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a, b] = ids(2);
  await store.save({ ...record(a!), state: "SUCCESS" });
  await store.summaries();
  await sleep(20);
  writeFileSync(join(store.dir, `${a}.json`), JSON.stringify({ ...record(a!, "beta"), state: "SUCCESS" }));
  writeFileSync(join(store.dir, `${b}.json`), JSON.stringify(record(b!)));
  assert.deepEqual((await store.summaries()).map((s) => [s.runId, s.partner]), [[b, "acme"], [a, "acme"]], "the new record is read; the finished one is not");
  rmSync(join(dataDir, "index", "jobs"), { recursive: true });
  assert.deepEqual((await store.summaries()).map((s) => [s.runId, s.partner]), [[b, "acme"], [a, "beta"]]);
});

test("an index of an earlier version (index/jobs.idx) is replaced by the segments", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a] = ids(1);
  await store.save(record(a!));
  writeFileSync(join(dataDir, "index", "jobs.idx"), `["${a}","AS2 Send"]\n`);
  assert.deepEqual((await store.summaries()).map((s) => s.runId), [a]);
  assert.equal(existsSync(join(dataDir, "index", "jobs.idx")), false);
});

test("regression (issue 17): a filtered list counts a segment whose (partner, type, state) key first appeared in this query's pass", async () => {
  // Found by the multiple-attachments partner gate: the filter was computed at the newest
  // segment, before an older, newly summed segment registered its key, so that segment's job
  // was missing from the page until the next query.
  const jobs = new JobStore(tempDir());
  const [a, b, c, d] = ids(4, 24 * 3600_000);
  const q = async () => (await jobs.query({ partner: "acme", offset: 0, length: 50 })).records.map((s) => s.runId);
  assert.deepEqual(await q(), []);
  await jobs.save(record(a!));
  assert.deepEqual(await q(), [a]);
  await jobs.save({ ...record(b!), type: "AS2 Receive", state: "SUCCESS" });
  await jobs.save(record(c!));
  await jobs.save({ ...record(d!, "other"), type: "AS2 Receive", state: "SUCCESS" });
  const page = await jobs.query({ partner: "acme", offset: 0, length: 50 });
  assert.deepEqual(page.records.map((s) => s.runId), [c, b, a]);
  assert.equal(page.totalRecords, 3);
});
