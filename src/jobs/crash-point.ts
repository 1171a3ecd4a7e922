/**
 * Fault injection for the crash tests (issue 11): AS2KIT_CRASH_AT names pipeline points at which
 * the process kills itself with SIGKILL, exactly as a power cut or the OOM killer would stop it:
 * no finally blocks, no flushing. `point@n` fires at the n-th arrival; several points may be
 * given, comma-separated. Unset (always, outside tests), `crashPoint` costs a map lookup.
 */
const wanted = new Map<string, number>();
for (const item of (process.env.AS2KIT_CRASH_AT ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
  const [name, n] = item.split("@");
  wanted.set(name!, Math.max(1, Number(n ?? 1) || 1));
}

export type CrashPoint =
  | "receive:reserved" | "receive:spooled" | "receive:accepted" | "receive:opened" | "receive:linked"
  /** Multiple attachments: one part linked into the inbox, the next not yet (commit.ts). */
  | "receive:part-linked"
  | "receive:committed" | "receive:recorded" | "receive:queued" | "receive:answered"
  /** AS2 Restart: the partial holds every byte, the pipeline has not begun (receive/restart.ts). */
  | "receive:restart-whole"
  | "send:started" | "send:spooled" | "send:posted" | "send:recorded"
  /** A job notification is in the store's queue, not yet posted / posted, not yet removed (notify.ts). */
  | "notify:queued" | "notify:posted"
  /** A folder fsync shared by several callers has ended, before any of them goes on (atomic-file.ts). */
  | "store:group-synced"
  /** CEM (issue 17): a received request registered, before its message is `verified`; an acceptance written to the configuration file, before the decision is recorded; the decision recorded, before the response is sent. */
  | "cem:registered" | "cem:applied" | "cem:decided";

export function crashPoint(point: CrashPoint): void {
  const left = wanted.get(point);
  if (left === undefined) return;
  if (left > 1) {
    wanted.set(point, left - 1);
    return;
  }
  // In a worker of `as2 receive` (receive.workers > 1) the whole receiver dies, supervisor and
  // all, as a power cut would take it; AS2KIT_CRASH_SCOPE=worker kills this worker alone (a
  // worker's own crash: its siblings go on, the supervisor replaces it).
  const worker = process.env.AS2KIT_RECEIVE_WORKER !== undefined && process.send !== undefined;
  const alone = worker && process.env.AS2KIT_CRASH_SCOPE === "worker";
  process.stderr.write(`AS2KIT_CRASH_AT: killing this ${alone ? "worker" : "process"} at ${point}\n`);
  if (worker && !alone) process.kill(process.ppid, "SIGKILL");
  process.kill(process.pid, "SIGKILL");
}
