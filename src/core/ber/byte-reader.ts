/**
 * Pull-based reader over an async byte stream: parsers ask for exactly the bytes they need and
 * bulk content is handed on as views of the arriving chunks (no copy, no whole-message buffer).
 */
import { Buffer } from "node:buffer";
import { As2Error, ErrorCodes } from "../errors.js";
import { asBuffer } from "../bytes.js";

const EMPTY = Buffer.alloc(0);

export class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Buffer = EMPTY;
  private off = 0;
  private done = false;
  /** Bytes consumed so far from the start of the stream. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private get available(): number {
    return this.buf.length - this.off;
  }

  /** Pulls one more chunk; false at end of stream. */
  private async pull(): Promise<boolean> {
    if (this.done) return false;
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      const chunk = asBuffer(r.value);
      if (chunk.length === 0) continue;
      this.buf = this.available === 0 ? chunk : Buffer.concat([this.buf.subarray(this.off), chunk]);
      this.off = 0;
      return true;
    }
  }

  /**
   * Makes sure n bytes are buffered; false if the stream ends first. The chunks are gathered and
   * joined once: joining at every chunk (as pull() does) copies the buffer again for each one,
   * and a 16 MiB element arriving in 4 KiB pieces then cost 4 s of CPU (32 GB copied), so a slow
   * sender could make every request expensive.
   */
  async ensure(n: number): Promise<boolean> {
    if (this.available >= n) return true;
    if (this.done) return false;
    const parts: Buffer[] = this.available ? [this.buf.subarray(this.off)] : [];
    let have = this.available;
    while (have < n) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const chunk = asBuffer(r.value);
      if (chunk.length === 0) continue;
      parts.push(chunk);
      have += chunk.length;
    }
    this.buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.off = 0;
    return have >= n;
  }

  async peek(n: number): Promise<Buffer> {
    await this.ensure(n);
    return this.buf.subarray(this.off, this.off + Math.min(n, this.available));
  }

  async atEnd(): Promise<boolean> {
    return !(await this.ensure(1));
  }

  async readExact(n: number, what = "data"): Promise<Buffer> {
    if (!(await this.ensure(n))) {
      throw new As2Error(ErrorCodes.TRUNCATED, `input ends in the middle of ${what} (needed ${n} bytes, ${this.available} left)`);
    }
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    this.position += n;
    return out;
  }

  /** Streams exactly n bytes as views of the incoming chunks. */
  async *readStream(n: number, what = "content"): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.available === 0 && !(await this.pull())) {
        throw new As2Error(ErrorCodes.TRUNCATED, `input ends in the middle of ${what} (${left} of ${n} bytes missing)`);
      }
      const take = Math.min(left, this.available);
      const out = this.buf.subarray(this.off, this.off + take);
      this.off += take;
      this.position += take;
      left -= take;
      yield out;
    }
  }

  /** Everything that remains. */
  async *rest(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.available === 0 && !(await this.pull())) return;
      const out = this.buf.subarray(this.off);
      this.position += out.length;
      this.off = this.buf.length;
      yield out;
    }
  }

  /** Puts bytes back in front (used by parsers that read a little too far). */
  unshift(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.buf = Buffer.concat([bytes, this.buf.subarray(this.off)]);
    this.off = 0;
    this.position -= bytes.length;
  }
}
