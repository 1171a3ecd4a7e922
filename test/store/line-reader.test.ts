// The chunked line reader behind the job index (src/store/line-reader.ts): every chunk size from
// one byte up, so that lines, CRLF pairs and multi-byte characters are split at every position.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { readLines } from "../../src/store/line-reader.js";
import { tempDir } from "../helpers/tools.js";

const dir = tempDir();

function lines(content: string | Buffer, chunk: number, start = 0): string[] {
  const file = join(dir, `f-${chunk}-${Math.random()}`);
  writeFileSync(file, content);
  return [...readLines(file, start, chunk)];
}

test("lines split across chunks at every position come out whole, multi-byte characters included", () => {
  const content = '["a","bé"]\n["ccc","€uro 😀"]\n\n["d"]\n';
  const want = ['["a","bé"]', '["ccc","€uro 😀"]', "", '["d"]'];
  for (let chunk = 1; chunk <= Buffer.byteLength(content) + 2; chunk++) assert.deepEqual(lines(content, chunk), want, `chunk ${chunk}`);
});

test("CRLF line ends lose their \\r, also when the \\r and \\n are in different chunks", () => {
  const content = "one\r\ntwo\r\nthree\r\n";
  for (let chunk = 1; chunk <= 8; chunk++) assert.deepEqual(lines(content, chunk), ["one", "two", "three"], `chunk ${chunk}`);
});

test("a torn last line (no newline: a crash mid-append) is yielded as it is, for the parser to reject", () => {
  for (let chunk = 1; chunk <= 12; chunk++) assert.deepEqual(lines('["a"]\n["b","tor', chunk), ['["a"]', '["b","tor'], `chunk ${chunk}`);
});

test("garbage bytes and a line longer than many chunks", () => {
  const long = "x".repeat(10_000);
  const content = Buffer.concat([Buffer.from(`${long}\n`), Buffer.from([0xff, 0xfe, 0x00, 0x0a]), Buffer.from("ok\n")]);
  for (const chunk of [1, 7, 64, 4096, 1 << 20]) {
    const got = lines(content, chunk);
    assert.equal(got.length, 3);
    assert.equal(got[0], long);
    assert.equal(got[1]!.length, 3, "invalid UTF-8 is decoded to replacement characters, not thrown on");
    assert.equal(got[2], "ok");
  }
});

test("reading from an offset (the tail appended after a rewriter took its copy)", () => {
  const content = '["a"]\n["b"]\n["c"]\n';
  for (let chunk = 1; chunk <= 7; chunk++) assert.deepEqual(lines(content, chunk, 6), ['["b"]', '["c"]'], `chunk ${chunk}`);
  assert.deepEqual(lines("", 4), []);
});
