/**
 * Job records in PostgreSQL: the whole record as JSONB, beside the columns `as2 status` filters
 * and sorts on (indexed; migrations.ts). The list, its filters and paging give what the file
 * JobStore gives (newest first, totalRecords counting the matching jobs).
 */
import { As2Error, ErrorCodes } from "../../core/errors.js";
import { summaryOf, type JobSummary, type PruneVictim } from "../job-index.js";
import { UNFINISHED_STATES, type JobPage, type JobQuery } from "../job-query.js";
import type { JobRecordStore } from "../job-store.js";
import { isRunId, statusCodeOf, type JobRecord } from "../records.js";
import type { Db } from "./db.js";

function checkRunId(runId: string): void {
  if (!isRunId(runId)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `"${runId}" is not a run ID`);
}

const UPSERT = `INSERT INTO as2_jobs (run_id, type, command, partner, state, start_time, end_time, summary, record, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
  ON CONFLICT (run_id) DO UPDATE SET type = EXCLUDED.type, command = EXCLUDED.command, partner = EXCLUDED.partner,
    state = EXCLUDED.state, start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time, summary = EXCLUDED.summary,
    record = EXCLUDED.record, updated_at = now()`;

function row(record: JobRecord): unknown[] {
  record.statusCode = statusCodeOf(record.state);
  return [record.runId, record.type, record.command, record.partner, record.state, record.startTime, record.endTime ?? null,
    JSON.stringify(summaryOf(record)), JSON.stringify(record)];
}

export class PgJobStore implements JobRecordStore {
  constructor(private readonly db: () => Promise<Db>) {}

  async save(record: JobRecord): Promise<void> {
    checkRunId(record.runId);
    await (await this.db()).query("saving a job record", UPSERT, row(record));
  }

  async load(runId: string): Promise<JobRecord | undefined> {
    checkRunId(runId);
    const r = await (await this.db()).query<{ record: JobRecord }>("reading a job record", "SELECT record FROM as2_jobs WHERE run_id = $1", [runId]);
    return r.rows[0]?.record;
  }

  async runIds(): Promise<string[]> {
    const r = await (await this.db()).query<{ run_id: string }>("listing jobs", "SELECT run_id FROM as2_jobs ORDER BY run_id DESC");
    return r.rows.map((x) => x.run_id);
  }

  async summaries(): Promise<JobSummary[]> {
    const r = await (await this.db()).query<{ summary: JobSummary }>("listing jobs", "SELECT summary FROM as2_jobs ORDER BY run_id DESC");
    return r.rows.map((x) => x.summary);
  }

  async query(q: JobQuery): Promise<JobPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => { params.push(v); where.push(sql.replace("?", `$${params.length}`)); };
    if (q.partner !== undefined) add("partner = ?", q.partner);
    if (q.direction !== undefined) add("type = ?", q.direction === "send" ? "AS2 Send" : "AS2 Receive");
    if (q.state !== undefined) add("state = ?", q.state);
    if (q.since !== undefined) add("start_time >= ?", q.since.toISOString());
    const cond = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const db = await this.db();
    const [count, page] = await Promise.all([
      db.query<{ n: string }>("counting jobs", `SELECT count(*) AS n FROM as2_jobs ${cond}`, params),
      db.query<{ summary: JobSummary }>("listing jobs", `SELECT summary FROM as2_jobs ${cond} ORDER BY run_id DESC OFFSET $${params.length + 1} LIMIT $${params.length + 2}`, [...params, q.offset, q.length]),
    ]);
    return { totalRecords: Number(count.rows[0]!.n), records: page.rows.map((x) => x.summary) };
  }

  /**
   * Read-modify-write in one transaction with the row locked (SELECT ... FOR UPDATE): processes
   * on any host updating one job (a send job and the node that receives its async MDN) never
   * lose each other's changes.
   */
  async update(runId: string, change: (r: JobRecord) => void | Promise<void>): Promise<JobRecord> {
    checkRunId(runId);
    return (await this.db()).tx(`updating job ${runId}`, async (c) => {
      const r = await c.query<{ record: JobRecord }>("SELECT record FROM as2_jobs WHERE run_id = $1 FOR UPDATE", [runId]);
      const record = r.rows[0]?.record;
      if (!record) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no job ${runId} in the database`);
      await change(record);
      await c.query(UPSERT, row(record));
      return record;
    });
  }

  /**
   * Retention (`as2 prune`), in batches along the primary key so that ten million old jobs never
   * sit in memory at once. The row is deleted only if it is still finished and old: a job that
   * another node changed meanwhile (a late async MDN turning it back) wins over the prune.
   */
  async prune(cutoff: number, dryRun: boolean, visit: (v: PruneVictim) => Promise<void>): Promise<void> {
    const db = await this.db();
    const unfinished = [...UNFINISHED_STATES];
    const before = new Date(cutoff).toISOString();
    const OLD = "state <> ALL($1::text[]) AND coalesce(end_time, start_time) < $2";
    let after = "";
    for (;;) {
      const batch = await db.query<{ run_id: string; record: JobRecord; bytes: number }>("listing old jobs",
        `SELECT run_id, record, octet_length(record::text) AS bytes FROM as2_jobs WHERE ${OLD} AND run_id > $3 ORDER BY run_id LIMIT 500`,
        [unfinished, before, after]);
      for (const r of batch.rows) {
        await visit({ record: r.record, runId: r.run_id, bytes: Number(r.bytes) });
        if (!dryRun) await db.query("pruning a job", `DELETE FROM as2_jobs WHERE run_id = $3 AND ${OLD}`, [unfinished, before, r.run_id]);
      }
      if (batch.rows.length < 500) return;
      after = batch.rows[batch.rows.length - 1]!.run_id;
    }
  }
}
