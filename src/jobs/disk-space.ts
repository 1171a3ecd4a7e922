/**
 * The free-space reserve (receive.minFreeBytes, issue 12 case 6): a receiver that fills its disk
 * stops storing for every partner, and a stranger's small message once made us write 2 GiB. So
 * work is refused before it starts when the file system is already near the reserve, and a
 * write that would cross it stops with a clear error instead of filling the disk.
 */
import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { As2Error, ErrorCodes } from "../core/index.js";

/** How often (in bytes written) a long write looks at the free space again. */
const CHECK_EVERY_BYTES = 8 * 1024 * 1024;

/** Free bytes for an unprivileged writer on the file system holding `path` (or its nearest existing folder). */
export async function freeBytes(path: string): Promise<number> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || dirname(p) === p) throw e;
    }
  }
}

export function lowSpace(path: string, free: number, reserve: number, needed = 0): As2Error {
  return new As2Error(ErrorCodes.LIMIT_EXCEEDED, `not enough free space on the file system of ${path}: ${free} bytes free, ${needed ? `${needed} needed plus ` : ""}receive.minFreeBytes (${reserve}) kept free`);
}

/** Throws when writing `needed` more bytes under `path` would leave less than `reserve` free. */
export async function ensureSpace(path: string, reserve: number, needed = 0): Promise<void> {
  if (reserve <= 0 && needed <= 0) return;
  const free = await freeBytes(path);
  if (free - needed < reserve) throw lowSpace(path, free, reserve, needed);
}

/** Admission checks within this long of a statfs reuse its figure (less what they admitted since). */
const ADMISSION_CACHE_MS = 1000;
/** ... and only while that figure is this far above the reserve: near it, every check asks the kernel. */
const ADMISSION_SLACK_BYTES = 256 * 1024 * 1024;
const recent = new Map<string, { free: number; at: number }>();

/**
 * ensureSpace for the check before a message is read (issue 14: two statfs calls per message at
 * hundreds of messages per second). Far from the reserve, a figure less than a second old serves,
 * reduced by what was admitted since; the writes themselves are still checked by guardSpace.
 */
export async function admitSpace(path: string, reserve: number, needed = 0): Promise<void> {
  if (reserve <= 0 && needed <= 0) return;
  const c = recent.get(path);
  if (c && Date.now() - c.at < ADMISSION_CACHE_MS && c.free - needed - reserve > ADMISSION_SLACK_BYTES) {
    c.free -= needed;
    return;
  }
  const free = await freeBytes(path);
  recent.set(path, { free: free - needed, at: Date.now() });
  if (free - needed < reserve) throw lowSpace(path, free, reserve, needed);
}

/** Passes the bytes through, checking the reserve every CHECK_EVERY_BYTES. */
export async function* guardSpace(source: AsyncIterable<Uint8Array>, path: string, reserve: number): AsyncGenerator<Uint8Array> {
  let sinceCheck = 0;
  for await (const c of source) {
    sinceCheck += c.byteLength;
    if (sinceCheck >= CHECK_EVERY_BYTES) {
      sinceCheck = 0;
      await ensureSpace(path, reserve);
    }
    yield c;
  }
}
