/**
 * MIME header parsing and formatting (RFC 2045, RFC 5322). Parsing is lenient: CRLF or bare LF,
 * folded lines, any case of names (T6, T7). Formatting never folds (T7, Q9) and quotes parameter
 * values only when they need it (S8).
 */
import { As2Error, ErrorCodes } from "../errors.js";

export interface Header {
  name: string;
  value: string;
}

export class Headers {
  readonly list: Header[];
  constructor(list: Header[] = []) {
    this.list = list;
  }
  /** First value for a name, case-insensitively (T6). */
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.list.find((h) => h.name.toLowerCase() === n)?.value;
  }
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
  set(name: string, value: string): this {
    const n = name.toLowerCase();
    const i = this.list.findIndex((h) => h.name.toLowerCase() === n);
    if (i >= 0) this.list[i] = { name, value };
    else this.list.push({ name, value });
    return this;
  }
  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    for (const h of this.list) if (!(h.name in o)) o[h.name] = h.value;
    return o;
  }
  static from(record: Record<string, string | string[] | undefined>): Headers {
    const h = new Headers();
    for (const [name, v] of Object.entries(record)) {
      if (v === undefined) continue;
      h.list.push({ name, value: Array.isArray(v) ? v.join(", ") : v });
    }
    return h;
  }
}

/**
 * Whether content starts with a MIME header (S6: decrypted or inflated content may be a bare
 * payload). RFC 5322 allows almost any printable field name, but EDI payloads start with
 * "UNA:+.? '" or "UNB+UNOA:2+..." which would then pass as headers. Real MIME field names are
 * letters, digits and '-', and a three-capital name is an EDIFACT segment tag (UNA, UNB, UNH).
 */
const HEADER_LINE = /^([A-Za-z][A-Za-z0-9-]*)[ \t]*:/;

export function looksLikeHeaderLine(line: string): boolean {
  const m = HEADER_LINE.exec(line);
  return !!m && !/^[A-Z]{3}$/.test(m[1]!);
}

/** Parses a header block (without the blank line), unfolding continuation lines. */
export function parseHeaderBlock(text: string): Headers {
  const headers = new Headers();
  for (const line of text.split(/\r?\n/)) {
    if (line === "") continue;
    if ((line[0] === " " || line[0] === "\t") && headers.list.length) {
      const last = headers.list[headers.list.length - 1]!;
      // RFC 5322 §2.2.3: unfolding removes the CRLF only, keeping the white space.
      last.value = `${last.value}${line}`.trim();
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new As2Error(ErrorCodes.MALFORMED_MIME, `malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    headers.list.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  return headers;
}

export interface ContentType {
  /** Lower-cased type/subtype. */
  mediaType: string;
  params: Record<string, string>;
}

/**
 * Splits `value; a=b; c="d;e"` into the first token and lower-cased parameter names, honouring
 * quoted strings and backslash escapes (RFC 2045 §5.1). Tolerates spaces around '=' and empty
 * trailing parameters.
 */
export function parseParameterized(value: string): { value: string; params: Record<string, string> } {
  const parts: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted) {
      if (ch === "\\" && i + 1 < value.length) {
        cur += ch + value[++i];
        continue;
      }
      if (ch === '"') quoted = false;
      cur += ch;
    } else if (ch === '"') {
      quoted = true;
      cur += ch;
    } else if (ch === ";") {
      parts.push(cur);
      cur = "";
    } else {
      cur += ch;
    }
  }
  parts.push(cur);
  const params: Record<string, string> = {};
  for (const p of parts.slice(1)) {
    const eq = p.indexOf("=");
    if (eq < 0) continue;
    const name = p.slice(0, eq).trim().toLowerCase();
    let v = p.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, "$1");
    if (name && !(name in params)) params[name] = v;
  }
  return { value: parts[0]!.trim(), params };
}

export function parseContentType(value: string | undefined): ContentType {
  // A missing Content-Type means text/plain (RFC 2045 §5.2).
  if (!value) return { mediaType: "text/plain", params: {} };
  const { value: mt, params } = parseParameterized(value);
  return { mediaType: mt.toLowerCase(), params };
}

/** RFC 2045 tspecials plus space and controls: such values must be quoted. */
const NEEDS_QUOTES = /[()<>@,;:\\"/[\]?=\s\x00-\x1f\x7f]/;

export function quoteIfNeeded(v: string): string {
  if (v !== "" && !NEEDS_QUOTES.test(v)) return v;
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** `type; a=b; c="d e"` on one line (never folded, T7). */
export function formatParameterized(value: string, params: Record<string, string | undefined>, alwaysQuote: readonly string[] = []): string {
  let out = value;
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    out += `; ${k}=${alwaysQuote.includes(k) ? `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"` : quoteIfNeeded(v)}`;
  }
  return out;
}

/** Header lines must not carry CR/LF (header injection) and are written without folding. */
export function formatHeaderBlock(headers: readonly Header[] | Headers): string {
  const list = headers instanceof Headers ? headers.list : headers;
  let out = "";
  for (const { name, value } of list) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value) || !/^[!-9;-~]+$/.test(name)) {
      throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `header ${JSON.stringify(name)} has a name or value that cannot be sent`);
    }
    out += `${name}: ${value}\r\n`;
  }
  return out;
}
