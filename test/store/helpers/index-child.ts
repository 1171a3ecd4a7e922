// A separate process working on a job store, for the multi-process tests of the job index
// (test/store/job-index-processes.test.ts). Usage: node --import tsx index-child.ts <dataDir> <mode> [args]
//   save <tag> <n>      saves n jobs (one per second of 2026-01-01 from tag*n), each three times
//   rebuild             builds the index, printing a line per segment done ("segment <done>/<all>")
//   crash-save <runId>  marks a save, writes the record, and is SIGKILLed before the index line
import { join } from "node:path";
import { mkdirSync, writeFileSync } from "node:fs";
import { JobIndex, JobStore, type JobRecord } from "../../../src/store/index.js";

const [dataDir, mode, ...args] = process.argv.slice(2) as [string, string, ...string[]];
const store = new JobStore(dataDir);

function record(runId: string, state: JobRecord["state"], n: number): JobRecord {
  return {
    runId, type: n % 2 ? "AS2 Receive" : "AS2 Send", command: "transfer", partner: n % 3 ? "acme" : "beta", senderId: "MYCO", receiverId: "ACME",
    startedBy: "child", host: "h", pid: process.pid, startTime: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(), state, statusCode: 0, files: [], messages: [],
  };
}

if (mode === "save") {
  const tag = Number(args[0]);
  const n = Number(args[1]);
  for (let i = 0; i < n; i++) {
    const k = tag * n + i;
    const runId = `${new Date(Date.UTC(2026, 0, 1) + k * 1000).toISOString().replace(/[-:.]/g, "")}-${tag.toString(16).padStart(12, "0")}`;
    await store.save(record(runId, "NOT_STARTED", k));
    await store.save(record(runId, "ONGOING", k));
    await store.save(record(runId, k % 4 ? "SUCCESS" : "FAILED", k));
  }
} else if (mode === "rebuild") {
  const index = new JobIndex(join(dataDir, "index"), store.dir, {
    onRebuild: (e) => process.stdout.write(`segment ${e.done}/${e.segments}\n`),
  });
  const page = await index.query({ offset: 0, length: 5 });
  process.stdout.write(`total ${page.totalRecords}\n`);
} else if (mode === "crash-save") {
  const index = new JobIndex(join(dataDir, "index"), store.dir);
  const runId = args[0]!;
  index.beginSave(runId);
  mkdirSync(store.dir, { recursive: true });
  writeFileSync(join(store.dir, `${runId}.json`), JSON.stringify({ ...record(runId, "FAILED", 7), runId }));
  process.kill(process.pid, "SIGKILL");
}
