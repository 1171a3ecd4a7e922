/**
 * Partial uploads of AS2 Restart (draft-harding-as2-restart-07; as2-reference E3-E5), kept in
 * <dataDir>/spool/restart/ and keyed by (AS2-From, ETag):
 *
 *   <key>.part   the bytes received so far, in order from byte 0
 *   <key>.json   what they are: sender, ETag, Message-ID, total size, and `durable`, the length
 *                known to be on disk (fsynced), with the boot that wrote it
 *   <key>.lock   an owner lock (owner-lock.ts): one transfer at a time; a dead process's lock is
 *                taken over, so a killed receiver never blocks the ETag for ever (E5: a parallel
 *                transfer gets 500)
 *
 * What a crash can leave in the tail of a .part file, and why `durable` exists: bytes written but
 * not fsynced. After a process crash (SIGKILL, OOM) on the same boot they are in the page cache
 * and are real: an fsync makes them durable, and the file's size is what we hold. After a power
 * loss (another boot ID) a file system may keep a size whose last blocks never reached the disk
 * (zeros, or garbage on some file systems): then only `durable` counts and the tail is cut off.
 * Either way the length reported to a HEAD has been fsynced before it is reported ("settle"),
 * so a sender never skips bytes that a later crash could lose. The MIC and the signature still
 * cover the whole message: a partial that were wrong anyway would fail verification, never give
 * a positive MDN.
 */
import { createHash } from "node:crypto";
import { mkdir, open, opendir, readFile, rm, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { writeFileAtomic } from "./atomic-file.js";
import { liveHolder, tryOwnerLock, type OwnerLockInfo } from "./owner-lock.js";

export interface PartialMeta {
  from: string;
  etag: string;
  messageId: string;
  /** The whole message's size in bytes (Content-Range's complete-length). */
  total: number;
  /** Bytes from 0 known to be on disk (fsynced). */
  durable: number;
  /** The boot (Linux boot_id) of the process that last wrote it. */
  boot: string;
  created: string;
  /** Last write: what maxAge is measured from. */
  updated: string;
  /**
   * The message went through the pipeline and has its outcome on record: the bytes are gone, the
   * marker stays (until maxAge) so that a HEAD still says "all held" and the sender's last-byte
   * POST gets the recorded MDN as a duplicate, instead of the whole message being sent again
   * because the answer to the last POST was lost.
   */
  done?: boolean;
}

/**
 * Bytes between two durable marks while a body arrives: after a power loss at most this much is
 * asked for again (after a process crash, nothing: settle() keeps the page-cache tail).
 */
export const CHECKPOINT_BYTES = 16 * 1024 * 1024;

export function partialsDir(dataDir: string): string {
  return join(dataDir, "spool", "restart");
}

/** The file-name key: a hash, since AS2 IDs and entity tags may hold any printable character. */
export function partialKey(from: string, etag: string): string {
  return createHash("sha256").update(`${from}\n${etag}`).digest("hex").slice(0, 40);
}

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim();
  } catch {
    return "";
  }
}

export class Partial {
  readonly part: string;
  readonly metaPath: string;
  readonly lock: string;

  constructor(readonly dir: string, readonly from: string, readonly etag: string) {
    const key = partialKey(from, etag);
    this.part = join(dir, `${key}.part`);
    this.metaPath = join(dir, `${key}.json`);
    this.lock = join(dir, `${key}.lock`);
  }

  async meta(): Promise<PartialMeta | undefined> {
    try {
      return JSON.parse(await readFile(this.metaPath, "utf8")) as PartialMeta;
    } catch {
      return undefined;
    }
  }

  async writeMeta(m: PartialMeta): Promise<void> {
    await writeFileAtomic(this.metaPath, JSON.stringify(m));
  }

  /** The lock of this ETag, or who holds it (a live transfer). */
  async tryLock(): Promise<{ release(): Promise<void> } | { holder: OwnerLockInfo }> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const got = await tryOwnerLock(this.lock, `AS2 Restart upload ${this.etag}`);
    return got.acquired ? { release: got.release } : { holder: got.holder };
  }

  holder(): Promise<OwnerLockInfo | undefined> {
    return liveHolder(this.lock);
  }

  /**
   * Under the lock: makes the held length true and durable (see the file comment) and returns
   * the meta with it, or undefined when nothing is held.
   */
  async settle(): Promise<PartialMeta | undefined> {
    const m = await this.meta();
    if (!m) {
      await rm(this.part, { force: true });
      return undefined;
    }
    if (m.done) {
      await rm(this.part, { force: true });
      return m;
    }
    const size = await stat(this.part).then((s) => s.size, () => -1);
    if (size < 0) {
      await rm(this.metaPath, { force: true });
      return undefined;
    }
    const sameBoot = m.boot !== "" && m.boot === bootId();
    let held = sameBoot ? Math.min(size, m.total) : Math.min(m.durable, size);
    const fh = await open(this.part, "r+");
    try {
      if (size !== held) await fh.truncate(held);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    if (held !== m.durable) {
      held = Math.max(0, held);
      const settled = { ...m, durable: held };
      await this.writeMeta(settled);
      return settled;
    }
    return m;
  }

  /** The message is recorded: keep only the marker (PartialMeta.done); the marker first, so a crash between leaves a done marker. */
  async finish(m: PartialMeta, now: Date): Promise<void> {
    await this.writeMeta({ ...m, durable: m.total, done: true, updated: now.toISOString() });
    await rm(this.part, { force: true });
  }

  async remove(): Promise<void> {
    await rm(this.part, { force: true });
    await rm(this.metaPath, { force: true });
  }
}

