// MDN build / parse / verify (as2-reference.md §9-§10, §13, §17): every disposition, signed and
// unsigned, vendor variants, and each verification check with its own verdict.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { buildMdn, parseMdn, verifyMdn, As2Error, ErrorCodes, type DispositionSpec, type MessageMic } from "../../src/core/index.js";
import { openssl, opensslIdentity, tempDir, write } from "../helpers/tools.js";

const dir = tempDir();
const partner = opensslIdentity("partner", dir);
const stranger = opensslIdentity("stranger", dir);
const MSG_ID = "<20240101T120000.4711.9f3c@as2.acme.example>";
const DIGEST = Buffer.from("h8rMEmPHVzuMDdvOoQWbhxDGFcMeBquQEQPk51xyp9o=", "base64");
const MIC: MessageMic = { algorithm: "sha256", digest: DIGEST, base64: DIGEST.toString("base64") };
const fixed = { now: () => new Date("2024-01-01T12:00:02Z"), randomBytes: (n: number) => Buffer.alloc(n, 0xab), messageId: "<mdn-7f2a91@as2.partner.example>" };

const DISPOSITIONS: Array<[DispositionSpec, string | undefined, "ok" | "warning" | "negative"]> = [
  [{ type: "processed" }, undefined, "ok"],
  [{ type: "processed", modifier: "error", description: "decryption-failed" }, "No RecipientInfo matches", "negative"],
  [{ type: "processed", modifier: "error", description: "authentication-failed" }, undefined, "negative"],
  [{ type: "processed", modifier: "error", description: "integrity-check-failed" }, undefined, "negative"],
  [{ type: "processed", modifier: "error", description: "decompression-failed" }, undefined, "negative"],
  [{ type: "processed", modifier: "error", description: "insufficient-message-security" }, undefined, "negative"],
  [{ type: "processed", modifier: "error", description: "unexpected-processing-error" }, undefined, "negative"],
  [{ type: "processed", modifier: "warning", description: "duplicate-document" }, "Message-ID already received", "warning"],
  [{ type: "failed", modifier: "failure", description: "unsupported MIC-algorithms" }, "whirlpool not supported", "negative"],
  [{ type: "failed", modifier: "failure", description: "unsupported format" }, undefined, "negative"],
];

test("every disposition of §10, signed and unsigned, round-trips and is classified", () => {
  for (const [disposition, detail, cls] of DISPOSITIONS) {
    for (const signed of [false, true]) {
      const mdn = buildMdn({
        original: { messageId: MSG_ID, from: "Acme Corp", to: "PARTNER01", subject: "EDIFACT ORDERS" }, disposition, detail,
        mic: cls === "negative" ? undefined : { base64: MIC.base64, algorithm: "sha256" },
        sign: signed && { digest: "sha256", key: partner.key, certificate: partner.certificate },
      });
      assert.equal(mdn.headers.get("AS2-From"), "PARTNER01");
      assert.equal(mdn.headers.get("AS2-To"), '"Acme Corp"');
      assert.ok(!mdn.headers.has("Disposition-Notification-To"), "F6: an MDN never asks for an MDN");
      const parsed = parseMdn(mdn.headers, mdn.body);
      assert.equal(parsed.signed, signed);
      assert.equal(parsed.dispositionClass, cls, JSON.stringify(disposition));
      assert.equal(parsed.disposition?.description, disposition.description);
      assert.equal(parsed.originalMessageId, MSG_ID);
      assert.equal(parsed.finalRecipient, "PARTNER01");
      const v = verifyMdn(parsed, { partnerCertificates: [partner.certificate], expectedMessageId: MSG_ID, expectedMics: [MIC], requireSigned: signed });
      assert.equal(v.ok, cls !== "negative", JSON.stringify(disposition));
      assert.equal(v.checks.signature.verdict, signed ? "pass" : "skip");
      assert.equal(v.checks.disposition.verdict, cls === "ok" ? "pass" : cls === "warning" ? "warn" : "fail");
      assert.equal(v.checks.mic.verdict, cls === "negative" ? "skip" : "pass"); // M6
      if (detail) assert.ok([...parsed.errors, ...parsed.warnings, ...parsed.failures].includes(detail));
    }
  }
});

