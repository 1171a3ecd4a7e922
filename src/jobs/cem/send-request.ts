/**
 * `as2 cem send` (issue 17; as2-reference E7): a CEM request to a partner, sent as an ordinary
 * AS2 message through the send job (signed with our CURRENT key, encrypted to the partner's
 * current certificate, its MDN judged as any other), with the payload built in memory:
 * multipart/related of the XML and the new certificate as a certs-only PKCS#7.
 *
 * The request is registered (pending) BEFORE it is sent: the partner may answer at once (its
 * policy "accept") and our receive server must then know the request. A send that fails marks
 * it "failed"; the response, when it comes, is recorded by the receive server (receive-cem.ts).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { As2Error, ErrorCodes, buildCemRequestPayload, certificateIdentifierOf, type Certificate, type CertUsage } from "../../core/index.js";
import type { As2Config } from "../../config/schema.js";
import type { KeyMaterial } from "../../config/keys.js";
import { newRunId, openStore, type CemRequestRecord, type JobRecord } from "../../store/index.js";
import { runSendJob, type SendEvents } from "../send-job.js";
import { cemFilesDir, certificateInfo, safeName } from "./records.js";

export interface CemSendOptions {
  config: As2Config;
  keys: KeyMaterial;
  partnerName: string;
  certificate: Certificate;
  usages: CertUsage[];
  respondBy: Date;
  signal: AbortSignal;
  events?: SendEvents;
  now?: () => Date;
}

export interface CemSendResult {
  record: CemRequestRecord;
  job: JobRecord;
}

/** ResponseURL: partners.<name>.cem.responseUrl, else station.asyncMdnUrl (both: our as2 receive). */
export function responseUrlFor(config: As2Config, partnerName: string): string {
  const url = config.partners[partnerName]?.cem.responseUrl ?? config.station.asyncMdnUrl;
  if (!url) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `a CEM request needs the URL its response is POSTed to (ResponseURL): set station.asyncMdnUrl or partners.${partnerName}.cem.responseUrl to this station's as2 receive URL`);
  return url;
}

export async function sendCemRequest(o: CemSendOptions): Promise<CemSendResult> {
  const now = o.now ?? (() => new Date());
  const partner = o.config.partners[o.partnerName];
  if (!partner) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no partner "${o.partnerName}" in the configuration`);
  const responseUrl = responseUrlFor(o.config, o.partnerName);
  const store = openStore(o.config);
  const started = now();
  const runId = newRunId(started);
  const requestId = `CEM-${o.config.station.as2Id.replace(/[^A-Za-z0-9]/g, "")}-${runId}`;
  const contentId = `cert-${runId}@as2kit`;
  const payload = buildCemRequestPayload({
    requestId, as2Name: o.config.station.as2Id, originated: started,
    trustRequests: o.usages.map((usage) => ({ usage, responseUrl, respondBy: o.respondBy, certificate: certificateIdentifierOf(o.certificate), contentId })),
  }, new Map([[contentId, o.certificate]]), `----=_as2kit_cem_${randomBytes(12).toString("hex")}`);
  const dir = cemFilesDir(o.config.dataDir, "sent", o.partnerName);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${safeName(requestId)}.mime`);
  await writeFile(file, payload.body, { mode: 0o600 });
  const record: CemRequestRecord = {
    requestId, direction: "sent", partner: o.partnerName, partnerAs2Id: partner.as2Id, runId, state: "pending",
    createdAt: started.toISOString(), updatedAt: started.toISOString(), usages: o.usages, respondBy: o.respondBy.toISOString(), responseUrl,
    certificate: certificateInfo(o.certificate), file,
  };
  await store.cem.register(record);
  const { record: job } = await runSendJob({
    // Always signed (E7: the partner checks the request with our current certificate), whatever the profile's sign says.
    config: o.config, partnerName: o.partnerName, partner: { ...partner, sign: partner.sign || "sha256", subject: partner.subject ?? "Certificate Exchange Request" }, keys: o.keys,
    files: [{ path: file, contentType: payload.contentType, filename: null }], deleteSource: false, runId, signal: o.signal, ...(o.events ? { events: o.events } : {}), now,
  });
  const messageId = job.files[0]?.as2MessageId;
  const failed = job.state === "FAILED" || job.state === "INTERRUPTED";
  const updated = await store.cem.update("sent", o.partnerName, requestId, (r) => ({
    ...r, ...(messageId ? { messageId } : {}), updatedAt: now().toISOString(),
    ...(failed && r.state === "pending" ? { state: "failed" as const, reason: job.error?.message ?? job.files[0]?.error?.message ?? "the request was not delivered" } : {}),
  }));
  return { record: updated ?? record, job };
}
