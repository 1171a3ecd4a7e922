/**
 * `as2 prune --older-than <duration> [--inbox] [--dry-run]` (contract §7; issue 14): retention of
 * the files store, see src/store/prune.ts for what goes and what never does. Prints what it
 * removed (or, with --dry-run, would remove): counts and bytes per kind; --json prints the report.
 */
import { DURATION_FORMS, parseDuration } from "../config/duration.js";
import { inboxOf } from "../jobs/receive/services.js";
import { openStore, pruneFiles, type PruneReport } from "../store/index.js";
import { EXIT, UsageError, loadContext, type GlobalOptions } from "./context.js";
import { formatBytes } from "./output.js";

export interface PruneFlags {
  olderThan?: string;
  inbox?: boolean;
  dryRun?: boolean;
}

export function parseOlderThan(value: string | undefined): number {
  if (value === undefined) throw new UsageError(`--older-than is required: ${DURATION_FORMS}`);
  const ms = parseDuration(value);
  if (ms === undefined) throw new UsageError(`--older-than takes ${DURATION_FORMS}, not "${value}"`);
  return ms;
}

export function renderPrune(r: PruneReport): string {
  const verb = r.dryRun ? "would remove" : "removed";
  const line = (what: string, t: { count: number; bytes: number }) => `  ${what.padEnd(34)} ${String(t.count).padStart(9)}  ${formatBytes(t.bytes)}`;
  return [
    `${r.dryRun ? "dry run: nothing removed; " : ""}finished before ${r.cutoff}, ${verb}:`,
    line("job records and index entries", r.jobs),
    line("sent-message index entries", r.sentIndex),
    line(`duplicate entries (before ${r.duplicates.keptUntil})`, r.duplicates),
    line("spool leftovers and partial uploads", r.spool),
    line("temp files", r.temp),
    ...(r.inbox ? [line("inbox files", r.inbox)] : []),
  ].join("\n");
}

export async function pruneCommand(flags: PruneFlags, g: GlobalOptions): Promise<number> {
  const olderThanMs = parseOlderThan(flags.olderThan);
  const ctx = await loadContext(g);
  const store = openStore(ctx.config);
  const inboxDirs = flags.inbox ? [...new Set(Object.keys(ctx.config.partners).map((p) => inboxOf(ctx.config, p)))] : undefined;
  const report = await pruneFiles(ctx.config.dataDir, store, { olderThanMs, dryRun: !!flags.dryRun, inboxDirs, partialMaxAgeMs: parseDuration(ctx.config.receive.restart.maxAge) });
  if (g.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${renderPrune(report)}\n`);
  return EXIT.OK;
}
