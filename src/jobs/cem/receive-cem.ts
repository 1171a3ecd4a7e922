/**
 * CEM on the receiving side (issue 17; as2-reference E7, E8). The receive pipeline's `open` step
 * routes a payload whose Content-Type is a CEM document (multipart/related with
 * type="application/ediint-cert-exchange+xml", or that XML alone) here instead of the inbox:
 * the payload is kept under <dataDir>/cem/files/received/<partner>/ (records.ts says why) and,
 * once the message's signature has verified, read here BEFORE the message counts as verified:
 *
 * - a request must be signed, and signed by the partner's CURRENT certificate (the open step
 *   verifies with the certificates in use now), and name the partner's AS2 ID; it is registered
 *   (pending) once per (partner, requestId): a resend with the same Message-ID is answered by the
 *   ledger as a duplicate and never reaches this, a resend under a new Message-ID finds the
 *   record, and a crash after the registration and before `verified` is repaired by the resend.
 * - a response must answer a request we sent this partner, about the certificate we sent; it
 *   records Accepted or Rejected (and the reason) on that request.
 *
 * Anything malformed or hostile fails the message with AS2_ERR_CEM_INVALID: a negative MDN
 * (processed/error: unexpected-processing-error) naming the problem, nothing registered.
 */
import { readFile, stat } from "node:fs/promises";
import { As2Error, ErrorCodes, MAX_CEM_PAYLOAD_BYTES, openCemPayload, sameIdentifier } from "../../core/index.js";
import type { CemRequestRecord } from "../../store/index.js";
import { certificateInfo } from "./records.js";
import { crashPoint } from "../crash-point.js";
import type { Services } from "../receive/services.js";

export interface CemTaken {
  kind: "request" | "response";
  requestId: string;
  /** A request registered now (not a resend of one registered before). */
  created?: boolean;
}

export async function takeCemPayload(
  s: Services, entry: { partner: string; messageId: string; runId: string }, contentType: string, path: string, signed: boolean,
): Promise<CemTaken> {
  if (!signed) throw new As2Error(ErrorCodes.INSUFFICIENT_SECURITY, "a CEM document must come in a signed message (as2-reference E7); this one is not signed");
  const size = (await stat(path)).size;
  if (size > MAX_CEM_PAYLOAD_BYTES) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `CEM: the payload is ${size} bytes; at most ${MAX_CEM_PAYLOAD_BYTES} are read`);
  const opened = openCemPayload(contentType, await readFile(path));
  const partner = s.config.partners[entry.partner]!;
  const now = s.now();
  const store = s.store.cem;
  if (opened.kind === "request") {
    const rq = opened.request;
    if (rq.as2Name !== partner.as2Id) throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: the request's TradingPartnerInfo names "${rq.as2Name.slice(0, 128)}", but the message comes from ${partner.as2Id}`);
    const first = rq.trustRequests[0]!;
    if (rq.trustRequests.some((t) => t.contentId !== first.contentId || t.responseUrl !== first.responseUrl || t.respondBy.getTime() !== first.respondBy.getTime())) {
      // One certificate per request is what as2kit takes (what every product we know sends);
      // several would need one decision each.
      throw new As2Error(ErrorCodes.CEM_INVALID, "CEM: the TrustRequests name different certificates, ResponseURLs or RespondByDates; as2kit takes one certificate per request");
    }
    const cert = opened.certificates.get(first.contentId)!;
    const record: CemRequestRecord = {
      requestId: rq.requestId, direction: "received", partner: entry.partner, partnerAs2Id: partner.as2Id,
      messageId: entry.messageId, runId: entry.runId, state: "pending", createdAt: now.toISOString(), updatedAt: now.toISOString(),
      usages: [...new Set(rq.trustRequests.map((t) => t.usage))], respondBy: first.respondBy.toISOString(), responseUrl: first.responseUrl,
      certificate: certificateInfo(cert), file: path,
    };
    const { created } = await store.register(record);
    crashPoint("cem:registered");
    return { kind: "request", requestId: rq.requestId, created };
  }
  const rs = opened.response;
  const ours = await store.get("sent", entry.partner, rs.requestId);
  if (!ours) throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: a response to request ${rs.requestId.slice(0, 128)}, which was not sent to ${entry.partner} from here`);
  const sent = { issuerName: ours.certificate.issuerName, serialNumber: ours.certificate.serialNumber };
  const about = rs.trustResponses.filter((t) => sameIdentifier(t.certificate, sent));
  if (!about.length) throw new As2Error(ErrorCodes.CEM_INVALID, `CEM: the response to ${rs.requestId} is about another certificate than the one sent (serial ${ours.certificate.serialNumber})`);
  // Accepted when the partner accepted the certificate for any usage; the reasons of the rest are kept.
  const accepted = about.some((t) => t.status === "Accepted");
  const reason = about.find((t) => t.status === "Rejected")?.reason;
  await store.update("sent", entry.partner, rs.requestId, (r) => ({
    ...r, state: accepted ? "accepted" : "rejected", updatedAt: now.toISOString(), ...(reason ? { reason } : {}),
    response: {
      status: accepted ? "Accepted" : "Rejected", ...(reason ? { reason } : {}), at: now.toISOString(), messageId: entry.messageId, runId: entry.runId,
      // The response names the certificate, not the usage: each TrustResponse in the order of our TrustRequests.
      trust: about.map((t, i) => ({ usage: r.usages[i] ?? "", status: t.status, ...(t.reason ? { reason: t.reason } : {}) })),
    },
  }));
  return { kind: "response", requestId: rs.requestId };
}
