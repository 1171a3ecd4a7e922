// as2-reference.md §18 test vectors: E-2 MIC, E-6 DNO parsing, E-7 AS2-name round trips; plus
// the disposition (D3/E-4), MIC-name (§7 table, M5) and Message-ID (I2/I3) rules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  openMessage, encryptStream, collect, fromBytes, formatAs2Name, parseAs2Name, parseDispositionOptions, chooseMicAlgorithm,
  wantsSignedReceipt, normalizeMicAlgorithm, micAlgorithmName, parseDisposition, classifyDisposition, formatDisposition,
  parseReceivedContentMic, normalizeMessageId, createDetachedSignature, DIGESTS, type DigestAlgorithm,
} from "../../src/core/index.js";
import { createHash } from "node:crypto";
import { opensslIdentity, tempDir } from "../helpers/tools.js";

const PART1 = Buffer.from("Content-Type: application/edifact\r\nContent-Disposition: attachment; filename=order.edi\r\n\r\nUNB+UNOA:2+SENDER+RECEIVER+240101:1200+1'UNZ+0+1'", "latin1");
const BODY = Buffer.from("UNB+UNOA:2+SENDER+RECEIVER+240101:1200+1'UNZ+0+1'", "latin1");

test("E-2: the vector bytes are what the reference says (139 and 49 bytes)", () => {
  assert.equal(PART1.length, 139);
  assert.equal(BODY.length, 49);
});

test("E-2: MIC of a signed message = digest of part 1 with headers, delimiter CRLF excluded", async () => {
  const dir = tempDir();
  const id = opensslIdentity("e2-signer", dir);
  for (const [alg, expected] of [["sha1", "qtLu+7p5zYPBYwXBKyjR8bCPcvk="], ["sha256", "h8rMEmPHVzuMDdvOoQWbhxDGFcMeBquQEQPk51xyp9o="]] as const) {
    const sig = createDetachedSignature(createHash(alg).update(PART1).digest(), { digest: alg, key: id.key, certificate: id.certificate, signingTime: null });
    const boundary = "b-e2";
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\n`), PART1,
      Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n${sig.toString("base64")}\r\n--${boundary}--\r\n`),
    ]);
    const opened = await openMessage({
      headers: { "content-type": `multipart/signed; protocol="application/pkcs7-signature"; micalg=${micAlgorithmName(alg)}; boundary=${boundary}` },
      body: fromBytes(body, 7), decryptionKeys: [], signerCertificates: [id.certificate], onPayload: async (_i, b) => { await collect(b, 1e6); },
    });
    assert.equal(opened.mic.base64, expected, alg);
    assert.equal(opened.mic.algorithm, alg);
    assert.equal(opened.signature?.matchedVariant, "raw");
  }
});

test("E-2: including the delimiter CRLF gives the wrong (famous) value, which we do not produce", () => {
  const wrong = createHash("sha256").update(Buffer.concat([PART1, Buffer.from("\r\n")])).digest("base64");
  assert.equal(wrong, "cjBHgRrN78nyhf3JlxrDFC4ABxBJB/bva8d9In9YB9w=");
  assert.notEqual(wrong, "h8rMEmPHVzuMDdvOoQWbhxDGFcMeBquQEQPk51xyp9o=");
});

test("E-2: MIC of an unsigned, unencrypted message = digest of the body only", async () => {
  for (const [alg, expected] of [["sha1", "U+w4O+REToDu2026VPLK8K9Pz0s="], ["sha256", "o2Ub4SWrUU+SrQ7GS6FkOPh/HWWaBNLiURLo7VQYwRY="]] as const) {
    const opened = await openMessage({
      headers: { "Content-Type": "application/edifact", "Content-Disposition": "attachment; filename=order.edi" },
      body: fromBytes(BODY, 5), decryptionKeys: [], signerCertificates: [], micAlgorithm: alg, onPayload: async (_i, b) => { await collect(b, 1e6); },
    });
    assert.equal(opened.mic.base64, expected, alg);
    assert.equal(opened.payload.filename, "order.edi");
  }
});

