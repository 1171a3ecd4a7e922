/**
 * Content-Transfer-Encoding (RFC 2045 §6). Over HTTP a missing CTE means binary, not 7bit
 * (as2-reference.md T4, Q5). base64 and quoted-printable are decoded as the body streams.
 */
import { Buffer } from "node:buffer";
import { As2Error, ErrorCodes } from "../errors.js";
import { asBuffer } from "../bytes.js";

export type TransferEncoding = "binary" | "7bit" | "8bit" | "base64" | "quoted-printable";

export function parseTransferEncoding(value: string | undefined): TransferEncoding {
  const v = (value ?? "binary").trim().toLowerCase();
  if (v === "binary" || v === "7bit" || v === "8bit" || v === "base64" || v === "quoted-printable") return v;
  throw new As2Error(ErrorCodes.MALFORMED_MIME, `unknown Content-Transfer-Encoding "${value}"`);
}

const B64 = new Uint8Array(256).fill(255);
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach((c, i) => (B64[c.charCodeAt(0)] = i));

/** Streaming base64 decoder; ignores line breaks and characters outside the alphabet (C5). */
export async function* decodeBase64Stream(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  let carry = "";
  for await (const chunk of source) {
    const buf = asBuffer(chunk);
    const clean = Buffer.allocUnsafe(buf.length);
    let n = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i]!;
      if (B64[c] !== 255) clean[n++] = c;
      else if (c === 0x3d) break; // '=' padding ends the data
    }
    const s = carry + clean.toString("latin1", 0, n);
    const usable = s.length - (s.length % 4);
    carry = s.slice(usable);
    if (usable) yield Buffer.from(s.slice(0, usable), "base64");
  }
  if (carry.length === 1) throw new As2Error(ErrorCodes.MALFORMED_MIME, "base64 content ends in the middle of a group");
  if (carry) yield Buffer.from(carry, "base64");
}

/** Streaming quoted-printable decoder (RFC 2045 §6.7): soft line breaks, =XX escapes. */
export async function* decodeQuotedPrintableStream(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  let carry = Buffer.alloc(0);
  for await (const chunk of source) {
    const buf = carry.length ? Buffer.concat([carry, asBuffer(chunk)]) : asBuffer(chunk);
    // keep an incomplete escape at the end ("=", "=X", "=\r") for the next chunk
    let cut = buf.length;
    const eq = buf.lastIndexOf(0x3d);
    if (eq >= 0 && eq > buf.length - 3) cut = eq;
    carry = Buffer.from(buf.subarray(cut));
    yield decodeQp(buf.subarray(0, cut));
  }
  if (carry.length) yield decodeQp(carry);
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function decodeQp(buf: Buffer): Buffer {
  const out = Buffer.allocUnsafe(buf.length);
  let n = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c !== 0x3d) {
      out[n++] = c;
      continue;
    }
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) { i += 2; continue; } // soft line break
    if (buf[i + 1] === 0x0a) { i += 1; continue; }
    const h = hex(buf[i + 1] ?? -1), l = hex(buf[i + 2] ?? -1);
    if (h >= 0 && l >= 0) {
      out[n++] = h * 16 + l;
      i += 2;
    } else {
      out[n++] = c; // a lone '=' is kept, as RFC 2045 §6.7 (1) suggests for robustness
    }
  }
  return out.subarray(0, n);
}

export function decodeTransferStream(source: AsyncIterable<Uint8Array>, cte: TransferEncoding): AsyncIterable<Uint8Array> {
  if (cte === "base64") return decodeBase64Stream(source);
  if (cte === "quoted-printable") return decodeQuotedPrintableStream(source);
  return source;
}

export function decodeTransfer(body: Uint8Array, cte: TransferEncoding): Buffer {
  if (cte === "base64") return Buffer.from(asBuffer(body).toString("latin1").replace(/[^A-Za-z0-9+/]/g, ""), "base64");
  if (cte === "quoted-printable") return decodeQp(asBuffer(body));
  return asBuffer(body);
}

/** base64 in lines of 76 characters separated by CRLF (RFC 2045 §6.8, C5). */
export function encodeBase64Lines(data: Uint8Array): string {
  const s = asBuffer(data).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < s.length; i += 76) lines.push(s.slice(i, i + 76));
  return lines.join("\r\n");
}
