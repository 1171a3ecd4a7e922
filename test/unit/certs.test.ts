// Keys and certificates in every form partners hand over, made by openssl at test time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadPrivateKey, loadCertificates, loadPkcs12, keyMatchesCertificate, createSelfSignedCertificate, As2Error, ErrorCodes } from "../../src/core/index.js";
import { openssl, opensslIdentity, tempDir } from "../helpers/tools.js";

const dir = tempDir();
const id = opensslIdentity("certs", dir);
const other = opensslIdentity("other", dir);
const f = (n: string) => join(dir, n);

function isCode(code: string) {
  return (e: unknown) => e instanceof As2Error && e.code === code;
}

test("private keys: PKCS#1, PKCS#8, encrypted PKCS#8, legacy DEK-Info PEM, DER", () => {
  openssl(["pkey", "-in", id.keyFile, "-traditional", "-out", f("pkcs1.pem")]);
  openssl(["pkcs8", "-topk8", "-in", id.keyFile, "-v2", "aes-256-cbc", "-passout", "pass:s3cret", "-out", f("enc8.pem")]);
  openssl(["rsa", "-in", id.keyFile, "-aes256", "-traditional", "-passout", "pass:s3cret", "-out", f("dek.pem")]);
  openssl(["pkey", "-in", id.keyFile, "-outform", "DER", "-out", f("key.der")]);
  openssl(["rsa", "-in", id.keyFile, "-traditional", "-outform", "DER", "-out", f("pkcs1.der")]);
  assert.ok(readFileSync(f("pkcs1.pem"), "latin1").includes("BEGIN RSA PRIVATE KEY"));
  assert.ok(readFileSync(f("dek.pem"), "latin1").includes("DEK-Info"));
  for (const [file, pass] of [["pkcs1.pem"], [id.keyFile], ["enc8.pem", "s3cret"], ["dek.pem", "s3cret"], ["key.der"], ["pkcs1.der"]] as Array<[string, string?]>) {
    const key = loadPrivateKey(readFileSync(file.startsWith("/") ? file : f(file)), pass);
    assert.ok(keyMatchesCertificate(key, id.certificate), file);
    assert.ok(!keyMatchesCertificate(key, other.certificate), file);
  }
  assert.throws(() => loadPrivateKey(readFileSync(f("enc8.pem")), "wrong"), isCode(ErrorCodes.BAD_PASSWORD));
  assert.throws(() => loadPrivateKey(readFileSync(f("dek.pem"))), isCode(ErrorCodes.BAD_PASSWORD));
  assert.throws(() => loadPrivateKey(Buffer.from("not a key")), isCode(ErrorCodes.BAD_KEY));
});

test("PKCS#12: OpenSSL 3 default (PBES2/AES), legacy (RC2-40/3DES), empty password, alias selection", () => {
  openssl(["pkcs12", "-export", "-in", id.certFile, "-inkey", id.keyFile, "-name", "myco", "-passout", "pass:pw", "-out", f("modern.p12")]);
  openssl(["pkcs12", "-export", "-legacy", ...["-provider", "legacy", "-provider", "default"], "-in", id.certFile, "-inkey", id.keyFile, "-name", "myco", "-passout", "pass:pw", "-out", f("legacy.p12")]);
  openssl(["pkcs12", "-export", "-in", id.certFile, "-inkey", id.keyFile, "-passout", "pass:", "-out", f("empty.p12")]);
  for (const [file, password] of [["modern.p12", "pw"], ["legacy.p12", "pw"], ["empty.p12", ""]] as const) {
    const kp = loadPkcs12(readFileSync(f(file)), { password });
    assert.ok(keyMatchesCertificate(kp.key, kp.certificate), file);
    assert.equal(kp.certificate.serialHex, id.certificate.serialHex, file);
  }
  assert.equal(loadPkcs12(readFileSync(f("modern.p12")), { password: "pw", alias: "myco" }).certificate.serialHex, id.certificate.serialHex);
  assert.throws(() => loadPkcs12(readFileSync(f("modern.p12")), { password: "pw", alias: "nope" }), /no key with alias "nope".*myco/);
  assert.throws(() => loadPkcs12(readFileSync(f("modern.p12")), { password: "wrong" }), isCode(ErrorCodes.BAD_PASSWORD));
});

