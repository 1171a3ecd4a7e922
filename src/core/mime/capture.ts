/**
 * HTTP messages as people save them: a whole response or request (start line, headers, body, as
 * `curl -i`, a proxy log or `as2 send --dry-run` write it), a MIME entity (headers, body, as the
 * job log and the MDN file destination keep it), or a body with its headers in a second file
 * (`curl -D`). Lenient on purpose, because these files are hand-made: CRLF or LF, interim 1xx
 * responses, a chunked body or one already de-chunked, header values a logger wrapped in quotes.
 * Every liberty taken is reported in `notes`.
 */
import { asBuffer } from "../bytes.js";
import { As2Error, ErrorCodes } from "../errors.js";
import { findHeaderEnd, MAX_HEADER_BYTES } from "./entity.js";
import { Headers, looksLikeHeaderLine, parseHeaderBlock } from "./headers.js";

export interface CapturedEntity {
  headers: Headers;
  body: Buffer;
  /** "HTTP/1.1 200 OK" or "POST /as2 HTTP/1.1", when the capture had one. */
  startLine?: string;
  /** False when the file is a body alone: no start line, no headers. */
  hadHeaders: boolean;
  notes: string[];
}

const STATUS_LINE = /^HTTP\/\d(?:\.\d)? (\d{3})(?: .*)?$/;
const REQUEST_LINE = /^[A-Z]+ \S+ HTTP\/\d(?:\.\d)?$/;

function firstLine(buf: Buffer): string {
  const nl = buf.indexOf(0x0a);
  return buf.subarray(0, nl < 0 ? buf.length : nl).toString("latin1").replace(/\r$/, "");
}

function afterFirstLine(buf: Buffer): Buffer {
  const nl = buf.indexOf(0x0a);
  return nl < 0 ? Buffer.alloc(0) : buf.subarray(nl + 1);
}

/** Header block and body of what follows a start line (an empty block is allowed). */
function headAndBody(buf: Buffer): { headers: Headers; body: Buffer } {
  if (buf[0] === 0x0a) return { headers: new Headers(), body: buf.subarray(1) };
  if (buf[0] === 0x0d && buf[1] === 0x0a) return { headers: new Headers(), body: buf.subarray(2) };
  const end = findHeaderEnd(buf);
  if (!end) {
    if (buf.length > MAX_HEADER_BYTES) throw new As2Error(ErrorCodes.MALFORMED_MIME, "the header block does not end (no empty line)");
    return { headers: parseHeaderBlock(buf.toString("latin1")), body: Buffer.alloc(0) };
  }
  return { headers: parseHeaderBlock(buf.subarray(0, end.end).toString("latin1")), body: buf.subarray(end.bodyStart) };
}

/** RFC 9112 §7.1 chunked coding; undefined when the bytes are not chunked after all. */
export function dechunk(buf: Buffer): Buffer | undefined {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, i);
    if (nl < 0) return undefined;
    // Chunk extensions after ';' and trailing white space are tolerated (Q10).
    const sizeText = buf.subarray(i, nl).toString("latin1").replace(/\r$/, "").split(";")[0]!.trim();
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) return undefined;
    const size = parseInt(sizeText, 16);
    i = nl + 1;
    if (size === 0) return Buffer.concat(out); // trailers, if any, are not needed
    if (i + size > buf.length) return undefined;
    out.push(buf.subarray(i, i + size));
    i += size;
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) i += 2;
    else if (buf[i] === 0x0a) i += 1;
    else return undefined;
  }
}

/** Applies Transfer-Encoding and Content-Length the way the capture most likely means them. */
function bodyOf(headers: Headers, raw: Buffer, notes: string[], honourLength: boolean): Buffer {
  if (/\bchunked\b/i.test(headers.get("transfer-encoding") ?? "")) {
    const plain = dechunk(raw);
    if (plain) return plain;
    notes.push("Transfer-Encoding says chunked, but the body is not in chunks (already decoded, it seems): taken as it is");
    return raw;
  }
  const length = Number(headers.get("content-length"));
  if (honourLength && Number.isInteger(length) && length >= 0 && headers.has("content-length")) {
    if (raw.length > length) {
      notes.push(`${raw.length - length} byte(s) after the Content-Length of ${length} were ignored`);
      return raw.subarray(0, length);
    }
    if (raw.length < length) notes.push(`the body is ${raw.length} bytes, ${length - raw.length} fewer than its Content-Length says`);
  }
  return raw;
}

