/**
 * Issue 13, the sending side: MDNs as other products answer them, made by the openssl receiver
 * (test/helpers/openssl-receiver.ts, no as2kit code), judged by `as2 send`.
 * - case 1: an unsigned request now names the MIC algorithm; an unsigned MDN without a MIC (as
 *   OpenAS2 answers) is a warning, or a failure with quirks.unsignedMdnMic "required";
 * - case 7: a signed MDN without a MIC (pyas2lib, for an unsigned message) fails by default
 *   (RFC 4130 §7.4.3) and is a warning with quirks.signedMdnWithoutMic "warn";
 * - case 6: mdnMessage.mdnError is a boolean, the reason in errorReason.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { opensslIdentity, tempDir } from "../helpers/tools.js";
import { as2, type Run } from "../helpers/as2-process.js";
import { BC_CP, startOpensslReceiver, type OpensslReceiver } from "../helpers/openssl-receiver.js";

const dir = tempDir("as2kit-send-quirks-");
let receiver: OpensslReceiver;

function config(name: string, path: string, partner: Record<string, unknown>): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    dataDir: "./data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url: receiver.url.replace(/\/as2$/, path), certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", ...partner } },
  }));
  return file;
}

function file(name: string): string {
  mkdirSync(join(dir, "out"), { recursive: true });
  const p = join(dir, "out", name);
  writeFileSync(p, `ISA*00*${name}~\r\n`.repeat(20));
  return p;
}

function jobOf(r: Run): JobRecord {
  assert.ok(r.stdout.trim(), `no JSON (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as JobRecord;
}

before(async () => {
  const myco = opensslIdentity("myco", dir);
  const acme = opensslIdentity("acme", dir);
  const other = opensslIdentity("intruder", dir);
  execFileSync("javac", ["-cp", BC_CP, "-d", dir, join("test", "interop", "bc", "BcCompressed.java")], { stdio: "pipe" });
  receiver = await startOpensslReceiver({ dir, keyFile: acme.keyFile, certFile: acme.certFile, partnerCertFile: myco.certFile, otherKeyFile: other.keyFile, otherCertFile: other.certFile, bcClassDir: dir, as2Id: "ACME" });
});

test("1: an unsigned MDN request names the MIC algorithm; an unsigned MDN without a MIC is a warning (exit 0), or exit 1 with quirks.unsignedMdnMic \"required\"", async () => {
  const r = await as2(["send", "--config", config("unsigned", "/as2/no-mic", { mdn: { request: "unsigned" } }), "--partner", "acme", "--json", file("u1.edi")]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const job = jobOf(r);
  const sent = receiver.received.at(-1)!;
  assert.match(String(sent.headers["disposition-notification-options"]), /^signed-receipt-micalg=optional, sha-256$/, "micalg asked for, no signed-receipt-protocol");
  assert.equal(job.files[0]!.status, "SUCCESS");
  assert.equal((job.sendDetails![0]!.mdnChecks!.mic).verdict, "warn");
  assert.ok(job.warnings?.some((w) => /Received-Content-MIC/.test(w)), JSON.stringify(job.warnings));
  assert.equal(job.messages[0]!.mdnMessage!.mdnError, false);

  const strict = await as2(["send", "--config", config("unsigned-strict", "/as2/no-mic", { mdn: { request: "unsigned" }, quirks: { unsignedMdnMic: "required" } }), "--partner", "acme", "--json", file("u2.edi")]);
  assert.equal(strict.status, 1, strict.stderr);
  const failed = jobOf(strict);
  assert.equal(failed.files[0]!.error?.code, "AS2_ERR_MDN_VERIFICATION_FAILED");
  assert.equal(failed.messages[0]!.mdnMessage!.mdnError, false, "the MDN itself reports no error");
  assert.match(failed.messages[0]!.mdnMessage!.errorReason ?? "", /no Received-Content-MIC/);
});

test("7: a signed MDN without a MIC fails by default (RFC 4130 §7.4.3) and passes with a warning under quirks.signedMdnWithoutMic \"warn\"", async () => {
  const strict = await as2(["send", "--config", config("signed-nomic", "/as2/no-mic", { sign: false, mdn: { request: "signed" } }), "--partner", "acme", "--json", file("s1.edi")]);
  assert.equal(strict.status, 1, strict.stderr);
  assert.match(jobOf(strict).files[0]!.error?.message ?? "", /no Received-Content-MIC/);
  const lenient = await as2(["send", "--config", config("signed-nomic-warn", "/as2/no-mic", { sign: false, mdn: { request: "signed" }, quirks: { signedMdnWithoutMic: "warn" } }), "--partner", "acme", "--json", file("s2.edi")]);
  assert.equal(lenient.status, 0, lenient.stderr + lenient.stdout);
  const job = jobOf(lenient);
  assert.equal(job.sendDetails![0]!.mdnChecks!.signature.verdict, "pass");
  assert.equal(job.sendDetails![0]!.mdnChecks!.mic.verdict, "warn");
});

test("6: a negative MDN: mdnError true, the reason in errorReason", async () => {
  const r = await as2(["send", "--config", config("negative", "/as2/negative", { mdn: { request: "signed" } }), "--partner", "acme", "--json", file("n1.edi")]);
  assert.equal(r.status, 1);
  const m = jobOf(r).messages[0]!.mdnMessage!;
  assert.equal(m.mdnError, true);
  assert.match(m.errorReason ?? "", /negative MDN.*decryption-failed/);
});

test("quirks on the wire: RFC 3851 micalg names, Content-Transfer-Encoding among the HTTP headers, a quoted file name; the partner's AS2-Version is recorded", async () => {
  const r = await as2(["send", "--config", config("wire", "/as2", { sign: "sha256", encrypt: false, mdn: { request: "signed" }, quirks: { micalgSpelling: "rfc3851", outerTransferEncoding: true, quoteFilename: true } }), "--partner", "acme", "--json", file("wire.edi")]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const sent = receiver.received.at(-1)!;
  assert.match(String(sent.headers["content-type"]), /micalg=sha256[;"\s]|micalg=sha256$/);
  assert.match(String(sent.headers["disposition-notification-options"]), /signed-receipt-micalg=optional, sha256$/);
  assert.equal(sent.headers["content-transfer-encoding"], "binary");
  assert.match(sent.payloadHeaders, /filename="wire\.edi"/);
  const job = jobOf(r);
  assert.equal(job.sendDetails![0]!.partnerAs2Version, "1.2", "the openssl receiver answers AS2-Version 1.2");
});

test("presets: legacy fills sha1/3des and RFC 3851 names where the profile is silent; what the profile sets wins", async () => {
  const dry = join(dir, "dry-legacy");
  const r = await as2(["send", "--config", config("legacy", "/as2", { preset: "legacy", sign: undefined, encrypt: undefined, mdn: { request: "signed" } }), "--partner", "acme", "--dry-run", "--out", dry, "--json", file("legacy.edi")]);
  assert.equal(r.status, 0, r.stderr);
  const head = readFileSync(dry, "latin1").split("\r\n\r\n")[0]!;
  assert.match(head, /signed-receipt-micalg=optional, sha1/);
  assert.match(head, /smime-type=enveloped-data/);
  const dry2 = join(dir, "dry-legacy-own");
  const own = await as2(["send", "--config", config("legacy-own", "/as2", { preset: "legacy", sign: "sha512", encrypt: false, mdn: { request: "signed" } }), "--partner", "acme", "--dry-run", "--out", dry2, "--json", file("legacy2.edi")]);
  assert.equal(own.status, 0, own.stderr);
  const head2 = readFileSync(dry2, "latin1").split("\r\n\r\n")[0]!;
  assert.match(head2, /micalg=sha512/, "the profile's sign wins; the preset's RFC 3851 spelling applies");
  assert.doesNotMatch(head2, /enveloped-data/);
});

test("2: an MDN signed without signed attributes (IBM Sterling B2B Integrator) verifies", async () => {
  const r = await as2(["send", "--config", config("noattr", "/as2/noattr", { mdn: { request: "signed" } }), "--partner", "acme", "--json", file("noattr.edi")]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const job = jobOf(r);
  assert.equal(job.sendDetails![0]!.mdnChecks!.signature.verdict, "pass");
  assert.equal(job.sendDetails![0]!.mdnChecks!.mic.verdict, "pass");
});

test("issue 16: --verbose shows the exchange (request line and headers, status and headers, the MDN's fields) and never the credentials", async () => {
  const r = await as2(["send", "--config", config("verbose", "/as2", { mdn: { request: "signed" }, username: "myco", password: "s3cret-Pass" }), "--partner", "acme", "--verbose", file("verbose.edi")]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /> POST http:\/\/127\.0\.0\.1:\d+\/as2/);
  assert.match(r.stderr, /> AS2-From: MYCO/);
  assert.match(r.stderr, /> Disposition-Notification-Options: signed-receipt-protocol/);
  assert.match(r.stderr, /< 200 /);
  assert.match(r.stderr, /< as2-version: 1\.2/i);
  assert.match(r.stderr, /MDN disposition: automatic-action\/MDN-sent-automatically; processed/);
  assert.match(r.stderr, /MDN received-content-mic: /);
  assert.doesNotMatch(r.stderr, /s3cret-Pass|authorization/i);
  const quiet = await as2(["send", "--config", config("verbose", "/as2", { mdn: { request: "signed" } }), "--partner", "acme", file("notverbose.edi")]);
  assert.doesNotMatch(quiet.stderr, /> POST/);
});
