/** Filtering and paging the job list of `as2 status` (contract §2): pure, over the index's summaries. */
import type { JobSummary } from "./job-summary.js";
import type { JobState } from "./records.js";

export const JOB_STATES: readonly JobState[] = ["NOT_STARTED", "ONGOING", "AWAITING_MDN", "SUCCESS", "FAILED", "PARTIAL", "INTERRUPTED"];
/** States a job can still leave (what `status --wait` waits out). */
export const UNFINISHED_STATES: readonly JobState[] = ["NOT_STARTED", "ONGOING", "AWAITING_MDN"];

export interface JobQuery {
  partner?: string;
  direction?: "send" | "receive";
  state?: JobState;
  /** Jobs that started at or after this time. */
  since?: Date;
  offset: number;
  length: number;
}

export interface JobPage {
  totalRecords: number;
  records: JobSummary[];
}

export function queryJobs(newestFirst: readonly JobSummary[], q: JobQuery): JobPage {
  const since = q.since?.getTime();
  const type = q.direction === "send" ? "AS2 Send" : q.direction === "receive" ? "AS2 Receive" : undefined;
  const matching = newestFirst.filter((s) =>
    (q.partner === undefined || s.partner === q.partner)
    && (type === undefined || s.type === type)
    && (q.state === undefined || s.state === q.state)
    && (since === undefined || Date.parse(s.startTime) >= since));
  return { totalRecords: matching.length, records: matching.slice(q.offset, q.offset + q.length) };
}
