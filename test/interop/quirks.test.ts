/**
 * Interop quirks of the products partners run (issue 13), each reproduced byte for byte with
 * openssl (no third-party captures): the message is built by hand and `openssl cms`, then opened
 * by the library. Item numbers are issue 13's.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { createSelfSignedCertificate, fromBytes, openMessage, type Certificate } from "../../src/core/index.js";
import { openssl, opensslIdentity, tempDir, type TestIdentity } from "../helpers/tools.js";

const dir = tempDir("as2kit-quirks-");
let partner: TestIdentity;
let us: TestIdentity;

before(() => {
  partner = opensslIdentity("partner", dir);
  us = opensslIdentity("us", dir);
});

/** A detached openssl signature (DER) over exactly `signed`, assembled as multipart/signed around `sent` as part 1. */
function multipartSigned(signed: Buffer, sent: Buffer, md = "sha256"): { contentType: string; body: Buffer } {
  const inFile = join(dir, `in-${md}-${signed.length}.bin`);
  const sigFile = `${inFile}.sig`;
  writeFileSync(inFile, signed);
  openssl(["cms", "-sign", "-binary", "-md", md, "-in", inFile, "-signer", partner.certFile, "-inkey", partner.keyFile, "-outform", "DER", "-out", sigFile]);
  const boundary = "----=_quirk_boundary";
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\n`), sent, Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: binary\r\n\r\n`),
    readFileSync(sigFile), Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { contentType: `multipart/signed; protocol="application/pkcs7-signature"; micalg=${md === "sha1" ? "sha1" : "sha-256"}; boundary="${boundary}"`, body };
}

async function open(contentType: string, body: Buffer, signers: Certificate[]): Promise<{ payload: Buffer; result: Awaited<ReturnType<typeof openMessage>> }> {
  let payload = Buffer.alloc(0);
  const result = await openMessage({
    headers: { "content-type": contentType }, body: fromBytes(body), decryptionKeys: [{ key: us.key, certificate: us.certificate }], signerCertificates: signers,
    onPayload: async (_i, b) => { for await (const c of b) payload = Buffer.concat([payload, c]); },
  });
  return { payload, result };
}

test("3: MIME header lines that lost their CR while the payload's LF line ends are original verify with the 'headers-crlf' variant, reported as such", async () => {
  const content = Buffer.from("ISA*00*          *00*\nGS*PO*A*B\nST*850*0001\n".repeat(50));
  const headersCrlf = Buffer.from('Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename="lf.x12"\r\n\r\n');
  const signedForm = Buffer.concat([headersCrlf, content]);
  const receivedForm = Buffer.concat([Buffer.from(headersCrlf.toString("latin1").replace(/\r\n/g, "\n")), content]);
  const m = multipartSigned(signedForm, receivedForm);
  const { payload, result } = await open(m.contentType, m.body, [partner.certificate]);
  assert.ok(result.signed);
  assert.equal(result.signature?.matchedVariant, "headers-crlf");
  assert.ok(result.warnings.some((w) => /headers-crlf/.test(w)), result.warnings.join("; "));
  assert.ok(payload.equals(content), "the payload is the original bytes");
  // The MIC is over part 1 as it was signed (headers CRLF, body untouched).
  const micFile = join(dir, "mic-in.bin");
  writeFileSync(micFile, signedForm);
  assert.equal(result.mic.base64, openssl(["dgst", "-sha256", "-binary", micFile]).toString("base64"));
  // Variants are tried in the order raw, canonical-crlf, headers-crlf: matching the last means
  // neither the received bytes nor their whole-part canonical form were what was signed.
});

