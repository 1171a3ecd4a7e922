/**
 * A summary index of the job records, so `as2 status` lists and filters 100,000 jobs without
 * opening 100,000 files. One line per save (a JSON array) is appended to <dataDir>/index/jobs.idx
 * under a lock; the last line for a runId wins. The index is a cache of the records, never the
 * truth: when it is missing, or when the jobs folder changed after the index did (a record
 * written by something that did not append: an older as2kit, a crash between the two writes,
 * records copied in or deleted by hand), it is brought up to date from the records themselves
 * and rewritten compactly. Only new records and those of unfinished jobs are re-read then: a
 * finished job's record does not change. Deleting the index makes the next listing rebuild it.
 */
import { constants } from "node:fs";
import { mkdir, open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { JobRecord, JobState, JobType } from "./records.js";
import { writeFileAtomic } from "./atomic-file.js";
import { withLock } from "./lock-file.js";
import { UNFINISHED_STATES, queryJobs, type JobPage, type JobQuery } from "./job-query.js";

function newestFirst(map: Map<string, unknown>): string[] {
  // Run IDs sort by time (job-store.ts newRunId).
  return [...map.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
}

/** What the list shows and filters on (contract §2 `as2 status` columns). */
export interface JobSummary {
  runId: string;
  type: JobType;
  command: string;
  partner: string;
  senderId: string;
  receiverId: string;
  state: JobState;
  startTime: string;
  endTime?: string;
  files: number;
  /** The MDN column: the messages' mdnStatus, e.g. "Received" or "Received 2, Pending 1". */
  mdn: string;
}

export function summaryOf(r: JobRecord): JobSummary {
  const counts = new Map<string, number>();
  for (const m of r.messages) counts.set(m.mdnStatus, (counts.get(m.mdnStatus) ?? 0) + 1);
  const mdn = counts.size <= 1 ? ([...counts.keys()][0] ?? "") : [...counts].map(([k, v]) => `${k} ${v}`).join(", ");
  return {
    runId: r.runId, type: r.type, command: r.command, partner: r.partner, senderId: r.senderId, receiverId: r.receiverId,
    state: r.state, startTime: r.startTime, endTime: r.endTime, files: r.files.length, mdn,
  };
}

const FIELDS = ["runId", "type", "command", "partner", "senderId", "receiverId", "state", "startTime", "endTime", "files", "mdn"] as const;
const toLine = (s: JobSummary) => `${JSON.stringify(FIELDS.map((f) => s[f] ?? null))}\n`;
function fromRow(a: unknown): JobSummary | undefined {
  if (!Array.isArray(a) || a.length !== FIELDS.length || typeof a[0] !== "string") return undefined;
  // Field by field, not Object.fromEntries: this runs 100,000 times per listing.
  return {
    runId: a[0], type: a[1], command: a[2], partner: a[3], senderId: a[4], receiverId: a[5], state: a[6], startTime: a[7],
    endTime: a[8] ?? undefined, files: a[9], mdn: a[10],
  } as JobSummary;
}

function fromLine(line: string): JobSummary | undefined {
  try {
    return fromRow(JSON.parse(line));
  } catch {
    return undefined; // a torn last line from a crash: the rebuild fills the gap
  }
}

/** A summary, or the index line it is still to be parsed from. */
type Entry = JobSummary | string;

/** Parses the entries that are still lines; drops the ones that do not parse. */
function summariesOf(map: Map<string, Entry>, runIds: readonly string[]): JobSummary[] {
  const pending = runIds.filter((id) => typeof map.get(id) === "string");
  if (pending.length) {
    // One JSON.parse for all of them is several times faster than one per line; if some line
    // is damaged after all, they are parsed one by one.
    let rows: unknown[] | undefined;
    try {
      rows = JSON.parse(`[${pending.map((id) => map.get(id) as string).join(",")}]`) as unknown[];
    } catch {
      rows = undefined;
    }
    pending.forEach((id, i) => {
      const s = rows ? fromRow(rows[i]) : fromLine(map.get(id) as string);
      if (s) map.set(id, s);
      else map.delete(id);
    });
  }
  return runIds.map((id) => map.get(id)).filter((s): s is JobSummary => typeof s === "object");
}

/** How many records are read at once while rebuilding. */
const REBUILD_BATCH = 64;

export class JobIndex {
  readonly file: string;
  private readonly lock: string;

  /**
   * @param compactSlack superseded lines tolerated beyond twice the number of jobs before the
   *   index is compacted
   */
  constructor(
    private readonly indexDir: string,
    private readonly jobsDir: string,
    private readonly store: { load(runId: string): Promise<JobRecord | undefined>; runIds(): Promise<string[]> },
    private readonly compactSlack = 1000,
  ) {
    this.file = join(indexDir, "jobs.idx");
    this.lock = join(indexDir, ".jobs.idx.lock");
  }

  /**
   * Called after each record save. Appends only to an existing index: creating it here would
   * make a one-line index look complete, so a missing index waits for the next rebuild.
   */
  async append(summary: JobSummary): Promise<void> {
    if (!(await stat(this.file).then(() => true, () => false))) return;
    await withLock(this.lock, "the job index", async () => {
      let fh;
      try {
        fh = await open(this.file, constants.O_RDWR | constants.O_APPEND);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
        throw e;
      }
      try {
        // After a crash mid-append the file may end in a torn line: start on a fresh one.
        const { size } = await fh.stat();
        const last = Buffer.alloc(1);
        if (size > 0) await fh.read(last, 0, 1, size - 1);
        await fh.write(size > 0 && last[0] !== 0x0a ? `\n${toLine(summary)}` : toLine(summary));
      } finally {
        await fh.close();
      }
    });
  }

  /** The index's entries, brought up to date first when it is missing or stale. */
  private async entries(): Promise<Map<string, Entry>> {
    const [idx, dir] = await Promise.all([stat(this.file).catch(() => undefined), stat(this.jobsDir).catch(() => undefined)]);
    if (!dir) return new Map();
    if (!idx) return this.rewrite(Infinity); // missing: every record is read
    if (idx.mtimeMs < dir.mtimeMs) return this.rewrite(idx.mtimeMs); // stale: records changed since the index are re-read
    const parsed = this.parse(await readFile(this.file, "utf8"));
    // Superseded lines pile up (a send updates its record per file): compact now and then.
    if (parsed.lines > 2 * parsed.map.size + this.compactSlack) return this.rewrite(-Infinity);
    return parsed.map;
  }

  /** Every job's summary, newest first. */
  async all(): Promise<JobSummary[]> {
    const map = await this.entries();
    return summariesOf(map, newestFirst(map));
  }

  /**
   * One page of the list (contract §2 `as2 status`), newest first. Without filters only the
   * page's own lines are parsed; the count is the number of jobs in the index.
   */
  async query(q: JobQuery): Promise<JobPage> {
    const map = await this.entries();
    const ids = newestFirst(map);
    const filtered = q.partner !== undefined || q.direction !== undefined || q.state !== undefined || q.since !== undefined;
    if (filtered) {
      // A line can only match if it holds each wanted value as JSON: parse only those lines.
      const type = q.direction === "send" ? "AS2 Send" : q.direction === "receive" ? "AS2 Receive" : undefined;
      const needles = [q.partner, q.state, type].filter((v) => v !== undefined).map((v) => JSON.stringify(v));
      const candidates = ids.filter((id) => {
        const e = map.get(id)!;
        return typeof e !== "string" || needles.every((n) => e.includes(n));
      });
      return queryJobs(summariesOf(map, candidates), q);
    }
    const records = summariesOf(map, ids.slice(q.offset, q.offset + q.length));
    // A line that turned out not to parse is gone from the map: count what is left.
    return { totalRecords: map.size, records };
  }

  /**
   * The index's lines by run ID, the last one winning, each left unparsed: a listing parses only
   * what it shows or filters on (100,000 JSON.parse calls cost most of a second). A line that
   * does not end in "]" is a torn one and is skipped.
   */
  private parse(text: string): { map: Map<string, Entry>; lines: number } {
    const map = new Map<string, Entry>();
    let lines = 0;
    for (const line of text.split("\n")) {
      if (!line) continue;
      lines++;
      if (!line.startsWith('["') || !line.endsWith("]")) continue;
      const end = line.indexOf('"', 2);
      if (end > 2) map.set(line.slice(2, end), line);
    }
    return { map, lines };
  }

  /**
   * Under the lock: takes the index's summaries of finished jobs, and of unfinished ones whose
   * record is older than `changedSince` (ms; -Infinity trusts them all without a stat, Infinity
   * none), reads the other records (new ones among them), drops the ones that are gone, and
   * writes the index anew. Deleting the index forces a full rebuild.
   */
  private async rewrite(changedSince: number): Promise<Map<string, Entry>> {
    await mkdir(this.indexDir, { recursive: true, mode: 0o700 });
    return withLock(this.lock, "the job index", async () => {
      const lines = changedSince === Infinity ? new Map<string, Entry>() : this.parse(await readFile(this.file, "utf8").catch(() => "")).map;
      const old = new Map(summariesOf(lines, [...lines.keys()]).map((s) => [s.runId, s]));
      const ids = await this.store.runIds();
      const map = new Map<string, Entry>();
      for (let i = 0; i < ids.length; i += REBUILD_BATCH) {
        await Promise.all(ids.slice(i, i + REBUILD_BATCH).map(async (id) => {
          const known = old.get(id);
          if (known) {
            // A finished job's record is not written again (a restart is a new job), so only
            // unfinished ones are looked at: 100,000 stats would take seconds.
            const unchanged = changedSince === -Infinity || !UNFINISHED_STATES.includes(known.state)
              || (await stat(join(this.jobsDir, `${id}.json`)).then((s) => s.mtimeMs < changedSince, () => false));
            if (unchanged) { map.set(id, known); return; }
          }
          const r = await this.store.load(id).catch(() => undefined);
          if (r) map.set(id, summaryOf(r));
        }));
      }
      await writeFileAtomic(this.file, [...map.values()].map((s) => toLine(s as JobSummary)).join(""));
      return map;
    });
  }
}
