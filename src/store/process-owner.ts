/**
 * Who owns a piece of in-flight work (a reservation, a job run, a queue entry), in a form that a
 * later process can test for life. A bare pid is not enough: after a crash and a restart the
 * new receiver may get the dead one's pid (containers start at the same pid every time), and
 * a reused pid would keep a dead owner's work locked for ever. So an owner is the host, the pid,
 * the process's start time (Linux /proc/<pid>/stat field 22) and the boot ID.
 */
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";

export interface Owner {
  host: string;
  pid: number;
  /** Start time of the process in clock ticks since boot; 0 where /proc is not available. */
  start: number;
  boot: string;
}

/**
 * The process's start time, or undefined when there is no such process. A zombie (state Z or X:
 * killed, not yet reaped by its parent - an orphaned receiver worker waits for init) counts as
 * gone: it will never write again, and its unfinished work is to be recovered now.
 */
function startTimeOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Field 3, the state: a zombie (Z) or a dying process (X) has ended; it only waits to be
    // reaped, which may take a while when its parent was killed with it (a receive worker's
    // supervisor) and it was handed to an init that reaps late. Its work will never go on.
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim();
  } catch {
    return "";
  }
}

let self: Owner | undefined;

/** This process as an owner. */
export function thisProcess(): Owner {
  return (self ??= { host: hostname(), pid: process.pid, start: startTimeOf(process.pid) ?? 0, boot: bootId() });
}

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.host === b.host && a.pid === b.pid && a.start === b.start && a.boot === b.boot;
}

/**
 * Whether the owner still runs. An owner on another host cannot be tested from here and counts
 * as alive: taking its work over needs a lease (a shared database store), not a guess.
 */
export function isAlive(owner: Owner): boolean {
  const me = thisProcess();
  if (owner.host !== me.host) return true;
  if (sameOwner(owner, me)) return true;
  if (owner.boot && me.boot && owner.boot !== me.boot) return false;
  if (owner.start) {
    const start = startTimeOf(owner.pid);
    if (start !== undefined || me.start) return start === owner.start;
  }
  return isPidAlive(owner.pid);
}

/**
 * Whether a process of this host with this pid runs (a temp file's writer, named only by its
 * pid). A zombie does not: see startTimeOf. Without /proc (not Linux), signal 0 tells.
 */
export function isPidAlive(pid: number): boolean {
  if (existsSync("/proc/self/stat")) return startTimeOf(pid) !== undefined;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function describeOwner(o: Owner): string {
  return `pid ${o.pid} on ${o.host}`;
}
