/**
 * Byte-exact multipart splitting (RFC 2046 §5.1.1), streaming and in memory. A delimiter is
 * CRLF "--" boundary (bare LF accepted) at the start of a line; the CRLF before it belongs to the
 * delimiter, not to the part (C1) - the detail behind the most common MIC bug (E-2).
 * Parts are handed on as their raw bytes (headers + body) so they can be hashed as received.
 */
import { Buffer } from "node:buffer";
import { As2Error, ErrorCodes } from "../errors.js";
import { asBuffer } from "../bytes.js";

export interface DelimiterMatch {
  /** Where the part before it ends (the CRLF or LF before "--" excluded). */
  partEnd: number;
  /** Where the next part starts (after the delimiter line), or -1 for the close delimiter. */
  nextStart: number;
  close: boolean;
}

/**
 * Finds the next delimiter in buf from `from`. `atStart` allows a delimiter at `from` with no
 * line end before it (the first boundary with no preamble). Returns null if none is complete in
 * buf, or "need-more" if a candidate runs past the end of buf.
 */
export function findDelimiter(buf: Buffer, boundary: Buffer, from: number, atStart: boolean): DelimiterMatch | null | "need-more" {
  const dash = boundary.length + 2;
  let i = from;
  // `from` itself is a line start only on the first pass; afterwards only bytes after an LF are.
  let first = atStart;
  for (;;) {
    let lineStart: number;
    if (first && buf.length - from >= 2 && buf[from] === 0x2d && buf[from + 1] === 0x2d) {
      first = false;
      lineStart = from;
    } else {
      first = false;
      const lf = buf.indexOf(0x0a, i);
      if (lf < 0) return null;
      lineStart = lf + 1;
    }
    // need "--" boundary plus 2 bytes to know whether it is a close delimiter / line end
    if (buf.length - lineStart < dash + 2) {
      if (buf.length - lineStart >= 2 && (buf[lineStart] !== 0x2d || buf[lineStart + 1] !== 0x2d)) {
        i = lineStart;
        if (i >= buf.length) return null;
        continue;
      }
      return "need-more";
    }
    if (buf[lineStart] === 0x2d && buf[lineStart + 1] === 0x2d && buf.subarray(lineStart + 2, lineStart + dash).equals(boundary)) {
      let partEnd = lineStart;
      if (lineStart > from || !atStart) {
        partEnd = lineStart - 1; // the LF
        if (partEnd > 0 && buf[partEnd - 1] === 0x0d) partEnd--; // and its CR
      }
      let p = lineStart + dash;
      if (buf[p] === 0x2d && buf[p + 1] === 0x2d) return { partEnd, nextStart: -1, close: true };
      // optional transport padding (RFC 2046 §5.1.1), then the line end
      while (p < buf.length && (buf[p] === 0x20 || buf[p] === 0x09)) p++;
      if (p >= buf.length - 1 && buf[p] !== 0x0a) return "need-more";
      if (buf[p] === 0x0d && buf[p + 1] === 0x0a) return { partEnd, nextStart: p + 2, close: false };
      if (buf[p] === 0x0a) return { partEnd, nextStart: p + 1, close: false };
      // "--boundaryX": a longer string that starts with the boundary, not a delimiter
    }
    i = lineStart;
    if (i >= buf.length) return null;
  }
}

export interface RawPart {
  /** Raw bytes of the part: headers, blank line, body, exactly as received. */
  raw: Buffer;
  /** Offsets of raw within the multipart body. */
  start: number;
  end: number;
}

