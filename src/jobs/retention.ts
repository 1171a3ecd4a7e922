/**
 * `receive.retention` (contract §7): a running `as2 receive` prunes what `as2 prune --older-than
 * <olderThan>` would (inbox files stay), once shortly after it starts and then daily, and reports
 * each run as an event. A run that fails is reported and tried again at the next turn; two
 * receivers (or a receiver and an `as2 prune`) never prune at once (the job index's rebuild lock).
 */
import { parseDuration } from "../config/duration.js";
import type { As2Config } from "../config/schema.js";
import { pruneFiles, type As2Store, type PruneReport } from "../store/index.js";

export const RETENTION_INTERVAL_MS = 86_400_000;
/** After start: long enough that recovery and the first messages come first. */
export const RETENTION_FIRST_DELAY_MS = 60_000;

export interface RetentionEvent {
  event: "pruned" | "prune-failed";
  detail: string;
  report?: PruneReport;
}

export function startRetention(config: As2Config, store: As2Store, onEvent: (e: RetentionEvent) => void,
  timing: { firstDelayMs?: number; intervalMs?: number } = {}): { stop(): Promise<void> } {
  const olderThan = config.receive.retention?.olderThan;
  const olderThanMs = olderThan === undefined ? undefined : parseDuration(olderThan);
  if (olderThanMs === undefined) return { stop: async () => undefined };
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = () => {
    running = pruneFiles(config.dataDir, store, { olderThanMs, partialMaxAgeMs: parseDuration(config.receive.restart.maxAge) }).then(
      (report) => onEvent({
        event: "pruned", report,
        detail: `retention ${olderThan}: ${report.jobs.count} job(s), ${report.duplicates.count} duplicate entr(ies), ${report.sentIndex.count} sent-index entr(ies), ${report.spool.count + report.temp.count} leftover file(s)`,
      }),
      (e: unknown) => onEvent({ event: "prune-failed", detail: `retention ${olderThan}: ${(e as Error).message}` }),
    ).finally(() => {
      running = undefined;
      if (!stopped) schedule(timing.intervalMs ?? RETENTION_INTERVAL_MS);
    });
  };
  const schedule = (ms: number) => {
    timer = setTimeout(run, ms);
    timer.unref();
  };
  schedule(timing.firstDelayMs ?? RETENTION_FIRST_DELAY_MS);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
