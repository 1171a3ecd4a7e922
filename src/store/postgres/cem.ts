/**
 * CEM requests in PostgreSQL (cem-requests.ts says what they are): one row per (direction,
 * partner, request_id); `register` is INSERT ... ON CONFLICT DO NOTHING, `update` a
 * SELECT ... FOR UPDATE and UPDATE in one transaction.
 */
import { matchesFilter, type CemDirection, type CemFilter, type CemRequestRecord, type CemRequestStore } from "../cem-requests.js";
import type { Db } from "./db.js";

export class PgCemRequestStore implements CemRequestStore {
  constructor(private readonly db: () => Promise<Db>) {}

  async register(record: CemRequestRecord): Promise<{ created: boolean; record: CemRequestRecord }> {
    const db = await this.db();
    const r = await db.query("registering a CEM request",
      `INSERT INTO as2_cem_requests (direction, partner, request_id, state, created_at, record) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (direction, partner, request_id) DO NOTHING`,
      [record.direction, record.partner, record.requestId, record.state, record.createdAt, JSON.stringify(record)]);
    if (r.rowCount === 1) return { created: true, record };
    return { created: false, record: (await this.get(record.direction, record.partner, record.requestId))! };
  }

  async get(direction: CemDirection, partner: string, requestId: string): Promise<CemRequestRecord | undefined> {
    const r = await (await this.db()).query<{ record: CemRequestRecord }>("reading a CEM request",
      "SELECT record FROM as2_cem_requests WHERE direction = $1 AND partner = $2 AND request_id = $3", [direction, partner, requestId]);
    return r.rows[0]?.record;
  }

  async update(direction: CemDirection, partner: string, requestId: string, change: (r: CemRequestRecord) => CemRequestRecord | undefined): Promise<CemRequestRecord | undefined> {
    return (await this.db()).tx("updating a CEM request", async (c) => {
      const r = await c.query<{ record: CemRequestRecord }>("SELECT record FROM as2_cem_requests WHERE direction = $1 AND partner = $2 AND request_id = $3 FOR UPDATE", [direction, partner, requestId]);
      const current = r.rows[0]?.record;
      if (!current) return undefined;
      const next = change(structuredClone(current));
      if (!next) return current;
      await c.query("UPDATE as2_cem_requests SET state = $4, record = $5, updated_at = now() WHERE direction = $1 AND partner = $2 AND request_id = $3",
        [direction, partner, requestId, next.state, JSON.stringify(next)]);
      return next;
    });
  }

  async list(filter: CemFilter = {}): Promise<CemRequestRecord[]> {
    const r = await (await this.db()).query<{ record: CemRequestRecord }>("listing CEM requests",
      `SELECT record FROM as2_cem_requests WHERE ($1::text IS NULL OR direction = $1) AND ($2::text IS NULL OR partner = $2)
         AND ($3::text[] IS NULL OR state = ANY($3)) ORDER BY created_at DESC`,
      [filter.direction ?? null, filter.partner ?? null, filter.states ? [...filter.states] : null]);
    return r.rows.map((x) => x.record).filter((x) => matchesFilter(x, filter));
  }
}
