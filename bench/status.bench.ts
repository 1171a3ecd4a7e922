// `npm run bench` (part 4): `as2 status` at scale, each command a real `as2` process (Node's
// start-up included), timed with the median of BENCH_STATUS_RUNS runs (default 5), peak memory
// of one run under /usr/bin/time -v. Three parts:
//
// A. Rebuild rate, with BENCH_STATUS_RECORDS real job records (default 100,000) in the jobs
//    folder: the first list with no index builds it from every record; then 100 records are
//    written behind the index's back and the next list reconciles (scans the folder).
// B. The index at BENCH_STATUS_JOBS jobs (default 10,000,000), one job every 3.15 s (a million a
//    month, a year at 10 million: 8,760 hour segments). Ten million record files of ~2 KB would
//    take 20 GB and most of an hour to write, so only a sample has a record file: every
//    10,000th job and the newest 100 (which the first page and `status <runId>` show). The
//    index itself is written through the library's own writer (JobIndex.appendMany: the same
//    lines that saves append), after a real build from the sample records. The measured
//    commands read no record that does not exist: the list reads only the index, `--json`
//    and `status <runId>` read the newest jobs' records, which exist.
// C. The cost of the index's part of a record save (intent line, summary line, stamp), in this
//    process, next to the cost of the atomic, fsynced record write it goes with.
//
// Targets (issue 14): first page and one job at most 300 ms at 10 million jobs with flat memory;
// filtered queries at most 1 s.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobIndex, JobStore, newRunId, summaryOf, writeFileAtomic, type JobRecord, type JobState, type JobSummary } from "../src/store/index.js";

const RECORDS = Number(process.env.BENCH_STATUS_RECORDS ?? 100_000);
const JOBS = Number(process.env.BENCH_STATUS_JOBS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_STATUS_RUNS ?? 5);
const STEP_MS = 3150;
const root = mkdtempSync(join(tmpdir(), "as2kit-status-bench-"));
const hasTime = existsSync("/usr/bin/time");

const STATES: JobState[] = ["SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "FAILED", "PARTIAL", "AWAITING_MDN", "INTERRUPTED"];
const base = Date.parse("2026-01-01T00:00:00Z");

/** A send or receive record shaped like the real ones (two files, their messages and send details). */
function record(i: number, start: Date, runId = newRunId(start)): JobRecord {
  const state = STATES[i % STATES.length]!;
  const partner = i % 3 ? "acme" : "beta";
  const ids = [1, 2].map((n) => `<as2kit-${runId}-${n}@MYCO>`);
  return {
    runId, type: i % 4 ? "AS2 Send" : "AS2 Receive", command: "transfer", partner, senderId: "MYCO", receiverId: partner.toUpperCase(),
    startedBy: "bench", host: "bench-host", pid: 1000 + (i % 5000), startTime: start.toISOString(), endTime: new Date(start.getTime() + 850).toISOString(), durationMs: 850,
    state, statusCode: state === "SUCCESS" ? 0 : -1,
    files: ids.map((id, n) => ({ name: `/srv/edi/out/orders-${i}-${n}.edi`, size: 48_213, status: state, statusCode: 0, as2MessageId: id })),
    messages: ids.map((id) => ({
      as2MessageId: id, persistedTimestamp: start.getTime(), compressed: false, encrypted: true, signed: true, receiverId: partner.toUpperCase(), senderId: "MYCO",
      transportStatusReceived: 200, deliveryStatus: "Delivered", mdnStatus: "Received", partnerType: "Production",
      mdnMessage: { persistedTimestamp: start.getTime(), content: "", disposition: "automatic-action/MDN-sent-automatically; processed", mic: "q9Jk2mS0o3e9gVx1cQ2Yd7r6W1bq5fZ0YcY1r1p3k8E=", micAlgorithm: "sha-256", signed: true, mdnError: false },
      attachments: [{ name: `orders-${i}.edi`, size: 48_213 }],
    })),
  };
}

/** Job i of part B: its run ID is derived from i, so that the sample records and the index agree. */
function runIdOf(i: number): string {
  return `${new Date(base + i * STEP_MS).toISOString().replace(/[-:.]/g, "")}-${i.toString(16).padStart(12, "0")}`;
}

function station(dir: string): string {
  const config = join(dir, "as2.json");
  writeFileSync(config, JSON.stringify({
    dataDir: "./data",
    station: { as2Id: "MYCO", key: { pem: "none.key", certificate: "none.crt" } },
    partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "none.crt" }, beta: { as2Id: "BETA", url: "http://127.0.0.1:9/as2", certificate: "none.crt" } },
  }));
  return config;
}

