/**
 * What the job list shows and filters on (contract §2 `as2 status` columns), and its line in the
 * index: a JSON array in a fixed field order, the run ID first, one line per record save.
 */
import type { JobRecord, JobState, JobType } from "./records.js";

export interface JobSummary {
  runId: string;
  type: JobType;
  command: string;
  partner: string;
  senderId: string;
  receiverId: string;
  state: JobState;
  startTime: string;
  endTime?: string;
  files: number;
  /** The MDN column: the messages' mdnStatus, e.g. "Received" or "Received 2, Pending 1". */
  mdn: string;
}

export function summaryOf(r: JobRecord): JobSummary {
  const counts = new Map<string, number>();
  for (const m of r.messages) counts.set(m.mdnStatus, (counts.get(m.mdnStatus) ?? 0) + 1);
  const mdn = counts.size <= 1 ? ([...counts.keys()][0] ?? "") : [...counts].map(([k, v]) => `${k} ${v}`).join(", ");
  return {
    runId: r.runId, type: r.type, command: r.command, partner: r.partner, senderId: r.senderId, receiverId: r.receiverId,
    state: r.state, startTime: r.startTime, endTime: r.endTime, files: r.files.length, mdn,
  };
}

const FIELDS = ["runId", "type", "command", "partner", "senderId", "receiverId", "state", "startTime", "endTime", "files", "mdn"] as const;

/** The summary's index line, with its "\n". */
export const toLine = (s: JobSummary): string => `${JSON.stringify(FIELDS.map((f) => s[f] ?? null))}\n`;

export function fromRow(a: unknown): JobSummary | undefined {
  if (!Array.isArray(a) || a.length !== FIELDS.length || typeof a[0] !== "string") return undefined;
  // Field by field, not Object.fromEntries: this runs for every line a query parses.
  return {
    runId: a[0], type: a[1], command: a[2], partner: a[3], senderId: a[4], receiverId: a[5], state: a[6], startTime: a[7],
    endTime: a[8] ?? undefined, files: a[9], mdn: a[10],
  } as JobSummary;
}

export function fromLine(line: string): JobSummary | undefined {
  try {
    return fromRow(JSON.parse(line));
  } catch {
    return undefined;
  }
}

/**
 * The line as a row, or undefined when it is not one: empty, torn (no closing "]"), or garbage.
 * A row always begins with `["` and the sequence `["` occurs nowhere else in a row (a quote inside
 * a JSON string is escaped), so a line holding it further on is a torn line from a crash with the
 * next append glued to it: the row is the part from the last `["`.
 */
export function rowText(line: string): string | undefined {
  const at = line.lastIndexOf('["');
  if (at === -1 || !line.endsWith("]")) return undefined;
  return at === 0 ? line : line.slice(at);
}

/** The run ID of a row (without parsing it). */
export function runIdOfRow(row: string): string | undefined {
  const end = row.indexOf('"', 2);
  return end > 2 ? row.slice(2, end) : undefined;
}

/** Parses many rows at once (one JSON.parse over all is several times faster than one per row). */
export function parseRows(rows: readonly string[]): Array<JobSummary | undefined> {
  if (!rows.length) return [];
  try {
    return (JSON.parse(`[${rows.join(",")}]`) as unknown[]).map(fromRow);
  } catch {
    return rows.map(fromLine); // a damaged row among them: one by one
  }
}
