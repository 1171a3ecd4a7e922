/**
 * Versioned schema migrations for the shared store. Each migration runs in its own transaction
 * together with the row that records it in as2_schema_migrations, so a migration is either wholly
 * applied and recorded or not at all. The whole sequence runs under a session advisory lock:
 * two nodes starting at once do not both apply one (the second waits, then finds it recorded).
 * Migrations are append-only: a released one is never edited, a change is a new version.
 */
import type { Db } from "./db.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** pg_advisory_lock key: "as2kit" in ASCII, so other applications' keys are unlikely to collide. */
const MIGRATION_LOCK = 0x6173326b6974;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "jobs, received ledger, sent index, MDN queue, job locks, node leases",
    sql: `
CREATE TABLE as2_jobs (
  run_id      text PRIMARY KEY,
  type        text NOT NULL,
  command     text NOT NULL,
  partner     text NOT NULL,
  state       text NOT NULL,
  start_time  timestamptz NOT NULL,
  end_time    timestamptz,
  summary     jsonb NOT NULL,
  record      jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- as2 status sorts newest first (run IDs sort by time) and filters on these columns.
CREATE INDEX as2_jobs_partner ON as2_jobs (partner, run_id DESC);
CREATE INDEX as2_jobs_state ON as2_jobs (state, run_id DESC);
CREATE INDEX as2_jobs_type ON as2_jobs (type, run_id DESC);
CREATE INDEX as2_jobs_start ON as2_jobs (start_time);

-- One row per (AS2-From, normalised Message-ID): the reservation, duplicate index and recovery log.
CREATE TABLE as2_received (
  as2_from    text NOT NULL,
  message_id  text NOT NULL,
  run_id      text NOT NULL,
  step        text NOT NULL,
  entry       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (as2_from, message_id)
);
CREATE INDEX as2_received_unfinished ON as2_received (updated_at) WHERE step <> 'answered';

CREATE TABLE as2_sent (
  message_id  text PRIMARY KEY,
  run_id      text NOT NULL
);

CREATE TABLE as2_mdn_outbox (
  id               text PRIMARY KEY,
  run_id           text NOT NULL,
  next_attempt_at  bigint NOT NULL,
  entry            jsonb NOT NULL,
  claimed_by       jsonb,
  claimed_until    timestamptz
);
CREATE INDEX as2_mdn_outbox_due ON as2_mdn_outbox (next_attempt_at);

CREATE TABLE as2_job_locks (
  run_id  text PRIMARY KEY,
  owner   jsonb NOT NULL,
  since   timestamptz NOT NULL DEFAULT now(),
  what    text
);

-- A node's lease: renewed while the process lives; expired, its in-flight work is taken over.
CREATE TABLE as2_nodes (
  owner_key    text PRIMARY KEY,
  owner        jsonb NOT NULL,
  lease_until  timestamptz NOT NULL
);
`,
  },
  {
    version: 2,
    name: "job notification queue",
    sql: `
-- Job notifications (contract §6), claimed by their node from the start: one left behind by a
-- dead node is posted by a live one. The entry names the partner, never the hook URL or headers.
CREATE TABLE as2_notify_outbox (
  id               text PRIMARY KEY,
  run_id           text NOT NULL,
  next_attempt_at  bigint NOT NULL,
  entry            jsonb NOT NULL,
  claimed_by       jsonb,
  claimed_until    timestamptz
);
CREATE INDEX as2_notify_outbox_due ON as2_notify_outbox (next_attempt_at);
`,
  },
  {
    version: 3,
    name: "CEM requests (certificate exchange, issue 17)",
    sql: `
-- Certificate exchange requests (draft-meadors-certificate-exchange-14), sent and received: one
-- row per (direction, partner, request ID), so a resent request registers once.
CREATE TABLE as2_cem_requests (
  direction   text NOT NULL,
  partner     text NOT NULL,
  request_id  text NOT NULL,
  state       text NOT NULL,
  created_at  timestamptz NOT NULL,
  record      jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (direction, partner, request_id)
);
CREATE INDEX as2_cem_requests_state ON as2_cem_requests (state, created_at DESC);
`,
  },
];

export interface MigrationResult {
  applied: Array<{ version: number; name: string }>;
  current: number;
}

/** Applies every migration not yet recorded, in order. */
export async function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationResult> {
  return db.session("applying schema migrations", async (c) => {
    await c.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      await c.query(`CREATE TABLE IF NOT EXISTS as2_schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Set((await c.query<{ version: number }>("SELECT version FROM as2_schema_migrations")).rows.map((r) => r.version));
      const applied: MigrationResult["applied"] = [];
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (done.has(m.version)) continue;
        await c.query("BEGIN");
        try {
          await c.query(m.sql);
          await c.query("INSERT INTO as2_schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
          await c.query("COMMIT");
        } catch (e) {
          await c.query("ROLLBACK").catch(() => undefined);
          throw e;
        }
        applied.push({ version: m.version, name: m.name });
      }
      const current = Math.max(0, ...done, ...applied.map((a) => a.version));
      return { applied, current };
    } finally {
      await c.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => undefined);
    }
  });
}