test("E-2 / §7: MIC of an encrypted, unsigned message = digest of the decrypted entity with headers", async () => {
  const dir = tempDir();
  const id = opensslIdentity("e2-recipient", dir);
  const wire = await collect(encryptStream(fromBytes(PART1), { cipher: "aes128-cbc", recipients: [{ certificate: id.certificate }] }), 1e6);
  const opened = await openMessage({
    headers: { "content-type": "application/pkcs7-mime; smime-type=enveloped-data" }, body: fromBytes(wire, 100),
    decryptionKeys: [{ key: id.key, certificate: id.certificate }], signerCertificates: [], micAlgorithm: "sha256",
    onPayload: async (_i, b) => assert.deepEqual(await collect(b, 1e6), BODY),
  });
  assert.equal(opened.mic.base64, "h8rMEmPHVzuMDdvOoQWbhxDGFcMeBquQEQPk51xyp9o=");
});

test("E-6: Disposition-Notification-Options parsing cases", () => {
  const a = parseDispositionOptions("signed-receipt-protocol=optional,pkcs7-signature;signed-receipt-micalg=optional,sha1,md5");
  assert.equal(a.protocol, "pkcs7-signature");
  assert.equal(a.micImportance, "optional");
  assert.deepEqual(a.micAlgorithms.map(normalizeMicAlgorithm), ["sha1", "md5"]);
  assert.equal(chooseMicAlgorithm(a)?.algorithm, "sha1"); // R3: the first supported, not the last
  assert.equal(chooseMicAlgorithm(a)?.token, "sha1");

  const b = parseDispositionOptions("signed-receipt-protocol=required, pkcs7-signature;\tsigned-receipt-micalg=required, SHA256");
  assert.equal(b.protocolImportance, "required");
  assert.equal(b.micImportance, "required");
  assert.deepEqual(b.micAlgorithms.map(normalizeMicAlgorithm), ["sha256"]);
  assert.equal(chooseMicAlgorithm(b)?.token, "SHA256"); // echoed as the partner spelled it

  const c = parseDispositionOptions("Signed-Receipt-Protocol = Optional, pkcs7-signature; signed-receipt-micalg = optional, sha-256");
  assert.equal(c.protocol, "pkcs7-signature");
  assert.equal(chooseMicAlgorithm(c)?.algorithm, "sha256");
  assert.ok(wantsSignedReceipt(c));

  const d = parseDispositionOptions("signed-receipt-protocol=optional, pkcs7-signature");
  assert.deepEqual(d.micAlgorithms, []);
  assert.equal(wantsSignedReceipt(d), false); // R2: both parameters are required for a signed receipt
  assert.equal(chooseMicAlgorithm(d), undefined);

  const e = parseDispositionOptions('signed-receipt-protocol=optional, "pkcs7-signature"; signed-receipt-micalg=optional, whirlpool, sha-512;;');
  assert.equal(chooseMicAlgorithm(e)?.algorithm, "sha512");
  assert.equal(parseDispositionOptions(undefined).micAlgorithms.length, 0);
});

test("E-7: AS2-name round trips", () => {
  const cases: Array<[string, string]> = [
    ["ACME", "ACME"],
    ["AS2 Test", '"AS2 Test"'],
    ['" as2Name "', '"\\" as2Name \\""'],
    ["a\\b", '"a\\\\b"'],
    ["company [ test ]", '"company [ test ]"'],
  ];
  for (const [id, wire] of cases) {
    assert.equal(formatAs2Name(id), wire, id);
    assert.equal(parseAs2Name(wire), id, wire);
  }
  // N3: Mendelson escapes without quotes; N4: odd characters are allowed.
  assert.equal(parseAs2Name('a\\"b'), 'a"b');
  assert.equal(formatAs2Name("ID;"), "ID;");
  assert.throws(() => formatAs2Name(""), /1-128 printable ASCII/);
  assert.throws(() => formatAs2Name("x".repeat(129)), /1-128 printable ASCII/);
  assert.throws(() => formatAs2Name("tab\there"), /1-128 printable ASCII/);
});

