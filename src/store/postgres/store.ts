/**
 * The shared store on PostgreSQL (issue 15): everything of As2Store in one database, so that
 * several `as2 receive` and `as2 send` hosts behind a load balancer keep the guarantees of one.
 * Payload files stay in the inbox folders (shared storage in a cluster). The schema is migrated
 * on first use by each process (and by `as2 db migrate`); that first use also registers the
 * process's lease.
 */
import type { As2Store } from "../store.js";
import type { Owner } from "../process-owner.js";
import { Db } from "./db.js";
import { PgCemRequestStore } from "./cem.js";
import { PgJobStore } from "./jobs.js";
import { PgReceivedLedger } from "./ledger.js";
import { NodeLeases, PgJobLocks } from "./locks.js";
import { migrate } from "./migrations.js";
import { PgMdnOutbox, PgNotificationQueue, PgSentIndex } from "./queue.js";

export class PgStore implements As2Store {
  readonly kind = "postgres";
  readonly jobs: PgJobStore;
  readonly received: PgReceivedLedger;
  readonly sent: PgSentIndex;
  readonly outbox: PgMdnOutbox;
  readonly notifications: PgNotificationQueue;
  readonly locks: PgJobLocks;
  readonly cem: PgCemRequestStore;
  private readonly leases: NodeLeases;
  readonly db: Db;
  private ready: Promise<Db> | undefined;

  readonly where: string;

  constructor(url: string) {
    this.db = new Db(url);
    this.where = this.db.where;
    const db = () => this.connected();
    const alive = (o: Owner) => this.alive(o);
    this.leases = new NodeLeases(db);
    this.jobs = new PgJobStore(db);
    this.received = new PgReceivedLedger(db);
    this.sent = new PgSentIndex(db);
    this.outbox = new PgMdnOutbox(db, alive);
    this.notifications = new PgNotificationQueue(db, alive);
    this.locks = new PgJobLocks(db, alive);
    this.cem = new PgCemRequestStore(db);
  }

  /** The database, migrated and with this process's lease written; retried after a failure. */
  private connected(): Promise<Db> {
    this.ready ??= (async () => {
      await migrate(this.db);
      await this.leases.register(this.db);
      return this.db;
    })().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  alive(owner: Owner): Promise<boolean> {
    return this.leases.alive(owner);
  }

  async close(): Promise<void> {
    this.leases.stop();
    await this.db.end();
  }
}
