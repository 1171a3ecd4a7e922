/** What the fuzz worker and its watchdog (engine.ts) tell each other. */
import { Buffer } from "node:buffer";
import type { InputMeta } from "./targets.js";

export type FindingKind = "error" | "hang" | "memory" | "crash" | "unhandled";

export interface Finding {
  kind: FindingKind;
  target: string;
  seed: number;
  /** Fuzz iteration, or -1 for a replayed corpus file. */
  iteration: number;
  /** Groups findings with the same cause: kind, error class, message shape, first project frame. */
  signature: string;
  error: string;
  stack?: string;
  data: Buffer;
  meta: InputMeta;
  minimised?: { fromBytes: number; runs: number };
  file?: string;
}

export interface WorkerData {
  mode: "fuzz" | "replay";
  target: string;
  seed: number;
  /** fuzz: first iteration and the end (exclusive; -1 = none); replay: index into files. */
  start: number;
  end: number;
  /** Fuzzing time once the seeds are built (ms), 0 = no time bound. */
  budgetMs: number;
  timeoutMs: number;
  memoryLimitMb: number;
  minimise: boolean;
  files: string[];
  /** Signatures already in the corpus or reported: counted, not minimised again. */
  known: string[];
  shared: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: "ready"; seeds: number; setupMs: number }
  | { type: "progress"; position: number; iterations: number }
  | { type: "finding"; finding: Omit<Finding, "data"> & { data: Uint8Array } }
  | { type: "repeat"; signature: string; iteration: number }
  | { type: "replayed"; index: number; file: string; outcome: "ok" | "as2error"; code?: string }
  | { type: "restart"; next: number; iterations: number }
  | { type: "done"; iterations: number }
  | { type: "fatal"; error: string };

/**
 * Shared state: [0] state (1 = running an input), [1] position, [2] data length, [3] meta length,
 * [4] runs started (the watchdog's sign of life: minimisation runs one position many times),
 * [5] this run's time limit in ms; then meta JSON and data.
 */
export const SHARED_HEADER = 32;
export const SHARED_BYTES = 4 * 1024 * 1024;

export function writeCurrent(shared: SharedArrayBuffer, position: number, data: Uint8Array, meta: InputMeta, timeoutMs: number): void {
  const head = new Int32Array(shared, 0, 8);
  const metaBytes = Buffer.from(JSON.stringify(meta));
  const room = SHARED_BYTES - SHARED_HEADER - metaBytes.length;
  const body = new Uint8Array(shared, SHARED_HEADER);
  body.set(metaBytes, 0);
  const n = Math.max(0, Math.min(data.byteLength, room));
  body.set(data.subarray(0, n), metaBytes.length);
  Atomics.store(head, 1, position);
  Atomics.store(head, 2, n);
  Atomics.store(head, 3, metaBytes.length);
  Atomics.store(head, 5, timeoutMs);
  Atomics.add(head, 4, 1);
  Atomics.store(head, 0, 1);
}

export function markIdle(shared: SharedArrayBuffer): void {
  Atomics.store(new Int32Array(shared, 0, 8), 0, 0);
}

export function readCurrent(shared: SharedArrayBuffer): { running: boolean; position: number; runs: number; timeoutMs: number; data: Buffer; meta: InputMeta } {
  const head = new Int32Array(shared, 0, 8);
  const running = Atomics.load(head, 0) === 1;
  const runs = Atomics.load(head, 4);
  const timeoutMs = Atomics.load(head, 5);
  const position = Atomics.load(head, 1);
  const n = Atomics.load(head, 2);
  const m = Atomics.load(head, 3);
  const body = Buffer.from(new Uint8Array(shared, SHARED_HEADER));
  let meta: InputMeta = {};
  try {
    meta = JSON.parse(body.subarray(0, m).toString()) as InputMeta;
  } catch {
    /* torn read while the worker was writing: the data is still useful */
  }
  return { running, position, runs, timeoutMs, data: Buffer.from(body.subarray(m, m + n)), meta };
}