test("§7: MIC algorithm names are normalised and emitted in RFC 5751 style (sha1 without hyphen)", () => {
  const table: Array<[string, DigestAlgorithm | undefined]> = [
    ["md5", "md5"], ["rsa-md5", "md5"], ["sha-1", "sha1"], ["sha1", "sha1"], ["SHA1", "sha1"], ["rsa-sha1", "sha1"], ["sha", "sha1"],
    ["sha-224", "sha224"], ["sha224", "sha224"], ["sha2_224", "sha224"], ["sha-256", "sha256"], ["sha256", "sha256"], ["sha2_256", "sha256"],
    ["sha-384", "sha384"], ["sha2_384", "sha384"], ["sha-512", "sha512"], ["SHA512", "sha512"], ["whirlpool", undefined], ["", undefined],
  ];
  for (const [name, alg] of table) assert.equal(normalizeMicAlgorithm(name), alg, name);
  assert.equal(micAlgorithmName("sha256"), "sha-256");
  assert.equal(micAlgorithmName("sha256", "rfc3851"), "sha256");
  assert.equal(micAlgorithmName("sha1"), "sha1");
  for (const d of Object.keys(DIGESTS) as DigestAlgorithm[]) assert.equal(normalizeMicAlgorithm(micAlgorithmName(d)), d);
});

test("M5: Received-Content-MIC is read leniently and compared as bytes", () => {
  for (const v of ["h8rMEmPHVzuMDdvOoQWbhxDGFcMeBquQEQPk51xyp9o=, sha-256", "h8rMEmPHVzuMDdvOoQWbhxDGFcMeBquQEQPk51xyp9o=,sha256", "  h8rMEmPHVzuMDdvOoQWbhxDGFcMeBquQEQPk51xyp9o= ,  SHA-256 "]) {
    const m = parseReceivedContentMic(v)!;
    assert.equal(m.algorithm, "sha256", v);
    assert.equal(m.digest.toString("base64"), "h8rMEmPHVzuMDdvOoQWbhxDGFcMeBquQEQPk51xyp9o=");
  }
  assert.equal(parseReceivedContentMic("no-comma-here"), undefined);
});

test("D3/E-4: dispositions in every spelling are classified (D4)", () => {
  const cases: Array<[string, string, string | undefined, string | undefined, string]> = [
    ["automatic-action/MDN-sent-automatically; processed", "processed", undefined, undefined, "ok"],
    ["Automatic-action/mdn-sent-automatically;processed", "processed", undefined, undefined, "ok"],
    ["automatic-action/MDN-sent-automatically ; processed (all fine)", "processed", undefined, undefined, "ok"],
    ["automatic-action/MDN-sent-automatically; processed/error: decryption-failed", "processed", "error", "decryption-failed", "negative"],
    ["automatic-action/MDN-sent-automatically; processed/error: authentication-failed", "processed", "error", "authentication-failed", "negative"],
    ["automatic-action/MDN-sent-automatically; processed/error", "processed", "error", undefined, "negative"],
    ["automatic-action/MDN-sent-automatically; processed/warning: duplicate-document", "processed", "warning", "duplicate-document", "warning"],
    ["automatic-action/MDN-sent-automatically; failed/Failure: unsupported MIC-algorithms", "failed", "failure", "unsupported MIC-algorithms", "negative"],
    ["automatic-action/MDN-sent-automatically; processed/error: decompresion-failed", "processed", "error", "decompresion-failed", "negative"],
  ];
  for (const [raw, type, modifier, description, cls] of cases) {
    const d = parseDisposition(raw)!;
    assert.equal(d.type, type, raw);
    assert.equal(d.modifier, modifier, raw);
    assert.equal(d.description, description, raw);
    assert.equal(classifyDisposition(d), cls, raw);
  }
  assert.equal(parseDisposition("garbage"), undefined);
  assert.equal(classifyDisposition(undefined), "negative");
  assert.equal(formatDisposition({ type: "processed", modifier: "error", description: "decryption-failed" }), "automatic-action/MDN-sent-automatically; processed/error: decryption-failed");
  assert.equal(formatDisposition({ type: "failed", modifier: "failure", description: "unsupported MIC-algorithms" }), "automatic-action/MDN-sent-automatically; failed/Failure: unsupported MIC-algorithms");
});

test("I2/I3: Message-IDs are compared without brackets and white space", () => {
  assert.equal(normalizeMessageId("<abc@host>"), "abc@host");
  assert.equal(normalizeMessageId("  < abc@host >  "), "abc@host");
  assert.equal(normalizeMessageId("no-brackets"), "no-brackets");
});
