/**
 * Accepting a CEM request edits the partner's profile in the configuration FILE (the same
 * editor as `as2 partner add`: format, indentation and unknown keys kept, validated as a whole,
 * written atomically), adding the new certificate with its window (as2-reference E8):
 *
 * - digitalSignature: the new certificate verifies signatures from now on (E8: "MUST
 *   immediately accept messages signed with it"); the certificates in use so far get
 *   `until: RespondByDate`: the requester switches to its new key by then (the draft's meaning
 *   of the date), so after it a signature by the old key is refused.
 * - keyEncipherment: the new certificate encrypts from RespondByDate on (E8: not used before the
 *   partner has it in place, which it promised by that date); the old one until then.
 * - tlsServer / tlsClient: not applied (as2kit trusts TLS servers by CA, partners.<name>.tls.ca)
 *   and answered Rejected for that usage.
 *
 * Idempotent: a certificate file already in the list is not added again, so an accept repeated
 * after a crash changes nothing more. Two editors at once are serialised by a lock file.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative } from "node:path";
import { As2Error, ErrorCodes } from "../../core/index.js";
import { readConfigDocument, validateDocument, writeConfigDocument } from "../../config/edit.js";
import { certificateFileOf, type CertificateEntry } from "../../config/schema.js";
import { withLock, type CemRequestRecord } from "../../store/index.js";

export interface Applied {
  /** Usages applied to the profile (the rest were rejected, with the reason). */
  applied: string[];
  rejected: Array<{ usage: string; reason: string }>;
  certificateFile?: string;
  changed: boolean;
}

const TLS_REASON = "as2kit does not take TLS certificates by CEM: trust the partner's TLS server by its CA (partners.<name>.tls.ca)";

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

/** Entries in use now get `until` (when they have none, or a later one). */
function closed(entries: CertificateEntry[], until: string): CertificateEntry[] {
  return entries.map((e) => {
    if (typeof e === "string") return { file: e, until };
    if (e.until && Date.parse(e.until) <= Date.parse(until)) return e;
    return { ...e, until };
  });
}

export async function applyAcceptedCertificate(configPath: string, r: CemRequestRecord, now: Date): Promise<Applied> {
  const applied: string[] = [];
  const rejected: Applied["rejected"] = [];
  for (const u of r.usages) {
    if (u === "digitalSignature" || u === "keyEncipherment") applied.push(u);
    else rejected.push({ usage: u, reason: TLS_REASON });
  }
  if (!applied.length) return { applied, rejected, changed: false };
  return withLock(`${configPath}.cem.lock`, "the configuration file", async () => {
    const doc = await readConfigDocument(configPath);
    const partners = doc.raw.partners;
    const p = isObject(partners) ? partners[r.partner] : undefined;
    if (!isObject(p)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `partners.${r.partner} is not in ${configPath} (was it removed?)`);
    const base = dirname(configPath);
    // Beside the partner's current certificate (or in partners/), named by partner and serial.
    const current = typeof p.certificate === "string" ? p.certificate : undefined;
    const folder = current ? dirname(current) : "partners";
    const rel = join(folder, `${r.partner}-cem-${BigInt(r.certificate.serialNumber).toString(16).toUpperCase()}.crt`);
    const abs = isAbsolute(rel) ? rel : join(base, rel);
    const file = isAbsolute(rel) ? rel : relative(base, abs) || rel;
    const respondBy = new Date(r.respondBy).toISOString();
    const from = now.toISOString();
    let changed = false;
    if (applied.includes("digitalSignature")) {
      const list = (Array.isArray(p.signatureCertificates) ? p.signatureCertificates : current ? [current] : []) as CertificateEntry[];
      if (!list.some((e) => certificateFileOf(e) === file)) {
        p.signatureCertificates = [...closed(list, respondBy), { file, from }];
        changed = true;
      }
    }
    if (applied.includes("keyEncipherment")) {
      const enc = p.encryptionCertificate;
      const list = (typeof enc === "string" ? [enc] : Array.isArray(enc) ? enc : current ? [current] : []) as CertificateEntry[];
      if (!list.some((e) => certificateFileOf(e) === file)) {
        p.encryptionCertificate = [...closed(list, respondBy), { file, from: respondBy }];
        changed = true;
      }
    }
    if (changed) {
      await mkdir(dirname(abs), { recursive: true });
      await writeFile(abs, r.certificate.pem, { mode: 0o644 });
      validateDocument(doc, process.env);
      await writeConfigDocument(doc);
    }
    return { applied, rejected, certificateFile: abs, changed };
  });
}
