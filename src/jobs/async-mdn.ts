/**
 * An async MDN for a message this station sent (RFC 4130 §7.3): found by its
 * Original-Message-ID, verified against the MIC recorded at send time, and recorded in the send
 * job (mdnStatus Received, the file's and the job's final state). The receive server calls this;
 * `as2 send --wait-mdn` watches the job record for the result.
 */
import type { Buffer } from "node:buffer";
import { As2Error, ErrorCodes, parseMdn, type Headers } from "../core/index.js";
import type { As2Config } from "../config/schema.js";
import { signersAt, type KeyMaterial } from "../config/keys.js";
import { basename } from "node:path";
import { addWarnings, openStore, type JobRecord, type MdnChecks } from "../store/index.js";
import { advertised } from "./advertised.js";
import { judgeMdn, rawMdnOf, type Outcome } from "./receipts.js";
import { applyOutcome, notifyEnd, notifySpecFor, settleJob } from "./send-job.js";

export interface AsyncMdnResult {
  runId: string;
  messageId: string;
  outcome: Outcome;
  record: JobRecord;
  /** Why the MDN did not change the file's state (it failed verification); absent when applied. */
  notApplied?: string;
}

/**
 * Why an MDN cannot be trusted to decide a file's state (issue 11 case 7): an async MDN can be
 * POSTed by anyone who knows a Message-ID, so only one that verifies may settle the file. A
 * negative disposition is itself a verdict, but only from an MDN that passes the other checks;
 * a positive one must also carry our MIC.
 */
export function unverifiedReason(outcome: Outcome, negative: boolean): string | undefined {
  const c = outcome.mdnChecks;
  if (!c) return "it could not be checked";
  const keys: Array<keyof MdnChecks> = ["signature", "signerCertificate", "originalMessageId", ...(negative ? [] : ["mic" as const])];
  const failed = keys
    .filter((k) => c[k].verdict === "fail")
    .map((k) => `${k}: ${c[k].detail}`);
  return failed.length ? failed.join("; ") : undefined;
}

/** How long to wait for the sender to record its MIC when the MDN overtakes the POST's answer. */
const MIC_WAIT_MS = 10_000;

/**
 * Records an async MDN. Returns undefined when the Original-Message-ID is not one we sent; throws
 * AS2_ERR_MALFORMED_MDN when the body is not an MDN.
 */
export async function recordAsyncMdn(o: { config: As2Config; keys: KeyMaterial; headers: Headers; body: Buffer; now?: () => Date }): Promise<AsyncMdnResult | undefined> {
  const now = o.now ?? (() => new Date());
  const mdn = parseMdn(o.headers, o.body);
  if (!mdn.originalMessageId) throw new As2Error(ErrorCodes.MALFORMED_MDN, "the MDN has no Original-Message-ID");
  const runId = await openStore(o.config).sent.runIdOf(mdn.originalMessageId);
  if (!runId) return undefined;
  const store = openStore(o.config).jobs;
  const raw = rawMdnOf(o.headers, o.body);
  const deadline = Date.now() + MIC_WAIT_MS;
  for (;;) {
    const current = await store.load(runId);
    const detail = current?.sendDetails?.find((d) => d.as2MessageId === mdn.originalMessageId || d.as2MessageId.replace(/^<|>$/g, "") === mdn.originalMessageId!.replace(/^<|>$/g, ""));
    if (!current || !detail) return undefined;
    if (!detail.mic && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const partner = o.config.partners[current.partner];
    if (!partner) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `job ${runId} was sent to partner "${current.partner}", which is no longer configured`);
    // Only the partner's certificates in their window now (CEM rollover, issue 17).
    const outcome = judgeMdn(mdn, raw, { detail, partnerCertificates: signersAt(o.keys.partners[current.partner], now()), now: now(), quirks: partner.quirks });
    const notApplied = unverifiedReason(outcome, mdn.dispositionClass === "negative");
    if (notApplied) {
      // Recorded, never applied: the file stays AWAITING_MDN and a genuine MDN still settles it.
      const record = await store.update(runId, (r) => addWarnings(r, `${basename(detail.file)}: an async MDN for ${detail.as2MessageId} was not applied because it failed verification (${notApplied}); the file still awaits a verified MDN`));
      return { runId, messageId: detail.as2MessageId, outcome, record, notApplied };
    }
    const record = await store.update(runId, async (r) => {
      const entry = r.files.find((f) => f.as2MessageId === detail.as2MessageId);
      // A second copy of the same MDN (a partner's retry) changes nothing.
      if (!entry || (entry.status !== "AWAITING_MDN" && entry.status !== "ONGOING")) return;
      await applyOutcome(r, detail.as2MessageId, outcome, partner, now());
      const { as2Version, ediintFeatures } = advertised({ "as2-version": o.headers.get("as2-version"), "ediint-features": o.headers.get("ediint-features") });
      const d = r.sendDetails?.find((x) => x.as2MessageId === detail.as2MessageId);
      if (d && as2Version) d.partnerAs2Version = as2Version;
      if (d && ediintFeatures) d.partnerFeatures = ediintFeatures;
      if (r.state !== "INTERRUPTED") settleJob(r, now());
    });
    // The send job already reported Completed when the partner accepted the message; only a
    // failure discovered now is news (contract §6).
    if (record.state === "FAILED" || record.state === "PARTIAL") await notifyEnd(store, notifySpecFor(o.config, partner), record, openStore(o.config).notifications);
    return { runId, messageId: detail.as2MessageId, outcome, record };
  }
}
