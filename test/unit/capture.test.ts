// Saved HTTP messages (src/core/mime/capture.ts), as `as2 mdn-verify` and `--original` read them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dechunk, readCapturedEntity, readHeaderFile } from "../../src/core/index.js";

const CRLF = "\r\n";

test("a response after a 100 Continue; Content-Length cuts what follows it and says so", () => {
  const file = Buffer.from(`HTTP/1.1 100 Continue${CRLF}${CRLF}HTTP/1.1 200 OK${CRLF}Content-Type: text/plain${CRLF}Content-Length: 5${CRLF}${CRLF}hello, and more`);
  const c = readCapturedEntity(file);
  assert.equal(c.startLine, "HTTP/1.1 200 OK");
  assert.equal(c.headers.get("content-type"), "text/plain");
  assert.equal(c.body.toString(), "hello");
  assert.deepEqual(c.notes, ['skipped the interim response "HTTP/1.1 100 Continue"', "10 byte(s) after the Content-Length of 5 were ignored"]);
});

test("a request line (as2 send --dry-run --out), bare LF line ends, a MIME entity, a body alone", () => {
  const req = readCapturedEntity(Buffer.from("POST /as2 HTTP/1.1\nHost: x\nContent-Type: a/b\n\nbody"));
  assert.equal(req.startLine, "POST /as2 HTTP/1.1");
  assert.equal(req.body.toString(), "body");
  const mime = readCapturedEntity(Buffer.from(`Content-Type: a/b${CRLF}${CRLF}x`));
  assert.equal(mime.startLine, undefined);
  assert.equal(mime.hadHeaders, true);
  const bare = readCapturedEntity(Buffer.from("UNB+UNOA:2+MYCO+ACME'"));
  assert.equal(bare.hadHeaders, false, "an EDIFACT segment is not a header");
  assert.equal(bare.body.toString(), "UNB+UNOA:2+MYCO+ACME'");
});

test("chunked bodies: extensions and trailing spaces tolerated; a body that is not chunked after all is kept as it is, with a note", () => {
  assert.equal(dechunk(Buffer.from(`3;ext=1 ${CRLF}abc${CRLF}2\nde\n0${CRLF}${CRLF}`))?.toString(), "abcde");
  assert.equal(dechunk(Buffer.from("not chunked")), undefined);
  assert.equal(dechunk(Buffer.from(`5${CRLF}abc`)), undefined, "shorter than its size");
  const c = readCapturedEntity(Buffer.from(`HTTP/1.1 200 OK${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}--already decoded`));
  assert.equal(c.body.toString(), "--already decoded");
  assert.match(c.notes[0]!, /not in chunks/);
});

test("header files: the last block of several, quoted values unwrapped, an empty file refused", () => {
  const h = readHeaderFile(Buffer.from(`HTTP/1.1 302 Found${CRLF}Location: /b${CRLF}${CRLF}HTTP/1.1 200 OK${CRLF}Content-Type: "multipart/signed; boundary=\\"x\\""${CRLF}${CRLF}`));
  assert.equal(h.startLine, "HTTP/1.1 200 OK");
  assert.equal(h.headers.get("content-type"), 'multipart/signed; boundary="x"');
  assert.equal(h.headers.get("location"), undefined);
  assert.equal(h.notes.length, 2);
  assert.throws(() => readHeaderFile(Buffer.from("\n\n")), /the header file is empty/);
});