/**
 * Appends a body to a partial from `start` (at most what is held: bytes from `start` on are
 * overwritten with the same bytes of the same message), fsyncing every CHECKPOINT_BYTES and at
 * the end, also when the body breaks off. Memory stays one chunk. Returns the bytes held after.
 */
export class PartialWriter {
  private constructor(private readonly p: Partial, private readonly fh: FileHandle, private m: PartialMeta, private pos: number) {}

  static async open(p: Partial, meta: Omit<PartialMeta, "durable" | "boot" | "updated" | "created"> & { created?: string }, start: number, now: Date): Promise<PartialWriter> {
    await mkdir(p.dir, { recursive: true, mode: 0o700 });
    const fh = await open(p.part, start === 0 ? "w" : "r+", 0o600);
    try {
      await fh.truncate(start);
      await fh.datasync();
      const m: PartialMeta = { ...meta, created: meta.created ?? now.toISOString(), durable: start, boot: bootId(), updated: now.toISOString() };
      await p.writeMeta(m);
      return new PartialWriter(p, fh, m, start);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get held(): number {
    return this.pos;
  }

  async write(chunk: Uint8Array, now: () => Date): Promise<void> {
    let off = 0;
    while (off < chunk.byteLength) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.byteLength - off, this.pos);
      off += bytesWritten;
      this.pos += bytesWritten;
    }
    if (this.pos - this.m.durable >= CHECKPOINT_BYTES) await this.checkpoint(now());
  }

  async checkpoint(now: Date): Promise<void> {
    await this.fh.datasync();
    this.m = { ...this.m, durable: this.pos, updated: now.toISOString() };
    await this.p.writeMeta(this.m);
  }

  async close(now: Date): Promise<number> {
    try {
      await this.checkpoint(now);
    } finally {
      await this.fh.close();
    }
    return this.pos;
  }
}

export interface PartialSweep { count: number; bytes: number }

/**
 * Removes partials whose last write is before `before` (garbage collection: E5 "stale partial
 * files"), unless a live transfer holds them; also .part files without a meta and metas without
 * a .part (a crash between the two writes). `dryRun` only counts.
 */
export async function sweepPartials(dataDir: string, before: number, dryRun = false): Promise<PartialSweep> {
  const dir = partialsDir(dataDir);
  const out: PartialSweep = { count: 0, bytes: 0 };
  let d;
  try {
    d = await opendir(dir);
  } catch {
    return out;
  }
  const keys = new Set<string>();
  for await (const e of d) {
    const m = /^([0-9a-f]{40})\.(part|json)$/.exec(e.name);
    if (m && e.isFile()) keys.add(m[1]!);
  }
  for (const key of keys) {
    const part = join(dir, `${key}.part`);
    const metaPath = join(dir, `${key}.json`);
    const lock = join(dir, `${key}.lock`);
    const meta = await readFile(metaPath, "utf8").then((t) => JSON.parse(t) as PartialMeta, () => undefined);
    const partStat = await stat(part).catch(() => undefined);
    const last = meta ? Date.parse(meta.updated) : (partStat?.mtimeMs ?? 0);
    // A half-made pair younger than the cutoff may be a writer between its two first writes.
    if (!(last < before)) continue;
    // A live transfer writes a mark every CHECKPOINT_BYTES, and receive.requestTimeout ends a
    // silent one: a lock on a partial this stale is a dead writer's, even one on another host
    // (a shared data folder), whose life cannot be tested from here.
    const holder = await liveHolder(lock);
    if (holder && holder.owner.host === hostname()) continue;
    out.count++;
    out.bytes += partStat?.size ?? 0;
    if (!dryRun) {
      await rm(part, { force: true });
      await rm(metaPath, { force: true });
      await rm(lock, { force: true }).catch(() => undefined);
    }
  }
  return out;
}
