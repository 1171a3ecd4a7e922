/**
 * The job record of contract.md §5: names and numbering fixed by the contract (the transfer
 * monitor's columns, the scheduler's status codes, the gateway's AS2 message entity).
 */
export type JobType = "AS2 Send" | "AS2 Receive";
export type JobCommand = "transfer" | "mdn";
export type JobState = "NOT_STARTED" | "ONGOING" | "AWAITING_MDN" | "SUCCESS" | "FAILED" | "PARTIAL" | "INTERRUPTED";

/** The scheduler's numbering: 0 success, -1 failure, -2 interrupted, 1 not started, 2 ongoing (AWAITING_MDN too), 3 aborted. */
export const STATUS_CODES = { SUCCESS: 0, FAILED: -1, PARTIAL: -1, INTERRUPTED: -2, NOT_STARTED: 1, ONGOING: 2, AWAITING_MDN: 2, ABORTED: 3 } as const;

const RUN_ID = /^[0-9TZ]+-[0-9a-f]+$/;

/** A run ID as newRunId makes them (and nothing that could be a path). */
export function isRunId(s: string): boolean {
  return RUN_ID.test(s);
}

export function statusCodeOf(state: JobState): number {
  return STATUS_CODES[state];
}

/** Appends warnings to a job record, once each. */
export function addWarnings(record: JobRecord, ...texts: string[]): void {
  const fresh = texts.filter((t) => !record.warnings?.includes(t));
  if (fresh.length) record.warnings = [...(record.warnings ?? []), ...fresh];
}

/** Sets a file's state and the matching status code together. */
export function setFileStatus(entry: FileEntry, status: JobState): void {
  entry.status = status;
  entry.statusCode = statusCodeOf(status);
}

export interface FileEntry {
  name: string;
  size: number;
  status: JobState;
  statusCode: number;
  as2MessageId?: string;
  /** Why this file failed (or was interrupted). */
  error?: { code: string; message: string };
}

export interface MdnMessage {
  persistedTimestamp: number;
  /** True when the MDN reports an error (a negative disposition): the gateway entity's boolean. */
  mdnError: boolean;
  /** Why the file failed on this MDN (a negative disposition, or a check that failed). */
  errorReason?: string;
  /** The raw MDN (headers and body), kept for non-repudiation (RFC 4130 §9.1). */
  content: string;
  disposition?: string;
  mic?: string;
  micAlgorithm?: string;
  signed: boolean;
}

/** The AS2 message entity: exactly these fields (contract §5). */
export interface As2MessageEntity {
  as2MessageId: string;
  persistedTimestamp: number;
  compressed: boolean;
  encrypted: boolean;
  signed: boolean;
  subject?: string;
  receiverId: string;
  senderId: string;
  transportStatusReceived?: number;
  deliveryStatus?: "Delivered" | "Not Delivered" | "No Status";
  mdnStatus: "Pending" | "Received" | "Not Requested" | "No MDN";
  partnerType: "Production" | "Test";
  mdnMessage?: MdnMessage;
  attachments: Array<{ name: string; size: number }>;
}

export interface ReceiveDetails {
  remoteAddress?: string;
  remotePort?: number;
  serverPort?: number;
  username?: string;
  contentType?: string;
  encryptionAlgorithm?: string;
  signatureAlgorithm?: string;
  mdnType?: "sync" | "async";
  mdnSigned?: boolean;
  mdnSent?: boolean;
  mic?: string;
  micAlgorithm?: string;
  /** What the partner advertised: AS2-Version and EDIINT-Features (RFC 6017 §3). */
  as2Version?: string;
  ediintFeatures?: string[];
  /** How the async MDN went, updated by each delivery attempt (issue 17). */
  mdnDelivery?: MdnDeliveryRecord;
}

/**
 * An async MDN's delivery: POSTed (http, RFC 4130 §7.3) or mailed through the smtp relay
 * (a mailto: Receipt-Delivery-Option, issue 17). Never holds a credential.
 */
export interface MdnDeliveryRecord {
  via: "http" | "smtp";
  /** The URL, or the e-mail address. */
  to: string;
  /** smtp: the relay, host:port. */
  relay?: string;
  attempts: number;
  delivered: boolean;
  /** When the last attempt ended (ISO 8601). */
  at: string;
  /** The last answer: HTTP status line or the relay's SMTP reply. */
  response?: string;
  /** Why the last attempt failed. */
  error?: string;
  /** Set while another attempt is due. */
  nextAttemptAt?: string;
  /** Set when no further attempt will be made. */
  gaveUp?: boolean;
}

