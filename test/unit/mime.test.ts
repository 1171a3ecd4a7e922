// MIME: lenient header parsing, byte-exact multipart splitting (C1, C6, T5), CTE decoding.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  parseHeaderBlock, parseContentType, formatParameterized, formatHeaderBlock, splitMultipart, MultipartStream, parseEntityBytes,
  readEntityHead, ByteReader, decodeBase64Stream, decodeQuotedPrintableStream, encodeBase64Lines, collect, As2Error, ErrorCodes,
} from "../../src/core/index.js";
import { chunks } from "../helpers/tools.js";

test("headers: folded, bare LF, any case; parameters quoted and escaped", () => {
  const h = parseHeaderBlock('content-TYPE: multipart/signed;\r\n\tprotocol="application/pkcs7-signature";\n micalg=sha256; boundary="a;b\\"c"\r\nAS2-From: "AS2 Test"');
  const ct = parseContentType(h.get("Content-Type"));
  assert.equal(ct.mediaType, "multipart/signed");
  assert.equal(ct.params.protocol, "application/pkcs7-signature");
  assert.equal(ct.params.micalg, "sha256");
  assert.equal(ct.params.boundary, 'a;b"c');
  assert.equal(h.get("as2-from"), '"AS2 Test"');
  assert.equal(parseContentType(undefined).mediaType, "text/plain");
  assert.equal(parseContentType("Application/EDIFACT ; Name = x.edi ;").params.name, "x.edi");
  assert.throws(() => parseHeaderBlock("no colon here"), (e: unknown) => e instanceof As2Error && e.code === ErrorCodes.MALFORMED_MIME);
});

test("formatting never folds and quotes only when needed (T7, S8)", () => {
  assert.equal(formatParameterized("attachment", { filename: "order.edi" }), "attachment; filename=order.edi");
  assert.equal(formatParameterized("attachment", { filename: "my order.edi" }), 'attachment; filename="my order.edi"');
  assert.equal(formatParameterized("attachment", { filename: 'a"b' }), 'attachment; filename="a\\"b"');
  const long = formatHeaderBlock([{ name: "Content-Type", value: `x/y; a=${"z".repeat(300)}` }]);
  assert.equal(long.split("\r\n").length, 2);
  assert.throws(() => formatHeaderBlock([{ name: "X", value: "a\r\nInjected: 1" }]), /cannot be sent/);
});

const PART_A = "Content-Type: text/plain\r\n\r\nline one\r\nline two";
const PART_B = "Content-Type: application/octet-stream\r\n\r\n\r\n--bnd-not-a-delimiter\r\n\n--bndX\r\n";

function multipart(eol: string, preamble = "", epilogue = ""): Buffer {
  return Buffer.from(`${preamble}--bnd${eol}${PART_A}${eol}--bnd  ${eol}${PART_B}${eol}--bnd--${eol}${epilogue}`, "latin1");
}

test("multipart: parts are the exact bytes between delimiters, CRLF before the delimiter excluded", () => {
  for (const [eol, pre, epi] of [["\r\n", "", ""], ["\r\n", "preamble text\r\n", "epilogue"], ["\n", "", ""]]) {
    const parts = splitMultipart(multipart(eol!, pre, epi), "bnd");
    assert.equal(parts.length, 2);
    assert.equal(parts[0]!.raw.toString("latin1"), PART_A);
    assert.equal(parts[1]!.raw.toString("latin1"), PART_B);
  }
  assert.throws(() => splitMultipart(Buffer.from("--bnd\r\nabc\r\n"), "bnd"), /no closing boundary/);
  assert.throws(() => splitMultipart(Buffer.from("nothing"), "bnd"), /not found/);
});

test("multipart: the streaming splitter agrees with the in-memory one at every chunk size", async () => {
  const body = multipart("\r\n", "pre\r\n");
  for (const size of [1, 2, 3, 5, 8, 13, 64, 4096]) {
    const ms = new MultipartStream(chunks(body, size), "bnd");
    const got: string[] = [];
    for (let p = await ms.nextPart(); p; p = await ms.nextPart()) got.push((await collect(p, 1e6)).toString("latin1"));
    assert.deepEqual(got, [PART_A, PART_B], `chunk size ${size}`);
  }
  const truncated = new MultipartStream(chunks(Buffer.from("--bnd\r\nabc"), 3), "bnd");
  const p = await truncated.nextPart();
  await assert.rejects(collect(p!, 1e6), (e: unknown) => e instanceof As2Error && e.code === ErrorCodes.TRUNCATED);
});

