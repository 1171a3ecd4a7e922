/**
 * The fuzz engine's main-thread side: runs a target in a worker thread and watches it. The worker
 * writes each input to shared memory before running it; when the worker stops making progress
 * (a synchronous hang: a Promise.race cannot fire while the thread is busy) or the process's
 * memory grows past the limit, the watchdog terminates it, records the input it was running and
 * starts a new worker at the next iteration. Iterations are independent (seed + index), so a
 * restart changes nothing in what runs next.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { SHARED_BYTES, readCurrent, type Finding, type WorkerData, type WorkerMessage } from "./protocol.js";
import type { InputMeta } from "./targets.js";

export const DEFAULT_CORPUS = new URL("../corpus/", import.meta.url).pathname;
const REPO_ROOT = new URL("../../../", import.meta.url).pathname;

/** Stack traces in committed sidecars name files relative to the repository. */
function relative(text: string | undefined): string | undefined {
  return text?.split(`file://${REPO_ROOT}`).join("").split(REPO_ROOT).join("");
}

export interface FuzzOptions {
  target: string;
  seed: number;
  /** Time bound for fuzzing (after the seeds are built). */
  seconds?: number;
  /** Iteration bound (alone or with seconds: whichever comes first). */
  iterations?: number;
  /** Per-input time limit. */
  timeoutMs?: number;
  /** Growth over the baseline that counts as a memory blow-up. */
  memoryLimitMb?: number;
  /** Where findings are written (<dir>/<target>/); null: nowhere. */
  corpusDir?: string | null;
  minimise?: boolean;
  log?: (line: string) => void;
}

export interface FuzzResult {
  target: string;
  seed: number;
  iterations: number;
  /** Fuzzing time, seed building excluded. */
  seconds: number;
  execsPerSecond: number;
  setupMs: number;
  /** One per signature seen in this run (new or already in the corpus), with how often it occurred. */
  findings: Array<Finding & { count: number; known: boolean }>;
  written: string[];
  restarts: number;
}

interface CorpusEntry {
  target: string;
  kind: string;
  signature: string;
  error: string;
  stack?: string;
  seed: number;
  iteration: number;
  meta: InputMeta;
  minimised?: Finding["minimised"];
  /** Set by hand for a finding whose fix belongs to code this harness may not change: the test reports it as a todo. */
  pending?: string;
}

export function corpusFiles(corpusDir: string, target: string): string[] {
  const dir = join(corpusDir, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith(".bin")).sort().map((f) => join(dir, f));
}

export function readSidecar(binFile: string): CorpusEntry | undefined {
  try {
    return JSON.parse(readFileSync(binFile.replace(/\.bin$/, ".json"), "utf8")) as CorpusEntry;
  } catch {
    return undefined;
  }
}

function writeFinding(corpusDir: string, f: Finding): string {
  const dir = join(corpusDir, f.target);
  mkdirSync(dir, { recursive: true });
  const name = createHash("sha1").update(f.data).update(JSON.stringify(f.meta)).digest("hex").slice(0, 16);
  const bin = join(dir, `${name}.bin`);
  const entry: CorpusEntry = {
    target: f.target, kind: f.kind, signature: f.signature, error: f.error,
    stack: relative(f.stack?.split("\n").slice(0, 30).join("\n")), seed: f.seed, iteration: f.iteration, meta: f.meta, minimised: f.minimised,
  };
  writeFileSync(bin, f.data);
  writeFileSync(bin.replace(/\.bin$/, ".json"), JSON.stringify(entry, null, 2) + "\n");
  return bin;
}

const WORKER = new URL("./worker.ts", import.meta.url).href;
const TSX = import.meta.resolve("tsx/esm/api");

function spawn(data: WorkerData): Worker {
  // tsx registers itself in the worker before the TypeScript entry is imported (--import is not
  // applied to worker threads by Node 20).
  const code = `import(${JSON.stringify(TSX)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER)}); })`;
  return new Worker(code, { eval: true, workerData: data, resourceLimits: { maxOldGenerationSizeMb: 2048 } });
}

interface Session {
  mode: WorkerData["mode"];
  target: string;
  seed: number;
  files: string[];
  end: number;
  fuzzMs: number;
  timeoutMs: number;
  memoryLimitMb: number;
  minimise: boolean;
  known: string[];
  onMessage: (m: WorkerMessage) => void;
  onKilled: (f: Finding) => void;
  log: (line: string) => void;
}

