// The job index with several real processes at once (src/store/job-index.ts): appenders that take
// no lock, a rebuild racing them, two rebuilders racing each other, a rebuilder SIGKILLed half
// way, and a save killed between its record and its index line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { JobIndex, JobStore, type JobRecord } from "../../src/store/index.js";
import { tempDir } from "../helpers/tools.js";

const CHILD = join(import.meta.dirname, "helpers", "index-child.ts");

interface Child { proc: ChildProcess; out: string; done: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

function child(dataDir: string, ...args: string[]): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const c: Child = {
    proc, out: "",
    done: new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal }))),
  };
  proc.stdout!.on("data", (d: Buffer) => { c.out += d.toString(); });
  proc.stderr!.on("data", (d: Buffer) => { c.out += d.toString(); });
  return c;
}

/** What the records say, to compare the index with. */
function truth(store: JobStore): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of readdirSync(store.dir).filter((n) => n.endsWith(".json"))) {
    const r = JSON.parse(readFileSync(join(store.dir, f), "utf8")) as JobRecord;
    m.set(r.runId, r.state);
  }
  return m;
}

async function indexed(dataDir: string, store: JobStore): Promise<Map<string, string>> {
  let rebuilt = false;
  const index = new JobIndex(join(dataDir, "index"), store.dir, { onRebuild: () => { rebuilt = true; } });
  const list = await index.all();
  assert.equal(rebuilt, false, "the index was complete and current: no rebuild was needed to read it");
  return new Map(list.map((s) => [s.runId, s.state]));
}

test("four processes saving into the same hour's segment at once, while this one rebuilds it again and again: no line is lost", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  const index = new JobIndex(join(dataDir, "index"), store.dir);
  await index.query({ offset: 0, length: 1 }); // an empty, complete index
  const savers = [0, 1, 2, 3].map((tag) => child(dataDir, "save", String(tag), "120"));
  let rebuilds = 0;
  let running = true;
  void Promise.all(savers.map((s) => s.done)).then(() => { running = false; });
  while (running) {
    // Rewrites the segment the savers are appending to (it never matches the records mid-run).
    rmSync(join(dataDir, "index", "jobs", ".complete"), { force: true });
    await index.query({ offset: 0, length: 10 });
    rebuilds++;
  }
  for (const s of savers) assert.deepEqual(await s.done, { code: 0, signal: null }, s.out);
  assert.ok(rebuilds >= 2, `the segment was rewritten while appenders ran (${rebuilds} times)`);
  const want = truth(store);
  assert.equal(want.size, 480);
  assert.deepEqual(await indexed(dataDir, store), want);
});

/** 12,000 records over 240 hours, written directly (as an older as2kit would have). */
function manyRecords(dataDir: string): void {
  const jobs = join(dataDir, "jobs");
  mkdirSync(jobs, { recursive: true });
  for (let i = 0; i < 12_000; i++) {
    const start = new Date(Date.UTC(2026, 0, 1) + i * 72_000);
    const runId = `${start.toISOString().replace(/[-:.]/g, "")}-${i.toString(16).padStart(12, "0")}`;
    const r: JobRecord = {
      runId, type: "AS2 Send", command: "transfer", partner: "acme", senderId: "MYCO", receiverId: "ACME", startedBy: "t", host: "h", pid: 1,
      startTime: start.toISOString(), state: i % 7 ? "SUCCESS" : "AWAITING_MDN", statusCode: 0, files: [], messages: [],
    };
    writeFileSync(join(jobs, `${runId}.json`), JSON.stringify(r));
  }
}

test("two processes that need a rebuild at once: one builds, the other waits for it and builds nothing", async () => {
  const dataDir = tempDir();
  manyRecords(dataDir);
  const [a, b] = [child(dataDir, "rebuild"), child(dataDir, "rebuild")];
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.deepEqual([ra, rb], [{ code: 0, signal: null }, { code: 0, signal: null }], a.out + b.out);
  const builders = [a, b].filter((c) => c.out.includes("segment "));
  assert.equal(builders.length, 1, `exactly one process rebuilt:\n${a.out}\n---\n${b.out}`);
  assert.match(builders[0]!.out, /segment 240\/240/);
  for (const c of [a, b]) assert.match(c.out, /total 12000/);
  const store = new JobStore(dataDir);
  assert.deepEqual(await indexed(dataDir, store), truth(store));
});

test("a rebuilder SIGKILLed half way: its lock is taken over at once (its owner is dead), and the next build resumes", async () => {
  const dataDir = tempDir();
  manyRecords(dataDir);
  const a = child(dataDir, "rebuild");
  await new Promise<void>((resolve) => {
    const look = () => { if (/segment [3-9]\d\//.test(a.out)) resolve(); else setTimeout(look, 5); };
    look();
  });
  a.proc.kill("SIGKILL");
  assert.equal((await a.done).signal, "SIGKILL");
  assert.ok(existsSync(join(dataDir, "index", "jobs", ".rebuild.lock")), "the dead builder's lock is left behind");
  assert.equal(existsSync(join(dataDir, "index", "jobs", ".complete")), false);
  const t = Date.now();
  const b = child(dataDir, "rebuild");
  assert.deepEqual(await b.done, { code: 0, signal: null }, b.out);
  const left = Number(/segment \d+\/(\d+)/.exec(b.out)?.[1]);
  assert.ok(left < 240 && left > 0, `resumed: ${left} of 240 segments were left to build`);
  assert.match(b.out, /total 12000/);
  assert.ok(Date.now() - t < 30_000, "no stale-lock timeout was waited out");
  const store = new JobStore(dataDir);
  assert.deepEqual(await indexed(dataDir, store), truth(store));
});

test("a save SIGKILLed between its record and its index line is repaired by the next read", async () => {
  const dataDir = tempDir();
  const store = new JobStore(dataDir);
  await store.query({ offset: 0, length: 1 }); // a complete index
  const runId = "20260101T000007000Z-00000000dead";
  const c = child(dataDir, "crash-save", runId);
  assert.equal((await c.done).signal, "SIGKILL");
  const seg = join(dataDir, "index", "jobs", `${runId.slice(0, 11)}.idx`);
  assert.equal(readFileSync(seg, "utf8"), `["${runId}"]\n`, "only its intent line is in the index");
  const page = await store.query({ offset: 0, length: 5 });
  assert.deepEqual(page.records.map((s) => [s.runId, s.state]), [[runId, "FAILED"]]);
  assert.match(readFileSync(seg, "utf8"), /"FAILED"/, "the summary was appended from the record");
});
