/**
 * The fuzz worker: builds a target's seeds, then runs inputs one after the other. Before each input
 * it writes it to shared memory, so the watchdog in the main thread (engine.ts) can name the input
 * when this thread hangs in synchronous code or dies of memory exhaustion. Async hangs are caught
 * here (a per-input timeout); the worker then asks to be replaced, since whatever hung may still
 * be running. Findings of kind "error" are minimised here, where re-running is cheap.
 */
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { As2Error } from "../../../src/core/index.js";
import { iterationRng } from "./prng.js";
import { createTarget, type FuzzInput, type InputMeta } from "./targets.js";
import { markIdle, writeCurrent, type Finding, type FindingKind, type WorkerData, type WorkerMessage } from "./protocol.js";

const wd = workerData as WorkerData;
// Deep enough to reach project code under asn1js's and pkijs's own frames (V8 keeps 10 by default).
Error.stackTraceLimit = 60;
const post = (m: WorkerMessage) => parentPort!.postMessage(m);

/** Stable across runs: digits, hex and quoted parts of messages vary with the input. */
function normalise(message: string): string {
  return message.split("\n")[0]!.replace(/0x[0-9a-f]+/gi, "H").replace(/\d+/g, "N").replace(/"[^"]*"|'[^']*'/g, "Q").slice(0, 160);
}

/** Where the fix belongs: the first stack frame in project code (else in a dependency), without line numbers. */
function site(stack: string | undefined): string {
  const frames = (stack ?? "").split("\n").slice(1).map((l) => l.trim());
  const at = (dir: string) => {
    for (const line of frames) {
      const m = new RegExp(`\\/(${dir}\\/[^():\\s]+)(?::\\d+:\\d+)?\\)?$`).exec(line);
      if (m) {
        const fn = /^at (?:async )?(.+?)(?: \[as [^\]]+\])? \(/.exec(line)?.[1];
        return `${m[1]}${fn ? `:${fn}` : ""}`;
      }
    }
    return undefined;
  };
  return at("src") ?? at("node_modules") ?? "?";
}

interface Outcome {
  kind: FindingKind | "ok" | "as2error";
  error?: unknown;
  code?: string;
}

function describe(e: unknown): { name: string; message: string; stack?: string } {
  if (e instanceof Error) return { name: e.constructor?.name ?? e.name, message: e.message, stack: e.stack };
  return { name: typeof e, message: String(e) };
}

function signatureOf(kind: FindingKind, e: unknown): string {
  if (kind === "hang" || kind === "memory") return kind;
  const d = describe(e);
  return `${kind}: ${d.name}: ${normalise(d.message)} @ ${site(d.stack)}`;
}

/** Unhandled rejections and uncaught exceptions while an input runs are that input's findings. */
let stray: { kind: FindingKind; error: unknown } | undefined;
process.on("unhandledRejection", (e) => { stray ??= { kind: "unhandled", error: e }; });
process.on("uncaughtException", (e) => { stray ??= { kind: "unhandled", error: e }; });

/** This thread's heap and buffers (the watchdog watches the whole process's RSS as well). */
const memoryInUse = () => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
let baseline = 0;

async function runOne(run: (i: FuzzInput) => Promise<void>, input: FuzzInput, timeoutMs = wd.timeoutMs): Promise<Outcome> {
  stray = undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((res) => { timer = setTimeout(() => res("timeout"), timeoutMs); });
  let outcome: Outcome;
  try {
    const r = await Promise.race([run(input).then(() => "ok" as const), timeout]);
    outcome = r === "timeout" ? { kind: "hang" } : { kind: "ok" };
  } catch (e) {
    outcome = e instanceof As2Error ? { kind: "as2error", code: e.code } : { kind: "error", error: e };
  } finally {
    clearTimeout(timer);
  }
  // Let stray rejections of this input surface before the next one starts.
  await new Promise((res) => setImmediate(res));
  const late = stray as { kind: FindingKind; error: unknown } | undefined; // set by the process handlers meanwhile
  if (late && outcome.kind !== "error" && outcome.kind !== "hang") outcome = { kind: late.kind, error: late.error };
  const used = memoryInUse();
  if (outcome.kind !== "hang" && used - baseline > wd.memoryLimitMb * 1024 * 1024) {
    globalThis.gc?.();
    if (memoryInUse() - baseline > wd.memoryLimitMb * 1024 * 1024) outcome = { kind: "memory", error: new Error(`heap + buffers ${Math.round((used - baseline) / 2 ** 20)} MiB over the baseline`) };
  }
  return outcome;
}

/**
 * A run that timed out is run once more with five times the time: on a loaded machine (CI, two
 * cores shared with a test suite) a slow input is not a hang. Only what times out again is one.
 */
async function confirmed(run: (i: FuzzInput) => Promise<void>, input: FuzzInput, position: number, first: Outcome): Promise<Outcome> {
  if (first.kind !== "hang") return first;
  writeCurrent(wd.shared, position, input.data, input.meta, wd.timeoutMs * 5);
  return runOne(run, input, wd.timeoutMs * 5);
}

