/**
 * Disposition-Notification-Options (RFC 3798 §2.2, RFC 4130 §7.3; as2-reference.md R2-R5, E-6).
 * Robust parsing: split on ';', then the first '=', then ','; trim spaces and tabs; names and
 * importance are case-insensitive; quotes and empty parameters are tolerated.
 */
import { type DigestAlgorithm, micAlgorithmName, normalizeMicAlgorithm, type MicNaming } from "../cms/digests.js";

export type Importance = "required" | "optional";

export interface DispositionOptions {
  /** signed-receipt-protocol, e.g. pkcs7-signature (lower-cased). */
  protocol?: string;
  protocolImportance?: Importance;
  /** signed-receipt-micalg values as the partner spelled them, in order of preference (R3). */
  micAlgorithms: string[];
  micImportance?: Importance;
  /** Unknown parameters, kept to decide a "required" failure (R5). */
  unknown: Array<{ name: string; importance: Importance; values: string[] }>;
}

export function parseDispositionOptions(value: string | undefined): DispositionOptions {
  const out: DispositionOptions = { micAlgorithms: [], unknown: [] };
  if (!value) return out;
  for (const param of value.split(";")) {
    const eq = param.indexOf("=");
    if (eq < 0) continue;
    const name = param.slice(0, eq).trim().toLowerCase();
    const list = param.slice(eq + 1).split(",").map((v) => v.trim().replace(/^"|"$/g, "").trim()).filter((v) => v !== "");
    if (!name || list.length === 0) continue;
    const imp = list[0]!.toLowerCase();
    const importance: Importance = imp === "required" ? "required" : "optional";
    const values = imp === "required" || imp === "optional" ? list.slice(1) : list;
    if (name === "signed-receipt-protocol") {
      out.protocol = values[0]?.toLowerCase();
      out.protocolImportance = importance;
    } else if (name === "signed-receipt-micalg") {
      out.micAlgorithms = values;
      out.micImportance = importance;
    } else {
      out.unknown.push({ name, importance, values });
    }
  }
  return out;
}

/** A signed receipt is requested when both parameters are there with pkcs7-signature (R2). */
export function wantsSignedReceipt(o: DispositionOptions): boolean {
  return o.protocol === "pkcs7-signature" && o.micAlgorithms.length > 0;
}

/** The first micalg we support, with the partner's own spelling for the echo (R3, §7 table note). */
export function chooseMicAlgorithm(o: DispositionOptions): { algorithm: DigestAlgorithm; token: string } | undefined {
  for (const token of o.micAlgorithms) {
    const algorithm = normalizeMicAlgorithm(token);
    if (algorithm) return { algorithm, token };
  }
  return undefined;
}

export function formatDispositionOptions(micAlgorithms: readonly DigestAlgorithm[], naming: MicNaming = "rfc5751"): string {
  return `signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, ${micAlgorithms.map((a) => micAlgorithmName(a, naming)).join(", ")}`;
}