test("5: a signer certificate that expired in 2020 (judged at the signing time): a warning by default, authentication-failed when enforced", async () => {
  const old = await createSelfSignedCertificate({ commonName: "expired partner", notBefore: new Date("2019-01-01T00:00:00Z"), notAfter: new Date("2020-06-30T00:00:00Z") });
  writeFileSync(join(dir, "expired.key"), old.keyPem);
  writeFileSync(join(dir, "expired.crt"), old.certificatePem);
  const entity = Buffer.from('Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename="old.x12"\r\n\r\nISA*00*~\r\n');
  writeFileSync(join(dir, "expired-in.bin"), entity);
  openssl(["cms", "-sign", "-binary", "-md", "sha256", "-in", join(dir, "expired-in.bin"), "-signer", join(dir, "expired.crt"), "-inkey", join(dir, "expired.key"), "-outform", "DER", "-out", join(dir, "expired.sig")]);
  const boundary = "----=_expired";
  const body = Buffer.concat([Buffer.from(`--${boundary}\r\n`), entity, Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: binary\r\n\r\n`), readFileSync(join(dir, "expired.sig")), Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const contentType = `multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="${boundary}"`;
  const run = (enforce: boolean) => openMessage({
    headers: { "content-type": contentType }, body: fromBytes(body), decryptionKeys: [], signerCertificates: [old.certificate],
    signerValidity: { now: new Date(), enforce }, onPayload: async (_i, b) => { for await (const _ of b) { /* drain */ } },
  });
  const warned = await run(false);
  assert.ok(warned.warnings.some((w) => /expired on 2020-06-30.*checked at the signing time/.test(w)), warned.warnings.join("; "));
  await assert.rejects(run(true), (e: { code?: string; disposition?: string }) => e.code === "AS2_ERR_SIGNER_UNKNOWN" && e.disposition === "authentication-failed");
});

test("7: RC2 parameters without rc2ParameterVersion and a 128-bit key (pyas2lib): decryption-failed by RFC 2268's 32 bits; opened with quirks.rc2WithoutVersion \"key-length\"", async () => {
  const entity = Buffer.from("Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=\"rc2.x12\"\r\n\r\nISA*00*rc2 payload~\r\n");
  writeFileSync(join(dir, "rc2-in.bin"), entity);
  // -stream: indefinite lengths around the AlgorithmIdentifier, so it can shrink in place.
  openssl(["cms", "-encrypt", "-provider", "legacy", "-provider", "default", "-binary", "-rc2-128", "-stream", "-outform", "DER", "-in", join(dir, "rc2-in.bin"), "-out", join(dir, "rc2.der"), us.certFile]);
  const der = readFileSync(join(dir, "rc2.der"));
  const rc2Oid = Buffer.from("06082a864886f70d0302", "hex");
  const at = der.indexOf(rc2Oid);
  assert.ok(at > 2 && der[at - 2] === 0x30 && der.subarray(at + rc2Oid.length, at + rc2Oid.length + 5).equals(Buffer.from("300d02013a", "hex")), "openssl wrote SEQUENCE { OID rc2-cbc, SEQUENCE { INTEGER 58, iv } }");
  // Drop the version: SEQUENCE { iv } inside an AlgorithmIdentifier 3 bytes shorter.
  const patched = Buffer.concat([der.subarray(0, at - 1), Buffer.from([der[at - 1]! - 3]), rc2Oid, Buffer.from("300a", "hex"), der.subarray(at + rc2Oid.length + 5)]);
  const contentType = "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m";
  const run = (quirk: "rfc2268" | "key-length") => {
    let payload = Buffer.alloc(0);
    return openMessage({
      headers: { "content-type": contentType }, body: fromBytes(patched), decryptionKeys: [{ key: us.key, certificate: us.certificate }], signerCertificates: [], rc2WithoutVersion: quirk,
      onPayload: async (_i, b) => { for await (const c of b) payload = Buffer.concat([payload, c]); },
    }).then((r) => ({ r, payload }));
  };
  await assert.rejects(run("rfc2268"), (e: { disposition?: string }) => e.disposition === "decryption-failed");
  const { r, payload } = await run("key-length");
  assert.equal(r.encryption?.cipher, "rc2-128");
  assert.equal(payload.toString(), "ISA*00*rc2 payload~\r\n");
});

test("7: \"Content-Disposition: attachment\" without a file name (OpenAS2): the Content-Type's name is taken", async () => {
  const entity = Buffer.from("Content-Type: application/edi-x12; name=\"from-type.x12\"\r\nContent-Disposition: attachment\r\n\r\nISA*00*named~\r\n");
  const m = multipartSigned(entity, entity);
  let name: string | undefined;
  await openMessage({
    headers: { "content-type": m.contentType }, body: fromBytes(m.body), decryptionKeys: [], signerCertificates: [partner.certificate],
    onPayload: async (info, b) => { name = info.filename; for await (const _ of b) { /* drain */ } },
  });
  assert.equal(name, "from-type.x12");
});
