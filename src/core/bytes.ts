/** Byte helpers. Everything in the core is Uint8Array/Buffer; strings only for headers and text. */
import { Buffer } from "node:buffer";
import { As2Error, ErrorCodes } from "./errors.js";

export type Bytes = Uint8Array;

/** The one safe conversion of a view to a standalone ArrayBuffer (views may share a larger pool). */
export function toArrayBuffer(view: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(view.byteLength);
  new Uint8Array(out).set(view);
  return out;
}

export function asBuffer(view: Uint8Array): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

export function concat(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts as Uint8Array[]);
}

export function ascii(s: string): Buffer {
  return Buffer.from(s, "latin1");
}

/** Drains an async iterable into one Buffer, failing beyond maxBytes (0 is not "unlimited"). */
export async function collect(source: AsyncIterable<Uint8Array>, maxBytes: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `content exceeds the limit of ${maxBytes} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** An async iterable over fixed bytes, split into chunks (useful to feed parsers and for tests). */
export async function* fromBytes(data: Uint8Array, chunkSize = 64 * 1024): AsyncGenerator<Buffer> {
  const buf = asBuffer(data);
  if (buf.byteLength === 0) return;
  for (let i = 0; i < buf.byteLength; i += chunkSize) yield buf.subarray(i, Math.min(i + chunkSize, buf.byteLength));
}

/** Concatenates several byte sources (bytes or async iterables) in order, lazily. */
export async function* chain(...sources: Array<Uint8Array | AsyncIterable<Uint8Array> | (() => Uint8Array | AsyncIterable<Uint8Array>)>): AsyncGenerator<Uint8Array> {
  for (let s of sources) {
    if (typeof s === "function") s = s();
    if (s instanceof Uint8Array) {
      if (s.byteLength) yield s;
    } else {
      yield* s;
    }
  }
}

/**
 * Re-chunks a stream into pieces of at least `min` bytes (except the last), so per-chunk costs
 * (cipher calls, BER headers) stay small when upstream delivers tiny pieces.
 */
export async function* rechunk(source: AsyncIterable<Uint8Array>, min: number): AsyncGenerator<Buffer> {
  let pending: Uint8Array[] = [];
  let size = 0;
  for await (const c of source) {
    if (c.byteLength === 0) continue;
    pending.push(c);
    size += c.byteLength;
    if (size >= min) {
      yield pending.length === 1 ? asBuffer(pending[0]!) : Buffer.concat(pending);
      pending = [];
      size = 0;
    }
  }
  if (size) yield pending.length === 1 ? asBuffer(pending[0]!) : Buffer.concat(pending);
}
