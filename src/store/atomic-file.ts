/**
 * Writing a file so that readers see the old content or the new, never half of either: a temp
 * file beside it (exclusive create, fsync), rename over the target, then fsync of the folder,
 * because the rename is durable only once the folder entry is on disk.
 */
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * With `durable: false` the file is still replaced atomically (readers see old or new), but not
 * fsynced: for marks that recovery can do without (the caller says why), saving two fsyncs.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o600, durable = true): Promise<void> {
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  if (durable) await fsyncPath(dir);
}

/** fsync of a file or a folder by path (a folder's entries are durable only after this). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
