/**
 * Answering a partner's CEM request (issue 17; as2-reference E8): `as2 cem accept|reject`, or
 * as2 receive for a partner whose cem.policy is "accept". The steps, each safe to repeat after a
 * crash (so the answer happens once):
 *
 *   1. accept: the certificate goes into the configuration file (apply-certificate.ts; it does
 *      nothing when the file already names it);
 *   2. the decision is recorded (pending|expired -> accepted|rejected, under the record's lock:
 *      of two deciders one wins, the other is told);
 *   3. the EDIINTCertificateExchangeResponse is sent as an AS2 message to the request's
 *      ResponseURL (signed with our key, encrypted to the partner's current certificate);
 *      `response.delivered` records whether it arrived, and an undelivered one is sent again
 *      by the next `as2 cem accept|reject` of the same request or by as2 receive's follow-up.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { As2Error, ErrorCodes, buildCemResponsePayload, buildCemResponseXml } from "../../core/index.js";
import type { As2Config } from "../../config/schema.js";
import type { KeyMaterial } from "../../config/keys.js";
import { newRunId, openStore, type CemRequestRecord, type CemResponseInfo, type JobRecord } from "../../store/index.js";
import { runSendJob } from "../send-job.js";
import { applyAcceptedCertificate } from "./apply-certificate.js";
import { cemFilesDir, safeName } from "./records.js";
import { crashPoint } from "../crash-point.js";

export interface DecideOptions {
  config: As2Config;
  /** The configuration file an acceptance edits. */
  configPath: string;
  keys: KeyMaterial;
  partner: string;
  requestId: string;
  decision: "accept" | "reject";
  reason?: string;
  signal: AbortSignal;
  now?: () => Date;
}

export interface DecideResult {
  record: CemRequestRecord;
  /** The send job of the response (undefined when none was sent). */
  job?: JobRecord;
  /** Whether the configuration file was changed now. */
  configChanged: boolean;
}

export async function decideCemRequest(o: DecideOptions): Promise<DecideResult> {
  const now = o.now ?? (() => new Date());
  const store = openStore(o.config).cem;
  const current = await store.get("received", o.partner, o.requestId);
  if (!current) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no CEM request ${o.requestId} from ${o.partner}`);
  const wanted = o.decision === "accept" ? "accepted" : "rejected";
  if (current.state === "accepted" || current.state === "rejected") {
    // Decided already: the same decision again only delivers a response that did not arrive.
    if (current.state !== wanted && !(o.decision === "accept" && current.state === "rejected" && current.response?.trust?.some((t) => t.status === "Accepted"))) {
      throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `CEM request ${o.requestId} from ${o.partner} is ${current.state} already`);
    }
    if (current.response?.delivered) return { record: current, configChanged: false };
    return { ...(await sendResponse(o, current, now)), configChanged: false };
  }
  let trust: NonNullable<CemResponseInfo["trust"]>;
  let configChanged = false;
  if (o.decision === "accept") {
    const applied = await applyAcceptedCertificate(o.configPath, current, now());
    configChanged = applied.changed;
    crashPoint("cem:applied");
    trust = current.usages.map((usage) => {
      const no = applied.rejected.find((x) => x.usage === usage);
      return no ? { usage, status: "Rejected" as const, reason: no.reason } : { usage, status: "Accepted" as const };
    });
  } else {
    const reason = o.reason?.trim() || "rejected by the operator";
    trust = current.usages.map((usage) => ({ usage, status: "Rejected" as const, reason }));
  }
  const anyAccepted = trust.some((t) => t.status === "Accepted");
  let mine = false;
  const decided = await store.update("received", o.partner, o.requestId, (r) => {
    if (r.state !== "pending" && r.state !== "expired") return undefined;
    mine = true;
    const at = now().toISOString();
    return {
      ...r, state: anyAccepted ? "accepted" : "rejected", updatedAt: at,
      ...(o.decision === "reject" ? { reason: trust[0]?.reason } : {}),
      response: { status: anyAccepted ? "Accepted" : "Rejected", ...(anyAccepted ? {} : { reason: trust[0]?.reason }), at, delivered: false, trust },
    };
  });
  if (!decided) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `CEM request ${o.requestId} from ${o.partner} is gone`);
  // Decided otherwise meanwhile by another process (the lock let it in first): say so.
  if (decided.state !== (anyAccepted ? "accepted" : "rejected")) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `CEM request ${o.requestId} was ${decided.state} meanwhile`);
  // Decided the same way meanwhile by another process: that one sends the response.
  if (!mine) return { record: decided, configChanged };
  crashPoint("cem:decided");
  return { ...(await sendResponse(o, decided, now)), configChanged };
}

/** Step 3: the response message to ResponseURL; records whether it arrived. */
async function sendResponse(o: DecideOptions, r: CemRequestRecord, now: () => Date): Promise<{ record: CemRequestRecord; job?: JobRecord }> {
  const store = openStore(o.config).cem;
  const partner = o.config.partners[r.partner];
  if (!partner) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no partner "${r.partner}" in the configuration`);
  const trust = r.response?.trust ?? [];
  const xml = buildCemResponseXml({
    requestId: r.requestId, as2Name: o.config.station.as2Id, originated: now(),
    trustResponses: trust.map((t) => ({ status: t.status, ...(t.reason ? { reason: t.reason } : {}), certificate: { issuerName: r.certificate.issuerName, serialNumber: r.certificate.serialNumber } })),
  });
  const payload = buildCemResponsePayload(xml);
  const dir = cemFilesDir(o.config.dataDir, "received", r.partner);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${safeName(r.requestId)}.response.xml`);
  await writeFile(file, payload.body, { mode: 0o600 });
  let job: JobRecord | undefined;
  let error: string | undefined;
  try {
    ({ record: job } = await runSendJob({
      // Signed always (the requester takes only a signed response), to the URL the request named.
      config: o.config, partnerName: r.partner, partner: { ...partner, sign: partner.sign || "sha256", url: r.responseUrl, subject: "Certificate Exchange Response" }, keys: o.keys,
      files: [{ path: file, contentType: payload.contentType, filename: null }], deleteSource: false, runId: newRunId(now()), signal: o.signal, now,
    }));
  } catch (e) {
    error = (e as Error).message;
  }
  const delivered = !!job && (job.state === "SUCCESS" || job.state === "AWAITING_MDN");
  if (!delivered) error ??= job?.error?.message ?? job?.files[0]?.error?.message ?? "not delivered";
  const updated = await store.update("received", r.partner, r.requestId, (x) => ({
    ...x, updatedAt: now().toISOString(),
    response: { ...(x.response ?? { status: "Rejected", at: now().toISOString() }), delivered, ...(job ? { runId: job.runId } : {}),
      ...(job?.files[0]?.as2MessageId ? { messageId: job.files[0].as2MessageId } : {}), ...(delivered ? { error: undefined } : { error }) },
  }));
  return { record: updated ?? r, ...(job ? { job } : {}) };
}