/** Runs workers until the work is done, replacing each one that hangs, blows up or asks for it. */
function supervise(s: Session): Promise<{ iterations: number; fuzzMs: number; setupMs: number; restarts: number }> {
  return new Promise((resolve, reject) => {
    let total = 0;
    let usedMs = 0;
    let setupMs = 0;
    let restarts = 0;
    const start = (position: number) => {
      const shared = new SharedArrayBuffer(SHARED_BYTES);
      const remaining = s.fuzzMs > 0 ? Math.max(1, s.fuzzMs - usedMs) : 0;
      const worker = spawn({
        mode: s.mode, target: s.target, seed: s.seed, start: position, end: s.end, budgetMs: remaining, timeoutMs: s.timeoutMs,
        memoryLimitMb: s.memoryLimitMb, minimise: s.minimise, files: s.files, known: s.known, shared,
      });
      let readyAt = 0;
      let workerIterations = 0;
      let lastRuns = -1;
      let since = Date.now();
      let rssBaseline = 0;
      let finished = false;
      const elapsed = () => (readyAt ? Date.now() - readyAt : 0);
      const finish = (next: number | null) => {
        if (finished) return;
        finished = true;
        clearInterval(watch);
        total += workerIterations;
        usedMs += elapsed();
        const stopped = worker.terminate();
        // A thread stuck in native code (OpenSSL) cannot be stopped at once: do not wait for it.
        void Promise.race([stopped, new Promise((r) => setTimeout(r, 3000).unref())]).then(() => worker.unref());
        if (next === null) resolve({ iterations: total, fuzzMs: usedMs, setupMs, restarts });
        else if ((s.end >= 0 && next >= s.end) || (s.mode === "replay" && next >= s.files.length) || (s.fuzzMs > 0 && usedMs >= s.fuzzMs)) {
          resolve({ iterations: total, fuzzMs: usedMs, setupMs, restarts });
        } else {
          restarts++;
          start(next);
        }
      };
      const killed = (kind: Finding["kind"], error: string) => {
        const cur = readCurrent(shared);
        s.onKilled({
          kind, target: s.target, seed: s.seed, iteration: s.mode === "fuzz" ? cur.position : -1, signature: kind, error,
          data: cur.data, meta: cur.meta, file: s.mode === "replay" ? s.files[cur.position] : undefined,
        });
        workerIterations++;
        finish(cur.position + 1);
      };
      const watch = setInterval(() => {
        if (!readyAt) return;
        const cur = readCurrent(shared);
        if (cur.running && cur.runs !== lastRuns) {
          lastRuns = cur.runs;
          since = Date.now();
        } else if (cur.running && Date.now() - since > (cur.timeoutMs || s.timeoutMs) + 1500) {
          killed("hang", `no result within ${cur.timeoutMs || s.timeoutMs} ms (synchronous: the worker thread stopped responding)`);
          return;
        } else if (!cur.running) {
          since = Date.now();
        }
        const rss = process.memoryUsage().rss;
        if (rss - rssBaseline > s.memoryLimitMb * 1024 * 1024) killed("memory", `process memory grew by ${Math.round((rss - rssBaseline) / 2 ** 20)} MiB over the baseline`);
      }, 100);
      worker.on("message", (m: WorkerMessage) => {
        if (m.type === "fatal") {
          finished = true;
          clearInterval(watch);
          void worker.terminate();
          reject(new Error(`fuzz worker for ${s.target} failed: ${m.error}`));
          return;
        }
        if (m.type === "ready") {
          readyAt = Date.now();
          setupMs = Math.max(setupMs, m.setupMs);
          rssBaseline = process.memoryUsage().rss;
        } else if (m.type === "progress") {
          workerIterations = m.iterations;
        } else if (m.type === "restart") {
          workerIterations = m.iterations;
          finish(m.next);
          return;
        } else if (m.type === "done") {
          workerIterations = m.iterations;
          finish(null);
          return;
        }
        s.onMessage(m);
      });
      worker.on("error", (e: Error & { code?: string }) => {
        if (finished) return;
        if (!readyAt) {
          finished = true;
          clearInterval(watch);
          reject(new Error(`fuzz worker for ${s.target} failed while building its seeds: ${e.stack ?? e}`));
          return;
        }
        killed(e.code === "ERR_WORKER_OUT_OF_MEMORY" ? "memory" : "crash", `${e.code ?? e.name}: ${e.message}`);
      });
      worker.on("exit", (code) => {
        if (!finished && readyAt) killed("crash", `the worker exited with code ${code}`);
      });
    };
    start(0);
  });
}

