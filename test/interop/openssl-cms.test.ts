// Interop with openssl cms, both directions (as2-reference.md K1-K16): every signing digest x every
// content cipher openssl offers here (rc2/cast5 through its legacy provider), RSA-OAEP and RSASSA-PSS.
// openssl has no IDEA in this build and no zlib (-compress), so IDEA is covered ours<->ours
// and CompressedData against Bouncy Castle (bouncycastle.test.ts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import {
  buildMessage, openMessage, collect, fromBytes, splitMultipart, parseEntityBytes, parseContentType, decodeTransfer,
  type ContentCipher, type DigestAlgorithm, type KeyEncryption, type SignatureScheme, micAlgorithmName,
} from "../../src/core/index.js";
import { LEGACY, openssl, opensslIdentity, tempDir, write, chunks } from "../helpers/tools.js";

const dir = tempDir();
const alice = opensslIdentity("alice", dir); // the sender
const bob = opensslIdentity("bob", dir); // the receiver
const PAYLOAD = Buffer.concat([Buffer.from("ISA*00*          *00*          *ZZ*ALICE*ZZ*BOB*\n"), randomBytes(20000), Buffer.from("\nlast line without CR\n")]);

const SIGN: DigestAlgorithm[] = ["sha1", "sha224", "sha256", "sha384", "sha512"];
// ours name -> openssl cipher flag
const CIPHERS: Array<[ContentCipher, string]> = [
  ["3des", "-des3"], ["aes128-cbc", "-aes128"], ["aes192-cbc", "-aes192"], ["aes256-cbc", "-aes256"],
  ["rc2-40", "-rc2-40"], ["rc2-64", "-rc2-64"], ["rc2-128", "-rc2-128"], ["cast5", "-cast5-cbc"],
  ["aes128-gcm", "-aes-128-gcm"], ["aes192-gcm", "-aes-192-gcm"], ["aes256-gcm", "-aes-256-gcm"],
];

/** openssl verifies a detached signature over exactly part 1 (stack-notes: -binary -inform DER -content). */
function opensslVerify(multipartEntity: Buffer, name: string): Buffer {
  const entity = parseEntityBytes(multipartEntity);
  const ct = parseContentType(entity.headers.get("content-type"));
  assert.equal(ct.mediaType, "multipart/signed");
  const [part1, part2] = splitMultipart(entity.body, ct.params.boundary!);
  const sig = parseEntityBytes(part2!.raw);
  const p1 = write(dir, `${name}.part1`, part1!.raw);
  const s = write(dir, `${name}.p7s`, decodeTransfer(sig.body, "base64"));
  openssl(["cms", "-verify", "-binary", "-inform", "DER", "-in", s, "-content", p1, "-CAfile", alice.certFile, "-purpose", "any", "-out", join(dir, `${name}.verified`)]);
  return part1!.raw;
}

