// `npm run bench` (part 5): start-up (issue 14). Each figure is a whole `as2` process started as a
// user starts it (bin/as2.js, no --openssl-legacy-provider, no NODE_OPTIONS), wall time over
// BENCH_STARTUP_RUNS runs (default 15, at least 10) after one warm-up, min / median / max, with
// the goal beside it. The commands take turns run by run, so a machine that slows down for a
// while slows all of them alike; the ratios compare medians of the same run.
//   - `node -e 0`: Node's own start, the floor under everything else;
//   - `as2 --version` (goal 150 ms) and `as2 status` on an empty data folder (goal 250 ms);
//   - the same two from tsc's dist/cli/main.js instead of the bundle (what bundling gains);
//   - `as2 send --help`: a command that starts Node a second time, with the legacy provider.
// CPU time (user + sys) and peak memory (max RSS of the largest process) come from /usr/bin/time
// when it is there: on a busy machine wall time mostly measures the others, CPU time much less.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const RUNS = Math.max(10, Number(process.env.BENCH_STARTUP_RUNS ?? 15));
const ROOT = resolve(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "as2.js");
const TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;

const dir = mkdtempSync(join(tmpdir(), "as2kit-startup-bench-"));
const config = join(dir, "as2.json");
writeFileSync(config, JSON.stringify({
  dataDir: "./data",
  station: { as2Id: "MYCO", key: { pem: "none.key", certificate: "none.crt" } },
  partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "none.crt" } },
}));
// tsc's output, started the way bin/as2.js starts the bundle.
const tscRunner = join(dir, "as2-tsc.mjs");
writeFileSync(tscRunner, `const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, "dist", "cli", "main.js")).href)});\nprocess.exitCode = await main(process.argv);\n`);

interface Case { name: string; args: string[]; goalMs?: number; expect: RegExp }
const cases: Case[] = [
  { name: "node -e 0 (Node's own start)", args: ["-e", "0"], expect: /^$/ },
  { name: "as2 --version", args: [BIN, "--version"], goalMs: 150, expect: /^\d+\.\d+\.\d+/ },
  { name: "as2 status, empty data folder", args: [BIN, "status", "--config", config], goalMs: 250, expect: /^no jobs$/ },
  { name: "as2 --version, tsc build (no bundle)", args: [tscRunner, "--version"], expect: /^\d+\.\d+\.\d+/ },
  { name: "as2 status, tsc build (no bundle)", args: [tscRunner, "status", "--config", config], expect: /^no jobs$/ },
  { name: "as2 send --help (second Node start)", args: [BIN, "send", "--help"], expect: /^Usage: as2 send/ },
];

const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
delete env.NODE_OPTIONS;

/** One run: wall milliseconds, and CPU milliseconds and peak RSS in MB when /usr/bin/time is there. */
function run(c: Case): { ms: number; cpuMs?: number; peakMb?: number } {
  const [cmd, args] = TIME ? [TIME, ["-f", "as2kit-time %M %U %S", process.execPath, ...c.args]] : [process.execPath, c.args];
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: dir, env, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0 || !c.expect.test(r.stdout.trim())) throw new Error(`${c.name}: exit ${r.status}, stdout ${JSON.stringify(r.stdout.slice(0, 200))}, stderr ${r.stderr}`);
  const t2 = /as2kit-time (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return t2 ? { ms, peakMb: Number(t2[1]) / 1024, cpuMs: (Number(t2[2]) + Number(t2[3])) * 1000 } : { ms };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
};

try {
  for (const c of cases) run(c); // warm-up: the file cache, not counted
  const times = cases.map(() => [] as number[]);
  const cpu = cases.map(() => [] as number[]);
  const peaks = cases.map(() => 0);
  for (let i = 0; i < RUNS; i++) {
    cases.forEach((c, k) => {
      const r = run(c);
      times[k]!.push(r.ms);
      if (r.cpuMs !== undefined) cpu[k]!.push(r.cpuMs);
      peaks[k] = Math.max(peaks[k]!, r.peakMb ?? 0);
    });
  }
  const medians = times.map((t) => stats(t).median);
  const ms = (x: number) => x.toFixed(0).padStart(5);
  console.log(`start-up over ${RUNS} runs each, ms: wall min / median / max${TIME ? "; CPU median; peak RSS" : ""}; the goal, on the wall median:`);
  cases.forEach((c, k) => {
    const s = stats(times[k]!);
    const goal = c.goalMs === undefined ? "" : `  goal <= ${c.goalMs} ms: ${s.median <= c.goalMs ? "met" : `missed by ${(s.median - c.goalMs).toFixed(0)} ms`}`;
    const extra = TIME ? `  ${ms(stats(cpu[k]!).median)}  ${peaks[k]!.toFixed(0).padStart(3)} MB` : "";
    console.log(`  ${c.name.padEnd(40)} ${ms(s.min)} / ${ms(s.median)} / ${ms(s.max)}${extra}${goal}`);
  });
  const ratio = (a: number, b: number) => (medians[a]! / medians[b]!).toFixed(2);
  console.log(`  bundle / tsc build, medians: --version ${ratio(1, 3)}, status ${ratio(2, 4)}; second Node start (send --help / --version): ${ratio(5, 1)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
