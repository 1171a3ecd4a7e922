/**
 * CEM documents and payloads (src/core/cem; as2-reference E7, E8): built and read back; the
 * certs-only PKCS#7 read by openssl (an independent reader); hostile and malformed documents
 * refused with AS2_ERR_CEM_INVALID or AS2_ERR_LIMIT_EXCEEDED, never a crash.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  As2Error, CEM_NAMESPACE, buildCemRequestPayload, buildCemResponseXml, buildCertsOnly, certificateIdentifierOf, openCemPayload,
  parseCemRequestXml, parseCemResponseXml, sameIdentifier, type CemRequest,
} from "../../src/core/index.js";
import { openssl, opensslIdentity, tempDir } from "../helpers/tools.js";

const dir = tempDir();
const id = opensslIdentity("cemcore", dir);

function request(overrides: Partial<CemRequest> = {}): CemRequest {
  return {
    requestId: "REQ-1", as2Name: "A & <B>",
    trustRequests: [
      { usage: "digitalSignature", responseUrl: "http://127.0.0.1:1/as2", respondBy: new Date("2030-01-02T03:04:05Z"), certificate: certificateIdentifierOf(id.certificate), contentId: "cert-1@x" },
      { usage: "keyEncipherment", responseUrl: "http://127.0.0.1:1/as2", respondBy: new Date("2030-01-02T03:04:05Z"), certificate: certificateIdentifierOf(id.certificate), contentId: "cert-1@x" },
    ],
    ...overrides,
  };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof As2Error, `not an As2Error: ${(e as Error).stack}`);
    return e.code;
  }
  return "no error";
}

test("a request payload round-trips: XML fields (escaped), the certificate by its Content-ID; openssl reads the certs-only part", () => {
  const built = buildCemRequestPayload(request(), new Map([["cert-1@x", id.certificate]]), "b-1");
  assert.match(built.contentType, /^multipart\/related; boundary="b-1"; type="application\/ediint-cert-exchange\+xml"; start="<REQ-1\.xml@as2kit>"$/);
  assert.ok(built.body.includes(`xmlns="${CEM_NAMESPACE}"`));
  assert.ok(built.body.includes("A &amp; &lt;B&gt;"));
  const opened = openCemPayload(built.contentType, built.body);
  assert.equal(opened.kind, "request");
  if (opened.kind !== "request") return;
  assert.equal(opened.request.as2Name, "A & <B>");
  assert.deepEqual(opened.request.trustRequests.map((t) => t.usage), ["digitalSignature", "keyEncipherment"]);
  assert.equal(opened.request.trustRequests[0]!.respondBy.toISOString(), "2030-01-02T03:04:05.000Z");
  assert.ok(opened.certificates.get("cert-1@x")!.der.equals(id.certificate.der));
  const printed = openssl(["pkcs7", "-inform", "DER", "-print_certs", "-noout"], buildCertsOnly([id.certificate])).toString();
  assert.match(printed, /CN\s*=\s*cemcore/);
});

test("a response round-trips, as the XML alone or wrapped in multipart/related", () => {
  const xml = buildCemResponseXml({ requestId: "REQ-1", as2Name: "B", trustResponses: [{ status: "Rejected", reason: "key < 2048 & old", certificate: certificateIdentifierOf(id.certificate) }] });
  const r = parseCemResponseXml(xml);
  assert.equal(r.trustResponses[0]!.reason, "key < 2048 & old");
  assert.ok(sameIdentifier(r.trustResponses[0]!.certificate, certificateIdentifierOf(id.certificate)));
  const wrapped = Buffer.from(`--w\r\nContent-Type: application/ediint-cert-exchange+xml\r\n\r\n${xml}\r\n--w--\r\n`);
  const opened = openCemPayload('multipart/related; boundary=w; type="application/ediint-cert-exchange+xml"', wrapped);
  assert.equal(opened.kind, "response");
});

test("hostile and malformed documents are refused cleanly", () => {
  const good = Buffer.from(buildCemResponseXml({ requestId: "R", as2Name: "B", trustResponses: [{ status: "Accepted", certificate: certificateIdentifierOf(id.certificate) }] })).toString();
  const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><EDIINTCertificateExchangeResponse xmlns="${CEM_NAMESPACE}" requestId="&lol2;"/>`;
  const cases: Array<[string, string | Buffer, string]> = [
    ["entity expansion (DOCTYPE)", laughs, "AS2_ERR_CEM_INVALID"],
    ["external entity", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`, "AS2_ERR_CEM_INVALID"],
    ["huge", `<a>${"x".repeat(300 * 1024)}</a>`, "AS2_ERR_LIMIT_EXCEEDED"],
    ["not well-formed", good.replace("</TrustResponse>", ""), "AS2_ERR_CEM_INVALID"],
    ["wrong namespace", good.replace(CEM_NAMESPACE, "urn:other"), "AS2_ERR_CEM_INVALID"],
    ["no requestId", good.replace('requestId="R"', ""), "AS2_ERR_CEM_INVALID"],
    ["bad status", good.replace("<CertStatus>Accepted", "<CertStatus>Maybe"), "AS2_ERR_CEM_INVALID"],
    ["no serial", good.replace(/<ds:X509SerialNumber>\d+<\/ds:X509SerialNumber>/, ""), "AS2_ERR_CEM_INVALID"],
    ["not XML at all", "\u0000\u0001garbage", "AS2_ERR_CEM_INVALID"],
    ["empty", "", "AS2_ERR_CEM_INVALID"],
  ];
  for (const [name, doc, code] of cases) assert.equal(codeOf(() => parseCemResponseXml(doc)), code, name);
  const req = buildCemRequestPayload(request(), new Map([["cert-1@x", id.certificate]]), "b-2");
  const body = req.body.toString();
  assert.equal(codeOf(() => parseCemRequestXml(body.replace("digitalSignature", "everything"))), "AS2_ERR_CEM_INVALID", "unknown usage (XML alone is not multipart)");
  assert.equal(codeOf(() => openCemPayload(req.contentType, Buffer.from(body.replace(/<RespondByDate>[^<]+/, "<RespondByDate>tomorrow")))), "AS2_ERR_CEM_INVALID", "bad date");
  assert.equal(codeOf(() => openCemPayload(req.contentType, Buffer.from(body.replace(/<CertificateContentID>cert-1@x/g, "<CertificateContentID>missing@x")))), "AS2_ERR_CEM_INVALID", "certificate part missing");
  assert.equal(codeOf(() => openCemPayload(req.contentType, Buffer.from(body.replace(/--b-2--\r\n$/, "")))), "AS2_ERR_CEM_INVALID", "no closing boundary");
  assert.equal(codeOf(() => openCemPayload(req.contentType, Buffer.alloc(2 * 1024 * 1024, 0x41))), "AS2_ERR_LIMIT_EXCEEDED", "huge payload");
  const many = `<EDIINTCertificateExchangeRequest xmlns="${CEM_NAMESPACE}" requestId="x"><TradingPartnerInfo><Name qualifier="AS2">A</Name></TradingPartnerInfo>${"<TrustRequest/>".repeat(17)}</EDIINTCertificateExchangeRequest>`;
  assert.equal(codeOf(() => parseCemRequestXml(many)), "AS2_ERR_CEM_INVALID", "too many TrustRequests");
});