/** Skips interim responses (100 Continue) so that the final one is read. */
function finalResponse(buf: Buffer, notes: string[]): { startLine: string; rest: Buffer } {
  let rest = buf;
  for (;;) {
    const line = firstLine(rest);
    const code = Number(STATUS_LINE.exec(line)![1]);
    const after = afterFirstLine(rest);
    if (code >= 200) return { startLine: line, rest: after };
    const end = after[0] === 0x0a || (after[0] === 0x0d && after[1] === 0x0a) ? { bodyStart: after[0] === 0x0a ? 1 : 2 } : findHeaderEnd(after);
    if (!end) return { startLine: line, rest: after };
    notes.push(`skipped the interim response "${line}"`);
    rest = after.subarray(end.bodyStart);
    if (!STATUS_LINE.test(firstLine(rest))) throw new As2Error(ErrorCodes.MALFORMED_MIME, `nothing follows the interim response "${line}"`);
  }
}

/**
 * A header file (`curl -D`, a browser's "copy response headers", a log): the last response when
 * there are several (redirects, 100 Continue), the start line removed, values wrapped whole in
 * double quotes unwrapped (Java header maps print them so).
 */
export function readHeaderFile(bytes: Uint8Array): { headers: Headers; startLine?: string; notes: string[] } {
  const notes: string[] = [];
  const blocks = asBuffer(bytes).toString("latin1").split(/\r?\n[ \t]*\r?\n/).map((b) => b.replace(/^(\r?\n)+/, "")).filter((b) => b.trim() !== "");
  if (!blocks.length) throw new As2Error(ErrorCodes.MALFORMED_MIME, "the header file is empty");
  let block = blocks[blocks.length - 1]!;
  if (blocks.length > 1) notes.push(`the header file holds ${blocks.length} header blocks; the last one is used`);
  let startLine: string | undefined;
  const first = block.split(/\r?\n/, 1)[0]!;
  if (STATUS_LINE.test(first) || REQUEST_LINE.test(first)) {
    startLine = first;
    block = block.slice(first.length).replace(/^\r?\n/, "");
  }
  const headers = parseHeaderBlock(block);
  let unwrapped = 0;
  for (const h of headers.list) {
    if (h.value.length >= 2 && h.value.startsWith('"') && h.value.endsWith('"')) {
      h.value = h.value.slice(1, -1).replace(/\\(["\\])/g, "$1");
      unwrapped++;
    }
  }
  if (unwrapped) notes.push(`${unwrapped} header value(s) wrapped whole in double quotes were unwrapped`);
  return { headers, startLine, notes };
}

/** Reads a saved HTTP message or MIME entity; with `headerFile`, `bytes` is the body alone. */
export function readCapturedEntity(bytes: Uint8Array, headerFile?: Uint8Array): CapturedEntity {
  const buf = asBuffer(bytes);
  if (headerFile) {
    const h = readHeaderFile(headerFile);
    // The body file was saved on its own: its length is what it is, whatever Content-Length says.
    return { headers: h.headers, startLine: h.startLine, hadHeaders: true, body: bodyOf(h.headers, buf, h.notes, false), notes: h.notes };
  }
  const notes: string[] = [];
  const line = firstLine(buf);
  if (STATUS_LINE.test(line) || REQUEST_LINE.test(line)) {
    const { startLine, rest } = STATUS_LINE.test(line) ? finalResponse(buf, notes) : { startLine: line, rest: afterFirstLine(buf) };
    const { headers, body } = headAndBody(rest);
    return { headers, startLine, hadHeaders: true, body: bodyOf(headers, body, notes, true), notes };
  }
  if (looksLikeHeaderLine(line)) {
    const { headers, body } = headAndBody(buf);
    return { headers, hadHeaders: true, body, notes };
  }
  return { headers: new Headers(), hadHeaders: false, body: buf, notes };
}
