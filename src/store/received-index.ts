/**
 * Duplicate detection for received messages (as2-reference X6): key = (AS2-From, normalised
 * Message-ID). The entry keeps the MDN we answered with, so a resend gets the same MDN back and
 * the payload is not delivered twice (RFC 4130 §5.5, RFC 6017).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { normalizeMessageId } from "../core/message/as2-name.js";
import { writeFileAtomic } from "./atomic-file.js";

export interface ReceivedEntry {
  runId: string;
  /** The MDN sent for it: headers and base64 body; absent when none was requested. */
  mdn?: { headers: Array<{ name: string; value: string }>; body: string };
  /** Where the payload was stored. */
  file?: string;
}

export class ReceivedMessageIndex {
  private readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, "index", "received");
  }

  private file(from: string, messageId: string): string {
    return join(this.dir, createHash("sha256").update(`${from}\u0000${normalizeMessageId(messageId)}`).digest("hex"));
  }

  async get(from: string, messageId: string): Promise<ReceivedEntry | undefined> {
    try {
      return JSON.parse(await readFile(this.file(from, messageId), "utf8")) as ReceivedEntry;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  /** Written atomically, after the payload is on disk and before the MDN goes out. */
  async put(from: string, messageId: string, entry: ReceivedEntry): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file(from, messageId), JSON.stringify(entry));
  }
}
