/**
 * Retention (`as2 prune`, `receive.retention`; contract §7): removes what is
 * older than a cutoff and no longer needed, safe while `as2 receive` and `as2 send` run:
 *
 * - finished job records (never NOT_STARTED, ONGOING or AWAITING_MDN) that ended before the
 *   cutoff, with their index lines (job-index.ts prune, under the index's rebuild lock);
 * - the sent-message index entries of those jobs (an async MDN for a finished job has nothing
 *   left to update) and their send bodies left in the spool;
 * - received-ledger duplicate entries answered before the cutoff, but never one younger than
 *   RESEND_WINDOW_MS (a partner's resend of it would be taken as a new message and delivered
 *   twice) and never one whose message is still in progress (not `answered`);
 * - spool leftovers (bodies of jobs that are finished or gone, not held by an unfinished ledger
 *   entry) and temp files (`.*.tmp`) older than the cutoff and than an hour;
 * - AS2 Restart partial uploads (restart-partials.ts) last written before the cutoff or before
 *   `partialMaxAgeMs` (receive.restart.maxAge), whichever removes more, unless a transfer holds one;
 * - with `inbox`, files in the partners' inboxes older than the cutoff (they are the user's
 *   otherwise, and stay).
 *
 * as2kit archives no raw messages: an MDN is kept in its job record and goes with it; an MDN
 * written to a file (mdn.destination "file") is the user's and stays.
 * `dryRun` counts what would go, and removes nothing.
 */