test("each failing check gets its own verdict: MIC mismatch, no MIC, wrong Original-Message-ID, wrong signer, tampering, unsigned", () => {
  const good = buildMdn({ original: { messageId: MSG_ID, from: "A", to: "B" }, disposition: { type: "processed" }, mic: { base64: MIC.base64, algorithm: "sha256" }, sign: { digest: "sha256", key: partner.key, certificate: partner.certificate } });
  const p = parseMdn(good.headers, good.body);
  const otherMic: MessageMic = { algorithm: "sha256", digest: Buffer.alloc(32, 1), base64: Buffer.alloc(32, 1).toString("base64") };
  let v = verifyMdn(p, { partnerCertificates: [partner.certificate], expectedMessageId: MSG_ID, expectedMics: [otherMic] });
  assert.equal(v.ok, false);
  assert.equal(v.checks.mic.verdict, "fail");
  assert.match(v.checks.mic.detail, /MIC mismatch/);
  assert.equal(v.checks.signature.verdict, "pass");
  v = verifyMdn(p, { partnerCertificates: [partner.certificate], expectedMessageId: "<other@x>", expectedMics: [MIC] });
  assert.equal(v.checks.originalMessageId.verdict, "fail");
  v = verifyMdn(p, { partnerCertificates: [stranger.certificate], expectedMessageId: MSG_ID, expectedMics: [MIC] });
  assert.equal(v.checks.signature.verdict, "fail");
  assert.equal(v.ok, false);
  const tampered = Buffer.from(good.body.toString("latin1").replace("processed", "Processed"), "latin1");
  v = verifyMdn(parseMdn(good.headers, tampered), { partnerCertificates: [partner.certificate], expectedMessageId: MSG_ID, expectedMics: [MIC] });
  assert.equal(v.checks.signature.verdict, "fail");
  assert.match(v.checks.signature.detail, /does not match|changed/);
  // "no MIC" is not success (architecture.md §3.5)
  const noMic = buildMdn({ original: { messageId: MSG_ID, from: "A", to: "B" }, disposition: { type: "processed" } });
  v = verifyMdn(parseMdn(noMic.headers, noMic.body), { partnerCertificates: [], expectedMessageId: MSG_ID, expectedMics: [MIC], requireSigned: true });
  assert.equal(v.checks.mic.verdict, "fail");
  assert.equal(v.checks.signature.verdict, "fail"); // V4: signed requested, unsigned received
  // signer certificate validity against an injected clock
  v = verifyMdn(p, { partnerCertificates: [partner.certificate], expectedMics: [MIC], now: new Date("2100-01-01T00:00:00Z") });
  assert.equal(v.checks.signerCertificate.verdict, "warn");
});

test("an HTML error page is not an MDN (V1)", () => {
  assert.throws(() => parseMdn({ "Content-Type": "text/html" }, Buffer.from("<html><body>502 Bad Gateway</body></html>")), (e: unknown) => e instanceof As2Error && e.code === ErrorCodes.MALFORMED_MDN && /text\/html.*502 Bad Gateway/.test(e.message));
});

test("vendor variants: a Sterling-style MDN (Q1) signed by openssl with binary DER, no spaces, caps", () => {
  const report = "--RPT\r\n\r\nYour message was received.\r\n--RPT\r\nContent-Type: message/disposition-notification\r\n\r\n" +
    "Original-Recipient: rfc822;PARTNER01\r\nFinal-Recipient: rfc822;PARTNER01\r\nOriginal-Message-ID: " + MSG_ID + "\r\n" +
    "Disposition: Automatic-action/mdn-sent-automatically;processed\r\nReceived-content-MIC: " + MIC.base64 + ",sha256\r\n\r\n--RPT--\r\n";
  const part1 = Buffer.from(`Content-Type: multipart/report;Report-Type=disposition-notification;boundary="RPT"\r\n\r\n${report}`, "latin1");
  const sig = openssl(["cms", "-sign", "-binary", "-in", write(dir, "sterling.p1", part1), "-signer", partner.certFile, "-inkey", partner.keyFile, "-md", "sha1", "-outform", "DER"]);
  const body = Buffer.concat([Buffer.from("--SIG\r\n"), part1, Buffer.from("\r\n--SIG\r\nContent-Type: Application/pkcs7-signature;name=EDIINTSIG.p7s\r\n\r\n"), sig, Buffer.from("\r\n--SIG--\r\n")]);
  const parsed = parseMdn({ "content-type": 'multipart/signed;protocol="application/pkcs7-signature";micalg=sha1;boundary="SIG"' }, body);
  assert.equal(parsed.finalRecipient, "PARTNER01");
  assert.equal(parsed.dispositionClass, "ok");
  assert.equal(parsed.mic?.algorithm, "sha256");
  const v = verifyMdn(parsed, { partnerCertificates: [partner.certificate], expectedMessageId: MSG_ID.slice(1, -1), expectedMics: [MIC] });
  assert.deepEqual(Object.fromEntries(Object.entries(v.checks).map(([k, c]) => [k, c.verdict])), { signature: "pass", signerCertificate: "skip", originalMessageId: "pass", disposition: "pass", mic: "pass" });
  assert.equal(v.signer?.digest, "sha1");
});

