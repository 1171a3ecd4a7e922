/**
 * A summary index of the job records, so `as2 status` lists and filters 100,000 jobs without
 * opening 100,000 files. One line per save (a JSON array) is appended to <dataDir>/index/jobs.idx
 * under a lock; the last line for a runId wins. The index is a cache of the records, never the
 * truth: when it is missing, or when the jobs folder changed after the index did (a record
 * written by something that did not append: an older as2kit, a crash between the two writes,
 * records copied in or deleted by hand), it is brought up to date from the records themselves
 * and rewritten compactly.
 */
import { constants } from "node:fs";
import { mkdir, open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { JobRecord, JobState, JobType } from "./records.js";
import { writeFileAtomic } from "./atomic-file.js";
import { withLock } from "./lock-file.js";

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
function fromLine(line: string): JobSummary | undefined {
  try {
    const a = JSON.parse(line) as unknown[];
    if (!Array.isArray(a) || a.length !== FIELDS.length) return undefined;
    const s = Object.fromEntries(FIELDS.map((f, i) => [f, a[i] ?? undefined])) as unknown as JobSummary;
    return typeof s.runId === "string" ? s : undefined;
  } catch {
    return undefined; // a torn last line from a crash: the rebuild fills the gap
  }
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

  /** Every job's summary, newest first; rebuilt first when missing or stale. */
  async all(): Promise<JobSummary[]> {
    const [idx, dir] = await Promise.all([stat(this.file).catch(() => undefined), stat(this.jobsDir).catch(() => undefined)]);
    if (!dir) return [];
    let map: Map<string, JobSummary>;
    if (!idx) {
      map = await this.rewrite(Infinity); // missing: every record is read
    } else if (idx.mtimeMs < dir.mtimeMs) {
      map = await this.rewrite(idx.mtimeMs); // stale: records changed since the index are re-read
    } else {
      const parsed = this.parse(await readFile(this.file, "utf8"));
      map = parsed.map;
      // Superseded lines pile up (a send updates its record per file): compact now and then.
      if (parsed.lines > 2 * map.size + this.compactSlack) map = await this.rewrite(-Infinity);
    }
    return [...map.values()].sort((a, b) => (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0));
  }

  private parse(text: string): { map: Map<string, JobSummary>; lines: number } {
    const map = new Map<string, JobSummary>();
    let lines = 0;
    for (const line of text.split("\n")) {
      if (!line) continue;
      lines++;
      const s = fromLine(line);
      if (s) map.set(s.runId, s);
    }
    return { map, lines };
  }

  /**
   * Under the lock: takes the index's summaries for records whose file is older than
   * `changedSince` (ms; -Infinity trusts them all without a stat, Infinity none), reads the other
   * records, drops the ones that are gone, and writes the index anew.
   */
  private async rewrite(changedSince: number): Promise<Map<string, JobSummary>> {
    await mkdir(this.indexDir, { recursive: true, mode: 0o700 });
    return withLock(this.lock, "the job index", async () => {
      const old = changedSince === Infinity ? new Map<string, JobSummary>() : this.parse(await readFile(this.file, "utf8").catch(() => "")).map;
      const ids = await this.store.runIds();
      const map = new Map<string, JobSummary>();
      for (let i = 0; i < ids.length; i += REBUILD_BATCH) {
        await Promise.all(ids.slice(i, i + REBUILD_BATCH).map(async (id) => {
          const known = old.get(id);
          if (known) {
            const unchanged = changedSince === -Infinity || (await stat(join(this.jobsDir, `${id}.json`)).then((s) => s.mtimeMs < changedSince, () => false));
            if (unchanged) { map.set(id, known); return; }
          }
          const r = await this.store.load(id).catch(() => undefined);
          if (r) map.set(id, summaryOf(r));
        }));
      }
      await writeFileAtomic(this.file, [...map.values()].map(toLine).join(""));
      return map;
    });
  }
}
