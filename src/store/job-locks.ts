/**
 * Run locks for send jobs: a job is run by one process at a time, and a `--restart`/`--rerun`
 * holds the earlier job's lock too, so two restarts of one job cannot both send its files. A lock
 * whose process is gone marks a job that died mid-run (SIGKILL, power loss): `staleRuns` lists
 * them so the caller can settle their records.
 */
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { liveHolder, tryOwnerLock, type Acquired, type OwnerLockInfo } from "./owner-lock.js";
import { isRunId } from "./records.js";

export interface JobLocks {
  acquire(runId: string, what: string): Promise<Acquired>;
  holder(runId: string): Promise<OwnerLockInfo | undefined>;
  /** Run IDs whose lock was left by a process that is gone. */
  staleRuns(): Promise<string[]>;
  /** Drops a stale lock once its job is settled. */
  clear(runId: string): Promise<void>;
}

export class FileJobLocks implements JobLocks {
  private readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, "jobs", ".running");
  }

  private file(runId: string): string {
    if (!isRunId(runId)) throw new Error(`"${runId}" is not a run ID`);
    return join(this.dir, `${runId}.lock`);
  }

  async acquire(runId: string, what: string): Promise<Acquired> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    return tryOwnerLock(this.file(runId), what);
  }

  holder(runId: string): Promise<OwnerLockInfo | undefined> {
    return liveHolder(this.file(runId));
  }

  async staleRuns(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const stale: string[] = [];
    for (const name of names) {
      const runId = name.endsWith(".lock") ? name.slice(0, -5) : "";
      if (!isRunId(runId)) continue;
      if (!(await liveHolder(join(this.dir, name)))) stale.push(runId);
    }
    return stale;
  }

  async clear(runId: string): Promise<void> {
    if (!(await this.holder(runId))) await rm(this.file(runId), { force: true });
  }
}