describe("ours -> openssl", () => {
  for (const digest of SIGN) {
    for (const scheme of ["rsa", "rsassa-pss"] as SignatureScheme[]) {
      test(`signed ${digest} ${scheme}: openssl verifies it and the MIC is the digest of part 1`, async () => {
        const m = buildMessage({ from: "ALICE", to: "BOB", payload: PAYLOAD, contentType: "application/edi-x12", filename: "x.edi", sign: { digest, key: alice.key, certificate: alice.certificate, scheme } });
        const body = await collect(m.body, 1e8);
        const entity = Buffer.concat([Buffer.from(`Content-Type: ${m.headers.get("content-type")}\r\n\r\n`), body]);
        const part1 = opensslVerify(entity, `s-${digest}-${scheme}`);
        assert.equal((await m.done).mic.base64, createHash(digest).update(part1).digest("base64"));
        assert.match(m.headers.get("content-type")!, new RegExp(`micalg=${micAlgorithmName(digest)}`));
      });
    }
  }
  for (const [cipher, flag] of CIPHERS) {
    for (const digest of SIGN) {
      test(`signed ${digest} + encrypted ${cipher}: openssl decrypts and verifies`, async () => {
        const m = buildMessage({
          from: "ALICE", to: "BOB", payload: PAYLOAD, contentType: "application/edi-x12",
          sign: { digest, key: alice.key, certificate: alice.certificate },
          // openssl only reads CAST5 parameters as a bare IV
          encrypt: { cipher, recipients: [{ certificate: bob.certificate }], cast5Params: "iv-only" },
        });
        const enc = write(dir, `e-${cipher}-${digest}.der`, await collect(m.body, 1e8));
        assert.match(m.headers.get("content-type")!, cipher.endsWith("gcm") ? /smime-type=authEnveloped-data/ : /smime-type=enveloped-data/);
        const dec = openssl(["cms", "-decrypt", ...LEGACY, "-binary", "-inform", "DER", "-in", enc, "-inkey", bob.keyFile, "-recip", bob.certFile]);
        const part1 = opensslVerify(dec, `e-${cipher}-${digest}`);
        assert.ok(part1.includes(PAYLOAD), `${flag}: payload intact`);
      });
    }
  }
  for (const oaepHash of ["sha1", "sha256", "sha512"] as DigestAlgorithm[]) {
    test(`RSA-OAEP ${oaepHash} key transport: openssl decrypts`, async () => {
      const m = buildMessage({ from: "ALICE", to: "BOB", payload: PAYLOAD, contentType: "application/octet-stream", encrypt: { cipher: "aes256-cbc", recipients: [{ certificate: bob.certificate, keyEncryption: "rsa-oaep", oaepHash }] } });
      const enc = write(dir, `oaep-${oaepHash}.der`, await collect(m.body, 1e8));
      const dec = parseEntityBytes(openssl(["cms", "-decrypt", "-binary", "-inform", "DER", "-in", enc, "-inkey", bob.keyFile, "-recip", bob.certFile]));
      assert.deepEqual(dec.body, PAYLOAD);
    });
  }
  test("signer identified by subjectKeyIdentifier (SignerInfo v3, K3): openssl verifies, and so do we", async () => {
    const m = buildMessage({ from: "ALICE", to: "BOB", payload: PAYLOAD, contentType: "application/edi-x12", sign: { digest: "sha256", key: alice.key, certificate: alice.certificate, useSubjectKeyIdentifier: true } });
    const body = await collect(m.body, 1e8);
    opensslVerify(Buffer.concat([Buffer.from(`Content-Type: ${m.headers.get("content-type")}\r\n\r\n`), body]), "ski");
    const opened = await openMessage({ headers: m.headers, body: chunks(body, 999), decryptionKeys: [], signerCertificates: [bob.certificate, alice.certificate], onPayload: async (_i, b) => { await collect(b, 1e8); } });
    assert.equal(opened.signature?.signer.serialHex, alice.certificate.serialHex);
  });
  test("several recipients, subjectKeyIdentifier rid: openssl decrypts with either key", async () => {
    const m = buildMessage({ from: "ALICE", to: "BOB", payload: PAYLOAD, contentType: "application/octet-stream", encrypt: { cipher: "aes128-cbc", recipients: [{ certificate: alice.certificate }, { certificate: bob.certificate, useSubjectKeyIdentifier: true }] } });
    const enc = write(dir, "multi.der", await collect(m.body, 1e8));
    for (const who of [alice, bob]) assert.deepEqual(parseEntityBytes(openssl(["cms", "-decrypt", "-binary", "-inform", "DER", "-in", enc, "-inkey", who.keyFile, "-recip", who.certFile])).body, PAYLOAD);
  });
});

