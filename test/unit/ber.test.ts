// Streaming BER reader and writer: definite/indefinite lengths, constructed OCTET STRINGs, limits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { BerReader, der, tlv, encodeLength, encodeOid, decodeOid, constructedOctetString, collect, fromBytes, As2Error, ErrorCodes } from "../../src/core/index.js";
import { chunks } from "../helpers/tools.js";

async function octets(bytes: Buffer, chunkSize: number): Promise<Buffer> {
  const r = new BerReader(chunks(bytes, chunkSize));
  const h = await r.readHeader();
  return collect(r.octetStringContent(h, "test"), 1e9);
}

test("lengths and OIDs encode as X.690 says", () => {
  assert.deepEqual(encodeLength(0x7f), Buffer.from([0x7f]));
  assert.deepEqual(encodeLength(0x80), Buffer.from([0x81, 0x80]));
  assert.deepEqual(encodeLength(0x1234), Buffer.from([0x82, 0x12, 0x34]));
  assert.deepEqual(encodeOid("1.2.840.113549.1.7.3"), Buffer.from("2a864886f70d010703", "hex"));
  for (const oid of ["1.2.840.113549.1.9.16.1.23", "2.16.840.1.101.3.4.1.42", "2.999.1", "1.3.14.3.2.26"]) assert.equal(decodeOid(encodeOid(oid)), oid);
  assert.deepEqual(der.int(128), Buffer.from([0x02, 0x02, 0x00, 0x80]));
  assert.deepEqual(der.int(Buffer.from([0x00, 0x00, 0x7f])), Buffer.from([0x02, 0x01, 0x7f]));
  // DER SET OF sorts by encoding
  assert.deepEqual(der.setOf(Buffer.from([0x04, 0x01, 0x02]), Buffer.from([0x02, 0x01, 0x01])), Buffer.from([0x31, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x02]));
});

test("OCTET STRING content is read the same whatever the encoding and chunking", async () => {
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i & 0xff));
  const primitive = tlv(0x04, data);
  const constructedDefinite = tlv(0x24, [tlv(0x04, data.subarray(0, 1000)), tlv(0x24, [tlv(0x04, data.subarray(1000, 1500)), tlv(0x04, data.subarray(1500, 2000))]), tlv(0x04, data.subarray(2000))]);
  const indefinite = await collect(constructedOctetString(0x04, fromBytes(data, 700), 256), 1e6);
  for (const enc of [primitive, constructedDefinite, indefinite]) {
    for (const size of [1, 3, 64, 100000]) assert.deepEqual(await octets(enc, size), data);
  }
});

test("readRawElement keeps nested indefinite lengths byte for byte", async () => {
  const inner = Buffer.concat([Buffer.from([0x30, 0x80]), der.oid("1.2.3"), Buffer.from([0x31, 0x80]), der.int(5), Buffer.from([0, 0, 0, 0])]);
  const r = new BerReader(chunks(Buffer.concat([inner, der.null()]), 2));
  assert.deepEqual(await r.readRawElement("x"), inner);
  const h = await r.readHeader();
  assert.equal(h.tagNumber, 5);
});

async function expectCode(bytes: Buffer, code: string, limits = {}): Promise<void> {
  const r = new BerReader(chunks(bytes, 5), limits);
  await assert.rejects(async () => {
    const h = await r.readHeader();
    if (h.constructed && h.tagNumber === 4) await collect(r.octetStringContent(h, "t"), 1e9);
    else await r.readRawElement("t", h);
  }, (e: unknown) => e instanceof As2Error && e.code === code);
}

test("malformed, truncated and hostile input fail with typed errors", async () => {
  await expectCode(Buffer.from([0x04, 0x05, 1, 2]), ErrorCodes.TRUNCATED); // content cut short
  await expectCode(Buffer.from([0x04]), ErrorCodes.TRUNCATED); // header cut short
  await expectCode(Buffer.from([0x04, 0x80, 0, 0]), ErrorCodes.MALFORMED_BER); // indefinite primitive
  await expectCode(Buffer.from([0x04, 0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1]), ErrorCodes.MALFORMED_BER); // 9-octet length
  await expectCode(Buffer.from([0x24, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00]), ErrorCodes.MALFORMED_BER); // INTEGER inside OCTET STRING
  await expectCode(Buffer.from([0x24, 0x80, 0x04, 0x01, 0x41]), ErrorCodes.TRUNCATED); // no EOC
  // 10,000 nested indefinite SEQUENCEs: the depth limit stops the recursion
  const deep = Buffer.concat([Buffer.alloc(20000, 0).map((_, i) => (i % 2 === 0 ? 0x30 : 0x80))]);
  await expectCode(deep, ErrorCodes.LIMIT_EXCEEDED);
  await expectCode(tlv(0x30, Buffer.alloc(2000)), ErrorCodes.LIMIT_EXCEEDED, { maxElementBytes: 1000 });
  assert.throws(() => new BerReader(fromBytes(Buffer.alloc(1)), { maxDepth: 0 }), /positive number/);
  assert.throws(() => new BerReader(fromBytes(Buffer.alloc(1)), { maxElementBytes: Number.NaN }), /positive number/);
});