/** Shrinks the data (then the headers) while the same finding reproduces: halves, then smaller chunks. */
async function minimise(run: (i: FuzzInput) => Promise<void>, input: FuzzInput, signature: string, position: number): Promise<{ input: FuzzInput; runs: number }> {
  let best = input;
  let runs = 0;
  const started = Date.now();
  const budget = () => runs < 3000 && Date.now() - started < 15000;
  const same = async (candidate: FuzzInput) => {
    runs++;
    writeCurrent(wd.shared, position, candidate.data, candidate.meta, wd.timeoutMs); // the watchdog sees each candidate
    const o = await runOne(run, candidate);
    markIdle(wd.shared);
    return (o.kind === "error" || o.kind === "unhandled") && signatureOf(o.kind, o.error) === signature;
  };
  for (let chunk = Math.max(1, best.data.length >> 1); chunk >= 1 && budget(); chunk >>= 1) {
    for (let i = 0; i < best.data.length && budget();) {
      const candidate = { data: Buffer.concat([best.data.subarray(0, i), best.data.subarray(i + chunk)]), meta: best.meta };
      if (await same(candidate)) best = candidate;
      else i += chunk;
    }
  }
  for (const name of Object.keys(best.meta.headers ?? {})) {
    if (!budget()) break;
    const headers = { ...best.meta.headers };
    delete headers[name];
    const candidate = { data: best.data, meta: { ...best.meta, headers } };
    if (await same(candidate)) best = candidate;
  }
  if (best.meta.chunk && budget()) {
    const candidate = { data: best.data, meta: { ...best.meta, chunk: 0 } };
    if (await same(candidate)) best = candidate;
  }
  return { input: best, runs };
}

function report(kind: FindingKind, error: unknown, input: FuzzInput, iteration: number, extra: Partial<Finding> = {}): void {
  const d = describe(error);
  post({
    type: "finding",
    finding: {
      kind, target: wd.target, seed: wd.seed, iteration,
      signature: signatureOf(kind, error),
      error: kind === "hang" ? `no result within ${wd.timeoutMs} ms, nor within ${wd.timeoutMs * 5} ms when run again` : `${d.name}: ${d.message}`,
      stack: d.stack, data: new Uint8Array(input.data), meta: input.meta, ...extra,
    },
  });
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const target = await createTarget(wd.target, wd.seed);
  post({ type: "ready", seeds: target.seeds.length, setupMs: Date.now() - t0 });
  const deadline = wd.budgetMs > 0 ? Date.now() + wd.budgetMs : 0;
  globalThis.gc?.();
  baseline = memoryInUse();
  let iterations = 0;
  const seen = new Set(wd.known);
  let lastProgress = Date.now();
  const progress = (position: number) => {
    if (Date.now() - lastProgress > 250) {
      lastProgress = Date.now();
      post({ type: "progress", position, iterations });
    }
  };

  if (wd.mode === "replay") {
    for (let i = wd.start; i < wd.files.length; i++) {
      const file = wd.files[i]!;
      const data = readFileSync(file);
      let meta: InputMeta = {};
      try {
        meta = (JSON.parse(readFileSync(file.replace(/\.bin$/, ".json"), "utf8")) as { meta?: InputMeta }).meta ?? {};
      } catch {
        /* a corpus file without a sidecar runs with default options */
      }
      const input = { data, meta };
      writeCurrent(wd.shared, i, data, meta, wd.timeoutMs);
      const o = await confirmed(target.run, input, i, await runOne(target.run, input));
      markIdle(wd.shared);
      iterations++;
      if (o.kind === "ok" || o.kind === "as2error") post({ type: "replayed", index: i, file, outcome: o.kind, code: o.code });
      else {
        report(o.kind, o.error, input, -1, { file });
        if (o.kind === "hang" || o.kind === "memory") {
          post({ type: "restart", next: i + 1, iterations });
          return;
        }
      }
    }
    post({ type: "done", iterations });
    return;
  }

  for (let i = wd.start; wd.end < 0 || i < wd.end; i++) {
    if (deadline && Date.now() >= deadline) break;
    const input = await target.mutate(iterationRng(wd.seed, wd.target, i));
    writeCurrent(wd.shared, i, input.data, input.meta, wd.timeoutMs);
    const o = await confirmed(target.run, input, i, await runOne(target.run, input));
    markIdle(wd.shared);
    iterations++;
    if (o.kind === "error" || o.kind === "unhandled") {
      const signature = signatureOf(o.kind, o.error);
      if (seen.has(signature)) {
        post({ type: "repeat", signature, iteration: i });
        progress(i);
        continue;
      }
      seen.add(signature);
      let shown = input;
      let minimised: Finding["minimised"];
      if (wd.minimise && o.kind === "error") {
        const m = await minimise(target.run, input, signature, i);
        shown = m.input;
        minimised = { fromBytes: input.data.length, runs: m.runs };
      }
      report(o.kind, o.error, shown, i, { minimised });
    } else if (o.kind === "hang" || o.kind === "memory") {
      report(o.kind, o.error, input, i);
      post({ type: "restart", next: i + 1, iterations });
      return;
    }
    progress(i);
  }
  post({ type: "done", iterations });
}

// A failure of the harness itself (seed building) must not be taken for a finding.
main().catch((e) => {
  post({ type: "fatal", error: e instanceof Error ? e.stack ?? e.message : String(e) });
  setImmediate(() => process.exit(1));
});
