// `npm run bench` (part 4): `as2 status` with BENCH_STATUS_JOBS job records (default 100,000) in
// the data directory, each command a real `as2` process (Node's start-up included), timed with
// the median of BENCH_STATUS_RUNS runs (default 5):
//   - the first list with no index: the index is built from every record (once);
//   - the first page of the list, and a filtered page, from the index;
//   - one job in detail (its record is read directly);
//   - the list after 100 records were written behind the index's back (refreshed from them);
//   - `as2 --version`, the floor: what starting Node and loading the program costs.
// Target (issue 5): the first page and one job each well under a second.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newRunId, type JobRecord, type JobState } from "../src/store/index.js";

const JOBS = Number(process.env.BENCH_STATUS_JOBS ?? 100_000);
const RUNS = Number(process.env.BENCH_STATUS_RUNS ?? 5);
const dir = mkdtempSync(join(tmpdir(), "as2kit-status-bench-"));
const jobsDir = join(dir, "data", "jobs");
mkdirSync(jobsDir, { recursive: true });
writeFileSync(join(dir, "as2.json"), JSON.stringify({
  dataDir: "./data",
  station: { as2Id: "MYCO", key: { pem: "none.key", certificate: "none.crt" } },
  partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "none.crt" }, beta: { as2Id: "BETA", url: "http://127.0.0.1:9/as2", certificate: "none.crt" } },
}));

const STATES: JobState[] = ["SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "SUCCESS", "FAILED", "PARTIAL", "AWAITING_MDN", "INTERRUPTED"];

/** A send record shaped like the real ones (two files, their messages and send details). */
function record(i: number, start: Date): JobRecord {
  const runId = newRunId(start);
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

function as2(args: string[]): { ms: number; stdout: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ["--openssl-legacy-provider", "bin/as2.js", "--config", join(dir, "as2.json"), ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`as2 ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

function median(args: string[]): number {
  const times = Array.from({ length: RUNS }, () => as2(args).ms).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

try {
  const t0 = Date.now();
  const base = Date.parse("2026-01-01T00:00:00Z");
  let last = "";
  for (let i = 0; i < JOBS; i++) {
    const r = record(i, new Date(base + i * 60_000));
    writeFileSync(join(jobsDir, `${r.runId}.json`), JSON.stringify(r));
    last = r.runId;
  }
  console.log(`status: ${JOBS} job records written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const floor = median(["--version"]);
  const build = as2(["status", "--page-length", "50"]);
  if (!build.stdout.includes(last)) throw new Error("the newest job is not on the first page");
  const firstPage = median(["status"]);
  const filtered = median(["status", "--partner", "beta", "--state", "FAILED", "--page-length", "20"]);
  const json = median(["status", "--json"]);
  const one = median(["status", last]);
  for (let i = 0; i < 100; i++) {
    const r = record(JOBS + i, new Date(base + (JOBS + i) * 60_000));
    writeFileSync(join(jobsDir, `${r.runId}.json`), JSON.stringify(r));
    last = r.runId;
  }
  const refresh = as2(["status"]);
  if (!refresh.stdout.includes(last)) throw new Error("the records written behind the index are not listed");
  const afterRefresh = median(["status"]);

  const rows: Array<[string, number]> = [
    ["as2 --version (the floor: Node start-up and loading)", floor],
    [`first list, no index yet (builds it from ${JOBS} records)`, build.ms],
    ["first page (50), from the index", firstPage],
    ["--partner beta --state FAILED, page of 20", filtered],
    ["first page as --json (full records)", json],
    ["one job in detail", one],
    ["first list after 100 records written behind the index", refresh.ms],
    ["first page, after that refresh", afterRefresh],
  ];
  console.log(`status, ${JOBS} jobs (median of ${RUNS} runs; one run for the index build and the refresh):`);
  for (const [what, ms] of rows) console.log(`  ${what.padEnd(62)} ${ms.toFixed(0).padStart(6)} ms`);
} finally {
  if (process.env.BENCH_STATUS_KEEP) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
