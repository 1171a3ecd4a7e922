/**
 * Job records on disk (contract.md §5): one JSON file per job under <dataDir>/jobs/, written
 * atomically (temp file, fsync, rename, fsync of the folder) so a reader never sees half a
 * record, and updated under a lock file so several `as2` processes (cron overlap, a receive
 * server recording an async MDN for a send job) never lose each other's changes.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { As2Error, ErrorCodes } from "../core/errors.js";
import { isRunId, statusCodeOf, type JobRecord } from "./records.js";
import { JobIndex, summaryOf, type JobSummary, type PruneVictim } from "./job-index.js";
import type { JobPage, JobQuery } from "./job-query.js";
import { writeFileAtomic } from "./atomic-file.js";
import { withLock } from "./lock-file.js";

/** A run ID that is unique and sorts by time: 20261122T163120123Z-<12 hex>. */
export function newRunId(now: Date, random: (n: number) => Buffer = randomBytes): string {
  return `${now.toISOString().replace(/[-:.]/g, "")}-${random(6).toString("hex")}`;
}

/**
 * The job records as their callers use them; the file JobStore below and the PostgreSQL store
 * (postgres/jobs.ts) implement it.
 */
export interface JobRecordStore {
  /** Writes the whole record; statusCode always follows state. `durable` false: no fsync (the caller journals the change). */
  save(record: JobRecord, durable?: boolean): Promise<void>;
  load(runId: string): Promise<JobRecord | undefined>;
  /** Run IDs, newest first. */
  runIds(): Promise<string[]>;
  /** Every job's summary, newest first. */
  summaries(): Promise<JobSummary[]>;
  /** One page of the list, filtered (contract §2 `as2 status`). */
  query(q: JobQuery): Promise<JobPage>;
  /** Read-modify-write that never loses a concurrent process's change. */
  update(runId: string, change: (r: JobRecord) => void | Promise<void>, options?: UpdateOptions): Promise<JobRecord>;
  /**
   * Retention (`as2 prune`): every finished job that ended before `cutoff` (ms) is shown to
   * `visit`, then removed unless `dryRun`. Never a NOT_STARTED, ONGOING or AWAITING_MDN job.
   */
  prune(cutoff: number, dryRun: boolean, visit: (v: PruneVictim) => Promise<void>): Promise<void>;
}

/** How update() may save a record (the defaults are the safe ones). */
export interface UpdateOptions {
  /**
   * Skip the fsyncs (the record is still replaced atomically, and current after a SIGKILL); for
   * a caller that keeps its own durable journal of the change (send-journal.ts).
   */
  durable?: boolean;
  /**
   * Start from the record this process saved last, when the file is still exactly the one it
   * wrote (same inode, size and change time: any other writer renames a new file into place), instead
   * of reading and parsing it again. The record returned is then shared: read it, do not change it.
   */
  reuse?: boolean;
}

/** How many records update({ reuse }) keeps (a send job needs one; a receive server many, briefly). */
const REUSE_KEEP = 4;

export class JobStore implements JobRecordStore {
  readonly dir: string;
  private ready: Promise<void> | undefined;
  /** The records this process saved last, by run ID, with the identity of the file it wrote. */
  private readonly written = new Map<string, { record: JobRecord; stamp: string }>();

  private readonly index: JobIndex;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "jobs");
    this.index = new JobIndex(join(dataDir, "index"), this.dir);
  }

  private ensureDir(): Promise<void> {
    // Lock files live in a subfolder: the jobs folder's mtime then changes only when records do,
    // which is how the index tells that it is stale (job-index.ts).
    return (this.ready ??= mkdir(join(this.dir, ".locks"), { recursive: true, mode: 0o700 }).then(() => undefined));
  }

  private file(runId: string): string {
    if (!isRunId(runId)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `"${runId}" is not a run ID`);
    return `${runId}.json`;
  }

  /** Writes the whole record atomically; statusCode always follows state. */
  async save(record: JobRecord, durable = true): Promise<void> {
    await this.ensureDir();
    record.statusCode = statusCodeOf(record.state);
    this.written.delete(record.runId);
    const file = join(this.dir, this.file(record.runId));
    // The intent first: a crash between the record and its index line leaves it, and the next
    // read appends the line from the record (job-index.ts).
    this.index.beginSave(record.runId);
    await writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`, 0o600, durable);
    this.index.append(summaryOf(record));
  }

  /**
   * Removes finished jobs that ended before `cutoff` (ms): each is handed to `visit` first (to
   * remove what belongs to it elsewhere), then its record and index line go. `dryRun`: visited
   * only. Never an unfinished job (NOT_STARTED, ONGOING, AWAITING_MDN).
   */
  prune(cutoff: number, dryRun: boolean, visit: (v: PruneVictim) => Promise<void>): Promise<void> {
    return this.index.prune(cutoff, dryRun, visit);
  }

  /** The file's identity: a rename by any writer gives a new inode; ctime moves with every change. */
  private async stampOf(runId: string): Promise<string | undefined> {
    const s = await stat(join(this.dir, this.file(runId)), { bigint: true }).catch(() => undefined);
    return s && `${s.dev}:${s.ino}:${s.size}:${s.ctimeNs}:${s.mtimeNs}`;
  }

  /** Every job's summary (the list of `as2 status`), newest first, from the index. */
  summaries(): Promise<JobSummary[]> {
    return this.index.all();
  }

  /** One page of the list, filtered (contract §2 `as2 status`). */
  query(q: JobQuery): Promise<JobPage> {
    return this.index.query(q);
  }

  async load(runId: string): Promise<JobRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, this.file(runId)), "utf8")) as JobRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  /** Run IDs, newest first (they sort by time). */
  async runIds(): Promise<string[]> {
    await this.ensureDir();
    return (await readdir(this.dir)).filter((f) => f.endsWith(".json") && !f.startsWith(".")).map((f) => f.slice(0, -5)).filter(isRunId).sort().reverse();
  }

  /** Read-modify-write under the record's lock file, so concurrent processes never lose a change. */
  async update(runId: string, change: (r: JobRecord) => void | Promise<void>, options: UpdateOptions = {}): Promise<JobRecord> {
    await this.ensureDir();
    return withLock(join(this.dir, ".locks", `${this.file(runId)}.lock`), `job ${runId}`, async () => {
      const kept = options.reuse ? this.written.get(runId) : undefined;
      const record = kept && kept.stamp === await this.stampOf(runId) ? kept.record : await this.load(runId);
      // Whatever happens next, a kept copy may no longer match the file: it is kept again only below.
      this.written.delete(runId);
      if (!record) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no job ${runId} in ${this.dir}`);
      await change(record);
      await this.save(record, options.durable ?? true);
      if (options.reuse) {
        const stamp = await this.stampOf(runId);
        if (stamp) {
          this.written.set(runId, { record, stamp });
          if (this.written.size > REUSE_KEEP) this.written.delete(this.written.keys().next().value!);
        }
      }
      return record;
    });
  }
}
