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
import { lstat, readdir, rename, truncate, unlink } from "node:fs/promises";
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

/** What one stored file is taken from: the entry itself (one payload), or one of its parts (RFC 6362). */
interface Slot {
  tmp?: string;
  name?: string;
  appendAt?: number;
}

/** Takes the name per whenExists; returns the stored path, or undefined when "skip" kept an existing file. */
async function place(s: Services, entry: LedgerEntry, slot: Slot, tmp: string, dir: string, name: string): Promise<string | undefined> {
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
      if (slot.appendAt === undefined) {
        slot.appendAt = (await lstat(target)).size;
        await s.store.received.advance(entry);
      } else {
        await truncate(target, slot.appendAt);
      }
      await pipeline(createReadStream(tmp), createWriteStream(target, { flags: "a" }));
      await fsyncPath(target);
      return target;
    }
  }
}

/**
 * Stores one slot's temp file under its name; the same steps after a crash find what was done
 * already (see the header comment). Returns the stored path, undefined when skipped.
 */
async function commitSlot(s: Services, entry: LedgerEntry, slot: Slot, dir: string): Promise<string | undefined> {
  const tmp = slot.tmp!;
  const name = slot.name!;
  const st = await statOrUndefined(tmp);
  if (!st) {
    // Only "overwrite" moves the temp file itself; for any other mode a missing temp file at
    // `verified` means the payload is lost, and the message must fail so that a resend is taken.
    if (entry.dir || s.config.partners[entry.partner]?.inbound.whenExists !== "overwrite" || !(await statOrUndefined(join(dir, name)))) {
      throw new As2Error(ErrorCodes.STORE_FAILED, `the verified payload ${tmp} is gone`);
    }
    return join(dir, name);
  }
  if (st.nlink > 1 && slot.appendAt === undefined) {
    const file = await findLinked(dir, name, st.ino);
    if (!file) throw new As2Error(ErrorCodes.STORE_FAILED, `the payload ${tmp} is linked, but not under ${name} or ${numberedName(name, 1)}...`);
    return file;
  }
  return place(s, entry, slot, tmp, dir, name);
}

/**
 * Multiple attachments: all parts or none. A part that cannot be stored (whenExists "error" and
 * its name taken, an I/O error) takes back the parts stored before it: a linked part only when
 * the inbox name still has the temp file's inode (never a user's file of the same name), an
 * appended part by truncating to its appendAt. ("overwrite" replaced a file for good; it cannot
 * conflict, so only an I/O error could leave a replaced file behind.) A crash between two parts
 * leaves `verified` with some parts linked: recovery runs this again, which finds those by
 * inode and stores the rest, so every part ends stored exactly once.
 */
async function commitParts(s: Services, entry: LedgerEntry, dir: string): Promise<{ file?: string; skipped: boolean }> {
  const parts = entry.parts!;
  const stored: Array<{ slot: Slot; file: string }> = [];
  try {
    for (const part of parts) {
      const file = await commitSlot(s, entry, part, dir);
      if (file) {
        part.file = file;
        stored.push({ slot: part, file });
      } else {
        delete part.file;
      }
      // Between two parts' links (the crash test's point): recovery must finish the set.
      if (part !== parts[parts.length - 1]) crashPoint("receive:part-linked");
    }
  } catch (e) {
    for (const { slot, file } of stored.reverse()) await takeBack(slot, file);
    for (const part of parts) delete part.file;
    await fsyncDir(dir).catch(() => undefined);
    throw e;
  }
  const first = parts.find((p) => p.file)?.file;
  return { ...(first ? { file: first } : {}), skipped: parts.some((p) => !p.file) };
}

/** Undoes one stored part (commitParts): only what this message put there. */
async function takeBack(slot: Slot, file: string): Promise<void> {
  if (slot.appendAt !== undefined) {
    await truncate(file, slot.appendAt).catch(() => undefined);
    return;
  }
  const [a, b] = await Promise.all([statOrUndefined(slot.tmp!), statOrUndefined(file)]);
  if (a && b && a.ino === b.ino && a.dev === b.dev) await unlink(file);
}

export async function commitStep(s: Services, entry: LedgerEntry): Promise<LedgerEntry> {
  // A CEM document goes to its own folder under dataDir (entry.dir), never to the inbox.
  const dir = entry.dir ?? inboxOf(s.config, entry.partner);
  let file: string | undefined;
  let skipped = false;
  if (entry.parts?.length) {
    ({ file, skipped } = await commitParts(s, entry, dir));
  } else {
    file = await commitSlot(s, entry, entry, dir);
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
