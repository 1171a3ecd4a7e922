/**
 * A small seeded PRNG (mulberry32) and helpers. Every random choice of the fuzzer goes through
 * one of these, so a run is reproducible from its seed (and one iteration from seed + index).
 */
import { Buffer } from "node:buffer";

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform 32-bit unsigned integer (mulberry32). */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    if (n <= 0) return 0;
    return Math.floor(this.float() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** Small sizes far more often than large ones (most interesting edits are a few bytes). */
  smallSize(max: number): number {
    const r = this.float();
    if (r < 0.5) return this.range(1, Math.min(4, max));
    if (r < 0.85) return this.range(1, Math.min(64, max));
    return this.range(1, Math.max(1, max));
  }
}

/** A 32-bit hash of a string (FNV-1a), to derive per-target and per-iteration seeds. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The PRNG of one iteration: independent of the others, so any iteration can be replayed alone. */
export function iterationRng(seed: number, target: string, iteration: number): Rng {
  return new Rng(hash32(`${seed}/${target}/${iteration}`));
}
