/**
 * `as2 status` (contract §2, §5): the job list (newest first, filters, paging; --json prints the
 * page entity) or one job in detail (--json prints the record with jobStatus on top); --wait
 * blocks until the job is finished, exit 4 when the time runs out.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { As2Error, ErrorCodes } from "../core/errors.js";
import { settleDeadSendJobs } from "../jobs/send-recovery.js";
import { expiryWarnings } from "../jobs/cert-expiry.js";
import { openStore, isRunId, type JobRecord, type MdnDeliveryRecord, type JobState, type JobSummary } from "../store/index.js";
import { JOB_STATES, UNFINISHED_STATES, type JobQuery } from "../store/index.js";
import { EXIT, UsageError, loadContext, type GlobalOptions } from "./context.js";
import { formatBytes } from "./output.js";
import { expireOverdue } from "../store/index.js";
import type { CemRequestRecord } from "../store/index.js";

/** Decided CEM requests stay in the list this long after their last change. */
const CEM_SHOWN_DAYS = 7;

/** CEM requests worth showing (issue 17): every pending one, and the ones decided lately. */
async function cemRequestsShown(config: Parameters<typeof openStore>[0], partner: string | undefined, now: Date): Promise<Array<Omit<CemRequestRecord, "certificate"> & { certificate: Omit<CemRequestRecord["certificate"], "pem"> }>> {
  const store = openStore(config).cem;
  await expireOverdue(store, now);
  const all = await store.list(partner ? { partner } : {});
  return all
    .filter((r) => r.state === "pending" || now.getTime() - Date.parse(r.updatedAt) < CEM_SHOWN_DAYS * 86_400_000)
    .map((r) => { const { pem: _pem, ...certificate } = r.certificate; return { ...r, certificate }; });
}

export function renderCem(list: Awaited<ReturnType<typeof cemRequestsShown>>): string {
  const rows = [["CEM request", "Direction", "Partner", "Usage", "Respond by", "State", "Response"]];
  for (const r of list) {
    const response = r.response ? `${r.response.status}${r.response.reason ? `: ${r.response.reason}` : ""}${r.direction === "received" ? (r.response.delivered ? " (sent)" : " (not sent yet)") : ""}` : r.reason ?? "-";
    rows.push([r.requestId, r.direction, r.partner, r.usages.join(","), time(r.respondBy), r.state, response]);
  }
  return `Certificate exchange (CEM)\n${table(rows)}`;
}

export interface StatusFlags {
  partner?: string;
  direction?: string;
  state?: string;
  since?: string;
  pageOffset?: string;
  pageLength?: string;
  wait?: string;
}

export const DEFAULT_PAGE_LENGTH = 50;
/** How often --wait looks at the record. */
const WAIT_POLL_MS = 250;

function count(flag: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min) throw new UsageError(`${flag} takes a whole number of at least ${min}, not "${value}"`);
  return n;
}

export function parseQuery(f: StatusFlags): JobQuery {
  if (f.direction !== undefined && f.direction !== "send" && f.direction !== "receive") throw new UsageError(`--direction takes send or receive, not "${f.direction}"`);
  if (f.state !== undefined && !JOB_STATES.includes(f.state as JobState)) throw new UsageError(`--state takes one of ${JOB_STATES.join(", ")}, not "${f.state}"`);
  let since: Date | undefined;
  if (f.since !== undefined) {
    since = new Date(f.since);
    if (Number.isNaN(since.getTime())) throw new UsageError(`--since takes an ISO date such as 2026-11-22 or 2026-11-22T08:00:00Z, not "${f.since}"`);
  }
  return {
    partner: f.partner, direction: f.direction as JobQuery["direction"], state: f.state as JobState | undefined, since,
    offset: count("--page-offset", f.pageOffset, 0, 0), length: count("--page-length", f.pageLength, DEFAULT_PAGE_LENGTH, 1),
  };
}

const time = (iso: string | undefined) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "");

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

export function renderList(page: { totalRecords: number; records: JobSummary[] }, q: JobQuery): string {
  if (!page.records.length) return page.totalRecords ? `no jobs at offset ${q.offset} (${page.totalRecords} in all)` : "no jobs";
  const rows = [["Instance", "Type", "Command", "End Time", "Files", "Sender ID", "Receiver ID", "MDN", "Status"]];
  for (const s of page.records) rows.push([s.runId, s.type, s.command, time(s.endTime) || "-", String(s.files), s.senderId, s.receiverId, s.mdn || "-", s.state]);
  const last = q.offset + page.records.length;
  const more = last < page.totalRecords ? `; --page-offset ${last} for the next page` : "";
  return `${table(rows)}\n${q.offset + 1}-${last} of ${page.totalRecords}${more}`;
}

