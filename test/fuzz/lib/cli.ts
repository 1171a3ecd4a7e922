/**
 * The fuzzer's command line (scripts/fuzz.ts imports it; it lives here to be type-checked with the tests).
 *
 * npm run fuzz -- [--target <name>|all] [--seconds <n>] [--iterations <n>] [--seed <n>] [--timeout <ms>] [--no-minimise] [--no-corpus]
 * (or FUZZ_TARGET, FUZZ_SECONDS, FUZZ_ITERATIONS, FUZZ_SEED, FUZZ_TIMEOUT_MS).
 *
 * Mutates valid AS2 messages, MDNs, keys, certificates, MIME entities and BER, and checks the core
 * contract: every failure is an As2Error; no input hangs or blows up memory. Findings are
 * minimised and written to test/fuzz/corpus/<target>/, which test/fuzz/regression.test.ts replays.
 * The same seed gives the same inputs (print it, pass it back with --seed to reproduce).
 */
import { TARGET_NAMES } from "./targets.js";
import { DEFAULT_CORPUS, fuzzTarget, type FuzzResult } from "./engine.js";

function option(name: string, env: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  return process.env[env];
}

function number(name: string, env: string): number | undefined {
  const v = option(name, env);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a non-negative number, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

const targetArg = option("target", "FUZZ_TARGET") ?? "all";
const targets = targetArg === "all" ? [...TARGET_NAMES] : targetArg.split(",");
for (const t of targets) {
  if (!(TARGET_NAMES as readonly string[]).includes(t)) {
    console.error(`unknown target ${t}; targets: ${TARGET_NAMES.join(", ")}, all`);
    process.exit(2);
  }
}
const iterations = number("iterations", "FUZZ_ITERATIONS");
// --iterations alone bounds by count; with --seconds both bounds apply; neither: 60 s per target.
const seconds = number("seconds", "FUZZ_SECONDS") ?? (iterations === undefined ? 60 : undefined);
const seed = (number("seed", "FUZZ_SEED") ?? Date.now() % 2 ** 31) >>> 0;
const timeoutMs = number("timeout", "FUZZ_TIMEOUT_MS") ?? 2000;
const corpusDir = process.argv.includes("--no-corpus") ? null : DEFAULT_CORPUS;

console.log(`as2kit fuzz: seed ${seed}, targets ${targets.join(", ")}, ${seconds !== undefined ? `${seconds} s` : ""}${seconds !== undefined && iterations !== undefined ? " or " : ""}${iterations !== undefined ? `${iterations} iterations` : ""} per target, ${timeoutMs} ms per input`);
console.log(`reproduce with: npm run fuzz -- --seed ${seed} --target ${targetArg}${seconds !== undefined ? ` --seconds ${seconds}` : ""}${iterations !== undefined ? ` --iterations ${iterations}` : ""}`);

const results: FuzzResult[] = [];
for (const target of targets) {
  console.log(`\n[${target}] building seeds and fuzzing...`);
  const r = await fuzzTarget({ target, seed, seconds, iterations, timeoutMs, corpusDir, minimise: !process.argv.includes("--no-minimise"), log: (l) => console.log(l) });
  results.push(r);
  console.log(`[${target}] ${r.iterations} iterations in ${r.seconds.toFixed(1)} s (${r.execsPerSecond.toFixed(0)} execs/s; seeds built in ${(r.setupMs / 1000).toFixed(1)} s), ${r.findings.length} distinct finding(s)${r.restarts ? `, ${r.restarts} worker restart(s)` : ""}`);
}

console.log("\nsummary (seed " + seed + ")");
console.log("target            iterations   execs/s   findings (new/known, occurrences)");
for (const r of results) {
  const fresh = r.findings.filter((f) => !f.known).length;
  const occurrences = r.findings.reduce((a, f) => a + f.count, 0);
  console.log(`${r.target.padEnd(17)} ${String(r.iterations).padStart(10)} ${r.execsPerSecond.toFixed(0).padStart(9)}   ${r.findings.length} (${fresh}/${r.findings.length - fresh}, ${occurrences})`);
  for (const f of r.findings) console.log(`    ${f.known ? "known" : "NEW  "} x${f.count} ${f.signature}`);
}
const anyNew = results.some((r) => r.findings.some((f) => !f.known));
process.exit(anyNew ? 1 : 0);
