/**
 * The files of a send job: named ones, or a folder and a pattern with * and ? (contract §2); the
 * content type of each; and what happens to a source once its transfer is confirmed.
 */
import { constants as fsConstants } from "node:fs";
import { open, readdir, stat, copyFile, unlink, mkdir } from "node:fs/promises";
import { freeName, linkNoClobber } from "./free-name.js";
import { basename, extname, resolve } from "node:path";
import { As2Error, ErrorCodes } from "../core/index.js";

/** `*` any run of characters, `?` one character; nothing else is special. A leading dot must be matched literally, as in a shell. */
export function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (const ch of pattern) re += ch === "*" ? "[^/]*" : ch === "?" ? "[^/]" : ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  return new RegExp(`^${re}$`);
}

export async function filesInDir(dir: string, pattern: string): Promise<string[]> {
  const re = globToRegExp(pattern);
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `--dir ${dir}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such folder" : (e as Error).message}`);
  }
  return entries
    .filter((e) => e.isFile() && re.test(e.name) && !(e.name.startsWith(".") && !pattern.startsWith(".")))
    .map((e) => resolve(dir, e.name))
    .sort();
}

/** Checked up front so that a typo fails the run before anything is sent (exit 2). */
export async function checkReadable(files: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const f of files) {
    try {
      const s = await stat(f);
      if (!s.isFile()) problems.push(`${f}: not a regular file`);
      else (await open(f, "r")).close();
    } catch (e) {
      problems.push(`${f}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return problems;
}

const BY_EXTENSION: Record<string, string> = {
  ".x12": "application/edi-x12",
  ".edifact": "application/edifact",
  ".edf": "application/edifact",
  ".xml": "application/xml",
  ".json": "application/json",
  ".txt": "text/plain",
  ".csv": "text/csv",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
  ".gz": "application/gzip",
};

/**
 * The content type from the file name (contract §2: after --content-type and the profile). An
 * .edi file is X12 or EDIFACT: its first bytes tell (ISA / UNA, UNB), else EDI-consent (RFC 1767).
 */
export async function contentTypeFor(file: string): Promise<string> {
  const ext = extname(file).toLowerCase();
  if (ext === ".edi") {
    const fh = await open(file, "r");
    try {
      const { buffer, bytesRead } = await fh.read(Buffer.alloc(3), 0, 3, 0);
      const head = buffer.subarray(0, bytesRead).toString("latin1");
      return head === "ISA" ? "application/edi-x12" : head === "UNA" || head === "UNB" ? "application/edifact" : "application/edi-consent";
    } finally {
      await fh.close();
    }
  }
  return BY_EXTENSION[ext] ?? "application/octet-stream";
}

/** A name in `dir` not taken yet: name, name.1, name.2, ... (keeps the extension last). */
/** Moves a confirmed source into the archive folder (never overwriting); across devices by copy + unlink. */
export async function archiveSource(file: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  try {
    // link + unlink never replaces an archived file of the same name (a rename would).
    const target = (await linkNoClobber(file, dir, basename(file)))!;
    await unlink(file);
    return target;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
    const target = await freeName(dir, basename(file));
    await copyFile(file, target, fsConstants.COPYFILE_EXCL);
    await unlink(file);
    return target;
  }
}

export async function deleteSource(file: string): Promise<void> {
  await unlink(file);
}
