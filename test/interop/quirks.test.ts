/**
 * Interop quirks of the products partners run (issue 13), each reproduced byte for byte with
 * openssl (no third-party captures): the message is built by hand and `openssl cms`, then opened
 * by the library. Item numbers are issue 13's.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { Headers, createSelfSignedCertificate, fromBytes, openMessage, parseMdn, type Certificate } from "../../src/core/index.js";
import { startAs2Receive } from "../helpers/as2-process.js";
import { openssl, opensslIdentity, tempDir, type TestIdentity } from "../helpers/tools.js";

const dir = tempDir("as2kit-quirks-");
let partner: TestIdentity;
let us: TestIdentity;

before(() => {
  partner = opensslIdentity("partner", dir);
  us = opensslIdentity("us", dir);
});

/** A detached openssl signature (DER) over exactly `signed`, assembled as multipart/signed around `sent` as part 1. */
function multipartSigned(signed: Buffer, sent: Buffer, md = "sha256", extra: string[] = []): { contentType: string; body: Buffer } {
  const inFile = join(dir, `in-${md}-${signed.length}-${extra.join("")}.bin`);
  const sigFile = `${inFile}.sig`;
  writeFileSync(inFile, signed);
  openssl(["cms", "-sign", "-binary", "-md", md, ...extra, "-in", inFile, "-signer", partner.certFile, "-inkey", partner.keyFile, "-outform", "DER", "-out", sigFile]);
  const boundary = "----=_quirk_boundary";
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\n`), sent, Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: binary\r\n\r\n`),
    readFileSync(sigFile), Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { contentType: `multipart/signed; protocol="application/pkcs7-signature"; micalg=${md === "sha1" ? "sha1" : "sha-256"}; boundary="${boundary}"`, body };
}

/**
 * RC2-128 EnvelopedData for us, made by openssl, with rc2ParameterVersion removed in place as
 * pyas2lib writes it (issue 13 case 7). -stream gives indefinite lengths around the
 * AlgorithmIdentifier, so it can shrink without rewriting the outer lengths.
 */
