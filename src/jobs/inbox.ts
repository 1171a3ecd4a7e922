/**
 * Writing a received payload before it is committed (as2-reference S8): the name comes from
 * Content-Disposition, sanitised, else from the Message-ID; the bytes go to a temp file in the
 * inbox's `.as2kit-tmp` folder (same filesystem, so the commit's link is atomic) and are fsynced
 * there. The commit itself is the pipeline's `commit` step (receive/commit.ts), so the inbox never
 * shows half a file, not even after a SIGKILL, and a positive MDN never precedes the data on disk.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, extname, join } from "node:path";
import { isRunning } from "../store/process-owner.js";

/** Longest stored name in bytes; most filesystems allow 255. */
export const MAX_FILENAME_BYTES = 200;

/**
 * A safe file name: no folders (either separator), no traversal, no control characters or NUL (C0, C1, bidi),
 * no characters Windows shares reject, no leading dots, bounded length with the extension kept.
 */
export function sanitizeFilename(raw: string | undefined, messageId: string): string {
  let name = (raw ?? "").replace(/\\/g, "/");
  name = name.slice(name.lastIndexOf("/") + 1);
  // C0, DEL and C1 controls, bidi and line-separator controls (a name that displays reversed or
  // breaks a listing), and what Windows shares reject.
  name = name.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff<>:"|?*]/g, "_").replace(/^[.\s]+/, "").replace(/[.\s]+$/, "");
  if (!name) name = `${messageId.replace(/^<|>$/g, "").replace(/[^A-Za-z0-9._@-]/g, "_").replace(/^\.+/, "") || "message"}.dat`;
  if (Buffer.byteLength(name) > MAX_FILENAME_BYTES) {
    const ext = extname(name).slice(0, 20);
    let stem = name.slice(0, name.length - ext.length);
    while (Buffer.byteLength(stem + ext) > MAX_FILENAME_BYTES) stem = stem.slice(0, -1);
    name = stem + ext;
  }
  return name;
}

/** How much of a payload is gathered before one write. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/** Where payloads are written before they are complete, inside the inbox. */
export const INBOX_TMP = ".as2kit-tmp";

/** A writer that has ended (a zombie too: a killed receiver's worker may wait long to be reaped). */
const alive = (pid: number): boolean => isRunning(pid);

export class InboxWriter {
  readonly tmpPath: string;
  private fh: FileHandle | undefined;
  size = 0;

  private constructor(readonly dir: string) {
    // The pid in the name lets a later start tell a dead writer's leftovers from a live one's.
    this.tmpPath = join(dir, INBOX_TMP, `${process.pid}-${randomBytes(8).toString("hex")}.part`);
  }

  static async create(dir: string): Promise<InboxWriter> {
    const w = new InboxWriter(dir);
    try {
      w.fh = await open(w.tmpPath, "wx", 0o640);
    } catch (e) {
      // The temp folder is made when first missing, not before every message (issue 14).
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      await mkdir(join(dir, INBOX_TMP), { recursive: true, mode: 0o750 });
      w.fh = await open(w.tmpPath, "wx", 0o640);
    }
    return w;
  }

  /**
   * Removes temp files left by writers that no longer run (a receiver killed mid-message);
   * returns how many went. Files of live processes (another receiver on the same inbox) stay, and
   * so do those in `keep` (named by an unfinished ledger entry that another worker may be taking over).
   * With `minIdleMs` (an inbox shared by several hosts, where a pid says nothing about a writer
   * on another host) only files nobody has written to for that long go.
   */
  static async sweep(dir: string, options: { minIdleMs?: number; keep?: ReadonlySet<string> } = {}): Promise<number> {
    const tmp = join(dir, INBOX_TMP);
    const names = await readdir(tmp).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      const pid = Number(/^(\d+)-[0-9a-f]+\.part$/.exec(name)?.[1]);
      if (!pid || options.keep?.has(join(tmp, name))) continue;
      if (options.minIdleMs !== undefined) {
        const idle = await stat(join(tmp, name)).then((st) => Date.now() - st.mtimeMs >= options.minIdleMs!, () => false);
        if (!idle) continue;
      } else if (pid !== process.pid && alive(pid)) continue;
      await rm(join(tmp, name), { force: true });
      removed++;
    }
    return removed;
  }

  async write(source: AsyncIterable<Uint8Array>): Promise<void> {
    // Decryption hands over pieces of a few KiB; one write per piece costs a thread-pool round
    // trip each (measured: 64 MiB in 2.2 s). Gathering about 1 MiB per writev keeps memory
    // bounded and the disk busy.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (!pendingBytes) return;
      const batch = pending;
      pending = [];
      pendingBytes = 0;
      await this.fh!.writev(batch);
    };
    for await (const c of source) {
      // The source may reuse its buffer after the next pull: keep a copy of what is held.
      pending.push(Buffer.from(c));
      pendingBytes += c.byteLength;
      this.size += c.byteLength;
      if (pendingBytes >= WRITE_BATCH_BYTES) await flush();
    }
    await flush();
  }

  /** Removes the temp file (a failed or refused message leaves nothing behind). */
  async discard(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    this.fh = undefined;
    await rm(this.tmpPath, { force: true });
  }

  /** fsync and close: the payload is complete and durable in the temp folder. */
  async finish(): Promise<void> {
    await this.fh!.sync();
    await this.fh!.close();
    this.fh = undefined;
  }
}

/**
 * Recovery takes over a dead receiver's verified temp file: renamed to this process's name, so
 * that another receiver starting meanwhile does not sweep it as the dead process's leftover.
 */
export async function adoptTemp(tmp: string): Promise<string> {
  const mine = join(dirname(tmp), `${process.pid}-${randomBytes(8).toString("hex")}.part`);
  await rename(tmp, mine);
  return mine;
}