/** An AS2 message made by openssl: part 1 signed by openssl, framed as multipart/signed, encrypted by openssl. */
function opensslMessage(name: string, digest: string, signOpts: string[], encryptArgs: string[] | null): { headers: Record<string, string>; body: Buffer; part1: Buffer } {
  const part1 = Buffer.concat([Buffer.from("Content-Type: application/edi-x12\r\nContent-Transfer-Encoding: binary\r\nContent-Disposition: attachment; filename=\"from openssl.edi\"\r\n\r\n"), PAYLOAD]);
  const p1 = write(dir, `${name}.part1`, part1);
  const sig = openssl(["cms", "-sign", "-binary", "-in", p1, "-signer", alice.certFile, "-inkey", alice.keyFile, "-md", digest, "-outform", "DER", ...signOpts]);
  const boundary = `openssl-${name}`;
  const signed = Buffer.concat([
    Buffer.from(`--${boundary}\r\n`), part1,
    Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n${sig.toString("base64").replace(/.{76}/g, "$&\r\n")}\r\n--${boundary}--\r\n`),
  ]);
  const signedType = `multipart/signed; protocol="application/pkcs7-signature"; micalg=${digest}; boundary="${boundary}"`;
  if (!encryptArgs) return { headers: { "content-type": signedType }, body: signed, part1 };
  const inner = write(dir, `${name}.inner`, Buffer.concat([Buffer.from(`Content-Type: ${signedType}\r\n\r\n`), signed]));
  const body = openssl(["cms", "-encrypt", ...LEGACY, "-binary", "-outform", "DER", "-in", inner, ...encryptArgs]);
  return { headers: { "content-type": "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m" }, body, part1 };
}

async function openAsBob(headers: Record<string, string>, body: Buffer) {
  let payload: Buffer | undefined;
  const opened = await openMessage({
    headers, body: chunks(body, 4093), decryptionKeys: [{ key: bob.key, certificate: bob.certificate }], signerCertificates: [alice.certificate],
    onPayload: async (info, b) => { payload = await collect(b, 1e8); assert.equal(info.filename, "from openssl.edi"); },
  });
  assert.deepEqual(payload, PAYLOAD);
  return opened;
}

describe("openssl -> ours", () => {
  for (const digest of ["md5", ...SIGN]) {
    test(`openssl-signed ${digest}: verified, MIC = digest of part 1`, async () => {
      const m = opensslMessage(`o-${digest}`, digest, [], null);
      const opened = await openAsBob(m.headers, m.body);
      assert.equal(opened.signature?.digest, digest);
      assert.equal(opened.mic.base64, createHash(digest).update(m.part1).digest("base64"));
    });
  }
  test("openssl signer identified by subjectKeyIdentifier (-keyid) verifies", async () => {
    const m = opensslMessage("o-keyid", "sha256", ["-keyid"], null);
    const opened = await openAsBob(m.headers, m.body);
    assert.equal(opened.signature?.signer.serialHex, alice.certificate.serialHex);
  });
  test("openssl RSASSA-PSS signature (sha256) verifies", async () => {
    const m = opensslMessage("o-pss", "sha256", ["-keyopt", "rsa_padding_mode:pss"], null);
    const opened = await openAsBob(m.headers, m.body);
    assert.equal(opened.signature?.scheme, "rsassa-pss");
  });
  for (const [cipher, flag] of CIPHERS) {
    for (const digest of SIGN) {
      test(`openssl signed ${digest} + encrypted ${flag}: opened by us`, async () => {
        const m = opensslMessage(`oe-${cipher}-${digest}`, digest, [], [flag, bob.certFile]);
        const opened = await openAsBob(m.headers, m.body);
        assert.equal(opened.encryption?.cipher, cipher);
        assert.equal(opened.mic.base64, createHash(digest).update(m.part1).digest("base64"));
      });
    }
  }
  for (const md of ["sha1", "sha256", "sha512"]) {
    test(`openssl RSA-OAEP ${md}: parameters read, opened by us`, async () => {
      const m = opensslMessage(`oaep-${md}`, "sha256", [], ["-aes256", "-recip", bob.certFile, "-keyopt", "rsa_padding_mode:oaep", "-keyopt", `rsa_oaep_md:${md}`]);
      const opened = await openAsBob(m.headers, m.body);
      assert.equal(opened.encryption?.keyEncryption, "rsa-oaep" as KeyEncryption);
      assert.equal(opened.encryption?.oaepHash, md);
    });
  }
  test("openssl's own S/MIME output (-stream, BER indefinite lengths, its MIME framing)", async () => {
    const p1 = write(dir, "smime.part1", Buffer.concat([Buffer.from("Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=\"from openssl.edi\"\r\n\r\n"), PAYLOAD]));
    const signed = openssl(["cms", "-sign", "-binary", "-stream", "-in", p1, "-signer", alice.certFile, "-inkey", alice.keyFile, "-md", "sha384"]);
    const inner = write(dir, "smime.inner", signed);
    const enc = openssl(["cms", "-encrypt", "-binary", "-stream", "-outform", "DER", "-aes256", "-in", inner, bob.certFile]);
    const opened = await openAsBob({ "content-type": "application/pkcs7-mime" }, enc);
    assert.equal(opened.signature?.digest, "sha384");
  });
});

test("IDEA (not in this openssl build): ours to ours", async () => {
  const m = buildMessage({ from: "ALICE", to: "BOB", payload: PAYLOAD, contentType: "application/octet-stream", encrypt: { cipher: "idea", recipients: [{ certificate: bob.certificate }] } });
  const body = await collect(m.body, 1e8);
  let got: Buffer | undefined;
  const opened = await openMessage({ headers: m.headers, body: fromBytes(body), decryptionKeys: [{ key: bob.key, certificate: bob.certificate }], signerCertificates: [], onPayload: async (_i, b) => { got = await collect(b, 1e8); } });
  assert.equal(opened.encryption?.cipher, "idea");
  assert.equal(opened.encryption?.weakCipher, true);
  assert.deepEqual(got, PAYLOAD);
});
