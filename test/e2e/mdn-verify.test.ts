/**
 * `as2 mdn-verify` as a user runs it, on MDNs from other products:
 * - a set built here with openssl (signed with SHA-1 and SHA-256, unsigned, negative
 *   dispositions, and the vendor spellings of as2-reference §17: Sterling Q1, Mendelson Q2,
 *   OpenAS2 Q3, pyas2lib Q4), saved as an HTTP response, a MIME entity, a body with --headers,
 *   a body alone and a chunked capture;
 * - two MDNs captured from ph-OpenAS2 (test/fixtures/captured-mdns, provenance in its README);
 * - MDNs of real send jobs (an openssl receiver), checked against the job log (--run,
 *   --message-id) and against the original message (--original).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { openssl, opensslIdentity, tempDir } from "../helpers/tools.js";
import { as2, type Run } from "../helpers/as2-process.js";
import { startOpensslReceiver, type OpensslReceiver } from "../helpers/openssl-receiver.js";

const dir = tempDir();
const FIXTURES = join(process.cwd(), "test", "fixtures", "captured-mdns");
const CRLF = "\r\n";
let config: string;

type Verdicts = Record<"signature" | "signerCertificate" | "originalMessageId" | "disposition" | "mic", string>;
interface Report { ok: boolean; signer?: string; mdn: { form: string; signed: boolean; notes: string[]; mic?: { value: string; algorithm: string } }; checks: Record<keyof Verdicts, { verdict: string; detail: string }> }

function reportOf(r: Run): Report {
  try {
    return JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`no JSON on stdout (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
}

function verdicts(r: Report): Verdicts {
  return Object.fromEntries(Object.entries(r.checks).map(([k, c]) => [k, c.verdict])) as Verdicts;
}

async function verify(args: string[]): Promise<{ run: Run; report: Report }> {
  const run = await as2(["mdn-verify", "--config", config, "--json", ...args]);
  return { run, report: reportOf(run) };
}

function save(name: string, data: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

const b64mic = (alg: string, data: string) => createHash(alg).update(data).digest("base64");
const MIC256 = b64mic("sha256", "the original message");
const MIC1 = b64mic("sha1", "the original message");
const ORIGINAL_ID = "<20261122.120000.1@myco.example>";

interface MdnSpec {
  /** Machine-readable fields, one per line, as the product writes them. */
  fields: string[];
  /** The multipart/report Content-Type value (without boundary), as the product spells it. */
  reportType?: string;
  /** Fold the report Content-Type before the boundary with this (Mendelson: CRLF TAB). */
  fold?: string;
  /** Human part headers; "" = a part with no Content-Type (Sterling). */
  humanHeaders?: string;
  sign?: "sha1" | "sha256";
  /** base64 with a CTE (most), binary DER without CTE (Sterling), BER indefinite length (Mendelson). */
  signature?: "base64" | "binary" | "ber";
  signatureType?: string;
  micalg?: string;
  signer?: string;
}

