/**
 * A MIME entity read from a stream: the header block (bounded) and the body as a stream, with
 * the raw header bytes kept so the entity can be hashed exactly as received (C1-C3).
 */
import { Buffer } from "node:buffer";
import { As2Error, ErrorCodes } from "../errors.js";
import { ByteReader } from "../ber/byte-reader.js";
import { asBuffer } from "../bytes.js";
import { Headers, looksLikeHeaderLine, parseHeaderBlock } from "./headers.js";

/** Header blocks larger than this are refused: nobody sends 64 KiB of MIME headers. */
export const MAX_HEADER_BYTES = 64 * 1024;

export interface EntityHead {
  headers: Headers;
  /** The header block and the blank line after it, as received (empty when there were no headers). */
  rawHeader: Buffer;
  /** False when the content had no header block (S6: treated as a bare payload). */
  hadHeaders: boolean;
}

/** Where the header block ends: its last line break (end) and the first body byte (bodyStart). */
export function findHeaderEnd(buf: Buffer): { end: number; bodyStart: number } | null {
  // The first empty line: CRLF CRLF, or LF LF with bare LF line ends.
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return { end: i + 1, bodyStart: i + 2 };
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return { end: i + 1, bodyStart: i + 3 };
    if (i + 2 >= buf.length) break;
  }
  return null;
}

/** Splits an in-memory entity into headers and body. */
/** An entity that starts with a blank line has an empty header block (RFC 2045 §3). */
function leadingBlankLine(buf: Buffer): number {
  if (buf[0] === 0x0a) return 1;
  if (buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  return 0;
}

export function parseEntityBytes(bytes: Uint8Array): EntityHead & { body: Buffer } {
  const buf = asBuffer(bytes);
  const blank = leadingBlankLine(buf);
  if (blank) return { headers: new Headers(), rawHeader: buf.subarray(0, blank), hadHeaders: true, body: buf.subarray(blank) };
  const firstLine = buf.subarray(0, Math.max(0, buf.indexOf(0x0a) < 0 ? buf.length : buf.indexOf(0x0a))).toString("latin1");
  if (!looksLikeHeaderLine(firstLine)) return { headers: new Headers(), rawHeader: Buffer.alloc(0), hadHeaders: false, body: buf };
  const end = findHeaderEnd(buf);
  if (!end) {
    if (buf.length > MAX_HEADER_BYTES) throw new As2Error(ErrorCodes.MALFORMED_MIME, "MIME header block does not end");
    return { headers: parseHeaderBlock(buf.toString("latin1")), rawHeader: buf, hadHeaders: true, body: Buffer.alloc(0) };
  }
  if (end.end > MAX_HEADER_BYTES) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `MIME header block exceeds ${MAX_HEADER_BYTES} bytes`);
  return {
    headers: parseHeaderBlock(buf.subarray(0, end.end).toString("latin1")),
    rawHeader: buf.subarray(0, end.bodyStart),
    hadHeaders: true,
    body: buf.subarray(end.bodyStart),
  };
}

/** Reads the header block of a streamed entity; the reader is left at the first body byte. */
export async function readEntityHead(reader: ByteReader): Promise<EntityHead> {
  let want = 1024;
  for (;;) {
    await reader.ensure(want);
    const buf = await reader.peek(want);
    const blank = leadingBlankLine(buf);
    if (blank) return { headers: new Headers(), rawHeader: Buffer.from(await reader.readExact(blank, "MIME headers")), hadHeaders: true };
    const nl = buf.indexOf(0x0a);
    const firstLine = buf.subarray(0, nl < 0 ? buf.length : nl).toString("latin1");
    if (buf.length === 0 || (firstLine.length > 0 && (nl >= 0 || buf.length < want) && !looksLikeHeaderLine(firstLine))) {
      return { headers: new Headers(), rawHeader: Buffer.alloc(0), hadHeaders: false };
    }
    const end = findHeaderEnd(buf);
    if (end) {
      const raw = Buffer.from(await reader.readExact(end.bodyStart, "MIME headers"));
      return { headers: parseHeaderBlock(raw.subarray(0, end.end).toString("latin1")), rawHeader: raw, hadHeaders: true };
    }
    if (buf.length < want) {
      // The stream ended inside the header block: headers and no body.
      const raw = Buffer.from(await reader.readExact(buf.length, "MIME headers"));
      return { headers: parseHeaderBlock(raw.toString("latin1")), rawHeader: raw, hadHeaders: true };
    }
    if (want >= MAX_HEADER_BYTES) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `MIME header block exceeds ${MAX_HEADER_BYTES} bytes`);
    want = Math.min(want * 4, MAX_HEADER_BYTES);
  }
}
