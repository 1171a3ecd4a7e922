/**
 * Job run locks and node leases in PostgreSQL.
 *
 * A node's lease (as2_nodes) is written when the process first uses the store and renewed every
 * LEASE_SECONDS / 3 while it lives. An owner on another host counts as alive while its lease
 * runs; an owner on this very host is asked of the process table instead, which knows at once. Work whose owner is dead (a run lock, a received message in flight, an MDN being
 * delivered) is taken over by a live node.
 */
import { isAlive, sameOwner, thisProcess, type Owner } from "../process-owner.js";
import type { JobLocks } from "../job-locks.js";
import type { Acquired, OwnerLockInfo } from "../owner-lock.js";
import { isRunId } from "../records.js";
import type { Db } from "./db.js";

export const LEASE_SECONDS = 30;

export const ownerKey = (o: Owner) => `${o.host}|${o.boot}|${o.pid}|${o.start}`;

export class NodeLeases {
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly db: () => Promise<Db>) {}

  /** Writes this process's lease and keeps renewing it (the timer does not keep the process up). */
  async register(db: Db): Promise<void> {
    const me = thisProcess();
    const renew = () => db.query("renewing this node's lease",
      `INSERT INTO as2_nodes (owner_key, owner, lease_until) VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (owner_key) DO UPDATE SET lease_until = EXCLUDED.lease_until`, [ownerKey(me), JSON.stringify(me), LEASE_SECONDS]);
    await renew();
    // Processes that ended long ago (every `as2 send` and `as2 status` leaves a row).
    await db.query("forgetting old node leases", "DELETE FROM as2_nodes WHERE lease_until < now() - interval '1 day'");
    this.timer ??= setInterval(() => void renew().catch(() => undefined), (LEASE_SECONDS * 1000) / 3);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async alive(owner: Owner): Promise<boolean> {
    const me = thisProcess();
    if (sameOwner(owner, me)) return true;
    // Same host and boot: the process table is the truth, both ways (the fast answer after a
    // SIGKILL; and a live neighbour whose lease lapsed while the database was down keeps its work).
    if (owner.host === me.host && owner.boot === me.boot) return isAlive(owner);
    const r = await (await this.db()).query<{ live: boolean }>("reading node leases",
      "SELECT lease_until > now() AS live FROM as2_nodes WHERE owner_key = $1", [ownerKey(owner)]);
    // Never registered: a process on another host that died before its first query.
    return r.rows[0]?.live ?? false;
  }
}

export class PgJobLocks implements JobLocks {
  constructor(private readonly db: () => Promise<Db>, private readonly alive: (o: Owner) => Promise<boolean>) {}

  private check(runId: string): void {
    if (!isRunId(runId)) throw new Error(`"${runId}" is not a run ID`);
  }

  async acquire(runId: string, what: string): Promise<Acquired> {
    this.check(runId);
    const db = await this.db();
    const me = thisProcess();
    for (let attempt = 0; attempt < 5; attempt++) {
      const ins = await db.query(`locking job ${runId}`, "INSERT INTO as2_job_locks (run_id, owner, what) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [runId, JSON.stringify(me), what]);
      if (ins.rowCount === 1) {
        return { acquired: true, release: () => db.query(`unlocking job ${runId}`, "DELETE FROM as2_job_locks WHERE run_id = $1 AND owner = $2", [runId, JSON.stringify(me)]).then(() => undefined) };
      }
      const holder = await this.read(runId);
      if (!holder) continue;
      if (await this.alive(holder.owner)) return { acquired: false, holder };
      // A dead holder's lock: removed only if it is still that one.
      await db.query(`taking over job ${runId}`, "DELETE FROM as2_job_locks WHERE run_id = $1 AND owner = $2", [runId, JSON.stringify(holder.owner)]);
    }
    return { acquired: false, holder: (await this.read(runId)) ?? { owner: me, since: "" } };
  }

  private async read(runId: string): Promise<OwnerLockInfo | undefined> {
    const r = await (await this.db()).query<{ owner: Owner; since: Date; what: string | null }>("reading a job lock", "SELECT owner, since, what FROM as2_job_locks WHERE run_id = $1", [runId]);
    const row = r.rows[0];
    return row ? { owner: row.owner, since: row.since.toISOString(), ...(row.what ? { what: row.what } : {}) } : undefined;
  }

  async holder(runId: string): Promise<OwnerLockInfo | undefined> {
    this.check(runId);
    const h = await this.read(runId);
    return h && (await this.alive(h.owner)) ? h : undefined;
  }

  async staleRuns(): Promise<string[]> {
    const r = await (await this.db()).query<{ run_id: string; owner: Owner }>("listing job locks", "SELECT run_id, owner FROM as2_job_locks");
    const stale: string[] = [];
    for (const row of r.rows) if (!(await this.alive(row.owner))) stale.push(row.run_id);
    return stale;
  }

  async clear(runId: string): Promise<void> {
    const h = await this.read(runId);
    if (h && !(await this.alive(h.owner))) {
      await (await this.db()).query(`clearing job lock ${runId}`, "DELETE FROM as2_job_locks WHERE run_id = $1 AND owner = $2", [runId, JSON.stringify(h.owner)]);
    }
  }
}