test("entities: headers read from a stream, the rest left for the body; bare payloads (S6)", async () => {
  const e = Buffer.from("Content-Type: a/b\nX-Y: 1\n\nbody\r\n", "latin1");
  for (const size of [1, 7, 1000]) {
    const r = new ByteReader(chunks(e, size));
    const head = await readEntityHead(r);
    assert.equal(head.headers.get("x-y"), "1");
    assert.equal(head.rawHeader.toString(), "Content-Type: a/b\nX-Y: 1\n\n");
    assert.equal((await collect(r.rest(), 1e6)).toString(), "body\r\n");
  }
  const bare = await readEntityHead(new ByteReader(chunks(Buffer.from("UNB+UNOA:2+X'\r\n"), 4)));
  assert.equal(bare.hadHeaders, false);
  const inMemory = parseEntityBytes(Buffer.from("UNA:+.? 'UNB"));
  assert.equal(inMemory.hadHeaders, false);
  assert.equal(inMemory.body.toString(), "UNA:+.? 'UNB");
  const emptyHeaders = parseEntityBytes(Buffer.from("\r\nbody"));
  assert.equal(emptyHeaders.body.toString(), "body");
  await assert.rejects(readEntityHead(new ByteReader(chunks(Buffer.from("A: " + "x".repeat(70000)), 1000))), (e: unknown) => e instanceof As2Error && e.code === ErrorCodes.LIMIT_EXCEEDED);
});

test("base64 and quoted-printable decode across chunk borders; base64 lines are 76 chars with CRLF (C5)", async () => {
  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff));
  const b64 = Buffer.from(encodeBase64Lines(data));
  assert.ok(b64.toString().split("\r\n").every((l) => l.length <= 76));
  for (const size of [1, 3, 77, 5000]) assert.deepEqual(await collect(decodeBase64Stream(chunks(b64, size)), 1e6), data);
  const qp = Buffer.from("caf=C3=A9 =\r\nsoft break=3D=\nend =ZZ");
  for (const size of [1, 2, 4, 100]) assert.equal((await collect(decodeQuotedPrintableStream(chunks(qp, size)), 1e6)).toString("latin1"), "caf\xc3\xa9 soft break=end =ZZ");
});

test("regression: bare EDIFACT payloads are not mistaken for MIME headers (S6)", async () => {
  for (const edi of ["UNA:+.? 'UNB+UNOA:2+X+Y'", "UNB+UNOA:2+SENDER+RECEIVER'\r\n\r\nUNZ+0+1'", "ISA*00*          *00*"]) {
    assert.equal(parseEntityBytes(Buffer.from(edi)).hadHeaders, false, edi);
    assert.equal((await readEntityHead(new ByteReader(chunks(Buffer.from(edi), 3)))).hadHeaders, false, edi);
  }
  assert.equal(parseEntityBytes(Buffer.from("Content-Type: a/b\r\n\r\nx")).hadHeaders, true);
});

test("regression: a part starting with '--' that is not the boundary no longer loops forever", async () => {
  const body = Buffer.from("--bnd\r\n--other stuff\r\nmore\r\n--bnd--\r\n");
  assert.equal(splitMultipart(body, "bnd")[0]!.raw.toString(), "--other stuff\r\nmore");
  const wrongFirst = Buffer.from("--bnX\r\nabc\r\n--bnd\r\nx\r\n--bnd--\r\n");
  assert.equal(splitMultipart(wrongFirst, "bnd")[0]!.raw.toString(), "x");
  for (const size of [1, 4, 100]) {
    const ms = new MultipartStream(chunks(body, size), "bnd");
    assert.equal((await collect((await ms.nextPart())!, 1e6)).toString(), "--other stuff\r\nmore");
  }
});
