/**
 * An exclusive lock between processes: a lock file created with O_EXCL. A lock left by a process
 * that died holding it is taken over after STALE_LOCK_MS.
 */
import { open, rm, stat } from "node:fs/promises";
import { As2Error, ErrorCodes } from "../core/errors.js";

/** A lock older than this belongs to a process that died holding it. */
export const STALE_LOCK_MS = 30_000;
/** How long withLock() waits before giving up. */
export const LOCK_TIMEOUT_MS = 10_000;

export async function withLock<T>(lock: string, what: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    try {
      const fh = await open(lock, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_LOCK_MS) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `${what} stayed locked for ${LOCK_TIMEOUT_MS} ms (${lock})`);
      await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
