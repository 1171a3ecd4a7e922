/**
 * The outbound async-MDN queue, the job notification queue and the sent-message index in
 * PostgreSQL. Any node delivers any queued entry: an entry is claimed in a transaction that takes
 * its row with FOR UPDATE SKIP LOCKED (a node never waits on another's claim) and marks it with
 * the claimer and a claim lease; a claim whose holder died (its process gone on this host, its
 * node lease run out on another) or whose claim ran out is taken by the next node that looks.
 */
import { normalizeMessageId } from "../../core/message/as2-name.js";
import type { MdnOutbox, OutboundMdn } from "../mdn-outbox.js";
import type { NotificationQueue, QueuedNotification } from "../notify-queue.js";
import type { SentIndex } from "../message-index.js";
import type { Acquired, OwnerLockInfo } from "../owner-lock.js";
import { sameOwner, thisProcess, type Owner } from "../process-owner.js";
import type { Db } from "./db.js";

/** Longer than one delivery attempt (30 s connect + 60 s read): a live claimer finishes first. */
const CLAIM_SECONDS = 180;

/** What a claim queue's entries have in common. */
interface QueueEntry {
  id: string;
  runId: string;
  nextAttemptAt: number;
}

/**
 * A table of entries that any node may take: `id`, `run_id`, `next_attempt_at`, `entry`,
 * `claimed_by`, `claimed_until`. `due` lists claimed entries too: whether a claim still holds is
 * decided by `claim`, from the claimer's life (its process on this host, its lease elsewhere),
 * so that the entry of a claimer that died is taken at once rather than when its claim runs out.
 */
class PgClaimQueue<T extends QueueEntry> {
  constructor(
    protected readonly db: () => Promise<Db>,
    private readonly alive: (o: Owner) => Promise<boolean>,
    private readonly table: string,
    private readonly what: string,
  ) {}

  async put(entry: T): Promise<void> {
    await (await this.db()).query(`queueing ${this.what}`,
      `INSERT INTO ${this.table} (id, run_id, next_attempt_at, entry) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET run_id = EXCLUDED.run_id, next_attempt_at = EXCLUDED.next_attempt_at, entry = EXCLUDED.entry`,
      [entry.id, entry.runId, entry.nextAttemptAt, JSON.stringify(entry)]);
  }

  /** Inserts the entry claimed by this process, in one statement (no moment without a claim). */
  async putClaimed(entry: T): Promise<void> {
    await (await this.db()).query(`queueing ${this.what}`,
      `INSERT INTO ${this.table} (id, run_id, next_attempt_at, entry, claimed_by, claimed_until) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))`,
      [entry.id, entry.runId, entry.nextAttemptAt, JSON.stringify(entry), JSON.stringify(thisProcess()), CLAIM_SECONDS]);
  }

  async get(id: string): Promise<T | undefined> {
    const r = await (await this.db()).query<{ entry: T }>(`reading ${this.what} queue`, `SELECT entry FROM ${this.table} WHERE id = $1`, [id]);
    return r.rows[0]?.entry;
  }

  async due(now: number): Promise<T[]> {
    const r = await (await this.db()).query<{ entry: T }>(`reading ${this.what} queue`,
      `SELECT entry FROM ${this.table} WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 200`, [now]);
    return r.rows.map((x) => x.entry);
  }

  async claim(id: string): Promise<Acquired> {
    const me = thisProcess();
    const db = await this.db();
    const got = await db.tx(`claiming ${this.what} ${id}`, async (c) => {
      const r = await c.query<{ claimed_by: Owner | null; live: boolean }>(
        `SELECT claimed_by, claimed_until > now() AS live FROM ${this.table} WHERE id = $1 FOR UPDATE SKIP LOCKED`, [id]);
      const row = r.rows[0];
      // Gone, or another node is claiming it this very moment.
      if (!row) return { ok: false as const, holder: undefined };
      if (row.claimed_by && row.live && !sameOwner(row.claimed_by, me) && (await this.alive(row.claimed_by))) return { ok: false as const, holder: row.claimed_by };
      await c.query(`UPDATE ${this.table} SET claimed_by = $2, claimed_until = now() + make_interval(secs => $3) WHERE id = $1`, [id, JSON.stringify(me), CLAIM_SECONDS]);
      return { ok: true as const, holder: undefined };
    });
    if (!got.ok) {
      const holder: OwnerLockInfo = { owner: got.holder ?? me, since: "", what: `delivering ${this.what} ${id}` };
      return { acquired: false, holder };
    }
    return {
      acquired: true,
      release: async () => {
        await db.query(`releasing ${this.what} ${id}`, `UPDATE ${this.table} SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2`, [id, JSON.stringify(me)]);
      },
    };
  }

  async remove(id: string): Promise<void> {
    await (await this.db()).query(`removing ${this.what} from the queue`, `DELETE FROM ${this.table} WHERE id = $1`, [id]);
  }
}

export class PgMdnOutbox extends PgClaimQueue<OutboundMdn> implements MdnOutbox {
  constructor(db: () => Promise<Db>, alive: (o: Owner) => Promise<boolean>) {
    super(db, alive, "as2_mdn_outbox", "MDN");
  }
}

/** Job notifications (migration 2): claimed by their node from the start, taken over when it is dead. */
export class PgNotificationQueue extends PgClaimQueue<QueuedNotification> implements NotificationQueue {
  constructor(db: () => Promise<Db>, alive: (o: Owner) => Promise<boolean>) {
    super(db, alive, "as2_notify_outbox", "notification");
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
