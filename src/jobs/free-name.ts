/**
 * Taking a name in a folder without ever overwriting (inbox commits, archived sources, MDN
 * files): `name`, else `stem.1.ext`, `stem.2.ext`, ... The name is taken with link(2), which
 * fails with EEXIST when it exists, so two writers can never both get it (a stat-then-rename
 * lets both through, and the second rename silently replaces the first file).
 *
 * Finding the first free number must not cost one probe per earlier file (a partner that always
 * sends order.edi would make every receive slower than the last): a galloping search (1, 2, 4,
 * 8, ... until a free number, then bisection back to the first free one) takes O(log n) probes.
 */
import { link, lstat } from "node:fs/promises";
import { extname, join } from "node:path";

export function numberedName(name: string, k: number): string {
  if (k === 0) return name;
  const ext = extname(name);
  const stem = ext ? name.slice(0, -ext.length) : name;
  return `${stem}.${k}${ext}`;
}

async function taken(dir: string, name: string, k: number): Promise<boolean> {
  try {
    await lstat(join(dir, numberedName(name, k)));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/**
 * The lowest k >= 1 such that stem.k.ext is free, assuming the taken ones form a prefix (with
 * gaps, some free k is returned). `probes` counts lstat calls, for the tests of the bound.
 */
export async function firstFreeNumber(dir: string, name: string, probes?: { n: number }): Promise<number> {
  const isTaken = async (k: number) => { if (probes) probes.n++; return taken(dir, name, k); };
  let lo = 0; // known taken (0 = the plain name, taken when we get here)
  let hi = 1;
  while (await isTaken(hi)) {
    lo = hi;
    hi *= 2;
  }
  // lo taken (or 0), hi free: bisect to the first free.
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await isTaken(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** A free name for a file about to be written (no guarantee against a racing writer: see linkNoClobber). */
export async function freeName(dir: string, name: string): Promise<string> {
  if (!(await taken(dir, name, 0))) return join(dir, name);
  return join(dir, numberedName(name, await firstFreeNumber(dir, name)));
}

/**
 * Links `source` into `dir` under `name` or the first free numbered name; returns the path taken.
 * With `numbered` false, only `name` is tried and undefined comes back when it exists.
 */
export async function linkNoClobber(source: string, dir: string, name: string, numbered = true): Promise<string | undefined> {
  const attempt = async (k: number): Promise<string | undefined> => {
    const target = join(dir, numberedName(name, k));
    try {
      await link(source, target);
      return target;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return undefined;
      throw e;
    }
  };
  const plain = await attempt(0);
  if (plain || !numbered) return plain;
  let k = await firstFreeNumber(dir, name);
  // Racing writers take numbers under us; each EEXIST moves one on, so this ends after as many
  // tries as there are concurrent writers of the same name.
  for (;;) {
    const got = await attempt(k);
    if (got) return got;
    k++;
  }
}