function section(title: string, pairs: Array<[string, string | number | undefined]>): string[] {
  const shown = pairs.filter(([, v]) => v !== undefined && v !== "");
  const w = Math.max(...shown.map(([k]) => k.length));
  return [title, ...shown.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)];
}

export function renderJob(r: JobRecord): string {
  const sending = r.type === "AS2 Send";
  const done = r.files.filter((f) => f.status === "SUCCESS").length;
  const out: string[] = [
    ...section("Properties", [
      ["Instance", r.runId], ["Name", `${r.type} ${sending ? "to" : "from"} ${r.partner}`], ["Partner", r.partner],
      ["Sender ID", r.senderId], ["Receiver ID", r.receiverId], ["Started by", r.startedBy], ["Host", `${r.host} (pid ${r.pid})`],
      ["Start", time(r.startTime)], ["End", time(r.endTime)], ["Duration", r.durationMs !== undefined ? `${(r.durationMs / 1000).toFixed(2)} s` : undefined],
      ["Repeats", r.rerunOf ? `${r.rerunOf} (--rerun)` : r.restartOf ? `${r.restartOf} (--restart)` : undefined],
    ]),
    ...section("Results", [
      ["State", `${r.state} (${r.statusCode})`], [sending ? "Files sent" : "Files received", `${done} of ${r.files.length}`],
      ["Error", r.error ? `${r.error.code}: ${r.error.message}` : undefined],
      ...(r.warnings ?? []).map((w, i): [string, string] => [i ? "" : "Warnings", w]),
    ]),
  ];
  if (r.files.length) {
    out.push("Files");
    out.push(...table([["  Name", "Size", "Status", "Message-ID"], ...r.files.map((f) => [`  ${f.name}`, formatBytes(f.size), f.status, f.as2MessageId ?? ""])]).split("\n"));
    for (const f of r.files.filter((x) => x.error)) out.push(`  ${f.name}: ${f.error!.code}: ${f.error!.message}`);
  }
  for (const m of r.messages) {
    const security = [m.signed ? "signed" : "unsigned", m.encrypted ? "encrypted" : "not encrypted", m.compressed ? "compressed" : "not compressed"].join(", ");
    out.push(...section(`Message ${m.as2MessageId}`, [
      ["Security", security], ["Subject", m.subject], ["HTTP status", m.transportStatusReceived], ["Delivery", m.deliveryStatus],
      ["MDN", m.mdnStatus], ["Partner type", m.partnerType], ["Attachments", m.attachments.map((a) => `${a.name} (${formatBytes(a.size)})`).join(", ")],
    ]));
    const detail = r.sendDetails?.find((d) => d.as2MessageId === m.as2MessageId);
    if (m.mdnMessage) {
      const micCheck = detail?.mdnChecks?.mic;
      out.push(...section("  MDN", [
        ["Disposition", m.mdnMessage.disposition], ["Signed", m.mdnMessage.signed ? "yes" : "no"],
        ["MIC", m.mdnMessage.mic ? `${m.mdnMessage.mic}, ${m.mdnMessage.micAlgorithm ?? "?"}${micCheck ? ` (${micCheck.verdict === "pass" ? "matched" : `${micCheck.verdict}: ${micCheck.detail}`})` : ""}` : undefined],
        ["Sent MIC", detail ? `${detail.mic}, ${detail.micAlgorithm}` : undefined],
        ["Error", m.mdnMessage.errorReason ?? (m.mdnMessage.mdnError ? "the MDN reports an error" : undefined)],
      ]).map((l) => `  ${l}`));
      if (detail?.mdnChecks) for (const [name, c] of Object.entries(detail.mdnChecks)) out.push(`      ${name.padEnd(18)} ${c.verdict.toUpperCase().padEnd(4)}  ${c.detail}`);
    }
  }
  const rd = r.receiveDetails;
  if (rd) {
    out.push(...section("Receive", [
      ["From", rd.remoteAddress ? `${rd.remoteAddress}:${rd.remotePort} (server port ${rd.serverPort})` : undefined], ["User", rd.username],
      ["Content-Type", rd.contentType], ["Encryption", rd.encryptionAlgorithm], ["Signature", rd.signatureAlgorithm],
      ["MIC", rd.mic ? `${rd.mic}, ${rd.micAlgorithm}` : undefined],
      ["MDN", rd.mdnType ? `${rd.mdnType}, ${rd.mdnSigned ? "signed" : "unsigned"}, ${rd.mdnSent ? "sent" : "not sent"}` : "not requested"],
      ["MDN delivery", mdnDeliveryLine(rd.mdnDelivery)],
    ]));
  }
  return out.join("\n");
}