export async function fuzzTarget(o: FuzzOptions): Promise<FuzzResult> {
  const log = o.log ?? (() => undefined);
  const corpusDir = o.corpusDir === undefined ? DEFAULT_CORPUS : o.corpusDir;
  const existing = corpusDir ? corpusFiles(corpusDir, o.target).map(readSidecar).filter((e): e is CorpusEntry => !!e) : [];
  const knownSignatures = new Set(existing.map((e) => e.signature));
  const seen = new Map<string, Finding & { count: number; known: boolean }>();
  const written: string[] = [];
  /** Hangs, memory blow-ups and crashes have no stack to tell them apart: keep a few of each per run. */
  const perKindFiles = new Map<string, number>();
  const stackless = (f: Finding) => f.kind === "hang" || f.kind === "memory" || f.kind === "crash";
  const record = (f: Finding) => {
    // Hangs and blow-ups have no stack: each input is its own signature, and a few are kept per run.
    if (stackless(f)) f.signature = `${f.kind} ${createHash("sha1").update(f.data).digest("hex").slice(0, 12)}`;
    const prev = seen.get(f.signature);
    if (prev) { prev.count++; return; }
    const known = knownSignatures.has(f.signature);
    seen.set(f.signature, { ...f, count: 1, known });
    log(`  ${known ? "known" : "NEW"} finding (${f.kind}) at iteration ${f.iteration}: ${f.error.split("\n")[0]}`);
    if (corpusDir && !known) {
      const n = perKindFiles.get(f.kind) ?? 0;
      if (!stackless(f) || n < 3) {
        perKindFiles.set(f.kind, n + 1);
        const file = writeFinding(corpusDir, f);
        written.push(file);
        log(`    -> ${file}${f.minimised ? ` (minimised from ${f.minimised.fromBytes} to ${f.data.length} bytes in ${f.minimised.runs} runs)` : ""}`);
      }
    }
  };
  const onRepeat = (signature: string) => {
    const prev = seen.get(signature);
    if (prev) prev.count++;
    else seen.set(signature, { kind: "error", target: o.target, seed: o.seed, iteration: -1, signature, error: signature, data: Buffer.alloc(0), meta: {}, count: 1, known: true });
  };
  const result = await supervise({
    mode: "fuzz", target: o.target, seed: o.seed, files: [],
    end: o.iterations ?? -1,
    fuzzMs: o.seconds !== undefined ? o.seconds * 1000 : o.iterations !== undefined ? 0 : 60_000,
    timeoutMs: o.timeoutMs ?? 2000, memoryLimitMb: o.memoryLimitMb ?? 512, minimise: o.minimise ?? true,
    known: [...knownSignatures],
    onMessage: (m) => {
      if (m.type === "finding") record({ ...m.finding, data: Buffer.from(m.finding.data) });
      else if (m.type === "repeat") onRepeat(m.signature);
    },
    onKilled: record,
    log,
  });
  const seconds = result.fuzzMs / 1000;
  return {
    target: o.target, seed: o.seed, iterations: result.iterations, seconds,
    execsPerSecond: seconds > 0 ? result.iterations / seconds : 0, setupMs: result.setupMs,
    findings: [...seen.values()], written, restarts: result.restarts,
  };
}

export interface ReplayResult {
  file: string;
  outcome: "ok" | "as2error" | "finding";
  code?: string;
  finding?: Finding;
}

/** Runs corpus files through their target (in a worker, with the same watchdog). */
export async function replayCorpus(target: string, files: string[], o: { timeoutMs?: number; memoryLimitMb?: number } = {}): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  if (!files.length) return results;
  await supervise({
    mode: "replay", target, seed: 0, files, end: -1, fuzzMs: 0,
    timeoutMs: o.timeoutMs ?? 2000, memoryLimitMb: o.memoryLimitMb ?? 512, minimise: false, known: [],
    onMessage: (m) => {
      if (m.type === "replayed") results.push({ file: m.file, outcome: m.outcome, code: m.code });
      else if (m.type === "finding") results.push({ file: m.finding.file!, outcome: "finding", finding: { ...m.finding, data: Buffer.from(m.finding.data) } });
    },
    onKilled: (f) => results.push({ file: f.file!, outcome: "finding", finding: f }),
    log: () => undefined,
  });
  return results;
}
