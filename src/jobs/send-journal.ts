/**
 * The durable marks of a send job in progress, one short line per mark, appended and fsynced:
 * the Message-ID a file is about to be posted under, and each file's outcome.
 *
 * Why: the job record is one JSON file (contract §5) that grows with every file (a 1,000-file job
 * ends near 6 MB, most of it the raw MDNs kept for non-repudiation). Rewriting and fsyncing all
 * of it twice per file made a long job quadratic in disk writes. Now the record is still
 * rewritten atomically at each step (so after a SIGKILL it is current: the page cache survives
 * the process), but only this journal is fsynced per file; the record is fsynced when the job
 * ends. After a power loss the record may be older than the journal; the sweep that settles a
 * dead job (send-recovery.ts) first replays the journal into it. What must never be lost is the
 * Message-ID of a file that may have reached the partner: a restart resends under it, and the
 * receiver's duplicate check (RFC 6017 §3) answers with its earlier MDN instead of storing the
 * file twice.
 */
import { mkdir, open, readFile, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { addWarnings, setFileStatus, type JobRecord, type JobState } from "../store/index.js";
import { fsyncPath } from "../store/atomic-file.js";

export interface JournalMark {
  /** The file's index in the job. */
  i: number;
  as2MessageId?: string;
  status: JobState;
  error?: { code: string; message: string };
}

export function journalPath(dataDir: string, runId: string): string {
  return join(dataDir, "jobs", ".journal", `${runId}.jsonl`);
}

export class SendJournal {
  private constructor(private readonly path: string, private readonly fh: FileHandle) {}

  static async open(dataDir: string, runId: string): Promise<SendJournal> {
    const path = journalPath(dataDir, runId);
    await mkdir(join(dataDir, "jobs", ".journal"), { recursive: true, mode: 0o700 });
    const fh = await open(path, "a", 0o600);
    // The journal's own folder entry must survive too, once.
    await fsyncPath(join(dataDir, "jobs", ".journal"));
    return new SendJournal(path, fh);
  }

  /** Appends one mark and returns once it is on disk. */
  async mark(m: JournalMark): Promise<void> {
    await this.fh.write(`${JSON.stringify(m)}\n`);
    await this.fh.datasync();
  }

  /** After the record itself was saved durably: the journal has nothing more to say. */
  async finish(): Promise<void> {
    await this.fh.close();
    await rm(this.path, { force: true });
  }
}

/**
 * Puts into the record what the journal knows and the record does not (it was saved without
 * fsync and the machine went down). Only fills in: a file the record already has further along
 * keeps what the record says. Returns whether anything changed. A torn last line is ignored.
 */
export async function replayJournal(dataDir: string, record: JobRecord): Promise<boolean> {
  const text = await readFile(journalPath(dataDir, record.runId), "utf8").catch(() => "");
  let changed = false;
  for (const line of text.split("\n")) {
    let m: JournalMark;
    try {
      m = JSON.parse(line) as JournalMark;
    } catch {
      continue;
    }
    const entry = record.files[m.i];
    if (!entry) continue;
    if (m.as2MessageId && !entry.as2MessageId) {
      entry.as2MessageId = m.as2MessageId;
      changed = true;
    }
    const open = entry.status === "NOT_STARTED" || entry.status === "ONGOING";
    if (open && m.status !== entry.status && m.status !== "NOT_STARTED") {
      setFileStatus(entry, m.status);
      if (m.error) entry.error = m.error;
      changed = true;
    }
  }
  if (changed) addWarnings(record, "the job record was completed from its journal: the machine stopped before the record reached the disk");
  return changed;
}

export async function removeJournal(dataDir: string, runId: string): Promise<void> {
  await rm(journalPath(dataDir, runId), { force: true });
}