/** How an async MDN went (receiveDetails.mdnDelivery): POSTed, or mailed through the relay (issue 17). */
function mdnDeliveryLine(d: MdnDeliveryRecord | undefined): string | undefined {
  if (!d) return undefined;
  const how = d.via === "smtp" ? `mail to ${d.to} via ${d.relay ?? "smtp"}` : `POST to ${d.to}`;
  const tries = `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`;
  const state = d.delivered ? `delivered after ${tries}` : d.gaveUp ? `failed after ${tries}` : `not yet delivered, ${tries}${d.nextAttemptAt ? `; next at ${d.nextAttemptAt}` : ""}`;
  return `${how}: ${state}${d.error && !d.delivered ? ` (${d.error})` : d.response ? ` (${d.response})` : ""}`;
}

export async function statusCommand(runId: string | undefined, flags: StatusFlags, g: GlobalOptions): Promise<number> {
  const query = parseQuery(flags);
  const waitSeconds = flags.wait === undefined ? undefined : Number(flags.wait);
  if (waitSeconds !== undefined && (!Number.isFinite(waitSeconds) || waitSeconds < 0)) throw new UsageError(`--wait takes seconds (a number of at least 0), not "${flags.wait}"`);
  if (waitSeconds !== undefined && !runId) throw new UsageError("--wait needs the runId of the job to wait for");
  if (runId !== undefined && !isRunId(runId)) throw new UsageError(`"${runId}" is not a run ID (they look like 20261122T163120123Z-1a2b3c4d5e6f)`);
  const ctx = await loadContext(g);
  const store = openStore(ctx.config).jobs;
  // A send job whose process died shows as INTERRUPTED, not ONGOING for ever (issue 11 case 6).
  await settleDeadSendJobs(openStore(ctx.config), ctx.config.dataDir);
  if (!g.json) for (const w of await expiryWarnings(ctx.config, new Date())) ctx.output.warn(w);

  if (!runId) {
    const page = await store.query(query);
    const cem = await cemRequestsShown(ctx.config, query.partner, new Date());
    if (g.json) {
      // The page entity, with the full job records of the page; CEM requests beside them (issue 17), when there are any.
      const records = (await Promise.all(page.records.map((s) => store.load(s.runId)))).filter((r): r is JobRecord => !!r);
      process.stdout.write(`${JSON.stringify({ totalRecords: page.totalRecords, records, ...(cem.length ? { cemRequests: cem } : {}) }, null, 2)}\n`);
    } else {
      process.stdout.write(`${renderList(page, query)}\n`);
      if (cem.length) process.stdout.write(`\n${renderCem(cem)}\n`);
    }
    return EXIT.OK;
  }

  let record = await store.load(runId);
  // An error (exit 1), so that --json prints its document too.
  if (!record) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no job ${runId} in ${openStore(ctx.config).where}`);
  let timedOut = false;
  if (waitSeconds !== undefined) {
    const deadline = Date.now() + waitSeconds * 1000;
    while (UNFINISHED_STATES.includes(record.state)) {
      if (Date.now() >= deadline) { timedOut = true; break; }
      await sleep(Math.min(WAIT_POLL_MS, Math.max(1, deadline - Date.now())));
      record = (await store.load(runId)) ?? record;
    }
  }
  if (g.json) process.stdout.write(`${JSON.stringify({ jobStatus: record.state, ...record }, null, 2)}\n`);
  else process.stdout.write(`${renderJob(record)}\n`);
  if (timedOut) {
    ctx.output.warn(`job ${runId} is still ${record.state} after ${waitSeconds} s`);
    return EXIT.TIMEOUT;
  }
  return EXIT.OK;
}
