/**
 * Whether a partner takes multiple attachments (RFC 6362) - `as2 send --multiple-attachments`
 * sends only to partners that do: the profile's `multipleAttachments` key says true or false, or
 * "auto" (the default): the partner advertised `multiple-attachments` in EDIINT-Features
 * (RFC 6362 §3; as2-reference E1) in the most recent message or MDN of it that a job recorded
 * (sendDetails[].partnerFeatures from its answers and async MDNs, receiveDetails.ediintFeatures
 * from its messages). The store's job list is indexed by partner, newest first, in both store
 * kinds; only a few records are read.
 */
import { MULTIPLE_ATTACHMENTS_FEATURE } from "../core/index.js";
import type { PartnerConfig } from "../config/schema.js";
import type { JobRecord, JobRecordStore } from "../store/index.js";

/** How many of the partner's newest jobs are looked at for what it advertised. */
export const FEATURE_LOOKBACK_JOBS = 50;

/** What the partner advertised in a record, undefined when the record holds nothing from it. */
export function advertisedIn(r: JobRecord): string[] | undefined {
  if (r.type === "AS2 Receive") return r.receiveDetails?.ediintFeatures;
  const withFeatures = (r.sendDetails ?? []).filter((d) => d.partnerFeatures);
  return withFeatures[withFeatures.length - 1]?.partnerFeatures;
}

export interface AttachmentsVerdict {
  allowed: boolean;
  /** Why, for the usage error and --verbose. */
  reason: string;
}

export async function partnerTakesAttachments(jobs: JobRecordStore, partnerName: string, partner: PartnerConfig): Promise<AttachmentsVerdict> {
  const key = `partners.${partnerName}.multipleAttachments`;
  if (partner.multipleAttachments === true) return { allowed: true, reason: `${key} is true` };
  if (partner.multipleAttachments === false) return { allowed: false, reason: `${key} is false` };
  const page = await jobs.query({ partner: partnerName, offset: 0, length: FEATURE_LOOKBACK_JOBS });
  for (const summary of page.records) {
    const record = await jobs.load(summary.runId);
    const features = record && advertisedIn(record);
    if (!features) continue;
    // Compared without regard to case (E1: products differ in spelling; we are lenient in what we accept).
    const yes = features.some((f) => f.toLowerCase() === MULTIPLE_ATTACHMENTS_FEATURE);
    return {
      allowed: yes,
      reason: `${key} is "auto" and ${partnerName}'s most recent recorded EDIINT-Features (job ${record!.runId}) ${yes ? "include" : `are "${features.join(", ")}", without`} ${MULTIPLE_ATTACHMENTS_FEATURE}`,
    };
  }
  return { allowed: false, reason: `${key} is "auto" and no recorded message or MDN of ${partnerName} advertised EDIINT-Features` };
}
