// The job index behind `as2 status` (src/store/job-index.ts): built when missing, kept by every
// save, brought up to date when records change behind its back, compacted, never the truth.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { JobIndex, JobStore, newRunId, type JobRecord } from "../../src/store/index.js";
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
