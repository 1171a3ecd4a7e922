/**
 * Which job sent a Message-ID: an async MDN names only the Original-Message-ID (RFC 3798 §3.2.5),
 * and the receive server must find the send job to update without reading every job record.
 * One small file per message under <dataDir>/index/sent/, named by a hash of the normalised ID.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { normalizeMessageId } from "../core/message/as2-name.js";

/** The sent-message index as the send and MDN paths use it (files here; postgres/queue.ts). */
export interface SentIndex {
  add(messageId: string, runId: string): Promise<void>;
  runIdOf(messageId: string): Promise<string | undefined>;
  /** Removes the entry if it still names `runId` (a pruned job's); its bytes, 0 when there was none. `dryRun`: only counted. */
  remove(messageId: string, runId: string, dryRun?: boolean): Promise<number>;
}

export class SentMessageIndex implements SentIndex {
  private readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, "index", "sent");
  }

  private file(messageId: string): string {
    return join(this.dir, createHash("sha256").update(normalizeMessageId(messageId)).digest("hex"));
  }

  /** Written before the message is posted, so an MDN that comes back at once finds its job. */
  async add(messageId: string, runId: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(this.file(messageId), runId, { mode: 0o600 });
  }

  async runIdOf(messageId: string): Promise<string | undefined> {
    try {
      return (await readFile(this.file(messageId), "utf8")).trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  /**
   * Removes the entry if it still names `runId` (a pruned job's); its bytes, 0 when there was
   * none. `dryRun`: only counted.
   */
  async remove(messageId: string, runId: string, dryRun = false): Promise<number> {
    const file = this.file(messageId);
    if ((await this.runIdOf(messageId)) !== runId) return 0;
    const { size } = await stat(file);
    if (!dryRun) await rm(file, { force: true });
    return size;
  }
}