/** Verdicts of the MDN checks (architecture.md §3.5), as the job log keeps them. */
export type MdnChecks = Record<"signature" | "signerCertificate" | "originalMessageId" | "disposition" | "mic", { verdict: "pass" | "fail" | "warn" | "skip"; detail: string }>;

/**
 * What the sender keeps of each message besides the contract's entity: the MIC it computed (for
 * non-repudiation and for checking an async MDN, RFC 4130 §7.3.1), where it went, and what to do
 * with the source once the transfer is confirmed.
 */
export interface SendDetail {
  as2MessageId: string;
  /** The source file (absolute path); with multiple attachments the first of `files`. */
  file: string;
  /** Multiple attachments (RFC 6362): every source file of the message, in part order. */
  files?: string[];
  contentType: string;
  url: string;
  mic: string;
  micAlgorithm: string;
  bodyBytes: number;
  attempts: number;
  httpStatus?: number;
  mdnRequest: "none" | "signed" | "unsigned";
  mdnMode: "sync" | "async";
  mdnDestination: "joblog" | "file" | "email" | "url" | "discard";
  /** Where a file destination wrote the MDN. */
  mdnFile?: string;
  /** What the partner advertised in its answer: AS2-Version and EDIINT-Features (RFC 6017 §3). */
  partnerAs2Version?: string;
  partnerFeatures?: string[];
  mdnChecks?: MdnChecks;
  /** After a confirmed transfer: delete the source, or move it to this folder. */
  onConfirmed?: { delete: true } | { archiveDir: string };
  /** Where the source went after confirmation. */
  archivedTo?: string;
  sourceDeleted?: boolean;
  /**
   * AS2 Restart (draft-harding-as2-restart-07): the transfer's ETag; the first byte of the POST
   * that got the answer (0: the whole message, no resume) and the bytes it sent; all bytes sent
   * over every attempt.
   */
  restart?: { etag: string; resumedAt: number; bytesSent: number; totalBytesSent: number };
  /**
   * While an AS2 Restart transfer is under way: where its built message waits and what it was
   * sent with, so that `as2 send --restart` after the process died resumes the identical bytes
   * under the same ETag. Removed when the file's attempt ends in the process.
   */
  resume?: ResumeState;
}

/** A built message kept for AS2 Restart across a process death (SendDetail.resume). */
export interface ResumeState {
  spool: string;
  etag: string;
  /** The POST's headers (AS2 and outer MIME headers; never credentials, which the transport adds). */
  headers: Record<string, string>;
  bodyBytes: number;
  mic: string;
  micAlgorithm: string;
  signed: boolean;
  encrypted: boolean;
  compressed: "before-signing" | "after-signing" | false;
}

export interface JobRecord {
  runId: string;
  type: JobType;
  command: JobCommand;
  partner: string;
  senderId: string;
  receiverId: string;
  startedBy: string;
  host: string;
  pid: number;
  startTime: string;
  endTime?: string;
  durationMs?: number;
  state: JobState;
  statusCode: number;
  error?: { code: string; message: string };
  files: FileEntry[];
  messages: As2MessageEntity[];
  /** Non-fatal problems (a notification that failed, an expired certificate ...). */
  warnings?: string[];
  receiveDetails?: ReceiveDetails;
  sendDetails?: SendDetail[];
  /** --rerun / --restart: the job this one repeats. */
  rerunOf?: string;
  restartOf?: string;
  /** The latest --restart of this job, whose outcomes this record has taken over. */
  restartedBy?: string;
}

/**
 * The job's state from its files (contract §5): every file confirmed -> SUCCESS; the rest only
 * waiting for an async MDN -> AWAITING_MDN; some failed -> PARTIAL, all failed -> FAILED.
 */
export function jobStateOf(files: readonly FileEntry[]): JobState {
  if (files.some((f) => f.status === "INTERRUPTED")) return "INTERRUPTED";
  if (files.some((f) => f.status === "ONGOING" || f.status === "NOT_STARTED")) return "ONGOING";
  const failed = files.filter((f) => f.status === "FAILED").length;
  const awaiting = files.filter((f) => f.status === "AWAITING_MDN").length;
  if (failed === 0) return awaiting ? "AWAITING_MDN" : "SUCCESS";
  return failed === files.length ? "FAILED" : "PARTIAL";
}