/** A multipart/report, signed with openssl cms when asked: returns the Content-Type and body. */
function buildMdn(s: MdnSpec): { contentType: string; body: Buffer } {
  const rb = "REPORT-BOUNDARY-1";
  const human = `${s.humanHeaders ?? `Content-Type: text/plain${CRLF}Content-Transfer-Encoding: 7bit${CRLF}`}${CRLF}The message was received.${CRLF}`;
  const machine = `Content-Type: message/disposition-notification${CRLF}Content-Transfer-Encoding: 7bit${CRLF}${CRLF}${s.fields.join(CRLF)}${CRLF}`;
  const reportBody = `--${rb}${CRLF}${human}${CRLF}--${rb}${CRLF}${machine}${CRLF}--${rb}--${CRLF}`;
  const reportType = `${s.reportType ?? "multipart/report; report-type=disposition-notification;"}${s.fold ?? " "}boundary="${rb}"`;
  if (!s.sign) return { contentType: reportType, body: Buffer.from(reportBody, "latin1") };
  const part1 = Buffer.from(`Content-Type: ${reportType}${CRLF}${CRLF}${reportBody}`, "latin1");
  const part1File = save(`part1-${Math.random().toString(16).slice(2)}.mime`, part1);
  const signer = s.signer ?? "acme";
  const der = openssl(["cms", "-sign", "-binary", "-md", s.sign, "-signer", join(dir, `${signer}.crt`), "-inkey", join(dir, `${signer}.key`), "-in", part1File, "-outform", "DER", ...(s.signature === "ber" ? ["-stream"] : [])]);
  const sb = "SIGNED-BOUNDARY-2";
  const sigPart = s.signature === "binary"
    ? Buffer.concat([Buffer.from(`Content-Type: ${s.signatureType ?? "Application/pkcs7-signature;name=EDIINTSIG.p7s"}${CRLF}${CRLF}`, "latin1"), der])
    : Buffer.from(`Content-Type: ${s.signatureType ?? "application/pkcs7-signature; name=smime.p7s"}${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${der.toString("base64").replace(/.{76}/g, `$&${CRLF}`)}`, "latin1");
  const body = Buffer.concat([Buffer.from(`--${sb}${CRLF}`), part1, Buffer.from(`${CRLF}--${sb}${CRLF}`), sigPart, Buffer.from(`${CRLF}--${sb}--${CRLF}`)]);
  return { contentType: `multipart/signed; protocol="application/pkcs7-signature"; micalg=${s.micalg ?? (s.sign === "sha1" ? "sha1" : "sha-256")}; boundary="${sb}"`, body };
}

/** As `curl -i` saves a response. */
function httpCapture(m: { contentType: string; body: Buffer }, extra = ""): Buffer {
  return Buffer.concat([Buffer.from(`HTTP/1.1 200 OK${CRLF}AS2-From: ACME${CRLF}AS2-To: MYCO${CRLF}${extra}Content-Type: ${m.contentType}${CRLF}Content-Length: ${m.body.length}${CRLF}${CRLF}`, "latin1"), m.body]);
}

/** As the job log and the MDN file destination keep an MDN: MIME headers and body. */
function mimeEntity(m: { contentType: string; body: Buffer }): Buffer {
  return Buffer.concat([Buffer.from(`Content-Type: ${m.contentType}${CRLF}${CRLF}`, "latin1"), m.body]);
}

const FIELDS = (disposition: string, mic?: string) => [
  "Reporting-UA: openssl-built test MDN",
  "Original-Recipient: rfc822; ACME",
  "Final-Recipient: rfc822; ACME",
  `Original-Message-ID: ${ORIGINAL_ID}`,
  `Disposition: ${disposition}`,
  ...(mic ? [`Received-Content-MIC: ${mic}`] : []),
];
const PROCESSED = "automatic-action/MDN-sent-automatically; processed";

before(() => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  opensslIdentity("intruder", dir);
  config = save("as2.json", JSON.stringify({
    dataDir: "./data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: {
      acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "acme.crt" },
      // Whose certificate is not the one that signed: the signature must fail.
      impostor: { as2Id: "IMPOSTOR", url: "http://127.0.0.1:9/as2", certificate: "intruder.crt" },
      // Sends plain and asks unsigned MDNs: no certificate at all.
      nocert: { as2Id: "NOCERT", url: "http://127.0.0.1:9/as2", encrypt: false, mdn: { request: "unsigned" } },
    },
  }));
});

