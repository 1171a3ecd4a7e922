/**
 * `as2 cem send|accept|reject` (contract §7, issue 17): certificate exchange messaging
 * (draft-meadors-certificate-exchange-14). Thin commands over src/jobs/cem/.
 */
import { resolve } from "node:path";
import { As2Error, ErrorCodes, type CertUsage } from "../core/index.js";
import { loadKeyMaterial } from "../config/keys.js";
import { readCertificateFile, readKeyFileBytes } from "../config/key-files.js";
import { openStore, type CemRequestRecord } from "../store/index.js";
import { sendCemRequest } from "../jobs/cem/send-request.js";
import { decideCemRequest } from "../jobs/cem/respond.js";
import { USAGE_WORDS, findReceived } from "../jobs/cem/records.js";
import { EXIT, UsageError, loadContext, type GlobalOptions } from "./context.js";

export interface CemSendFlags {
  partner: string;
  cert: string;
  usage?: string;
  respondBy: string;
}

export interface CemDecideFlags {
  partner?: string;
  reason?: string;
}

function usagesOf(v: string | undefined): CertUsage[] {
  const words = (v ?? "signing,encryption").split(",").map((w) => w.trim()).filter(Boolean);
  const out: CertUsage[] = [];
  for (const w of words) {
    const u = USAGE_WORDS[w];
    if (!u) throw new UsageError(`--usage takes a comma-separated list of ${Object.keys(USAGE_WORDS).join(", ")}, not "${w}"`);
    for (const x of u) if (!out.includes(x)) out.push(x);
  }
  if (!out.length) throw new UsageError("--usage names no usage");
  return out;
}

/** The record without its PEM, for --json and humans. */
function shown(r: CemRequestRecord): Omit<CemRequestRecord, "certificate"> & { certificate: Omit<CemRequestRecord["certificate"], "pem"> } {
  const { pem: _pem, ...certificate } = r.certificate;
  return { ...r, certificate };
}

export async function cemSendCommand(flags: CemSendFlags, g: GlobalOptions): Promise<number> {
  const respondBy = new Date(flags.respondBy);
  if (!/^\d{4}-\d{2}-\d{2}/.test(flags.respondBy) || Number.isNaN(respondBy.getTime())) throw new UsageError(`--respond-by takes an ISO date such as 2027-01-31 or 2027-01-31T00:00:00Z, not "${flags.respondBy}"`);
  const usages = usagesOf(flags.usage);
  const ctx = await loadContext(g);
  if (!ctx.config.partners[flags.partner]) throw new UsageError(`--partner: no partner "${flags.partner}" in the configuration (partners: ${Object.keys(ctx.config.partners).join(", ") || "none"})`);
  const file = resolve(flags.cert);
  const certificate = readCertificateFile(readKeyFileBytes(file, "--cert"), file)[0]!;
  if (respondBy.getTime() <= Date.now()) ctx.output.warn(`--respond-by ${respondBy.toISOString()} has passed: the partner has no time to answer`);
  if (respondBy.getTime() > certificate.notAfter.getTime()) ctx.output.warn(`the new certificate expires (${certificate.notAfter.toISOString()}) before --respond-by`);
  const keys = loadKeyMaterial(ctx.config, new Date(), [flags.partner]);
  const abort = new AbortController();
  const stop = () => abort.abort("SIGINT");
  process.once("SIGINT", stop);
  try {
    const { record, job } = await sendCemRequest({ config: ctx.config, keys, partnerName: flags.partner, certificate, usages, respondBy, signal: abort.signal });
    if (g.json) process.stdout.write(`${JSON.stringify({ ...shown(record), job: { runId: job.runId, state: job.state, error: job.error } }, null, 2)}\n`);
    else {
      ctx.output.log(`as2 cem send: request ${record.requestId} to ${flags.partner} (${usages.join(", ")}; respond by ${record.respondBy}): job ${job.runId} ${job.state}`);
      if (job.error) ctx.output.warn(`${job.error.code}: ${job.error.message}`);
      process.stdout.write(`${record.requestId} ${record.state}\n`);
    }
    return record.state === "failed" ? EXIT.FAILED : EXIT.OK;
  } finally {
    process.off("SIGINT", stop);
  }
}

export async function cemDecideCommand(decision: "accept" | "reject", requestId: string, flags: CemDecideFlags, g: GlobalOptions): Promise<number> {
  if (decision === "reject" && !flags.reason?.trim()) throw new UsageError("as2 cem reject needs --reason <text> (it goes to the partner as ReasonForRejection)");
  const ctx = await loadContext(g);
  const found = await findReceived(openStore(ctx.config).cem, requestId, flags.partner);
  if (!found.length) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no CEM request ${requestId}${flags.partner ? ` from ${flags.partner}` : ""} was received here`);
  if (found.length > 1) throw new UsageError(`CEM request ${requestId} came from ${found.map((r) => r.partner).join(" and ")}: name one with --partner`);
  const r = found[0]!;
  if (!ctx.config.partners[r.partner]) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `partner ${r.partner} of CEM request ${requestId} is no longer in the configuration`);
  const keys = loadKeyMaterial(ctx.config, new Date(), [r.partner]);
  const done = await decideCemRequest({
    config: ctx.config, configPath: ctx.configPath, keys, partner: r.partner, requestId, decision,
    ...(flags.reason ? { reason: flags.reason } : {}), signal: new AbortController().signal,
  });
  const rec = done.record;
  if (g.json) process.stdout.write(`${JSON.stringify({ ...shown(rec), configChanged: done.configChanged }, null, 2)}\n`);
  else {
    ctx.output.log(`as2 cem ${decision}: request ${requestId} from ${r.partner} is ${rec.state}${done.configChanged ? `; ${ctx.configPath} now names the new certificate` : ""}`);
    ctx.output.log(`  response ${rec.response?.delivered ? "delivered" : `NOT delivered (${rec.response?.error ?? "?"}): run the command again to resend it`}${rec.response?.runId ? ` (job ${rec.response.runId})` : ""}`);
    process.stdout.write(`${requestId} ${rec.state}\n`);
  }
  return rec.response?.delivered ? EXIT.OK : EXIT.FAILED;
}
