/**
 * A lock held for as long as its owner process lives (a send job while it runs, an outbound MDN
 * while it is being delivered): a file created with O_EXCL that names its owner. A lock whose
 * owner died (SIGKILL, power loss) is taken over; the take-over itself runs under a short
 * withLock so that two processes finding the same dead lock cannot both remove it, or remove the
 * live lock that one of them has just made.
 */
import { open, readFile, rm } from "node:fs/promises";
import { withLock } from "./lock-file.js";
import { isAlive, sameOwner, thisProcess, type Owner } from "./process-owner.js";

export interface OwnerLockInfo {
  owner: Owner;
  since: string;
  /** What the holder is doing, for the message a refused contender prints. */
  what?: string;
}

export type Acquired = { acquired: true; release(): Promise<void> } | { acquired: false; holder: OwnerLockInfo };

async function readLock(path: string): Promise<OwnerLockInfo | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as OwnerLockInfo;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOENT: gone meanwhile. A torn or empty file is one whose writer died between create and write.
    if (code === "ENOENT") return undefined;
    if (e instanceof SyntaxError) return { owner: { host: "", pid: 0, start: 0, boot: "" }, since: "" };
    throw e;
  }
}

function deadOrTorn(info: OwnerLockInfo): boolean {
  return info.owner.pid === 0 || !isAlive(info.owner);
}

export async function tryOwnerLock(path: string, what?: string): Promise<Acquired> {
  const me = thisProcess();
  const info: OwnerLockInfo = { owner: me, since: new Date().toISOString(), ...(what ? { what } : {}) };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fh = await open(path, "wx", 0o600);
      try {
        await fh.writeFile(JSON.stringify(info));
      } finally {
        await fh.close();
      }
      return { acquired: true, release: () => releaseOwnerLock(path) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = await readLock(path);
    if (!holder) continue;
    if (!deadOrTorn(holder)) return { acquired: false, holder };
    // Dead holder: remove its lock, but only that one (re-read under the take-over lock).
    await withLock(`${path}.takeover`, `taking over ${path}`, async () => {
      const again = await readLock(path);
      if (again && deadOrTorn(again) && JSON.stringify(again) === JSON.stringify(holder)) await rm(path, { force: true });
    });
  }
  const holder = await readLock(path);
  return { acquired: false, holder: holder ?? { owner: me, since: "" } };
}

/** Removes the lock if this process holds it. */
export async function releaseOwnerLock(path: string): Promise<void> {
  const info = await readLock(path);
  if (info && sameOwner(info.owner, thisProcess())) await rm(path, { force: true });
}

/** The lock's holder when it is held by a live process, else undefined. */
export async function liveHolder(path: string): Promise<OwnerLockInfo | undefined> {
  const info = await readLock(path);
  return info && !deadOrTorn(info) ? info : undefined;
}
