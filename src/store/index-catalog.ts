/**
 * The job index's catalog (layout in job-index.ts): per hour segment its sums, kept in one file
 * so that a listing reads one file instead of ten thousand. Loaded as it was stored: the counts
 * of a segment stay pairs of numbers (an index into the catalog's table of "partner\ttype\tstate"
 * keys, and a count), because a listing of ten million jobs needs the counts of a few segments
 * only, and an object per count per segment cost a cold process more than the rest of the list.
 */
import { closeSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import type { SegmentSums } from "./index-segments.js";
import type { JobSummary } from "./job-summary.js";

/** A segment's sums as the catalog keeps them: counts as [keyIndex, n, keyIndex, n, ...]. */
export type CatalogEntry = Omit<SegmentSums, "counts"> & { counts: number[] };
export type CountParts = Pick<JobSummary, "partner" | "type" | "state">;

export class Catalog {
  private readonly keyIndex = new Map<string, number>();
  private readonly parts: CountParts[] = [];
  /** The stamp's time when a reader last checked every segment against its entry. */
  checkedAt: number | undefined;

  private constructor(private readonly file: string, readonly keys: string[], private readonly entries: Map<string, CatalogEntry>) {
    keys.forEach((k, i) => {
      this.keyIndex.set(k, i);
      this.parts.push(partsOf(k));
    });
  }

  static load(file: string): Catalog {
    try {
      const c = JSON.parse(readFileSync(file, "utf8")) as { v: 2; checkedAt?: number; keys: string[]; segments: Array<[string, CatalogEntry]> };
      if (c.v !== 2) throw new Error("an earlier catalog");
      const catalog = new Catalog(file, c.keys, new Map(c.segments));
      catalog.checkedAt = c.checkedAt;
      return catalog;
    } catch {
      return new Catalog(file, [], new Map());
    }
  }

  get(segment: string): CatalogEntry | undefined {
    return this.entries.get(segment);
  }

  set(segment: string, sums: SegmentSums): CatalogEntry {
    const counts: number[] = [];
    for (const [k, n] of Object.entries(sums.counts)) {
      let i = this.keyIndex.get(k);
      if (i === undefined) {
        i = this.keys.push(k) - 1;
        this.keyIndex.set(k, i);
        this.parts.push(partsOf(k));
      }
      counts.push(i, n);
    }
    const entry = { ...sums, counts };
    this.entries.set(segment, entry);
    return entry;
  }

  delete(segment: string): boolean {
    return this.entries.delete(segment);
  }

  segments(): string[] {
    return [...this.entries.keys()];
  }

  /** How many count keys there are (a segment summed during a query may add some). */
  get keyCount(): number {
    return this.parts.length;
  }

  /** Per count key, whether a filter takes it (computed once per query, not per segment). */
  keyFilter(matches: (p: CountParts) => boolean): boolean[] {
    return this.parts.map(matches);
  }

  /** The jobs of a segment that the filter takes. */
  static count(entry: CatalogEntry, taken: readonly boolean[]): number {
    let n = 0;
    for (let i = 0; i < entry.counts.length; i += 2) if (taken[entry.counts[i]!]) n += entry.counts[i + 1]!;
    return n;
  }

  /** Written whole and atomically (not fsynced: it is a cache, checked before it is trusted). */
  save(checkedAt?: number): void {
    const tmp = join(dirname(this.file), `.catalog.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, JSON.stringify({ v: 2, checkedAt, keys: this.keys, segments: [...this.entries] }));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }
}

function partsOf(k: string): CountParts {
  const [partner, type, state] = k.split("\t") as [string, JobSummary["type"], JobSummary["state"]];
  return { partner, type, state };
}