describe("as2 mdn-verify: MDNs built with openssl", () => {
  test("SHA-256 signed, positive, as an HTTP response: the partner is found by AS2-From; every check passes, exit 0", async () => {
    const file = save("sha256.http", httpCapture(buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha-256`), sign: "sha256" })));
    const { run, report } = await verify([file, "--mic", MIC256, "--mic-alg", "sha-256", "--message-id", ORIGINAL_ID]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(report.signer, "acme");
    assert.deepEqual(verdicts(report), { signature: "pass", signerCertificate: "pass", originalMessageId: "pass", disposition: "pass", mic: "pass" });
    assert.match(report.checks.signature.detail, /signed with sha256 by .*CN=acme/);
    assert.match(report.checks.signerCertificate.detail, /checked at the signing time/);
    // The human form: one line per check with its verdict, on stdout.
    const human = await as2(["mdn-verify", "--config", config, file, "--mic", MIC256, "--mic-alg", "sha-256", "--message-id", ORIGINAL_ID]);
    assert.equal(human.status, 0);
    for (const line of [/^PASS +signature +signed with sha256/m, /^PASS +signer certificate/m, /^PASS +Original-Message-ID +</m, /^PASS +disposition +automatic-action/m, /^PASS +MIC +.*equals the MIC given with --mic/m, /^verified: every applicable check passed$/m]) {
      assert.match(human.stdout, line);
    }
  });

  test("SHA-1 signed with RFC 3851 names (micalg=sha1, MIC token sha1), saved as a MIME entity, --partner: exit 0", async () => {
    const file = save("sha1.mdn", mimeEntity(buildMdn({ fields: FIELDS(PROCESSED, `${MIC1}, sha1`), sign: "sha1" })));
    const { run, report } = await verify([file, "--partner", "acme", "--mic", MIC1, "--mic-alg", "SHA1"]);
    assert.equal(run.status, 0, run.stdout);
    assert.match(report.checks.signature.detail, /signed with sha1/);
    assert.equal(report.checks.mic.verdict, "pass");
    assert.equal(report.mdn.form, "MIME entity");
  });

  test("unsigned, positive: the signature is not applicable (SKIP), the rest pass, exit 0", async () => {
    const file = save("unsigned.http", httpCapture(buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha-256`) })));
    const { run, report } = await verify([file, "--mic", MIC256, "--mic-alg", "sha256"]);
    assert.equal(run.status, 0, run.stdout);
    assert.equal(report.mdn.signed, false);
    assert.deepEqual(verdicts(report), { signature: "skip", signerCertificate: "skip", originalMessageId: "skip", disposition: "pass", mic: "pass" });
  });

  const negatives: Array<[string, string, RegExp]> = [
    ["processed/error: authentication-failed", `${PROCESSED.replace("processed", "processed/error: authentication-failed")}`, /authentication-failed/],
    ["the RFC 3798 form, processed/error + Error: (D3)", `${PROCESSED}/error`, /decryption-failed/],
    ["failed/Failure: unsupported MIC-algorithms", "automatic-action/MDN-sent-automatically; failed/Failure: unsupported MIC-algorithms", /unsupported MIC-algorithms/],
    ["OpenAS2's custom code signed-message-required (Q3, D4)", `${PROCESSED}/error: signed-message-required`, /signed-message-required/],
  ];
  for (const [name, disposition, reason] of negatives) {
    test(`negative, ${name}: disposition FAIL with the reason, no MIC is no second failure (M6), exit 1`, async () => {
      const fields = FIELDS(disposition);
      if (disposition.endsWith("processed/error")) fields.push("Error: decryption-failed");
      const file = save(`neg-${negatives.findIndex((n) => n[0] === name)}.http`, httpCapture(buildMdn({ fields, sign: "sha256" })));
      const { run, report } = await verify([file, "--mic", MIC256, "--mic-alg", "sha-256"]);
      assert.equal(run.status, 1, run.stdout);
      assert.equal(report.ok, false);
      assert.equal(report.checks.signature.verdict, "pass");
      assert.equal(report.checks.disposition.verdict, "fail");
      assert.match(report.checks.disposition.detail, reason);
      assert.equal(report.checks.mic.verdict, "skip");
    });
  }

  test("processed/warning: duplicate-document is a WARN, not a failure: exit 0", async () => {
    const fields = [...FIELDS(`${PROCESSED}/warning: duplicate-document`, `${MIC256}, sha-256`), "Warning: the document was received before"];
    const file = save("warning.http", httpCapture(buildMdn({ fields, sign: "sha256" })));
    const { run, report } = await verify([file, "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(run.status, 0, run.stdout);
    assert.equal(report.checks.disposition.verdict, "warn");
    assert.match(report.checks.disposition.detail, /duplicate-document.*received before/);
  });

  test("Sterling B2Bi spellings (Q1): Report-Type= in caps, no spaces, a human part without Content-Type, binary DER signature without CTE, no Reporting-UA", async () => {
    const fields = [
      "Original-Recipient: rfc822;ACME", "Final-Recipient: rfc822;ACME", `Original-Message-ID: ${ORIGINAL_ID}`,
      "Disposition: Automatic-action/mdn-sent-automatically;processed", `Received-content-MIC: ${MIC1},sha1`,
    ];
    const m = buildMdn({ fields, reportType: "Multipart/Report;Report-Type=disposition-notification;", fold: "", humanHeaders: "", sign: "sha1", signature: "binary", micalg: "sha1" });
    const file = save("sterling.http", httpCapture(m));
    const { run, report } = await verify([file, "--mic", MIC1, "--mic-alg", "sha1", "--message-id", ORIGINAL_ID]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.deepEqual(verdicts(report), { signature: "pass", signerCertificate: "pass", originalMessageId: "pass", disposition: "pass", mic: "pass" });
  });

  test("Mendelson (Q2, M4): signed with micalg=sha1 but the MIC in sha-256, the report Content-Type folded with a TAB, a BER indefinite-length signature", async () => {
    const m = buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha-256`), fold: `${CRLF}\t`, sign: "sha1", signature: "ber" });
    const der = Buffer.from(m.body.toString("latin1").split(`${CRLF}${CRLF}`).at(-1)!.split("--SIGNED")[0]!.replace(/\s+/g, ""), "base64");
    assert.deepEqual([...der.subarray(0, 2)], [0x30, 0x80], "the signature is BER with indefinite lengths");
    const file = save("mendelson.http", httpCapture(m));
    const { run, report } = await verify([file, "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(report.checks.signature.detail, /signed with sha1/);
    assert.equal(report.checks.mic.verdict, "pass");
  });

  test("pyas2lib (Q4): micalg=sha256 and Received-Content-MIC ..., sha256 (no hyphen): exit 0", async () => {
    const m = buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha256`), sign: "sha256", micalg: "sha256" });
    const { run } = await verify([save("pyas2lib.http", httpCapture(m)), "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
  });

  test("openssl's own S/MIME assembly (cms -sign -crlfeol) as the whole file: exit 0", async () => {
    const report = Buffer.from(`Content-Type: multipart/report; report-type=disposition-notification; boundary="R"${CRLF}${CRLF}--R${CRLF}Content-Type: text/plain${CRLF}${CRLF}ok${CRLF}--R${CRLF}Content-Type: message/disposition-notification${CRLF}${CRLF}${FIELDS(PROCESSED, `${MIC256}, sha-256`).join(CRLF)}${CRLF}--R--${CRLF}`, "latin1");
    const signed = openssl(["cms", "-sign", "-binary", "-crlfeol", "-md", "sha256", "-signer", join(dir, "acme.crt"), "-inkey", join(dir, "acme.key"), "-in", save("osmime.in", report)]);
    const { run, report: r } = await verify([save("openssl-smime.mdn", signed), "--partner", "acme", "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(r.checks.signature.verdict, "pass");
  });

  test("a body with its headers in a separate file (--headers, as curl -D saves them, after a 100 Continue)", async () => {
    const m = buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha-256`), sign: "sha256" });
    const headers = save("sep.headers", `HTTP/1.1 100 Continue${CRLF}${CRLF}HTTP/1.1 200 OK${CRLF}AS2-From: ACME${CRLF}Content-Type: ${m.contentType}${CRLF}${CRLF}`);
    const { run, report } = await verify([save("sep.body", m.body), "--headers", headers, "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.equal(report.signer, "acme");
    assert.equal(report.mdn.form, "body, headers from --headers");
  });

  test("a chunked HTTP capture is de-chunked; a body alone is read with the boundary of its first line, and says so", async () => {
    const m = buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha-256`), sign: "sha256" });
    const chunked = Buffer.concat([
      Buffer.from(`HTTP/1.1 200 OK${CRLF}AS2-From: ACME${CRLF}Content-Type: ${m.contentType}${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}`),
      Buffer.from(`${(1000).toString(16)}${CRLF}`), m.body.subarray(0, 1000), Buffer.from(CRLF),
      Buffer.from(`${(m.body.length - 1000).toString(16)} ${CRLF}`), m.body.subarray(1000), Buffer.from(`${CRLF}0${CRLF}${CRLF}`),
    ]);
    const a = await verify([save("chunked.http", chunked), "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(a.run.status, 0, a.run.stdout + a.run.stderr);
    const b = await verify([save("bare.body", m.body), "--partner", "acme", "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(b.run.status, 0, b.run.stdout + b.run.stderr);
    assert.ok(b.report.mdn.notes.some((n) => /no headers: read as multipart\/signed/.test(n)), JSON.stringify(b.report.mdn.notes));
    assert.match(b.run.stderr, /warning: the file has no headers/);
  });

  test("failures each fail their own check: tampered report, another signer, MIC mismatch, wrong Original-Message-ID", async () => {
    const m = buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha-256`), sign: "sha256" });
    const tampered = Buffer.from(m.body.toString("latin1").replace("Final-Recipient: rfc822; ACME", "Final-Recipient: rfc822; ACMX"), "latin1");
    const t = await verify([save("tampered.http", httpCapture({ ...m, body: tampered })), "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(t.run.status, 1);
    assert.equal(t.report.checks.signature.verdict, "fail");
    assert.equal(t.report.checks.mic.verdict, "pass");

    const other = await verify([save("other.http", httpCapture(m)), "--partner", "impostor", "--mic", MIC256, "--mic-alg", "sha-256"]);
    assert.equal(other.run.status, 1);
    assert.equal(other.report.checks.signature.verdict, "fail");

    const noCert = await verify([save("nocert.http", httpCapture(m)), "--partner", "nocert"]);
    assert.equal(noCert.run.status, 1);
    assert.match(noCert.report.checks.signature.detail, /no certificate to check it with: partner nocert has no certificate configured/);

    const mismatch = await verify([save("mismatch.http", httpCapture(m)), "--mic", MIC256.replace(/^./, (c) => (c === "A" ? "B" : "A")), "--mic-alg", "sha-256"]);
    assert.equal(mismatch.run.status, 1);
    assert.equal(mismatch.report.checks.mic.verdict, "fail");
    assert.match(mismatch.report.checks.mic.detail, /MIC mismatch/);

    const wrongId = await verify([save("wrongid.http", httpCapture(m)), "--message-id", "<another@myco.example>"]);
    assert.equal(wrongId.run.status, 1);
    assert.equal(wrongId.report.checks.originalMessageId.verdict, "fail");
    assert.match(wrongId.report.checks.mic.detail, /no job .* sent <another@myco.example>/);
  });

  test("usage: conflicting or incomplete flags, an unknown partner and a missing file exit 2; a file that is no MDN exits 1", async () => {
    const file = save("usage.http", httpCapture(buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha-256`), sign: "sha256" })));
    const cases: Array<[string[], RegExp]> = [
      [[file, "--mic", MIC256], /--mic needs --mic-alg/],
      [[file, "--mic", MIC256, "--mic-alg", "crc32"], /--mic-alg: "crc32" is not a MIC algorithm \(allowed: md5, sha1/],
      [[file, "--run", "20261122T120000000Z-0123456789ab", "--mic", MIC256, "--mic-alg", "sha1"], /--run and --mic exclude each other/],
      [[file, "--run", "../etc/passwd"], /--run: "..\/etc\/passwd" is not a run ID/],
      [[file, "--partner", "nobody"], /no partner "nobody" in the configuration \(configured: acme, impostor, nocert\)/],
      [[join(dir, "missing.mdn")], /<mdn-file>: cannot read .*missing.mdn: no such file/],
    ];
    for (const [args, message] of cases) {
      const r = await as2(["mdn-verify", "--config", config, ...args]);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "");
    }
    const html = await as2(["mdn-verify", "--config", config, save("error.http", `HTTP/1.1 500 Server Error${CRLF}Content-Type: text/html${CRLF}${CRLF}<html><body>Internal error</body></html>`)]);
    assert.equal(html.status, 1);
    assert.match(html.stderr, /AS2_ERR_MALFORMED_MDN: the response is not an MDN \(content type text\/html\): .*Internal error/);
  });
});

