/**
 * E-mail receipts (issue 17), the rules without a network: which mailto: Receipt-Delivery-Options
 * are mailed (hostile input must not make the receiver a mail relay or smuggle SMTP commands or
 * headers), the mail built from a stored MDN (7-bit, the MDN bytes unchanged), and the smtp
 * configuration. The real relay is in test/e2e/mdn-email.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { validateConfig, type As2Config } from "../../src/config/index.js";
import { buildMdn, createSelfSignedCertificate, parseEntityBytes, parseMdn } from "../../src/core/index.js";
import { mailtoAddress, refusedAsyncMdnUrl } from "../../src/jobs/async-mdn-urls.js";
import { MailFailure, notSevenBitSafe, toMail } from "../../src/jobs/mdn-mail.js";
import { replyMdn } from "../../src/jobs/receive/reply-mdn.js";
import type { Services } from "../../src/jobs/receive/services.js";

const BASE = {
  station: { as2Id: "MYCO", key: { pem: "k.pem", certificate: "c.pem" } },
  smtp: { host: "smtp.myco.example", username: "relay", password: "${SMTP_PASS}", from: "as2@myco.example" },
  partners: { acme: { as2Id: "ACME", url: "https://as2.acme.example/as2", certificate: "acme.crt", inbound: { asyncMdnUrls: ["https://as2.acme.example/*", "mailto:*@acme.example", "mailto:edi@partner-of-acme.example"] } } },
};

function config(patch: Record<string, unknown> = {}): As2Config {
  const r = validateConfig({ ...BASE, ...patch }, { SMTP_PASS: "pw" });
  assert.deepEqual(r.problems, []);
  return r.config!;
}

test("mailto: is mailed only to an address a mailto: entry of inbound.asyncMdnUrls allows, and only with smtp", () => {
  const c = config();
  const acme = c.partners.acme!;
  const refused = (url: string, cfg = c) => refusedAsyncMdnUrl(cfg.partners.acme, url, cfg.smtp);
  for (const ok of ["mailto:edi@acme.example", "MAILTO:EDI@ACME.EXAMPLE", "mailto:as2.receipts+x@acme.example", "mailto:edi%40acme.example", "mailto:edi@partner-of-acme.example"]) {
    assert.equal(refused(ok), undefined, ok);
  }
  const hostile: Array<[string, RegExp]> = [
    ["mailto:edi@elsewhere.example", /not allowed for this partner \(inbound\.asyncMdnUrls has only mailto:\*@acme\.example, mailto:edi@partner-of-acme\.example\)/],
    ["mailto:edi@sub.acme.example", /not allowed for this partner/],
    ["mailto:other@partner-of-acme.example", /not allowed for this partner/],
    ["mailto:edi@acme.example.evil.example", /not allowed for this partner/],
    // Another recipient, or SMTP commands / mail headers smuggled through the address.
    ["mailto:edi@acme.example,victim@evil.example", /one address/],
    ["mailto:edi@acme.example%2Cvictim@evil.example", /one address/],
    ["mailto:edi@acme.example?cc=victim@evil.example", /no header fields/],
    ["mailto:edi@acme.example?body=x", /no header fields/],
    ["mailto:victim@evil.example%0D%0ARCPT%20TO:%3Cedi@acme.example%3E", /not a plain e-mail address/],
    ["mailto:edi@acme.example%0D%0ABcc:%20victim@evil.example", /not a plain e-mail address/],
    ["mailto:victim@evil.example%40acme.example", /not a plain e-mail address/],
    ["mailto:@evil.example:edi@acme.example", /not a plain e-mail address/],
    ["mailto:%22victim%20x%22@acme.example", /not a plain e-mail address/],
    ["mailto:victim@evil.example%20(edi@acme.example)", /not a plain e-mail address/],
    ["mailto:edi@acme.example%", /bad percent-encoding/],
    ["mailto:", /not a plain e-mail address/],
  ];
  for (const [url, why] of hostile) assert.match(refused(url) ?? "allowed", why, url);
  // Without smtp every mailto: is refused, naming the key; the http(s) rules are unchanged.
  const noSmtp = config({ smtp: undefined });
  assert.match(refused("mailto:edi@acme.example", noSmtp) ?? "", /not allowed: e-mail receipts need a mail relay, and no smtp is configured/);
  assert.equal(refused("https://as2.acme.example/mdn", noSmtp), undefined);
  assert.match(refused("https://evil.example/mdn") ?? "", /not allowed for this partner \(inbound\.asyncMdnUrls: https:\/\/as2\.acme\.example\/\*\)/);
  // The default (no asyncMdnUrls: the origin of url) allows no address.
  const byDefault = config({ partners: { acme: { ...BASE.partners.acme, inbound: {} } } });
  assert.match(refusedAsyncMdnUrl(byDefault.partners.acme, "mailto:edi@acme.example", byDefault.smtp) ?? "", /has no mailto: entry/);
  assert.equal(refusedAsyncMdnUrl(byDefault.partners.acme, "https://as2.acme.example/x", byDefault.smtp), undefined);
  assert.equal(acme.inbound.asyncMdnUrls!.length, 3);
  assert.deepEqual(mailtoAddress("mailto:edi%40acme.example"), { address: "edi@acme.example" });
});

test("the mail: mail headers, the MDN's own headers, the MDN body byte for byte; refused when SMTP cannot carry it", async () => {
  const c = config({ smtp: { ...BASE.smtp, from: "MYCO \"AS2\" <as2@myco.example>" } });
  const { key, certificate } = await createSelfSignedCertificate({ commonName: "MYCO", keyBits: 1024, notBefore: new Date(Date.UTC(2026, 0, 1)), notAfter: new Date(Date.UTC(2028, 0, 1)) });
  const built = buildMdn({
    original: { messageId: "<orig-1@acme>", from: "ACME", to: "MYCO" }, disposition: { type: "processed" },
    sign: { digest: "sha256", key, certificate }, now: () => new Date(Date.UTC(2026, 11, 2, 15, 0, 0)),
  });
  const stored = { headers: built.headers.list, body: built.body.toString("base64") };
  const mail = toMail(c.smtp!, "edi@acme.example", stored);
  assert.equal(mail.from, "as2@myco.example");
  const e = parseEntityBytes(mail.raw);
  assert.equal(e.headers.get("from"), "\"MYCO AS2\" <as2@myco.example>");
  assert.equal(e.headers.get("to"), "edi@acme.example");
  assert.equal(e.headers.get("date"), "Wed, 02 Dec 2026 15:00:00 +0000");
  assert.equal(e.headers.get("message-id"), built.messageId);
  assert.equal(e.headers.get("content-type"), built.headers.get("content-type"));
  assert.equal(e.headers.get("as2-from"), "MYCO");
  assert.deepEqual(e.body, built.body);
  assert.equal(parseMdn(e.headers, e.body).originalMessageId, "<orig-1@acme>");
  assert.equal(notSevenBitSafe(mail.raw), undefined);
  // An MDN that is not 7-bit clean is not re-encoded (that would break its signature): refused for good.
  const eightBit = { ...stored, body: Buffer.concat([built.body, Buffer.from("caf\xe9\r\n", "latin1")]).toString("base64") };
  assert.throws(() => toMail(c.smtp!, "edi@acme.example", eightBit), (e: unknown) => e instanceof MailFailure && e.permanent && /8-bit/.test(e.message));
  const longLine = { ...stored, body: Buffer.concat([built.body, Buffer.from(`${"x".repeat(999)}\r\n`)]).toString("base64") };
  assert.throws(() => toMail(c.smtp!, "edi@acme.example", longLine), /longer than 998/);
  assert.match(notSevenBitSafe(Buffer.from("a\nb")) ?? "", /bare LF/);
});

test("smtp configuration: defaults, username with password, a valid from, secrets hidden, mailto: patterns in asyncMdnUrls", () => {
  const c = config();
  assert.deepEqual({ port: c.smtp!.port, secure: c.smtp!.secure, ca: c.smtp!.ca, password: c.smtp!.password }, { port: 587, secure: false, ca: [], password: "pw" });
  const problems = (patch: Record<string, unknown>, env: Record<string, string> = { SMTP_PASS: "pw" }) => validateConfig({ ...BASE, ...patch }, env).problems.map((p) => `${p.path}: ${p.message}`).join("\n");
  assert.match(problems({ smtp: { host: "h", from: "a@b.example", username: "u" } }), /smtp\.password: username and password go together/);
  assert.match(problems({ smtp: { host: "h", from: "not an address" } }), /smtp\.from: must be an e-mail address/);
  assert.match(problems({ smtp: { host: "h", from: "a@b.example\r\nBcc: x@evil.example" } }), /smtp\.from: must be an e-mail address/);
  assert.match(problems({ smtp: { host: "h", from: "a@b.example", port: 0 } }), /smtp\.port/);
  assert.match(problems({ smtp: { from: "a@b.example" } }), /smtp\.host/);
  assert.match(problems({ smtp: { ...BASE.smtp, relay: "x" } }), /smtp/);
  assert.match(problems({}, {}), /smtp\.password: environment variable SMTP_PASS is not set/);
  const typed = problems({ smtp: { ...BASE.smtp, password: 987654321 } });
  assert.match(typed, /smtp\.password/);
  assert.ok(!typed.includes("987654321"), typed);
  assert.match(problems({ partners: { acme: { ...BASE.partners.acme, inbound: { asyncMdnUrls: ["mailto:nobody"] } } } }), /asyncMdnUrls\[0\]: "mailto:nobody": must be an http\(s\):\/\/ URL pattern or a mailto: address pattern/);
});

test("an MDN built for a mailto: option is 7-bit even when the partner's Subject and a file name are not", async () => {
  const c = config();
  const { key, certificate } = await createSelfSignedCertificate({ commonName: "MYCO", keyBits: 1024, notBefore: new Date(Date.UTC(2026, 0, 1)), notAfter: new Date(Date.UTC(2028, 0, 1)) });
  const s = { keys: { station: { key, certificate } }, now: () => new Date(Date.UTC(2026, 11, 2, 15, 0, 0)) } as unknown as Services;
  const subject = `Bestellung f\u00fcr M\u00e4rz ${"x".repeat(2000)}`;
  const request = (asyncUrl: string) => ({ wanted: true, signed: true, micAlgorithm: "sha256", subject, date: "Wed, 02 Dec 2026 15:00:00 GMT", to: "MYCO", asyncUrl });
  const skipped = `a file named ${"\u00e9".repeat(300)}.edi exists; kept the existing one`;
  const build = (asyncUrl: string) => replyMdn(s, { from: "ACME", messageId: "<orig-2@acme>", mdnRequest: request(asyncUrl) }, { type: "processed", modifier: "warning", description: "duplicate-filename" }, skipped).mdn!;
  const mailed = build("mailto:edi@acme.example");
  const mail = toMail(c.smtp!, "edi@acme.example", mailed);
  assert.equal(notSevenBitSafe(mail.raw), undefined);
  const parsed = parseMdn(parseEntityBytes(mail.raw).headers, parseEntityBytes(mail.raw).body);
  assert.equal(parsed.originalMessageId, "<orig-2@acme>");
  assert.match(parsed.humanText ?? "", /Bestellung f\?r M\?rz x+/);
  // Over HTTP the MDN keeps the texts as they were (the body is binary there).
  const posted = build("https://as2.acme.example/mdn");
  assert.throws(() => toMail(c.smtp!, "edi@acme.example", posted), /cannot be mailed unchanged/);
});