import { opendir, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { As2Store } from "./store.js";
import { UNFINISHED_STATES } from "./job-query.js";
import type { JobRecord } from "./records.js";
import { sweepPartials } from "./restart-partials.js";

/** Duplicate entries are kept at least this long whatever the cutoff (draft-duker-as2-reliability resends). */
export const RESEND_WINDOW_MS = 7 * 86_400_000;
/** A temp file this old was left by a process that died writing it. */
const TEMP_MIN_AGE_MS = 3_600_000;

export interface PruneOptions {
  /** Age in ms: what ended before now - olderThanMs goes. */
  olderThanMs: number;
  now?: Date;
  dryRun?: boolean;
  /** The partners' inbox folders, when inbox files are to go too (`--inbox`). */
  inboxDirs?: string[];
  /** receive.restart.maxAge in ms: partial uploads older than this go whatever the cutoff. */
  partialMaxAgeMs?: number;
}

export interface Tally { count: number; bytes: number }

export interface PruneReport {
  dryRun: boolean;
  cutoff: string;
  jobs: Tally;
  sentIndex: Tally;
  duplicates: Tally & { keptUntil: string };
  spool: Tally;
  temp: Tally;
  inbox?: Tally;
}

const tally = (): Tally => ({ count: 0, bytes: 0 });
const add = (t: Tally, bytes: number) => { t.count++; t.bytes += bytes; };

export async function pruneFiles(dataDir: string, store: As2Store, o: PruneOptions): Promise<PruneReport> {
  const now = (o.now ?? new Date()).getTime();
  const cutoff = now - o.olderThanMs;
  const dryRun = !!o.dryRun;
  const duplicatesBefore = Math.min(cutoff, now - RESEND_WINDOW_MS);
  const report: PruneReport = {
    dryRun, cutoff: new Date(cutoff).toISOString(), jobs: tally(), sentIndex: tally(),
    duplicates: { ...tally(), keptUntil: new Date(duplicatesBefore).toISOString() }, spool: tally(), temp: tally(),
  };
  const spoolDir = join(dataDir, "spool");
  const pruned = new Set<string>();

  await store.jobs.prune(cutoff, dryRun, async ({ record, runId, bytes }) => {
    pruned.add(runId);
    add(report.jobs, bytes);
    for (const id of messageIdsOf(record)) {
      const b = await store.sent.remove(id, runId, dryRun);
      if (b) add(report.sentIndex, b);
    }
    await removeFiles(spoolDir, (name) => name.startsWith(`${runId}.`) || name === `in-${runId}.body`, dryRun, report.spool);
  });

  const d = await store.received.pruneAnswered(duplicatesBefore, dryRun);
  report.duplicates.count = d.count;
  report.duplicates.bytes = d.bytes;

  await pruneSpool(spoolDir, store, cutoff, pruned, dryRun, report.spool);
  const partials = await sweepPartials(dataDir, Math.max(cutoff, o.partialMaxAgeMs !== undefined ? now - o.partialMaxAgeMs : cutoff), dryRun);
  report.spool.count += partials.count;
  report.spool.bytes += partials.bytes;
  const tempBefore = Math.min(cutoff, now - TEMP_MIN_AGE_MS);
  for (const dir of [join(dataDir, "jobs"), join(dataDir, "index", "jobs"), join(dataDir, "index", "received"), join(dataDir, "index", "sent"), join(dataDir, "queue", "mdn"), spoolDir]) {
    await removeFiles(dir, (name, mtime) => name.startsWith(".") && name.endsWith(".tmp") && mtime < tempBefore, dryRun, report.temp);
  }
  if (o.inboxDirs) {
    report.inbox = tally();
    for (const dir of o.inboxDirs) await removeFiles(dir, (name, mtime) => !name.startsWith(".") && mtime < cutoff, dryRun, report.inbox);
  }
  return report;
}

function messageIdsOf(r: JobRecord | undefined): string[] {
  if (!r || r.type !== "AS2 Send") return [];
  return [...new Set([...r.messages.map((m) => m.as2MessageId), ...(r.sendDetails ?? []).map((d) => d.as2MessageId)])];
}

/** The run ID a spool file belongs to: in-<runId>.body, <runId>.<n>.body, signed-<runId>-<x>.part. */
function spoolRunId(name: string): string | undefined {
  return /^(?:in-|signed-)?(\d{8}T\d{9}Z-[0-9a-f]+)[.-]/.exec(name)?.[1];
}

/**
 * Spool files older than the cutoff whose job is finished or gone, and that no unfinished ledger
 * entry holds (an async body waiting for recovery is kept whatever its age).
 */
async function pruneSpool(dir: string, store: As2Store, cutoff: number, counted: Set<string>, dryRun: boolean, t: Tally): Promise<void> {
  const held = new Set((await store.received.unfinished()).map((e) => e.spool && basename(e.spool)).filter(Boolean));
  const candidates: Array<{ name: string; runId: string }> = [];
  await eachFile(dir, async (name, s) => {
    const runId = spoolRunId(name);
    if (runId && !counted.has(runId) && s.mtimeMs < cutoff && !held.has(name)) candidates.push({ name, runId });
  });
  for (const { name, runId } of candidates) {
    const record = await store.jobs.load(runId).catch(() => undefined);
    if (record && UNFINISHED_STATES.includes(record.state)) continue;
    if (await store.locks.holder(runId)) continue; // a send job still running
    await removeOne(join(dir, name), dryRun, t);
  }
}

async function removeFiles(dir: string, pick: (name: string, mtimeMs: number) => boolean, dryRun: boolean, t: Tally): Promise<void> {
  const picked: string[] = [];
  await eachFile(dir, async (name, s) => { if (pick(name, s.mtimeMs)) picked.push(name); });
  for (const name of picked) await removeOne(join(dir, name), dryRun, t);
}

async function removeOne(path: string, dryRun: boolean, t: Tally): Promise<void> {
  const s = await stat(path).catch(() => undefined);
  if (!s?.isFile()) return;
  if (!dryRun) await rm(path, { force: true });
  add(t, s.size);
}

/** Regular files of a folder (not its subfolders), streamed; none when it does not exist. */
async function eachFile(dir: string, visit: (name: string, s: { mtimeMs: number }) => Promise<void>): Promise<void> {
  let d;
  try {
    d = await opendir(dir, { bufferSize: 1024 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return;
    throw e;
  }
  for await (const entry of d) {
    if (!entry.isFile()) continue;
    const s = await stat(join(dir, entry.name)).catch(() => undefined);
    if (s) await visit(entry.name, s);
  }
}