test("vendor variants: Mendelson (Q2) folds the Content-Type with a TAB and spells the MIC sha-256; RFC 3798 error form (D3)", () => {
  const body = "--m1\r\nContent-Type: text/plain\r\n\r\nhuman\r\n--m1\r\nContent-Type: message/disposition-notification\r\n\r\n" +
    "Reporting-UA: mendelson opensource AS2\r\nFinal-Recipient: rfc822; PARTNER01\r\nOriginal-Message-ID: " + MSG_ID + "\r\n" +
    "Disposition: automatic-action/MDN-sent-automatically; processed/error\r\nError: decryption-failed\r\n\r\n--m1--\r\n";
  const parsed = parseMdn({ "content-type": 'multipart/report; report-type=disposition-notification;\r\n\tboundary="m1"'.replace(/\r\n\t/, " ") }, Buffer.from(body));
  assert.equal(parsed.disposition?.modifier, "error");
  assert.equal(parsed.disposition?.description, "decryption-failed");
  assert.equal(parsed.reportingUa, "mendelson opensource AS2");
});

test("golden bytes: an unsigned MDN with injected boundary, time and Message-ID", () => {
  const mdn = buildMdn({ ...fixed, original: { messageId: MSG_ID, from: "Acme Corp", to: "PARTNER01", subject: "EDIFACT ORDERS" }, disposition: { type: "processed" }, mic: { base64: MIC.base64, algorithm: "sha256" } });
  const b = "----=_as2kit_report_abababababababababababab";
  assert.deepEqual(mdn.headers.list, [
    { name: "AS2-Version", value: "1.2" }, { name: "EDIINT-Features", value: "multiple-attachments, CEM, AS2-Reliability" },
    { name: "AS2-From", value: "PARTNER01" }, { name: "AS2-To", value: '"Acme Corp"' },
    { name: "Message-ID", value: "<mdn-7f2a91@as2.partner.example>" }, { name: "Date", value: "Mon, 01 Jan 2024 12:00:02 GMT" },
    { name: "Subject", value: "AS2 MDN" }, { name: "MIME-Version", value: "1.0" },
    { name: "Content-Type", value: `multipart/report; report-type=disposition-notification; boundary="${b}"` },
  ]);
  assert.equal(mdn.body.toString("latin1"),
    `--${b}\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n` +
    `The AS2 message ${MSG_ID} sent by "Acme Corp" to PARTNER01\r\n(subject: EDIFACT ORDERS) was received and processed successfully.\r\n` +
    `--${b}\r\nContent-Type: message/disposition-notification\r\nContent-Transfer-Encoding: 7bit\r\n\r\n` +
    "Reporting-UA: as2kit\r\nOriginal-Recipient: rfc822; PARTNER01\r\nFinal-Recipient: rfc822; PARTNER01\r\n" +
    `Original-Message-ID: ${MSG_ID}\r\nDisposition: automatic-action/MDN-sent-automatically; processed\r\n` +
    `Received-Content-MIC: ${MIC.base64}, sha-256\r\n\r\n--${b}--\r\n`);
});

test("a signed MDN: openssl verifies the signature over part 1 exactly (F2, P5)", () => {
  const mdn = buildMdn({ ...fixed, original: { messageId: MSG_ID, from: "A", to: "B" }, disposition: { type: "processed" }, mic: { base64: MIC.base64, algorithm: "sha256" }, sign: { digest: "sha384", key: partner.key, certificate: partner.certificate } });
  assert.match(mdn.headers.get("content-type")!, /^multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-384; boundary="----=_as2kit_signed_(ab)+"$/);
  const parsed = parseMdn(mdn.headers, mdn.body);
  assert.ok(parsed.signedPart!.toString("latin1").startsWith("Content-Type: multipart/report; report-type=disposition-notification;"));
  assert.ok(parsed.signedPart!.toString("latin1").endsWith("--\r\n"));
  const sig = mdn.body.toString("latin1").split("filename=smime.p7s\r\n\r\n")[1]!.split("\r\n--")[0]!;
  openssl(["cms", "-verify", "-binary", "-inform", "DER", "-in", write(dir, "mdn.p7s", Buffer.from(sig, "base64")), "-content", write(dir, "mdn.p1", parsed.signedPart!), "-CAfile", partner.certFile, "-purpose", "any"]);
  assert.equal(createHash("sha384").update(parsed.signedPart!).digest().length, 48);
});
