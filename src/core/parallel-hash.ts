/**
 * Hashing on a second core. A signed message is hashed and enciphered in one pass, and on CPUs
 * without SHA extensions SHA-256 alone is about as slow as AES-CBC, so hashing on the main thread
 * caps throughput. An offloaded hash runs in its own worker thread. Bytes reach it in a fixed
 * pool of buffers that travel to the worker and back (transferred, never copied by postMessage
 * and never garbage): memory stays at POOL_BUFFERS x BUFFER_BYTES, and when the worker falls
 * behind the writer waits for a buffer to come back. (Shared memory was tried first: V8 copies
 * into SharedArrayBuffers several times slower than memcpy, which ate the gain.)
 * Use it for large payloads: starting a worker costs a few milliseconds.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { Worker } from "node:worker_threads";

export const BUFFER_BYTES = 1024 * 1024;
export const POOL_BUFFERS = 8;

export interface StreamHash {
  /** Feeds a chunk; when a promise is returned, wait for it before sending more. */
  update(chunk: Uint8Array): void | Promise<void>;
  digest(): Promise<Buffer>;
  /** Releases resources when the stream is abandoned before digest() (stops the worker). */
  dispose(): void;
}

/** The ordinary in-thread hash behind the same interface. */
export function inlineHash(alg: string): StreamHash {
  const h = crypto.createHash(alg);
  return { update: (c) => void h.update(c), digest: async () => h.digest(), dispose: () => undefined };
}

const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const h = require("node:crypto").createHash(workerData.alg);
parentPort.on("message", (m) => {
  if (m === "end") { parentPort.postMessage({ digest: h.digest() }); parentPort.close(); return; }
  h.update(new Uint8Array(m.buf, 0, m.n));
  parentPort.postMessage({ buf: m.buf }, [m.buf]);
});`;

/** A hash computed on its own worker thread. */
export function offloadedHash(alg: string): StreamHash {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { alg } });
  const free: ArrayBuffer[] = Array.from({ length: POOL_BUFFERS }, () => new ArrayBuffer(BUFFER_BYTES));
  let waiter: (() => void) | undefined;
  let failed: unknown;
  let resolveDigest!: (d: Buffer) => void;
  let rejectDigest!: (e: unknown) => void;
  const result = new Promise<Buffer>((res, rej) => { resolveDigest = res; rejectDigest = rej; });
  result.catch(() => undefined); // reported through update()/digest()
  const fail = (e: unknown) => {
    failed ??= e;
    rejectDigest(failed);
    waiter?.();
  };
  worker.on("message", (m: { buf?: ArrayBuffer; digest?: Uint8Array }) => {
    if (m.buf) {
      free.push(m.buf);
      const wake = waiter;
      waiter = undefined;
      wake?.();
    } else if (m.digest) {
      resolveDigest(Buffer.from(m.digest));
    }
  });
  worker.once("error", fail);
  worker.once("exit", (code) => { if (code !== 0 && failed === undefined) fail(new Error(`hash worker exited with code ${code}`)); });

  /** Sends what fits in free buffers; returns the offset reached. */
  const send = (chunk: Uint8Array, offset: number): number => {
    let off = offset;
    while (off < chunk.byteLength && free.length) {
      const buf = free.pop()!;
      const n = Math.min(BUFFER_BYTES, chunk.byteLength - off);
      new Uint8Array(buf, 0, n).set(chunk.subarray(off, off + n));
      worker.postMessage({ buf, n }, [buf]);
      off += n;
    }
    return off;
  };

  return {
    update(chunk) {
      if (failed) throw failed;
      const reached = send(chunk, 0);
      if (reached === chunk.byteLength) return;
      return (async () => {
        let off = reached;
        while (off < chunk.byteLength) {
          if (!free.length) await new Promise<void>((res) => (waiter = res));
          if (failed) throw failed;
          off = send(chunk, off);
        }
      })();
    },
    digest() {
      if (failed) return Promise.reject(failed);
      worker.postMessage("end");
      return result;
    },
    dispose() {
      // An abandoned stream must not leave a worker keeping the process alive.
      fail(new Error("the hash was abandoned"));
      void worker.terminate();
    },
  };
}

/** Hashes a stream as it passes, waiting when the hash falls behind. */
export async function* tapHash(source: AsyncIterable<Uint8Array>, hash: StreamHash): AsyncGenerator<Uint8Array> {
  for await (const c of source) {
    const wait = hash.update(c);
    if (wait) await wait;
    yield c;
  }
}