describe("as2 mdn-verify: MDNs captured from ph-OpenAS2", () => {
  const fixture = (name: string, ext: string) => join(FIXTURES, `${name}.${ext}`);
  /** The partner's certificate, as the fixture's source ships it inside the signature. */
  function certificateOf(name: string): string {
    const body = readFileSync(fixture(name, "body"), "latin1");
    const sig = body.split(`${CRLF}${CRLF}`).at(-1)!.split("------=")[0]!.replace(/\s+/g, "");
    return save(`${name}.crt`, openssl(["pkcs7", "-inform", "DER", "-print_certs"], Buffer.from(sig, "base64")));
  }
  let captured: string;
  before(() => {
    captured = save("captured.json", JSON.stringify({
      dataDir: "./data-captured",
      station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
      partners: {
        ctm: { as2Id: "ctm_mft", url: "http://127.0.0.1:9/as2", certificate: certificateOf("ph-openas2-4.4.4-processed") },
        peppol: { as2Id: "PDK000270", url: "http://127.0.0.1:9/as2", certificate: certificateOf("ph-openas2-4.2.1-error") },
      },
    }));
  });

  test("ph-OpenAS2 4.4.4, positive, SHA-1, quoted header values: every check passes against its MIC", async () => {
    const name = "ph-openas2-4.4.4-processed";
    const r = await as2(["mdn-verify", "--config", captured, "--json", fixture(name, "body"), "--headers", fixture(name, "headers"),
      "--mic", "WX3WE/vT631XugOIxrcgSd1YPVo=", "--mic-alg", "sha1", "--message-id", "<mftas2_07102019213832125_ctm_mft_ctm_mft_dedc08b2181a4553a0996dc5eb258615_mfttest_0>"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = reportOf(r);
    assert.equal(report.signer, "ctm", "found by its AS2-From");
    assert.deepEqual(verdicts(report), { signature: "pass", signerCertificate: "pass", originalMessageId: "pass", disposition: "pass", mic: "pass" });
    assert.ok(report.mdn.notes.some((n) => /wrapped whole in double quotes/.test(n)));
  });

  test("ph-OpenAS2 4.2.1, negative (processed/Error:unexpected-processing-error), certificate expired since but valid when it signed", async () => {
    const name = "ph-openas2-4.2.1-error";
    const r = await as2(["mdn-verify", "--config", captured, "--json", fixture(name, "body"), "--headers", fixture(name, "headers"), "--mic", "rjNsE2kpJPol7lf4jVDSkxbqT40=", "--mic-alg", "sha1"]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const report = reportOf(r);
    assert.equal(report.checks.signature.verdict, "pass");
    assert.equal(report.checks.signerCertificate.verdict, "pass");
    assert.match(report.checks.signerCertificate.detail, /valid until 2021-02-11.*checked at the signing time, 2019-09-24T20:39:21/);
    assert.equal(report.checks.disposition.verdict, "fail");
    assert.match(report.checks.disposition.detail, /unexpected-processing-error/);
    // A MIC in a negative MDN is still compared when it is there.
    assert.equal(report.checks.mic.verdict, "pass");
  });

  test("the captures as published (bare LF, folding TAB turned into spaces) do not verify: the signature check is real", async () => {
    const name = "ph-openas2-4.4.4-processed";
    const published = readFileSync(fixture(name, "body"), "latin1").replace(/\r\n/g, "\n").replace("\n\tboundary=", "\n  boundary=");
    const r = await as2(["mdn-verify", "--config", captured, "--json", save("published.body", published), "--headers", fixture(name, "headers")]);
    assert.equal(r.status, 1, r.stdout);
    assert.equal(reportOf(r).checks.signature.verdict, "fail");
  });
});

describe("as2 mdn-verify: MDNs of real send jobs (openssl receiver)", () => {
  let receiver: OpensslReceiver;
  let sendConfig: string;
  const payload = Buffer.from("UNB+UNOA:2+MYCO+ACME+261122:1200+1'\r\nUNH+1+ORDERS:D:96A:UN'\r\n".repeat(50));
  before(async () => {
    receiver = await startOpensslReceiver({
      dir, keyFile: join(dir, "acme.key"), certFile: join(dir, "acme.crt"), partnerCertFile: join(dir, "myco.crt"),
      otherKeyFile: join(dir, "intruder.key"), otherCertFile: join(dir, "intruder.crt"), bcClassDir: dir, as2Id: "ACME",
    });
    sendConfig = save("send.json", JSON.stringify({
      dataDir: "./data-send",
      station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
      partners: { acme: { as2Id: "ACME", url: receiver.url, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", mdn: { request: "signed", destination: "file", file: join(dir, "mdns", "acme.mdn") } } },
    }));
  });

  async function send(name: string, extra: string[] = []): Promise<{ job: JobRecord; mdnFile: string; file: string }> {
    const file = save(name, payload);
    const r = await as2(["send", "--config", sendConfig, "--partner", "acme", "--json", ...extra, file]);
    assert.equal(r.status, 0, r.stderr);
    const job = JSON.parse(r.stdout) as JobRecord;
    return { job, mdnFile: job.sendDetails![0]!.mdnFile!, file };
  }

  test("--run and --message-id take the MIC from the job log; every check passes; a different job's MDN fails", async () => {
    const { job, mdnFile } = await send("orders-1.edi");
    const viaRun = await as2(["mdn-verify", "--config", sendConfig, "--json", mdnFile, "--run", job.runId]);
    assert.equal(viaRun.status, 0, viaRun.stdout + viaRun.stderr);
    const report = reportOf(viaRun);
    assert.equal(report.signer, "acme", "the job's partner");
    assert.deepEqual(verdicts(report), { signature: "pass", signerCertificate: "pass", originalMessageId: "pass", disposition: "pass", mic: "pass" });
    assert.match(report.checks.mic.detail, new RegExp(`equals the MIC recorded when job ${job.runId} sent`));
    const viaId = await as2(["mdn-verify", "--config", sendConfig, mdnFile, "--message-id", job.files[0]!.as2MessageId!]);
    assert.equal(viaId.status, 0, viaId.stdout + viaId.stderr);

    const second = await send("orders-2.edi");
    const crossed = await as2(["mdn-verify", "--config", sendConfig, "--json", second.mdnFile, "--run", job.runId]);
    assert.equal(crossed.status, 1);
    assert.equal(reportOf(crossed).checks.originalMessageId.verdict, "fail");
    assert.match(reportOf(crossed).checks.originalMessageId.detail, new RegExp(`the MDN answers ${second.job.files[0]!.as2MessageId}, not ${job.files[0]!.as2MessageId}`));

    // A job of several files: the MDN must answer one of them.
    const two = await as2(["send", "--config", sendConfig, "--partner", "acme", "--json", save("orders-2a.edi", payload), save("orders-2b.edi", payload)]);
    assert.equal(two.status, 0, two.stderr);
    const twoJob = JSON.parse(two.stdout) as JobRecord;
    const stranger = await as2(["mdn-verify", "--config", sendConfig, "--json", mdnFile, "--run", twoJob.runId]);
    assert.equal(stranger.status, 1);
    assert.match(reportOf(stranger).checks.originalMessageId.detail, new RegExp(`which job ${twoJob.runId} did not send \\(it sent ${twoJob.files[0]!.as2MessageId}, ${twoJob.files[1]!.as2MessageId}\\)`));
    assert.match(reportOf(stranger).checks.mic.detail, new RegExp(`job ${twoJob.runId} did not send ${job.files[0]!.as2MessageId}`));

    const unknown = await as2(["mdn-verify", "--config", sendConfig, mdnFile, "--run", "20200101T000000000Z-000000000000"]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no job 20200101T000000000Z-000000000000/);
  });

  test("an unsigned MDN for a job that asked for a signed one fails the signature check (V4)", async () => {
    const { job } = await send("orders-3.edi");
    const d = job.sendDetails![0]!;
    const fields = FIELDS(PROCESSED, `${d.mic}, sha-256`).map((f) => f.replace(ORIGINAL_ID, d.as2MessageId));
    const r = await as2(["mdn-verify", "--config", sendConfig, "--json", save("unsigned-for-job.http", httpCapture(buildMdn({ fields }))), "--run", job.runId]);
    assert.equal(r.status, 1);
    const report = reportOf(r);
    assert.equal(report.checks.signature.verdict, "fail");
    assert.match(report.checks.signature.detail, /signed MDN was requested/);
    assert.equal(report.checks.mic.verdict, "pass");
  });

  test("--original recomputes the MIC: from the message as built (--dry-run --out) and from a bare payload; an encrypted original says why it cannot", async () => {
    const { job, mdnFile, file } = await send("orders-4.edi");
    const id = job.files[0]!.as2MessageId!;
    // The signed content (and so the MIC) does not depend on the Message-ID or on encryption.
    const plain = join(dir, "orders-4.as2");
    const dry = await as2(["send", "--config", sendConfig, "--partner", "acme", "--no-encrypt", "--dry-run", "--out", plain, file]);
    assert.equal(dry.status, 0, dry.stderr);
    const a = await as2(["mdn-verify", "--config", sendConfig, "--json", mdnFile, "--original", plain, "--message-id", id]);
    assert.equal(a.status, 0, a.stdout + a.stderr);
    assert.match(reportOf(a).checks.mic.detail, /equals the MIC recomputed from orders-4.as2 \(signed \(sha256\)\)/);

    const encrypted = join(dir, "orders-4-encrypted.as2");
    assert.equal((await as2(["send", "--config", sendConfig, "--partner", "acme", "--dry-run", "--out", encrypted, file])).status, 0);
    const b = await as2(["mdn-verify", "--config", sendConfig, "--json", mdnFile, "--original", encrypted, "--message-id", id]);
    assert.equal(b.status, 1);
    assert.match(reportOf(b).checks.mic.detail, /is encrypted for its recipient, so only the recipient can recompute its MIC/);

    // Unsigned and unencrypted: the MIC is over the payload alone (RFC 4130 §7.3.1).
    const bare = await send("orders-5.edi", ["--no-sign", "--no-encrypt", "--mic-alg", "sha256"]);
    const c = await as2(["mdn-verify", "--config", sendConfig, "--json", bare.mdnFile, "--original", bare.file]);
    assert.equal(c.status, 0, c.stdout + c.stderr);
    assert.match(reportOf(c).checks.mic.detail, /equals the sha256 of the whole of orders-5.edi/);
    assert.equal(reportOf(c).checks.mic.detail.split(",")[0], createHash("sha256").update(payload).digest("base64"));
  });
});

test("issue 13 case 4: a signature part that cannot be parsed still gives every check: signature FAIL with the reason, disposition and MIC checked, one JSON document", async () => {
  const good = buildMdn({ fields: FIELDS(PROCESSED, `${MIC256}, sha-256`), sign: "sha256" });
  // Replace the base64 signature with base64 of bytes that are no CMS at all.
  const text = good.body.toString("latin1");
  const sigStart = text.indexOf("Content-Transfer-Encoding: base64\r\n\r\n", text.indexOf("pkcs7-signature")) + "Content-Transfer-Encoding: base64\r\n\r\n".length;
  const sigEnd = text.indexOf("\r\n--SIGNED-BOUNDARY-2--");
  const broken = { contentType: good.contentType, body: Buffer.from(text.slice(0, sigStart) + Buffer.from("not a CMS SignedData at all").toString("base64") + text.slice(sigEnd), "latin1") };
  const { run, report } = await verify([save("unparseable-sig.http", httpCapture(broken)), "--mic", MIC256, "--mic-alg", "sha256", "--message-id", ORIGINAL_ID]);
  assert.equal(run.status, 1, run.stderr);
  assert.equal(report.checks.signature.verdict, "fail");
  assert.match(report.checks.signature.detail, /cannot be read/);
  assert.equal(report.checks.disposition.verdict, "pass");
  assert.equal(report.checks.mic.verdict, "pass");
  assert.equal(report.checks.originalMessageId.verdict, "pass");
  assert.equal(run.stdout.trim().split("\n").filter((l) => l.startsWith("{")).length, 1, "one JSON document");
  const plain = await as2(["mdn-verify", "--config", config, save("unparseable-sig2.http", httpCapture(broken)), "--mic", MIC256, "--mic-alg", "sha256"]);
  assert.equal(plain.status, 1);
  for (const label of ["signature", "signer certificate", "Original-Message-ID", "disposition", "MIC"]) assert.match(plain.stdout + plain.stderr, new RegExp(label), `the ${label} check is printed`);
});
