// Job records (contract §5): atomic, time-sortable, safe with several processes at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, writeFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { JobStore, newRunId, statusCodeOf, STALE_LOCK_MS, type JobRecord } from "../../src/store/index.js";
import { tempDir } from "../helpers/tools.js";

function record(runId: string): JobRecord {
  return {
    runId, type: "AS2 Send", command: "transfer", partner: "acme", senderId: "MYCO", receiverId: "ACME", startedBy: "test", host: "h", pid: 1,
    startTime: new Date().toISOString(), state: "ONGOING", statusCode: 99, files: [], messages: [],
  };
}

test("run IDs are unique and sort by time", () => {
  const a = newRunId(new Date("2026-01-01T00:00:00.001Z"));
  const b = newRunId(new Date("2026-01-01T00:00:00.002Z"));
  const c = newRunId(new Date("2026-01-01T00:00:00.002Z"));
  assert.ok(a < b && b !== c);
  assert.match(a, /^20260101T000000001Z-[0-9a-f]{12}$/);
  const ids = Array.from({ length: 1000 }, () => newRunId(new Date(0)));
  assert.equal(new Set(ids).size, 1000);
});

test("statusCode follows the scheduler's numbering", () => {
  assert.deepEqual(["SUCCESS", "FAILED", "PARTIAL", "INTERRUPTED", "NOT_STARTED", "ONGOING", "AWAITING_MDN"].map((s) => statusCodeOf(s as JobRecord["state"])), [0, -1, -1, -2, 1, 2, 2]);
});

test("save/load round trip; statusCode is derived; no temp files remain; list is newest first", async () => {
  const store = new JobStore(tempDir());
  const ids = [newRunId(new Date("2026-01-01T00:00:00Z")), newRunId(new Date("2026-01-02T00:00:00Z"))];
  for (const id of ids) await store.save(record(id));
  const loaded = await store.load(ids[0]!);
  assert.equal(loaded!.statusCode, 2);
  assert.deepEqual(await store.runIds(), [ids[1], ids[0]]);
  assert.deepEqual(readdirSync(store.dir).filter((f) => f.startsWith(".")), [".locks"]);
  assert.equal(await store.load(newRunId(new Date())), undefined);
  await assert.rejects(store.load("../../etc/passwd"), /not a run ID/);
});

test("concurrent updates from four processes lose nothing", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const id = newRunId(new Date());
  await store.save({ ...record(id), warnings: [] });
  const script = `
    import { JobStore } from "${join(process.cwd(), "src/store/index.ts")}";
    const s = new JobStore(process.argv[1]);
    for (let i = 0; i < 25; i++) await s.update(process.argv[2], (r) => { r.warnings.push(process.argv[3] + ":" + i); });`;
  const runs = [0, 1, 2, 3].map((n) => new Promise<number>((resolve) => {
    const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, dataDir, id, String(n)], { stdio: "inherit" });
    p.on("exit", (code) => resolve(code ?? -1));
  }));
  assert.deepEqual(await Promise.all(runs), [0, 0, 0, 0]);
  const final = await store.load(id);
  assert.equal(final!.warnings!.length, 100);
  assert.equal(new Set(final!.warnings).size, 100);
});

test("a lock left by a dead process is taken over once stale", async () => {
  const store = new JobStore(tempDir());
  const id = newRunId(new Date());
  await store.save(record(id));
  const lock = join(store.dir, ".locks", `${id}.json.lock`);
  writeFileSync(lock, "99999");
  const old = new Date(Date.now() - STALE_LOCK_MS - 1000);
  utimesSync(lock, old, old);
  const r = await store.update(id, (x) => { x.state = "SUCCESS"; });
  assert.equal(r.statusCode, 0);
});
