/**
 * The store behind one interface (architecture.md §4): job records, the received-message ledger
 * (reservations + duplicate index + recovery log), the sent-message index, the outbound MDN
 * queue and the job run locks. The pipeline and the commands reach state only through this, so
 * that a shared database can implement the same contract; the default, and today the only
 * backend, is local files under dataDir (contract §5).
 */
import { JobStore } from "./job-store.js";
import { FileJobLocks, type JobLocks } from "./job-locks.js";
import { FileMdnOutbox, type MdnOutbox } from "./mdn-outbox.js";
import { SentMessageIndex } from "./message-index.js";
import { FileReceivedLedger, type ReceivedLedger } from "./received-ledger.js";

export interface As2Store {
  readonly jobs: JobStore;
  readonly received: ReceivedLedger;
  readonly sent: SentMessageIndex;
  readonly outbox: MdnOutbox;
  readonly locks: JobLocks;
}

export interface StoreConfig {
  dataDir: string;
  store?: { kind: "files" };
}

const open = new Map<string, As2Store>();

/** The store of a configuration (one instance per data folder and process). */
export function openStore(config: StoreConfig): As2Store {
  let s = open.get(config.dataDir);
  if (!s) {
    s = {
      jobs: new JobStore(config.dataDir),
      received: new FileReceivedLedger(config.dataDir),
      sent: new SentMessageIndex(config.dataDir),
      outbox: new FileMdnOutbox(config.dataDir),
      locks: new FileJobLocks(config.dataDir),
    };
    open.set(config.dataDir, s);
  }
  return s;
}