function as2(config: string, args: string[]): { ms: number; stdout: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ["--openssl-legacy-provider", "bin/as2.js", "--config", config, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`as2 ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

function median(config: string, args: string[]): number {
  const times = Array.from({ length: RUNS }, () => as2(config, args).ms).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Peak RSS in MB of one run, from /usr/bin/time -v. */
function peakMb(config: string, args: string[]): number | undefined {
  if (!hasTime) return undefined;
  const r = spawnSync("/usr/bin/time", ["-v", process.execPath, "--openssl-legacy-provider", "bin/as2.js", "--config", config, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1];
  return kb ? Number(kb) / 1024 : undefined;
}

const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);

function partA(): void {
  const dir = join(root, "a");
  const jobsDir = join(dir, "data", "jobs");
  mkdirSync(jobsDir, { recursive: true });
  const config = station(dir);
  let last = "";
  for (let i = 0; i < RECORDS; i++) {
    const r = record(i, new Date(base + i * STEP_MS));
    writeFileSync(join(jobsDir, `${r.runId}.json`), JSON.stringify(r));
    last = r.runId;
  }
  const build = as2(config, ["status", "--page-length", "50"]);
  if (!build.stdout.includes(last)) throw new Error("the newest job is not on the first page");
  for (let i = 0; i < 100; i++) {
    const r = record(RECORDS + i, new Date(base + (RECORDS + i) * STEP_MS));
    writeFileSync(join(jobsDir, `${r.runId}.json`), JSON.stringify(r));
    last = r.runId;
  }
  const refresh = as2(config, ["status"]);
  if (!refresh.stdout.includes(last)) throw new Error("the records written behind the index are not listed");
  console.log(`status A, ${RECORDS} real records (one run each):`);
  console.log(`  first list, no index: builds it from every record          ${fmt(build.ms).padStart(8)}  (${Math.round(RECORDS / (build.ms / 1000))} records/s)`);
  console.log(`  first list after 100 records written behind the index     ${fmt(refresh.ms).padStart(8)}  (scans the folder)`);
  rmSync(dir, { recursive: true, force: true });
}

function* summaries(): Generator<JobSummary> {
  for (let i = 0; i < JOBS; i++) yield summaryOf(record(i, new Date(base + i * STEP_MS), runIdOf(i)));
}

async function partB(): Promise<void> {
  const dir = join(root, "b");
  const dataDir = join(dir, "data");
  const jobsDir = join(dataDir, "jobs");
  mkdirSync(jobsDir, { recursive: true });
  const config = station(dir);
  const t0 = Date.now();
  const sample = (i: number) => i % 10_000 === 0 || i >= JOBS - 100;
  for (let i = 0; i < JOBS; i++) {
    if (!sample(i)) continue;
    writeFileSync(join(jobsDir, `${runIdOf(i)}.json`), JSON.stringify(record(i, new Date(base + i * STEP_MS), runIdOf(i))));
  }
  const index = new JobIndex(join(dataDir, "index"), jobsDir);
  await index.query({ offset: 0, length: 1 }); // a real build from the sample records
  index.appendMany(summaries());
  const genMs = Date.now() - t0;
  const newest = runIdOf(JOBS - 1);
  const sums = as2(config, ["status"]);
  if (!sums.stdout.includes(newest) || !sums.stdout.includes(`of ${JOBS}`)) throw new Error(`the first page is wrong:\n${sums.stdout.slice(-300)}`);
  const since = new Date(base + Math.floor(JOBS * 0.9) * STEP_MS + 1_000_000).toISOString();
  const rows: Array<[string, string[], number | undefined]> = [
    ["as2 --version (the floor: Node start-up and loading)", ["--version"], undefined],
    ["status: first page (50)", ["status"], 300],
    ["status --json: first page with full records", ["status", "--json"], 300],
    ["status <runId>: one job", ["status", newest], 300],
    ["status --partner beta", ["status", "--partner", "beta"], 1000],
    ["status --direction receive", ["status", "--direction", "receive"], 1000],
    ["status --state FAILED", ["status", "--state", "FAILED"], 1000],
    [`status --since <last tenth, mid-hour>`, ["status", "--since", since], 1000],
    ["status --partner beta --state FAILED, offset 1000, 20", ["status", "--partner", "beta", "--state", "FAILED", "--page-offset", "1000", "--page-length", "20"], 1000],
    ["status, page at offset half way", ["status", "--page-offset", String(Math.floor(JOBS / 2))], 1000],
  ];
  // The index's own share: the query alone in a fresh process (module loading and a cold JIT
  // included, the CLI's start-up, config and certificate checks not).
  const queryAlone = (q: string) => {
    const script = `const { JobIndex } = await import(${JSON.stringify(join(process.cwd(), "dist", "store", "job-index.js"))});
const t = performance.now(); const p = await new JobIndex(${JSON.stringify(join(dataDir, "index"))}, ${JSON.stringify(jobsDir)}).query(${q});
console.log(performance.now() - t, p.totalRecords);`;
    const times = Array.from({ length: RUNS }, () => Number(spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }).stdout.split(" ")[0]));
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
  };
  const alone: Array<[string, string]> = [
    ["query alone: first page", "{ offset: 0, length: 50 }"],
    ["query alone: --partner beta --state FAILED, offset 1000", "{ partner: 'beta', state: 'FAILED', offset: 1000, length: 20 }"],
    ["query alone: --since <last tenth, mid-hour>", `{ since: new Date(${JSON.stringify(new Date(base + Math.floor(JOBS * 0.9) * STEP_MS + 1_000_000).toISOString())}), offset: 0, length: 50 }`],
  ];
  console.log(`status B, ${JOBS} jobs in the index (${Math.ceil((JOBS * STEP_MS) / 3_600_000)} hour segments; written in ${fmt(genMs)}; median of ${RUNS} runs; peak RSS of one run):`);
  console.log(`  first list after the import: sums every segment once       ${fmt(sums.ms).padStart(8)}`);
  for (const [what, args, goal] of rows) {
    const ms = median(config, args);
    const mb = peakMb(config, args);
    console.log(`  ${what.padEnd(58)} ${fmt(ms).padStart(8)}  ${mb ? `${mb.toFixed(0)} MB` : ""}${goal ? `  (goal ${goal} ms)` : ""}`);
  }
  for (const [what, q] of alone) console.log(`  ${what.padEnd(58)} ${fmt(queryAlone(q)).padStart(8)}`);
  rmSync(dir, { recursive: true, force: true });
}

/** Part C: per save, the index's work (intent line, summary line, stamp) next to the record write. */
async function partC(): Promise<void> {
  const dataDir = join(root, "c");
  const store = new JobStore(dataDir);
  await store.save(record(0, new Date(base)));
  await store.query({ offset: 0, length: 1 });
  const index = new JobIndex(join(dataDir, "index"), store.dir);
  const n = 2000;
  const records = Array.from({ length: n }, (_, i) => record(i, new Date(base + i * STEP_MS)));
  let t = process.hrtime.bigint();
  for (const r of records) await writeFileAtomic(join(store.dir, `${r.runId}.json`), `${JSON.stringify(r, null, 2)}\n`);
  const recordMs = Number(process.hrtime.bigint() - t) / 1e6 / n;
  t = process.hrtime.bigint();
  for (const r of records) {
    index.beginSave(r.runId);
    index.append(summaryOf(r));
  }
  const indexMs = Number(process.hrtime.bigint() - t) / 1e6 / n;
  console.log(`status C, ${n} saves: the index's part ${indexMs.toFixed(3)} ms per save (no lock, no fsync); the record's atomic write ${recordMs.toFixed(3)} ms`);
  rmSync(dataDir, { recursive: true, force: true });
}

try {
  if (RECORDS) partA();
  if (JOBS) await partB();
  await partC();
} finally {
  if (process.env.BENCH_STATUS_KEEP) console.log(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
}
