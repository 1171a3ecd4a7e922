// The job index behind `as2 status` (src/store/job-index.ts): built when missing, kept by every
// save, brought up to date when records change behind its back, compacted, never the truth.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

const ids = (n: number) => Array.from({ length: n }, (_, i) => newRunId(new Date(Date.UTC(2026, 0, 1, 0, 0, i))));

test("missing: the first list reads every record and writes the index; later saves append to it", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a, b, c] = ids(3);
  await store.save(record(a!));
  await store.save(record(b!));
  const index = join(dataDir, "index", "jobs.idx");
  assert.equal(existsSync(index), false, "a save does not create the index (a one-line index would look complete)");
  assert.deepEqual((await store.summaries()).map((s) => s.runId), [b, a], "newest first");
  assert.equal(readFileSync(index, "utf8").trim().split("\n").length, 2);
  await store.save(record(c!));
  await store.update(a!, (r) => {
    r.state = "SUCCESS";
    r.files.push({ name: "x", size: 1, status: "SUCCESS", statusCode: 0 });
    r.messages.push({ as2MessageId: "<m>", persistedTimestamp: 0, compressed: false, encrypted: true, signed: true, receiverId: "ACME", senderId: "MYCO", mdnStatus: "Received", partnerType: "Production", attachments: [] });
  });
  const list = await store.summaries();
  assert.deepEqual(list.map((s) => s.runId), [c, b, a]);
  assert.deepEqual({ state: list[2]!.state, files: list[2]!.files, mdn: list[2]!.mdn }, { state: "SUCCESS", files: 1, mdn: "Received" });
  assert.equal(readFileSync(index, "utf8").trim().split("\n").length, 4, "two appends, the last line for a runId wins");
});

test("stale: records written or deleted behind the index's back are picked up", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a, b, c] = ids(3);
  await store.save(record(a!));
  await store.save(record(b!));
  await store.summaries();
  await sleep(20); // a later mtime than the index's
  // An older as2kit (or a copy from another machine) writes a record without touching the index.
  writeFileSync(join(store.dir, `${c}.json`), JSON.stringify({ ...record(c!, "beta"), state: "FAILED" }));
  rmSync(join(store.dir, `${a}.json`));
  const list = await store.summaries();
  assert.deepEqual(list.map((s) => [s.runId, s.partner, s.state]), [[c, "beta", "FAILED"], [b, "acme", "ONGOING"]]);
});

test("a torn last line (a crash mid-append) is skipped, and superseded lines are compacted away", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a] = ids(1);
  await store.save(record(a!));
  await store.summaries();
  for (let i = 0; i < 30; i++) await store.update(a!, (r) => { r.startedBy = `run ${i}`; });
  const file = join(dataDir, "index", "jobs.idx");
  writeFileSync(file, `${readFileSync(file, "utf8")}["2026`, { flag: "w" });
  await store.update(a!, (r) => { r.state = "SUCCESS"; });
  assert.equal(readFileSync(file, "utf8").trim().split("\n").length, 33, "1 + 30 + the torn line + the update after it");
  const index = new JobIndex(join(dataDir, "index"), store.dir, store, 10);
  const list = await index.all();
  assert.deepEqual(list.map((s) => s.runId), [a]);
  assert.equal(list[0]!.state, "SUCCESS", "the update after the torn line was read");
  assert.equal(readFileSync(file, "utf8"), `${readFileSync(file, "utf8").split("\n")[0]}\n`, "one line per job after compaction");
});

test("a page parses only its own lines, a filter gives the same as filtering every summary, and a damaged line is left out", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const all = ids(40);
  const states = ["SUCCESS", "FAILED", "ONGOING", "PARTIAL"] as const;
  for (const [i, id] of all.entries()) {
    await store.save({ ...record(id, i % 3 ? "acme" : "beta"), state: states[i % 4]!, type: i % 5 ? "AS2 Send" : "AS2 Receive" });
  }
  await store.summaries(); // builds the index
  const queries: JobQuery[] = [
    { offset: 0, length: 10 }, { offset: 35, length: 10 }, { partner: "beta", offset: 0, length: 50 }, { state: "FAILED", direction: "send", offset: 2, length: 3 },
    { since: new Date(Date.UTC(2026, 0, 1, 0, 0, 30)), offset: 0, length: 50 }, { partner: "nobody", offset: 0, length: 5 },
  ];
  for (const q of queries) assert.deepEqual(await store.query(q), queryJobs(await store.summaries(), q), JSON.stringify(q));
  // A line damaged in the middle of the index (not only a torn last one): that job is left out, the rest are listed.
  const file = join(dataDir, "index", "jobs.idx");
  const lines = readFileSync(file, "utf8").split("\n");
  lines[5] = lines[5]!.replace(/"acme"|"beta"/, "acme]");
  writeFileSync(file, lines.join("\n"));
  const page = await store.query({ offset: 0, length: 50 });
  assert.equal(page.records.length, 39);
  assert.equal(page.totalRecords, 39);
});

test("stale: a finished job's record is taken from the index; deleting the index has every record re-read", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const [a, b] = ids(2);
  await store.save({ ...record(a!), state: "SUCCESS" });
  await store.summaries();
  await sleep(20);
  writeFileSync(join(store.dir, `${a}.json`), JSON.stringify({ ...record(a!, "beta"), state: "SUCCESS" }));
  writeFileSync(join(store.dir, `${b}.json`), JSON.stringify(record(b!)));
  assert.deepEqual((await store.summaries()).map((s) => [s.runId, s.partner]), [[b, "acme"], [a, "acme"]], "the new record is read; the finished one is not");
  rmSync(join(dataDir, "index", "jobs.idx"));
  assert.deepEqual((await store.summaries()).map((s) => [s.runId, s.partner]), [[b, "acme"], [a, "beta"]]);
});
