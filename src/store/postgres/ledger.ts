/**
 * The received-message ledger in PostgreSQL (the contract of ../received-ledger.ts): the primary
 * key on (AS2-From, normalised Message-ID) is the reservation, taken with one INSERT before any
 * work on the message, on whichever node it arrives; `replace` and `release` are compare-and-set
 * on the run that holds the entry.
 */
import { As2Error, ErrorCodes } from "../../core/errors.js";
import { normalizeMessageId } from "../../core/message/as2-name.js";
import type { LedgerEntry, ReceivedLedger, Reservation } from "../received-ledger.js";
import type { Owner } from "../process-owner.js";
import type { Db } from "./db.js";

const key = (e: { from: string; messageId: string }) => [e.from, normalizeMessageId(e.messageId)];

export class PgReceivedLedger implements ReceivedLedger {
  constructor(private readonly db: () => Promise<Db>) {}

  async reserve(entry: LedgerEntry): Promise<Reservation> {
    const db = await this.db();
    for (;;) {
      const ins = await db.query("reserving a received message",
        `INSERT INTO as2_received (as2_from, message_id, run_id, step, entry) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (as2_from, message_id) DO NOTHING`, [...key(entry), entry.runId, entry.step, JSON.stringify(entry)]);
      if (ins.rowCount === 1) return { reserved: true, entry };
      const holder = await this.get(entry.from, entry.messageId);
      // Released between the two statements: try again.
      if (holder) return { reserved: false, entry: holder };
    }
  }

  async get(from: string, messageId: string): Promise<LedgerEntry | undefined> {
    const r = await (await this.db()).query<{ entry: LedgerEntry }>("reading the received-message ledger",
      "SELECT entry FROM as2_received WHERE as2_from = $1 AND message_id = $2", key({ from, messageId }));
    return r.rows[0]?.entry;
  }

  /** Only the run that holds the entry advances it; a run whose entry was taken over is told so. */
  async advance(entry: LedgerEntry): Promise<void> {
    const r = await (await this.db()).query("advancing a received message",
      `UPDATE as2_received SET step = $4, entry = $5, updated_at = now() WHERE as2_from = $1 AND message_id = $2 AND run_id = $3`,
      [...key(entry), entry.runId, entry.step, JSON.stringify(entry)]);
    if (r.rowCount !== 1) {
      throw new As2Error(ErrorCodes.STORE_FAILED, `the ledger entry of ${entry.messageId} is no longer held by run ${entry.runId} (taken over by another node)`);
    }
  }

  async replace(expectRunId: string, entry: LedgerEntry, expectOwner?: Owner): Promise<boolean> {
    const db = await this.db();
    const upd = await db.query("taking over a received message",
      `UPDATE as2_received SET run_id = $4, step = $5, entry = $6, updated_at = now()
       WHERE as2_from = $1 AND message_id = $2 AND run_id = $3 AND ($7::jsonb IS NULL OR entry->'owner' = $7::jsonb)`,
      [...key(entry), expectRunId, entry.runId, entry.step, JSON.stringify(entry), expectOwner ? JSON.stringify(expectOwner) : null]);
    if (upd.rowCount === 1) return true;
    // As the files ledger: no entry at all may be taken too.
    const ins = await db.query("taking over a received message",
      `INSERT INTO as2_received (as2_from, message_id, run_id, step, entry) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [...key(entry), entry.runId, entry.step, JSON.stringify(entry)]);
    return ins.rowCount === 1;
  }

  async release(from: string, messageId: string, runId: string): Promise<void> {
    await (await this.db()).query("releasing a received message",
      "DELETE FROM as2_received WHERE as2_from = $1 AND message_id = $2 AND run_id = $3", [...key({ from, messageId }), runId]);
  }

  async unfinished(): Promise<LedgerEntry[]> {
    const r = await (await this.db()).query<{ entry: LedgerEntry }>("listing unfinished messages",
      "SELECT entry FROM as2_received WHERE step <> 'answered' ORDER BY updated_at");
    return r.rows.map((x) => x.entry);
  }

  /** One statement: an entry answered again meanwhile (a resend that replaced it) has a newer `at` and stays. */
  async pruneAnswered(before: number, dryRun = false): Promise<{ count: number; bytes: number }> {
    const OLD = "step = 'answered' AND (entry->>'at')::timestamptz < $1";
    const r = await (await this.db()).query<{ count: string; bytes: string | null }>("pruning answered messages", dryRun
      ? `SELECT count(*) AS count, sum(octet_length(entry::text)) AS bytes FROM as2_received WHERE ${OLD}`
      : `WITH gone AS (DELETE FROM as2_received WHERE ${OLD} RETURNING octet_length(entry::text) AS b) SELECT count(*) AS count, sum(b) AS bytes FROM gone`,
      [new Date(before).toISOString()]);
    return { count: Number(r.rows[0]!.count), bytes: Number(r.rows[0]!.bytes ?? 0) };
  }
}