test("certificates: PEM (several), DER, certs-only PKCS#7 in PEM and DER", () => {
  openssl(["x509", "-in", id.certFile, "-outform", "DER", "-out", f("c.der")]);
  openssl(["crl2pkcs7", "-nocrl", "-certfile", id.certFile, "-certfile", other.certFile, "-out", f("c.p7c.pem")]);
  openssl(["crl2pkcs7", "-nocrl", "-certfile", id.certFile, "-outform", "DER", "-out", f("c.p7c")]);
  const both = Buffer.concat([readFileSync(id.certFile), readFileSync(other.certFile)]);
  assert.deepEqual(loadCertificates(both).map((c) => c.serialHex), [id.certificate.serialHex, other.certificate.serialHex]);
  assert.equal(loadCertificates(readFileSync(f("c.der")))[0]!.serialHex, id.certificate.serialHex);
  assert.equal(loadCertificates(readFileSync(f("c.p7c.pem"))).length, 2);
  assert.equal(loadCertificates(readFileSync(f("c.p7c")))[0]!.serialHex, id.certificate.serialHex);
  assert.throws(() => loadCertificates(Buffer.from("garbage")), isCode(ErrorCodes.BAD_CERTIFICATE));
  assert.match(id.certificate.subject, /CN=certs/);
  assert.ok(id.certificate.subjectKeyIdentifier && id.certificate.subjectKeyIdentifier.length === 20);
});

test("validity is judged against an injected clock, with expiry reported", async () => {
  const g = await createSelfSignedCertificate({ commonName: "clock", notBefore: new Date("2030-01-01T00:00:00Z"), notAfter: new Date("2031-01-01T00:00:00Z"), keyBits: 1024 });
  assert.deepEqual({ ...g.certificate.checkValidity(new Date("2030-06-01T00:00:00Z")), notBefore: 0, notAfter: 0 }, { valid: true, expired: false, notYetValid: false, notBefore: 0, notAfter: 0 });
  const late = g.certificate.checkValidity(new Date("2031-01-02T00:00:00Z"));
  assert.equal(late.expired, true);
  assert.equal(late.valid, false);
  assert.equal(late.notAfter.toISOString(), "2031-01-01T00:00:00.000Z");
  assert.equal(g.certificate.checkValidity(new Date("2029-12-31T00:00:00Z")).notYetValid, true);
  // our generated certificate is readable by openssl, the independent check
  const text = openssl(["x509", "-noout", "-subject", "-enddate"], Buffer.from(g.certificatePem)).toString();
  assert.match(text, /CN ?= ?clock/);
  assert.match(text, /Jan  1 00:00:00 2031 GMT/);
});

test("a certificate parsed again from the same bytes shares the parse (issue 14 cache); other bytes never do", async () => {
  const der = id.certificate.der;
  const [a] = loadCertificates(der);
  const [b] = loadCertificates(Buffer.from(der));
  const [c] = loadCertificates(other.certificate.der);
  assert.equal(a!.x509, b!.x509);
  assert.notEqual(a!.x509, c!.x509);
  assert.equal(a!.publicKey, b!.publicKey);
  assert.ok(!a!.publicKey.equals(c!.publicKey));
  assert.equal(b!.serialHex, id.certificate.serialHex);
  // One byte changed: not served from the cache (it is no longer the same certificate, or none at all).
  const changed = Buffer.from(der);
  changed[changed.length - 1] ^= 0xff;
  let parsed: unknown;
  try {
    parsed = loadCertificates(changed)[0]?.x509;
  } catch (e) {
    assert.ok(e instanceof As2Error);
  }
  assert.notEqual(parsed, a!.x509);
  // Past the cache's size, the oldest is parsed anew and still reads the same.
  const key = loadPrivateKey(readFileSync(id.keyFile));
  for (let i = 0; i < 70; i++) loadCertificates((await createSelfSignedCertificate({ commonName: `c${i}`, key, notBefore: new Date(0), notAfter: new Date(Date.UTC(2100, 0)) })).certificate.der);
  const [d] = loadCertificates(der);
  assert.notEqual(d!.x509, a!.x509);
  assert.equal(d!.serialHex, a!.serialHex);
});