function rc2WithoutVersion(name: string): Buffer {
  const entity = Buffer.from(`Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename="${name}"\r\n\r\nISA*00*rc2 payload~\r\n`);
  writeFileSync(join(dir, `${name}.in`), entity);
  openssl(["cms", "-encrypt", "-provider", "legacy", "-provider", "default", "-binary", "-rc2-128", "-stream", "-outform", "DER", "-in", join(dir, `${name}.in`), "-out", join(dir, `${name}.der`), us.certFile]);
  const der = readFileSync(join(dir, `${name}.der`));
  const rc2Oid = Buffer.from("06082a864886f70d0302", "hex");
  const at = der.indexOf(rc2Oid);
  assert.ok(at > 2 && der[at - 2] === 0x30 && der.subarray(at + rc2Oid.length, at + rc2Oid.length + 5).equals(Buffer.from("300d02013a", "hex")), "openssl wrote SEQUENCE { OID rc2-cbc, SEQUENCE { INTEGER 58, iv } }");
  // SEQUENCE { iv } inside an AlgorithmIdentifier 3 bytes shorter.
  return Buffer.concat([der.subarray(0, at - 1), Buffer.from([der[at - 1]! - 3]), rc2Oid, Buffer.from("300a", "hex"), der.subarray(at + rc2Oid.length + 5)]);
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
  const patched = rc2WithoutVersion("rc2.x12");
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

test("2: a signature without signed attributes (IBM Sterling B2B Integrator; openssl -noattr) verifies over the content digest; tampered content and another signer fail", async () => {
  const entity = Buffer.from("Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=\"noattr.x12\"\r\n\r\nISA*00*no signed attributes~\r\n");
  for (const md of ["sha256", "sha1"]) {
    const m = multipartSigned(entity, entity, md, ["-noattr"]);
    const { payload, result } = await open(m.contentType, m.body, [partner.certificate]);
    assert.equal(result.signed, true);
    assert.equal(result.signature?.signedAttributes, false);
    assert.equal(result.signature?.digest, md);
    assert.equal(payload.toString(), "ISA*00*no signed attributes~\r\n");
    const tampered = Buffer.from(m.body.toString("latin1").replace("no signed attributes", "no signed attributeZ"), "latin1");
    await assert.rejects(open(m.contentType, tampered, [partner.certificate]), (e: { disposition?: string }) => e.disposition === "authentication-failed" || e.disposition === "integrity-check-failed");
    await assert.rejects(open(m.contentType, m.body, [us.certificate]), (e: { disposition?: string }) => e.disposition === "authentication-failed");
  }
});

test("the same quirky messages posted to `as2 receive`: each stored with a positive MDN (the RC2 one with its quirk set), the expired signer enforced for one partner", async () => {
  const old = await createSelfSignedCertificate({ commonName: "expired partner 2", notBefore: new Date("2019-01-01T00:00:00Z"), notAfter: new Date("2020-06-30T00:00:00Z") });
  writeFileSync(join(dir, "old2.crt"), old.certificatePem);
  writeFileSync(join(dir, "old2.key"), old.keyPem);
  const cfg = join(dir, "receiver.json");
  writeFileSync(cfg, JSON.stringify({
    dataDir: "./recv-data",
    station: { as2Id: "US", key: { pem: "us.key", certificate: "us.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: {
      partner: { as2Id: "PARTNER", url: "http://127.0.0.1:9/as2", certificate: "partner.crt", quirks: { rc2WithoutVersion: "key-length" } },
      oldie: { as2Id: "OLDIE", url: "http://127.0.0.1:9/as2", certificate: "old2.crt" },
      strict: { as2Id: "STRICT", url: "http://127.0.0.1:9/as2", certificate: "old2.crt", inbound: { signerCertificateValidity: "enforce" } },
    },
  }));
  const server = await startAs2Receive(cfg);
  let n = 0;
  const post = async (from: string, m: { contentType: string; body: Buffer }) => {
    const res = await fetch(server.url, { method: "POST", body: m.body, headers: {
      "Content-Type": m.contentType, "AS2-From": from, "AS2-To": "US", "Message-ID": `<quirk-${++n}@test>`, "AS2-Version": "1.2",
      "Disposition-Notification-To": "x@example", "Disposition-Notification-Options": "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256",
    } });
    const headers = new Headers();
    res.headers.forEach((v, k) => headers.list.push({ name: k, value: v }));
    return parseMdn(headers, Buffer.from(await res.arrayBuffer()));
  };
  const sign = (entity: Buffer, signer: { crt: string; key: string }, extra: string[] = []) => {
    const f = join(dir, `e2e-${++n}.bin`);
    writeFileSync(f, entity);
    openssl(["cms", "-sign", "-binary", "-md", "sha256", ...extra, "-in", f, "-signer", signer.crt, "-inkey", signer.key, "-outform", "DER", "-out", `${f}.sig`]);
    const b = "----=_e2e";
    return { contentType: `multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="${b}"`, body: Buffer.concat([Buffer.from(`--${b}\r\n`), entity, Buffer.from(`\r\n--${b}\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: binary\r\n\r\n`), readFileSync(`${f}.sig`), Buffer.from(`\r\n--${b}--\r\n`)]) };
  };
  const partnerSigner = { crt: partner.certFile, key: partner.keyFile };
  const oldSigner = { crt: join(dir, "old2.crt"), key: join(dir, "old2.key") };
  const entity = (name: string, extraType = "") => Buffer.from(`Content-Type: application/edi-x12${extraType}\r\nContent-Disposition: attachment${name ? `; filename="${name}"` : ""}\r\n\r\nISA*00*${name || "unnamed"}~\r\n`);
  const cases: Array<[string, string, { contentType: string; body: Buffer }, RegExp, string | undefined]> = [
    ["no signed attributes", "PARTNER", sign(entity("noattr-e2e.x12"), partnerSigner, ["-noattr"]), /processed$/, "partner/noattr-e2e.x12"],
    ["name only in Content-Type", "PARTNER", sign(entity("", '; name="typename-e2e.x12"'), partnerSigner), /processed$/, "partner/typename-e2e.x12"],
    ["expired signer, default", "OLDIE", sign(entity("old-e2e.x12"), oldSigner), /processed$/, "oldie/old-e2e.x12"],
    ["expired signer, enforced", "STRICT", sign(entity("strict-e2e.x12"), oldSigner), /authentication-failed/, undefined],
  ];
  // Headers that lost their CR after signing.
  const crlf = entity("crlf-e2e.x12");
  const signedCrlf = sign(crlf, partnerSigner);
  cases.push(["headers-crlf", "PARTNER", { contentType: signedCrlf.contentType, body: Buffer.from(signedCrlf.body.toString("latin1").replace(crlf.toString("latin1"), crlf.toString("latin1").replace(/\r\n(?=.*\r\n\r\n)/gs, "\n").replace("\r\n\r\n", "\n\n")), "latin1") }, /processed$/, "partner/crlf-e2e.x12"]);
  cases.push(["RC2 without a version, quirk set", "PARTNER", { contentType: "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", body: rc2WithoutVersion("rc2-e2e.x12") }, /processed$/, "partner/rc2-e2e.x12"]);
  try {
    for (const [label, from, m, disposition, stored] of cases) {
      const mdn = await post(from, m);
      assert.match(mdn.disposition?.raw ?? "", disposition, label);
      if (stored) assert.ok(existsSync(join(dir, "recv-data", "inbox", stored)), `${label}: ${stored} stored`);
    }
  } finally {
    server.proc.kill("SIGTERM");
    await server.exited;
  }
});
