/**
 * The store behind one interface (architecture.md §4): job records, the received-message ledger
 * (reservations + duplicate index + recovery log), the sent-message index, the outbound MDN
 * queue and the job run locks. The pipeline and the commands reach state only through this.
 * Two backends: local files under dataDir (the default, contract §5) and PostgreSQL, shared by
 * several hosts (issue 15; postgres/store.ts).
 */
import { JobStore, type JobRecordStore } from "./job-store.js";
import { FileJobLocks, type JobLocks } from "./job-locks.js";
import { FileMdnOutbox, type MdnOutbox } from "./mdn-outbox.js";
import type { NotificationQueue } from "./notify-queue.js";
import { SentMessageIndex, type SentIndex } from "./message-index.js";
import { isAlive, type Owner } from "./process-owner.js";
import { FileReceivedLedger, type ReceivedLedger } from "./received-ledger.js";
import { PgStore } from "./postgres/store.js";
import { FileCemRequestStore, type CemRequestStore } from "./cem-requests.js";

export interface As2Store {
  readonly kind: "files" | "postgres";
  /** Where the records are, for messages: a folder, or the database URL without its password. */
  readonly where: string;
  readonly jobs: JobRecordStore;
  readonly received: ReceivedLedger;
  readonly sent: SentIndex;
  readonly outbox: MdnOutbox;
  readonly locks: JobLocks;
  /** Certificate exchange (CEM) requests, sent and received (issue 17). */
  readonly cem: CemRequestStore;
  /** Job notifications queued for any node to post (a shared store only; files post directly). */
  readonly notifications?: NotificationQueue;
  /**
   * Whether the owner of a piece of in-flight work still runs: its process (files: one host),
   * or its lease (postgres: any host). Work of a dead owner is finished or failed by a live one.
   */
  alive(owner: Owner): Promise<boolean>;
  close(): Promise<void>;
}

export type StoreSettings = { kind: "files" } | { kind: "postgres"; url?: string };

export interface StoreConfig {
  dataDir: string;
  store?: StoreSettings;
}

class FileStore implements As2Store {
  readonly kind = "files";
  readonly jobs: JobStore;
  readonly received: FileReceivedLedger;
  readonly sent: SentMessageIndex;
  readonly outbox: FileMdnOutbox;
  readonly locks: FileJobLocks;
  readonly cem: FileCemRequestStore;
  readonly where: string;
  constructor(dataDir: string) {
    this.jobs = new JobStore(dataDir);
    this.where = this.jobs.dir;
    this.received = new FileReceivedLedger(dataDir);
    this.sent = new SentMessageIndex(dataDir);
    this.outbox = new FileMdnOutbox(dataDir);
    this.locks = new FileJobLocks(dataDir);
    this.cem = new FileCemRequestStore(dataDir);
  }
  async alive(owner: Owner): Promise<boolean> {
    return isAlive(owner);
  }
  async close(): Promise<void> { /* nothing held open */ }
}

const open = new Map<string, As2Store>();

/** The store of a configuration (one instance per backend and process). */
export function openStore(config: StoreConfig): As2Store {
  const settings = config.store ?? { kind: "files" };
  const key = settings.kind === "postgres" ? `postgres ${settings.url}` : `files ${config.dataDir}`;
  let s = open.get(key);
  if (!s) {
    s = settings.kind === "postgres" ? new PgStore(settings.url ?? "") : new FileStore(config.dataDir);
    open.set(key, s);
  }
  return s;
}

/** Closes every store this process opened (connections to the database). */
export async function closeStores(): Promise<void> {
  const all = [...open.values()];
  open.clear();
  await Promise.allSettled(all.map((s) => s.close()));
}
