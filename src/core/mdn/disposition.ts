/**
 * The Disposition field (RFC 4130 §7.4.3, RFC 3798 §3.2.6; as2-reference.md §10, D1-D4).
 * Parsing is case-insensitive with optional white space and comments; both the historic
 * `processed/error: X` and the RFC 3798 `processed/error` + `Error: X` forms are read.
 */

export type DispositionModifier = "error" | "warning" | "failure";

export interface Disposition {
  actionMode: string;
  sendingMode: string;
  /** processed | failed (lower-cased), or whatever else was sent. */
  type: string;
  modifier?: DispositionModifier | string;
  /** The text after "error:" etc., e.g. decryption-failed. */
  description?: string;
  raw: string;
}

export type DispositionClass = "ok" | "warning" | "negative";

/** RFC 3798 §3.1.1: parenthesised text is a comment. */
function stripComments(v: string): string {
  return v.replace(/\([^()]*\)/g, " ");
}

export function parseDisposition(value: string): Disposition | undefined {
  const v = stripComments(value).trim();
  const semi = v.indexOf(";");
  if (semi < 0) return undefined;
  const [actionMode = "", sendingMode = ""] = v.slice(0, semi).split("/").map((s) => s.trim().toLowerCase());
  const rest = v.slice(semi + 1).trim();
  const slash = rest.indexOf("/");
  const type = (slash < 0 ? rest : rest.slice(0, slash)).trim().toLowerCase();
  if (!type) return undefined;
  const d: Disposition = { actionMode, sendingMode, type, raw: value.trim() };
  if (slash >= 0) {
    const mod = rest.slice(slash + 1);
    const colon = mod.indexOf(":");
    d.modifier = (colon < 0 ? mod : mod.slice(0, colon)).trim().toLowerCase();
    if (colon >= 0) d.description = mod.slice(colon + 1).trim() || undefined;
  }
  return d;
}

/** D4: processed = ok, processed/warning = ok with a warning, error/failed/anything else = negative. */
export function classifyDisposition(d: Disposition | undefined): DispositionClass {
  if (!d) return "negative";
  if (d.type === "processed" && !d.modifier) return "ok";
  if (d.type === "processed" && d.modifier === "warning") return "warning";
  return "negative";
}

export interface DispositionSpec {
  type: "processed" | "failed";
  modifier?: DispositionModifier;
  /** e.g. decryption-failed, duplicate-document, unsupported MIC-algorithms. */
  description?: string;
}

/** `automatic-action/MDN-sent-automatically; processed/error: decryption-failed` (D1, D2, E-4). */
export function formatDisposition(spec: DispositionSpec): string {
  let out = `automatic-action/MDN-sent-automatically; ${spec.type}`;
  if (spec.modifier) {
    const mod = spec.modifier === "failure" ? "Failure" : spec.modifier;
    out += `/${mod}${spec.description ? `: ${spec.description}` : ""}`;
  }
  return out;
}
