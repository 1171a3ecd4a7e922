/**
 * The segment files of the job index (layout in job-index.ts): appending a line without a lock,
 * reading a segment in pieces, summing it up, and replacing it without losing a line that a
 * concurrent appender wrote meanwhile.
 *
 * Appends take no lock: a single write(2) of one short line to a file opened with O_APPEND lands
 * whole at the end of the file, between the lines of other processes, never inside one. What an
 * append must still survive is a rewrite (compaction, prune, rebuild) renaming a new file over the
 * one it wrote to. So after writing, the appender compares the inode it wrote to with the one now
 * at the path, and appends again when they differ; and the rewriter, after its rename, re-reads
 * whatever was appended to the old file after it took its content and re-appends those jobs'
 * current summaries (from their records, the truth) to the new file.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { linesOfFd } from "./line-reader.js";
import { parseRows, rowText, runIdOfRow, type JobSummary } from "./job-summary.js";
import { UNFINISHED_STATES } from "./job-query.js";

/** A segment holds the jobs whose run ID (their start time) falls in one UTC hour. */
export const SEGMENT_RE = /^(\d{8}T\d{2})\.idx$/;

/** 20261122T16 of 20261122T163120123Z-1a2b3c4d5e6f. */
export const segmentKeyOf = (runId: string): string => runId.slice(0, 11);
export const segmentName = (key: string): string => `${key}.idx`;

/** The start of the segment's hour, in ms. */
export function segmentStart(key: string): number {
  return Date.UTC(+key.slice(0, 4), +key.slice(4, 6) - 1, +key.slice(6, 8), +key.slice(9, 11));
}

/** A 32-bit FNV-1a of a run ID: the XOR over a set of them tells two sets apart cheaply. */
export function idHash(runId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < runId.length; i++) h = Math.imul(h ^ runId.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function inodeAt(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Appends one line (with its "\n") to the segment, creating it if need be; again when a rewrite
 * replaced the file while the line was being written (see the module comment).
 */
export function appendLine(path: string, line: string): void {
  for (let attempt = 0; attempt < 5; attempt++) {
    const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    let wroteTo: number;
    try {
      writeSync(fd, line);
      wroteTo = fstatSync(fd).ino;
    } finally {
      closeSync(fd);
    }
    if (inodeAt(path) === wroteTo) return;
  }
}

/** A segment as read: the last row per run ID, unparsed, and what was read. */
export interface SegmentRows {
  rows: Map<string, string>;
  /** Jobs whose last line is an intent (a save begun and not finished: in flight, or died). */
  intents: string[];
  lines: number;
  size: number;
  ino: number;
}

/** Reads the segment (up to its size when opened), last row per run ID winning. */
export function readSegment(path: string): SegmentRows | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    const { size, ino } = fstatSync(fd);
    return { ...rowsOf(linesOfFd(fd, 0, size)), size, ino };
  } finally {
    closeSync(fd);
  }
}

/** The intent line a save appends before it writes the record: `["<runId>"]`. */
export const intentLine = (runId: string): string => `["${runId}"]\n`;

function rowsOf(lines: Iterable<string>): { rows: Map<string, string>; intents: string[]; lines: number } {
  const rows = new Map<string, string>();
  const intents = new Set<string>();
  let n = 0;
  for (const line of lines) {
    if (!line) continue;
    n++;
    const row = rowText(line);
    const id = row && runIdOfRow(row);
    if (!id) continue;
    if (row!.length === id.length + 4) {
      intents.add(id); // the job's row before it stays the one shown
      continue;
    }
    intents.delete(id);
    rows.delete(id); // keeps the map in order of each job's last line
    rows.set(id, row!);
  }
  return { rows, intents: [...intents], lines: n };
}

/** Counts of a segment, so that most queries need not read it (kept in the catalog). */
export interface SegmentSums {
  size: number;
  ino: number;
  lines: number;
  /** Jobs in the segment. */
  n: number;
  /** XOR of idHash over its run IDs (compared with the records' during a reconcile). */
  xor: number;
  /** Jobs per "partner\ttype\tstate". */
  counts: Record<string, number>;
  /** Earliest and latest startTime (for --since). */
  minStart: string;
  maxStart: string;
  /** Unfinished jobs (a reconcile re-reads their records when changed). */
  unfinished: number;
}

export const countKey = (s: Pick<JobSummary, "partner" | "type" | "state">): string => `${s.partner}\t${s.type}\t${s.state}`;

/**
 * Parses every row of a segment: the summaries, newest first, and the sums. Rows that do not
 * parse (a line damaged in the middle) are left out, as if absent.
 */
export function summarise(seg: SegmentRows): { summaries: JobSummary[]; sums: SegmentSums } {
  const ids = [...seg.rows.keys()];
  const parsed = parseRows(ids.map((id) => seg.rows.get(id)!));
  const summaries = parsed.filter((s): s is JobSummary => !!s).sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
  const sums: SegmentSums = { size: seg.size, ino: seg.ino, lines: seg.lines, n: 0, xor: 0, counts: {}, minStart: "", maxStart: "", unfinished: 0 };
  for (const s of summaries) {
    sums.n++;
    sums.xor = (sums.xor ^ idHash(s.runId)) >>> 0;
    const k = countKey(s);
    sums.counts[k] = (sums.counts[k] ?? 0) + 1;
    if (!sums.minStart || s.startTime < sums.minStart) sums.minStart = s.startTime;
    if (!sums.maxStart || s.startTime > sums.maxStart) sums.maxStart = s.startTime;
    if (UNFINISHED_STATES.includes(s.state)) sums.unfinished++;
  }
  return { summaries, sums };
}

/**
 * Replaces a segment's content with `lines` (rows with their "\n"; empty: the segment goes),
 * keeping every line appended meanwhile: `content` is called after the old file was opened and
 * its size taken; after the rename, each job appended to the old file past that size gets its
 * current summary appended again through `reappend` (which reads the record). Only one rewriter
 * runs at a time (the caller holds the index's rebuild lock); appenders run alongside.
 */
export function replaceSegment(path: string, content: (old: SegmentRows) => string[], reappend: (runId: string) => void): void {
  // Create the file if missing and hold it open: an appender that creates it meanwhile writes
  // to this inode, which the tail read below then sees.
  const oldFd = openSync(path, constants.O_RDONLY | constants.O_CREAT, 0o600);
  try {
    const { size, ino } = fstatSync(oldFd);
    const lines = content({ ...rowsOf(linesOfFd(oldFd, 0, size)), size, ino });
    if (lines.length) {
      const tmp = join(dirname(path), `.${randomBytes(6).toString("hex")}.tmp`);
      const fd = openSync(tmp, "wx", 0o600);
      try {
        // In pieces: a whole segment as one string could be large.
        for (let i = 0; i < lines.length; i += 4096) writeSync(fd, lines.slice(i, i + 4096).join(""));
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } else {
      rmSync(path, { force: true });
    }
    const late = rowsOf(linesOfFd(oldFd, size)).rows;
    for (const id of late.keys()) reappend(id);
  } finally {
    closeSync(oldFd);
  }
}

/** The file's size and inode, or undefined when it is gone. */
export function fileId(path: string): { size: number; ino: number } | undefined {
  try {
    const { size, ino } = statSync(path);
    return { size, ino };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** A record file as JSON, or undefined when it is missing or unreadable. */
export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}
