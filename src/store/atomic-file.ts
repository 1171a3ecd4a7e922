/**
 * Writing a file so that readers see the old content or the new, never half of either: a temp
 * file beside it (exclusive create, fsync), rename over the target, then fsync of the folder,
 * because the rename is durable only once the folder entry is on disk.
 */
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
// The crash-test hook (a map lookup when unset); the group commit below is a point worth killing at.
import { crashPoint } from "../jobs/crash-point.js";

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
  if (durable) await fsyncDir(dir);
}

interface DirSync {
  /** The fsync in progress, and how many callers it serves. */
  running?: Promise<void>;
  runningFor: number;
  /** The one that starts when it ends: whoever arrives now waits for this one. */
  next?: Promise<void>;
  nextFor: number;
}

const dirSyncs = new Map<string, DirSync>();

function startDirSync(dir: string, st: DirSync, callers: number): Promise<void> {
  const p = (async () => {
    await fsyncPath(dir);
    // Several callers' folder entries (ledger marks, job records, inbox names) are durable now
    // and none of them has gone on yet: the crash tests kill here (issue 14).
    if (callers > 1) crashPoint("store:group-synced");
  })();
  st.running = p;
  st.runningFor = callers;
  const clear = () => {
    if (st.running === p) st.running = undefined;
    if (!st.running && !st.next) dirSyncs.delete(dir);
  };
  p.then(clear, clear);
  return p;
}

/**
 * fsync of a folder, shared by concurrent callers (group commit, issue 14): a caller's entry
 * (a rename, a link) is durable once an fsync of the folder that *started after* the change has
 * ended. So a caller that finds one in progress waits for the next, which serves every caller
 * that arrived meanwhile; under load one fsync makes several messages' marks durable, and no
 * caller goes on before its own change is on disk.
 */
export function fsyncDir(dir: string): Promise<void> {
  let st = dirSyncs.get(dir);
  if (!st) {
    st = { runningFor: 0, nextFor: 0 };
    dirSyncs.set(dir, st);
  }
  if (!st.running && !st.next) return startDirSync(dir, st, 1);
  const s = st;
  s.nextFor++;
  if (!s.next) {
    const after = (s.running ?? Promise.resolve()).catch(() => undefined);
    s.next = after.then(() => {
      const callers = s.nextFor;
      s.next = undefined;
      s.nextFor = 0;
      return startDirSync(dir, s, callers);
    });
  }
  return s.next;
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
