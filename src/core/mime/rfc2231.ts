/**
 * File names in Content-Disposition beyond ASCII (RFC 2231 §4-5, RFC 6266 §4.3): senders write
 * `filename*=UTF-8''%E2%82%AC.txt` (possibly split as filename*0*, filename*1*, ...) with a plain
 * `filename` as the fallback for old readers. We read filename* first, then filename; we write
 * both when the name is not ASCII (issue 12 case 4: names were cut to their low bytes).
 */
import { Buffer } from "node:buffer";
import { formatParameterized } from "./headers.js";

function decodeExtValue(v: string): string | undefined {
  const m = /^([^']*)'[^']*'(.*)$/.exec(v);
  const charset = (m?.[1] ?? "utf-8").toLowerCase();
  const encoded = m ? m[2]! : v;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const ch = encoded[i]!;
    if (ch === "%" && /^[0-9A-Fa-f]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(ch.charCodeAt(0) & 0xff);
    }
  }
  const buf = Buffer.from(bytes);
  if (charset === "utf-8" || charset === "utf8") {
    const text = buf.toString("utf8");
    // Invalid UTF-8 decodes to U+FFFD: then the plain filename is the better choice.
    return text.includes("\uFFFD") ? undefined : text;
  }
  if (charset === "iso-8859-1" || charset === "latin1" || charset === "us-ascii") return buf.toString("latin1");
  return undefined;
}

/** The file name of Content-Disposition parameters (names lower-cased, as parseParameterized gives them). */
export function dispositionFilename(params: Record<string, string>): string | undefined {
  if (params["filename*"] !== undefined) {
    const v = decodeExtValue(params["filename*"]);
    if (v !== undefined) return v;
  }
  // RFC 2231 §3 continuations: filename*0*, filename*1, ... (the first may carry the charset).
  if (params["filename*0*"] !== undefined || params["filename*0"] !== undefined) {
    let joined = "";
    let extended = false;
    for (let i = 0; ; i++) {
      const ext = params[`filename*${i}*`];
      const plain = params[`filename*${i}`];
      if (ext === undefined && plain === undefined) break;
      if (ext !== undefined) extended = true;
      joined += ext ?? encodeURIComponent(plain!);
    }
    const v = extended ? decodeExtValue(params["filename*0*"] !== undefined ? joined : `utf-8''${joined}`) : decodeExtValue(`utf-8''${joined}`);
    if (v !== undefined) return v;
  }
  return params.filename;
}

/** `attachment; filename="..."` plus `filename*=UTF-8''...` when the name is not printable ASCII. */
export function formatContentDisposition(filename: string, alwaysQuote = false): string {
  if (/^[ -~]*$/.test(filename)) return formatParameterized("attachment", { filename }, alwaysQuote ? ["filename"] : []);
  const fallback = filename.normalize("NFKD").replace(/[^ -~]/g, "_");
  const encoded = Array.from(Buffer.from(filename, "utf8"), (b) => (/[A-Za-z0-9!#$&+.^_`|~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
  return `${formatParameterized("attachment", { filename: fallback }, alwaysQuote ? ["filename"] : [])}; filename*=UTF-8''${encoded}`;
}