/** Splits an in-memory multipart body into its raw parts. */
export function splitMultipart(body: Uint8Array, boundary: string): RawPart[] {
  const buf = asBuffer(body);
  const b = Buffer.from(boundary, "latin1");
  const first = findDelimiter(buf, b, 0, true);
  if (first === null || first === "need-more") throw new As2Error(ErrorCodes.MALFORMED_MIME, `multipart boundary "${boundary}" not found`);
  if (first.close) return [];
  const parts: RawPart[] = [];
  let start = first.nextStart;
  for (;;) {
    const m = findDelimiter(buf, b, start, true);
    if (m === null || m === "need-more") throw new As2Error(ErrorCodes.MALFORMED_MIME, `multipart body has no closing boundary "--${boundary}--"`);
    parts.push({ raw: buf.subarray(start, m.partEnd), start, end: m.partEnd });
    if (m.close) return parts;
    start = m.nextStart;
  }
}

/** Boundaries are 1-70 characters (RFC 2046 §5.1.1). */
export function checkBoundary(boundary: string | undefined): string {
  if (!boundary || boundary.length > 70) throw new As2Error(ErrorCodes.MALFORMED_MIME, `multipart Content-Type has ${boundary ? "an over-long" : "no"} boundary parameter`);
  return boundary;
}

/**
 * Streaming splitter: nextPart() returns an async iterable over the raw bytes of the next part
 * (which must be consumed before asking for the following one), or null after the close delimiter.
 */
export class MultipartStream {
  private readonly it: AsyncIterator<Uint8Array>;
  private readonly boundary: Buffer;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private closed = false;
  private started = false;
  private partOpen = false;
  /** Bounds the preamble and the tail kept while scanning: nothing unbounded is buffered. */
  private readonly maxPreamble = 64 * 1024;

  constructor(source: AsyncIterable<Uint8Array>, boundary: string) {
    this.it = source[Symbol.asyncIterator]();
    this.boundary = Buffer.from(checkBoundary(boundary), "latin1");
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, asBuffer(r.value)]) : asBuffer(r.value);
    return true;
  }

  private async skipPreamble(): Promise<void> {
    for (;;) {
      const m = findDelimiter(this.buf, this.boundary, 0, true);
      if (m && m !== "need-more") {
        if (m.close) {
          this.closed = true;
          return;
        }
        this.buf = this.buf.subarray(m.nextStart);
        return;
      }
      if (this.buf.length > this.maxPreamble) throw new As2Error(ErrorCodes.MALFORMED_MIME, `multipart boundary "${this.boundary}" not found in the first ${this.maxPreamble} bytes`);
      if (!(await this.pull())) throw new As2Error(ErrorCodes.MALFORMED_MIME, `multipart boundary "${this.boundary}" not found`);
    }
  }

  async nextPart(): Promise<AsyncIterable<Buffer> | null> {
    if (this.partOpen) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "the previous part was not consumed");
    if (!this.started) {
      this.started = true;
      await this.skipPreamble();
    }
    if (this.closed) return null;
    this.partOpen = true;
    return this.partBytes();
  }

  private async *partBytes(): AsyncGenerator<Buffer> {
    const keep = this.boundary.length + 4; // CR LF - - boundary: what a split delimiter can occupy
    // Only at the very start of a part may a delimiter come without a line end before it.
    let atPartStart = true;
    for (;;) {
      const m = findDelimiter(this.buf, this.boundary, 0, atPartStart);
      if (m && m !== "need-more") {
        if (m.partEnd > 0) yield this.buf.subarray(0, m.partEnd);
        if (m.close) {
          this.closed = true;
          this.buf = Buffer.alloc(0); // the epilogue is ignored (T5)
        } else {
          this.buf = this.buf.subarray(m.nextStart);
        }
        this.partOpen = false;
        return;
      }
      // Emit what cannot belong to a delimiter, keep the tail.
      const safe = this.buf.length - keep;
      if (safe > 0 && m === null) {
        yield this.buf.subarray(0, safe);
        this.buf = this.buf.subarray(safe);
        atPartStart = false;
      }
      if (!(await this.pull())) {
        throw new As2Error(ErrorCodes.TRUNCATED, `multipart body ends without its closing boundary "--${this.boundary}--"`);
      }
    }
  }
}
