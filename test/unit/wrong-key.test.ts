/**
 * Issue 12 case 2: a message not encrypted for our key must always end as decryption-failed -
 * never "processed" with random bytes stored, never insufficient-message-security because the
 * partner requires signatures - whatever the RSA padding of the key block happens to be (RFC
 * 3218). The hard case is a key block that names OUR certificate (issuer and serial match) but
 * was made with another key: the unwrap fails (or, rarely, "succeeds" with a wrong key), a random
 * key stands in, and the noise it deciphers must not pass as a payload. Thousands of tries, in
 * process, with openssl-made twin certificates (same issuer and serial, different keys).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { As2Error, buildMessage, collect, fromBytes, loadCertificates, loadPrivateKey, openMessage, type Certificate } from "../../src/core/index.js";
import type { KeyObject } from "node:crypto";
import { openssl, tempDir } from "../helpers/tools.js";

const dir = tempDir("as2kit-wrong-key-");
const TRIES = Number(process.env.WRONG_KEY_TRIES ?? 2000);

interface Id { key: KeyObject; certificate: Certificate }
let ours: Id;
let twin: Id; // same issuer and serial as ours, another key
let stranger: Id; // another certificate altogether
let partner: Id;

function identity(name: string, serial: string, subject: string): Id {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "30", "-set_serial", serial, "-subj", subject]);
  return { key: loadPrivateKey(readFileSync(keyFile)), certificate: loadCertificates(readFileSync(certFile))[0]! };
}

before(() => {
  ours = identity("ours", "4242", "/O=as2kit tests/CN=receiver");
  twin = identity("twin", "4242", "/O=as2kit tests/CN=receiver");
  stranger = identity("stranger", "77", "/O=as2kit tests/CN=someone else");
  partner = identity("partner", "99", "/O=as2kit tests/CN=partner");
  assert.ok(ours.certificate.matchesIssuerSerial(twin.certificate.issuerDer, twin.certificate.serialBytes), "the twin names our certificate");
});

async function attempt(recipient: Certificate, opts: { sign: boolean; requireSigned: boolean; cipher: "aes128-cbc" | "aes256-cbc" | "3des" }, i: number): Promise<{ ok: true } | { ok: false; error: As2Error }> {
  const msg = buildMessage({
    from: "PARTNER", to: "US", payload: fromBytes(Buffer.from(`order ${i}\r\n`.repeat(8))), contentType: "application/edi-x12", filename: `o${i}.edi`,
    sign: opts.sign ? { digest: "sha256", key: partner.key, certificate: partner.certificate } : false,
    encrypt: { cipher: opts.cipher, recipients: [{ certificate: recipient }] },
  });
  const body = await collect(msg.body, 1024 * 1024);
  await msg.done;
  try {
    await openMessage({
      headers: msg.headers, body: fromBytes(body), decryptionKeys: [{ key: ours.key, certificate: ours.certificate }],
      signerCertificates: [partner.certificate], requireSigned: opts.requireSigned, requireEncrypted: true,
      onPayload: async (_info, b) => { for await (const _ of b) { /* discard */ } },
    });
    return { ok: true };
  } catch (e) {
    assert.ok(e instanceof As2Error, `try ${i}: not an As2Error: ${String(e)}`);
    return { ok: false, error: e };
  }
}

async function run(recipient: () => Certificate, label: string): Promise<void> {
  const variants = [
    { sign: false, requireSigned: false, cipher: "aes128-cbc" as const },
    { sign: true, requireSigned: true, cipher: "aes256-cbc" as const },
    { sign: false, requireSigned: true, cipher: "3des" as const },
    { sign: true, requireSigned: false, cipher: "aes128-cbc" as const },
  ];
  const dispositions = new Map<string, number>();
  let accepted = 0;
  for (let i = 0; i < TRIES; i++) {
    const r = await attempt(recipient(), variants[i % variants.length]!, i);
    if (r.ok) accepted++;
    else dispositions.set(`${r.error.code} ${r.error.disposition}`, (dispositions.get(`${r.error.code} ${r.error.disposition}`) ?? 0) + 1);
  }
  assert.equal(accepted, 0, `${label}: ${accepted} of ${TRIES} accepted`);
  for (const key of dispositions.keys()) assert.match(key, / decryption-failed$/, `${label}: every failure is decryption-failed: ${JSON.stringify([...dispositions])}`);
}

test(`${TRIES} messages whose key block names our certificate but was made for another key: none accepted, all decryption-failed (also with requireSigned)`, async () => {
  await run(() => twin.certificate, "twin");
});

test(`${TRIES / 4} messages encrypted for another certificate: refused as decryption-failed before any RSA operation`, async () => {
  let n = 0;
  for (let i = 0; i < TRIES / 4; i++) {
    const r = await attempt(stranger.certificate, { sign: i % 2 === 0, requireSigned: i % 2 === 0, cipher: "aes256-cbc" }, i);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.disposition, "decryption-failed");
      assert.match(r.error.message, /none of them our certificate/);
      n++;
    }
  }
  assert.equal(n, TRIES / 4);
});

test("a genuine message still opens (the same variants, encrypted for our certificate)", async () => {
  for (const v of [{ sign: false, requireSigned: false, cipher: "aes128-cbc" as const }, { sign: true, requireSigned: true, cipher: "3des" as const }]) {
    const r = await attempt(ours.certificate, v, 1);
    assert.ok(r.ok, r.ok ? "" : r.error.message);
  }
});
