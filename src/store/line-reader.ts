/**
 * Reading a line file in pieces: a fixed-size buffer at a time, never the whole file as one
 * string (V8 caps a string at about 512 MiB: the old single-file job index failed with "Invalid
 * string length" at 3.7 million lines). Lines split across two reads are joined; a multi-byte
 * UTF-8 character split across two reads is joined too (the split is on the byte 0x0a, which
 * never occurs inside a UTF-8 sequence). A "\r" before the "\n" is dropped (a file edited on
 * Windows). The last line is yielded even without its "\n": it may be a torn line from a crash,
 * and the caller's parser decides.
 *
 * Synchronous on purpose: the index files are local, each read is one syscall on a 1 MiB
 * buffer, and going through the thread pool for each would cost more than the read.
 */
import { closeSync, openSync, readSync } from "node:fs";

export const DEFAULT_CHUNK_BYTES = 1 << 20;

/**
 * The lines of the file from byte `start` (0: the whole file) up to its end as it was when read
 * (a writer appending meanwhile may add a last line that is read only partly: it is then yielded
 * as a torn line). `chunkBytes` is the read size (tests use tiny ones to hit every boundary).
 */
export function* readLines(path: string, start = 0, chunkBytes = DEFAULT_CHUNK_BYTES): Generator<string> {
  const fd = openSync(path, "r");
  try {
    yield* linesOfFd(fd, start, Infinity, chunkBytes);
  } finally {
    closeSync(fd);
  }
}

/** The lines of an open file between bytes `start` and `end` (Infinity: to its end). */
export function* linesOfFd(fd: number, start = 0, end = Infinity, chunkBytes = DEFAULT_CHUNK_BYTES): Generator<string> {
  const buf = Buffer.allocUnsafe(chunkBytes);
  /** Bytes of a line begun in an earlier chunk (a line longer than a chunk spans several). */
  let carry: Buffer[] = [];
  let pos = start;
  for (;;) {
    const n = readSync(fd, buf, 0, Math.min(chunkBytes, end - pos), pos);
    if (n === 0) break;
    pos += n;
    let from = 0;
    for (let nl = buf.indexOf(0x0a, 0); nl !== -1 && nl < n; nl = buf.indexOf(0x0a, from)) {
      const piece = buf.subarray(from, nl);
      yield text(carry.length ? Buffer.concat([...carry, piece]) : piece);
      carry = [];
      from = nl + 1;
    }
    // The rest of this chunk begins a line that continues in the next one: copy it (buf is reused).
    if (from < n) carry.push(Buffer.from(buf.subarray(from, n)));
  }
  if (carry.length) yield text(Buffer.concat(carry));
}

function text(line: Buffer): string {
  const end = line.length && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
  return line.toString("utf8", 0, end);
}
