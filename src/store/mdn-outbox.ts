/**
 * The queue of outbound async MDNs (RFC 4130 §7.3, as2-reference X2): an MDN to POST to a
 * partner's Receipt-Delivery-Option is written here before anything tries to deliver it, so a
 * receiver that stops or dies between accepting a message and delivering its receipt delivers it
 * after the restart, with the retries it had left.
 */
import { mkdir, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic-file.js";
import { tryOwnerLock, type Acquired } from "./owner-lock.js";
import type { StoredMdn } from "./received-ledger.js";

export interface OutboundMdn {
  /** Unique per delivery: the receive run ID, with a suffix for a resend's copy. */
  id: string;
  runId: string;
  partner: string;
  messageId: string;
  url: string;
  mdn: StoredMdn;
  attempts: number;
  /** ms since the epoch; not before this. */
  nextAttemptAt: number;
  createdAt: string;
  lastError?: string;
}

export interface MdnOutbox {
  /** Persists the entry (replacing one with the same id). */
  put(entry: OutboundMdn): Promise<void>;
  get(id: string): Promise<OutboundMdn | undefined>;
  /** Entries whose time has come, oldest first. */
  due(now: number): Promise<OutboundMdn[]>;
  /** Takes an entry for delivery; refused while a live process has it. */
  claim(id: string): Promise<Acquired>;
  remove(id: string): Promise<void>;
}

const ID = /^[0-9A-Za-z-]+$/;

export class FileMdnOutbox implements MdnOutbox {
  readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, "queue", "mdn");
  }

  private file(id: string): string {
    if (!ID.test(id)) throw new Error(`bad outbound MDN id ${id}`);
    return join(this.dir, `${id}.json`);
  }

  async put(entry: OutboundMdn): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file(entry.id), JSON.stringify(entry));
  }

  async get(id: string): Promise<OutboundMdn | undefined> {
    try {
      return JSON.parse(await readFile(this.file(id), "utf8")) as OutboundMdn;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async due(now: number): Promise<OutboundMdn[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: OutboundMdn[] = [];
    for (const name of names) {
      if (!name.endsWith(".json") || name.startsWith(".")) continue;
      try {
        const e = JSON.parse(await readFile(join(this.dir, name), "utf8")) as OutboundMdn;
        if (e.nextAttemptAt <= now) out.push(e);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
    return out.sort((a, b) => a.nextAttemptAt - b.nextAttemptAt);
  }

  claim(id: string): Promise<Acquired> {
    return tryOwnerLock(`${this.file(id)}.lock`, `delivering MDN ${id}`);
  }

  async remove(id: string): Promise<void> {
    await rm(this.file(id), { force: true });
  }
}
