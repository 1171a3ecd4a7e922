/**
 * The outbound async-MDN queue and the sent-message index in PostgreSQL. Any node delivers any
 * queued MDN: an entry is claimed in a transaction that takes its row with FOR UPDATE SKIP LOCKED
 * (a node never waits on another's claim) and marks it with the claimer and a claim lease; a
 * claim whose holder died or whose lease ran out is taken by the next node that looks.
 */
import { normalizeMessageId } from "../../core/message/as2-name.js";
import type { MdnOutbox, OutboundMdn } from "../mdn-outbox.js";
import type { SentIndex } from "../message-index.js";
import type { Acquired, OwnerLockInfo } from "../owner-lock.js";
import { sameOwner, thisProcess, type Owner } from "../process-owner.js";
import type { Db } from "./db.js";

/** Longer than one delivery attempt (30 s connect + 60 s read): a live claimer finishes first. */
const CLAIM_SECONDS = 180;

export class PgMdnOutbox implements MdnOutbox {
  constructor(private readonly db: () => Promise<Db>, private readonly alive: (o: Owner) => Promise<boolean>) {}

  async put(entry: OutboundMdn): Promise<void> {
    await (await this.db()).query("queueing an MDN",
      `INSERT INTO as2_mdn_outbox (id, run_id, next_attempt_at, entry) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET run_id = EXCLUDED.run_id, next_attempt_at = EXCLUDED.next_attempt_at, entry = EXCLUDED.entry`,
      [entry.id, entry.runId, entry.nextAttemptAt, JSON.stringify(entry)]);
  }

  async get(id: string): Promise<OutboundMdn | undefined> {
    const r = await (await this.db()).query<{ entry: OutboundMdn }>("reading the MDN queue", "SELECT entry FROM as2_mdn_outbox WHERE id = $1", [id]);
    return r.rows[0]?.entry;
  }

  async due(now: number): Promise<OutboundMdn[]> {
    const r = await (await this.db()).query<{ entry: OutboundMdn }>("reading the MDN queue",
      `SELECT entry FROM as2_mdn_outbox WHERE next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < now())
       ORDER BY next_attempt_at LIMIT 200`, [now]);
    return r.rows.map((x) => x.entry);
  }

  async claim(id: string): Promise<Acquired> {
    const me = thisProcess();
    const db = await this.db();
    const got = await db.tx(`claiming MDN ${id}`, async (c) => {
      const r = await c.query<{ claimed_by: Owner | null; live: boolean }>(
        "SELECT claimed_by, claimed_until > now() AS live FROM as2_mdn_outbox WHERE id = $1 FOR UPDATE SKIP LOCKED", [id]);
      const row = r.rows[0];
      // Gone, or another node is claiming it this very moment.
      if (!row) return { ok: false as const, holder: undefined };
      if (row.claimed_by && row.live && !sameOwner(row.claimed_by, me) && (await this.alive(row.claimed_by))) return { ok: false as const, holder: row.claimed_by };
      await c.query(`UPDATE as2_mdn_outbox SET claimed_by = $2, claimed_until = now() + make_interval(secs => $3) WHERE id = $1`, [id, JSON.stringify(me), CLAIM_SECONDS]);
      return { ok: true as const, holder: undefined };
    });
    if (!got.ok) {
      const holder: OwnerLockInfo = { owner: got.holder ?? me, since: "", what: `delivering MDN ${id}` };
      return { acquired: false, holder };
    }
    return {
      acquired: true,
      release: async () => {
        await db.query(`releasing MDN ${id}`, "UPDATE as2_mdn_outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2", [id, JSON.stringify(me)]);
      },
    };
  }

  async remove(id: string): Promise<void> {
    await (await this.db()).query("removing an MDN from the queue", "DELETE FROM as2_mdn_outbox WHERE id = $1", [id]);
  }
}

export class PgSentIndex implements SentIndex {
  constructor(private readonly db: () => Promise<Db>) {}

  async add(messageId: string, runId: string): Promise<void> {
    await (await this.db()).query("indexing a sent message",
      "INSERT INTO as2_sent (message_id, run_id) VALUES ($1, $2) ON CONFLICT (message_id) DO UPDATE SET run_id = EXCLUDED.run_id",
      [normalizeMessageId(messageId), runId]);
  }

  async runIdOf(messageId: string): Promise<string | undefined> {
    const r = await (await this.db()).query<{ run_id: string }>("looking up a sent message", "SELECT run_id FROM as2_sent WHERE message_id = $1", [normalizeMessageId(messageId)]);
    return r.rows[0]?.run_id;
  }

  async remove(messageId: string, runId: string, dryRun = false): Promise<number> {
    const id = normalizeMessageId(messageId);
    const r = await (await this.db()).query("pruning a sent message",
      dryRun ? "SELECT 1 FROM as2_sent WHERE message_id = $1 AND run_id = $2" : "DELETE FROM as2_sent WHERE message_id = $1 AND run_id = $2",
      [id, runId]);
    // The row's payload: what the entry took (the files store counts its file's bytes alike).
    return r.rowCount ? Buffer.byteLength(id) + Buffer.byteLength(runId) : 0;
  }
}
