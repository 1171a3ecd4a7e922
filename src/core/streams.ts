/** Async-iterable plumbing: every payload stage is an AsyncIterable<Uint8Array> (architecture.md §2). */
import { Readable, type Transform } from "node:stream";
import { As2Error, ErrorCodes, type DispositionError } from "./errors.js";

/**
 * Runs a stream through a Node Transform (zlib) with backpressure. Errors on either side end the
 * iteration with that error; stopping early destroys both.
 */
export async function* viaTransform(source: AsyncIterable<Uint8Array>, transform: Transform): AsyncGenerator<Buffer> {
  const input = Readable.from(source, { objectMode: false });
  input.on("error", (e) => transform.destroy(e));
  input.pipe(transform);
  try {
    for await (const chunk of transform) yield chunk as Buffer;
  } finally {
    input.unpipe(transform);
    input.destroy();
    transform.destroy();
  }
}

/** Calls `onChunk` for every chunk as it passes. */
export async function* tap(source: AsyncIterable<Uint8Array>, onChunk: (c: Uint8Array) => void): AsyncGenerator<Uint8Array> {
  for await (const c of source) {
    onChunk(c);
    yield c;
  }
}

/** Fails once more than `max` bytes have passed (decompression bombs, oversized parts). */
export async function* limitSize(source: AsyncIterable<Uint8Array>, max: number, what: string, disposition?: DispositionError): AsyncGenerator<Uint8Array> {
  if (!Number.isFinite(max) || max <= 0) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `limit for ${what} must be a positive number, got ${max}`);
  let total = 0;
  for await (const c of source) {
    total += c.byteLength;
    if (total > max) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `${what} exceeds the limit of ${max} bytes`, { disposition });
    yield c;
  }
}

/** Consumes a stream, discarding it. */
export async function drain(source: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of source) n += c.byteLength;
  return n;
}
