/**
 * Job records on disk (contract.md §5): one JSON file per job under <dataDir>/jobs/, written
 * atomically (temp file, fsync, rename, fsync of the folder) so a reader never sees half a
 * record, and updated under a lock file so several `as2` processes (cron overlap, a receive
 * server recording an async MDN for a send job) never lose each other's changes.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { As2Error, ErrorCodes } from "../core/index.js";
import { statusCodeOf, type JobRecord } from "./records.js";
import { writeFileAtomic } from "./atomic-file.js";

/** A run ID that is unique and sorts by time: 20261122T163120123Z-<12 hex>. */
export function newRunId(now: Date, random: (n: number) => Buffer = randomBytes): string {
  return `${now.toISOString().replace(/[-:.]/g, "")}-${random(6).toString("hex")}`;
}

const RUN_ID = /^[0-9TZ]+-[0-9a-f]+$/;

/** A lock older than this belongs to a process that died holding it. */
export const STALE_LOCK_MS = 30_000;
/** How long update() waits for a lock before giving up. */
export const LOCK_TIMEOUT_MS = 10_000;

export class JobStore {
  readonly dir: string;
  private ready: Promise<void> | undefined;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "jobs");
  }

  private ensureDir(): Promise<void> {
    return (this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(() => undefined));
  }

  private file(runId: string): string {
    if (!RUN_ID.test(runId)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `"${runId}" is not a run ID`);
    return `${runId}.json`;
  }

  /** Writes the whole record atomically; statusCode always follows state. */
  async save(record: JobRecord): Promise<void> {
    await this.ensureDir();
    record.statusCode = statusCodeOf(record.state);
    await writeFileAtomic(join(this.dir, this.file(record.runId)), `${JSON.stringify(record, null, 2)}\n`);
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
    return (await readdir(this.dir)).filter((f) => f.endsWith(".json") && !f.startsWith(".")).map((f) => f.slice(0, -5)).filter((id) => RUN_ID.test(id)).sort().reverse();
  }

  /**
   * Read-modify-write under an exclusive lock file (O_EXCL create). A lock left by a dead process
   * is taken over after STALE_LOCK_MS.
   */
  async update(runId: string, change: (r: JobRecord) => void | Promise<void>): Promise<JobRecord> {
    await this.ensureDir();
    const lock = join(this.dir, `.${this.file(runId)}.lock`);
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      try {
        const fh = await open(lock, "wx");
        await fh.writeFile(String(process.pid));
        await fh.close();
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > STALE_LOCK_MS) {
          await rm(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `job ${runId} stayed locked for ${LOCK_TIMEOUT_MS} ms (${lock})`);
        await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
      }
    }
    try {
      const record = await this.load(runId);
      if (!record) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no job ${runId} in ${this.dir}`);
      await change(record);
      await this.save(record);
      return record;
    } finally {
      await rm(lock, { force: true });
    }
  }
}
