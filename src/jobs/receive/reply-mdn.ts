/**
 * Building the MDN that answers a message, in a way that cannot fail once the file is stored
 * (issue 11 case 5: an md5-signed message asking for a signed receipt used to commit the file,
 * then fail to sign the MDN, answer 500, and store the sender's retry a second time).
 *
 * The MIC keeps the partner's algorithm (RFC 4130 §7.3.1: it is the signing digest of the
 * message, md5 included); the MDN's own signature uses the first algorithm we can sign with
 * (RFC 4130 §7.3: signed-receipt-micalg lists preferences, the receiver chooses), and falls back
 * to sha256, then to an unsigned MDN with a warning rather than to no answer.
 */
import { hostname } from "node:os";
import { buildMdn, type DigestAlgorithm, type DispositionSpec } from "../../core/index.js";
import type { LedgerEntry, OpenedSummary, StoredMdn } from "../../store/index.js";
import type { Services } from "./services.js";

const SIGNABLE: readonly string[] = ["sha1", "sha224", "sha256", "sha384", "sha512"];

export interface Reply {
  mdn?: StoredMdn;
  warnings: string[];
}

export function dispositionText(d: DispositionSpec): string {
  return `${d.type}${d.modifier ? `/${d.modifier}: ${d.description}` : ""}`;
}

/**
 * An MDN that goes by mail (a mailto: Receipt-Delivery-Option, issue 17) must be 7-bit with lines
 * of at most 998 characters (mdn-mail.ts), and once signed it cannot be re-encoded: the texts the
 * partner or a file name put into it (the Subject and Date quoted in the human-readable part, the
 * detail that may name a file) are made printable ASCII and cut short when it is built.
 */
const MAIL_TEXT_MAX = 300;
function mailSafe(v: string | undefined): string | undefined {
  return v === undefined ? undefined : v.replace(/[^ -~]/g, "?").slice(0, MAIL_TEXT_MAX);
}

export function replyMdn(s: Services, entry: Pick<LedgerEntry, "from" | "messageId" | "mdnRequest">, disposition: DispositionSpec, detailText?: string, opened?: OpenedSummary): Reply {
  const byMail = /^mailto:/i.test(entry.mdnRequest.asyncUrl ?? "");
  const req = byMail ? { ...entry.mdnRequest, subject: mailSafe(entry.mdnRequest.subject), date: mailSafe(entry.mdnRequest.date) } : entry.mdnRequest;
  const detail = byMail ? mailSafe(detailText) : detailText;
  if (!req.wanted) return { warnings: [] };
  const warnings: string[] = [];
  const preferred = (opened?.signed ? opened.mic.algorithm : req.micAlgorithm) ?? "sha256";
  const digests = [...new Set([SIGNABLE.includes(preferred) ? preferred : "sha256", "sha256"])] as DigestAlgorithm[];
  if (!SIGNABLE.includes(preferred) && req.signed) warnings.push(`the MDN is signed with sha256: ${preferred} is accepted for verification only, never for signing`);
  const attempts: Array<DigestAlgorithm | false> = req.signed ? [...digests, false] : [false];
  let lastError: Error | undefined;
  for (const digest of attempts) {
    try {
      const built = buildMdn({
        original: { messageId: entry.messageId, from: entry.from, to: req.to, subject: req.subject, date: req.date },
        disposition, detail,
        mic: opened ? { base64: opened.mic.base64, algorithm: opened.mic.algorithm as DigestAlgorithm, token: opened.signed ? undefined : req.micToken } : undefined,
        // P2: a signed receipt was asked for, so it is signed even when processing failed.
        sign: digest ? { digest, key: s.keys.station.key, certificate: s.keys.station.certificate } : false,
        reportingUa: `as2kit on ${hostname()}`,
        now: s.now,
      });
      if (lastError) warnings.push(`the MDN was built ${digest ? `signed with ${digest}` : "unsigned"} because ${lastError.message}`);
      return { mdn: { headers: built.headers.list, body: built.body.toString("base64") }, warnings };
    } catch (e) {
      lastError = e as Error;
    }
  }
  warnings.push(`no MDN could be built: ${lastError?.message ?? "unknown error"}`);
  return { warnings };
}
