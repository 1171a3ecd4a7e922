/**
 * The `commit` step: the verified temp file takes its final name in the inbox, without ever
 * replacing another file (inbound.whenExists "overwrite" aside, which asks for exactly that).
 *
 * Crash windows and how recovery closes them (the ledger entry is at `verified` throughout):
 * - before the link: the temp file has one link; commit again.
 * - after the link, before the ledger says `committed`: the temp file has two links; the inbox
 *   name is found by its inode (a scan of the inbox, at recovery only) and nothing is written twice.
 * - overwrite: rename(2) moves the temp file; if it is gone, the rename happened.
 * - append: the target's size before the append is in the ledger first; recovery truncates to it
 *   and appends again, so a half-done append is not doubled.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, readdir, rename, truncate } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { As2Error, ErrorCodes } from "../../core/index.js";
import { fsyncDir, fsyncPath, type LedgerEntry } from "../../store/index.js";
import { crashPoint } from "../crash-point.js";
import { linkNoClobber, numberedName } from "../free-name.js";
import { inboxOf, type Services } from "./services.js";

async function statOrUndefined(path: string) {
  return lstat(path).catch((e: NodeJS.ErrnoException) => { if (e.code === "ENOENT") return undefined; throw e; });
}

/** The inbox name that shares the temp file's inode (after a crash between link and ledger write). */
async function findLinked(dir: string, name: string, ino: number): Promise<string | undefined> {
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  for (const n of await readdir(dir)) {
    if (n !== name && !n.startsWith(`${stem}.`)) continue;
    const st = await statOrUndefined(join(dir, n));
    if (st?.ino === ino) return join(dir, n);
  }
  return undefined;
}

/** Takes the name per whenExists; returns the stored path, or undefined when "skip" kept an existing file. */
async function place(s: Services, entry: LedgerEntry, tmp: string, dir: string, name: string): Promise<string | undefined> {
  // A CEM document (entry.dir) is never appended to or overwritten: it always gets a free name.
  const whenExists = entry.dir ? "rename" : s.config.partners[entry.partner]?.inbound.whenExists ?? "rename";
  switch (whenExists) {
    case "rename":
      return linkNoClobber(tmp, dir, name);
    case "skip":
      return linkNoClobber(tmp, dir, name, false);
    case "error": {
      const got = await linkNoClobber(tmp, dir, name, false);
      if (!got) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `${name} exists in the inbox (inbound.whenExists is "error")`);
      return got;
    }
    case "overwrite": {
      const target = join(dir, name);
      await rename(tmp, target);
      return target;
    }
    case "append": {
      const target = join(dir, name);
      const linked = await linkNoClobber(tmp, dir, name, false);
      if (linked) return linked;
      if (entry.appendAt === undefined) {
        entry.appendAt = (await lstat(target)).size;
        await s.store.received.advance(entry);
      } else {
        await truncate(target, entry.appendAt);
      }
      await pipeline(createReadStream(tmp), createWriteStream(target, { flags: "a" }));
      await fsyncPath(target);
      return target;
    }
  }
}

export async function commitStep(s: Services, entry: LedgerEntry): Promise<LedgerEntry> {
  const dir = entry.dir ?? inboxOf(s.config, entry.partner);
  const tmp = entry.tmp!;
  const name = entry.name!;
  const st = await statOrUndefined(tmp);
  let file: string | undefined;
  let skipped = false;
  if (!st) {
    // Only "overwrite" moves the temp file itself; for any other mode a missing temp file at
    // `verified` means the payload is lost, and the message must fail so that a resend is taken.
    if (entry.dir || s.config.partners[entry.partner]?.inbound.whenExists !== "overwrite" || !(await statOrUndefined(join(dir, name)))) {
      throw new As2Error(ErrorCodes.STORE_FAILED, `the verified payload ${tmp} is gone`);
    }
    file = join(dir, name);
  } else if (st.nlink > 1 && entry.appendAt === undefined) {
    file = await findLinked(dir, name, st.ino);
    if (!file) throw new As2Error(ErrorCodes.STORE_FAILED, `the payload ${tmp} is linked, but not under ${name} or ${numberedName(name, 1)}...`);
  } else {
    file = await place(s, entry, tmp, dir, name);
    skipped = !file;
  }
  await fsyncDir(dir);
  crashPoint("receive:linked");
  // Not written at all (issue 14; it was written without an fsync before, and recovery never
  // needed it): the `record` step follows at once and writes `recorded`, durably. Until then the
  // temp file stays, linked to the inbox name, so a crash here leaves `verified` + a temp file
  // with two links, which recovery resolves by inode (or, for "overwrite", by the temp file
  // being gone; for "append", by appendAt). The `record` step removes the temp file.
  const committed: LedgerEntry = { ...entry, step: "committed", at: s.now().toISOString(), ...(file ? { file } : {}), ...(skipped ? { outcome: "skipped" as const } : {}) };
  crashPoint("receive:committed");
  return committed;
}
