// Golden bytes of built messages with injected clock, randomness and IDs (architecture.md §3.7).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { buildMessage, collect } from "../../src/core/index.js";
import { opensslIdentity, tempDir } from "../helpers/tools.js";

const fixed = { now: () => new Date("2024-01-01T12:00:00Z"), randomBytes: (n: number) => Buffer.alloc(n, 0x11) };
const BODY = Buffer.from("UNB+UNOA:2+SENDER+RECEIVER+240101:1200+1'UNZ+0+1'", "latin1");

test("golden: plain message with a signed async MDN request (E-1 headers, T2: MIME headers travel as HTTP headers)", async () => {
  const m = buildMessage({
    ...fixed, from: "Acme Corp", to: "PARTNER01", payload: BODY, contentType: "application/edifact", filename: "order.edi", subject: "EDIFACT ORDERS",
    receipt: { notificationTo: "as2@acme.example", signed: true, micAlgorithms: ["sha256", "sha1"], asyncUrl: "https://as2.acme.example/mdn?tp=partner01" },
  });
  assert.deepEqual(m.headers.list, [
    { name: "AS2-Version", value: "1.2" },
    { name: "EDIINT-Features", value: "multiple-attachments, CEM, AS2-Reliability" },
    { name: "AS2-From", value: '"Acme Corp"' },
    { name: "AS2-To", value: "PARTNER01" },
    { name: "Message-ID", value: "<as2kit-20240101T120000Z-1111111111111111@Acme_Corp>" },
    { name: "Date", value: "Mon, 01 Jan 2024 12:00:00 GMT" },
    { name: "Subject", value: "EDIFACT ORDERS" },
    { name: "MIME-Version", value: "1.0" },
    { name: "Disposition-Notification-To", value: "as2@acme.example" },
    { name: "Disposition-Notification-Options", value: "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256, sha1" },
    { name: "Receipt-Delivery-Option", value: "https://as2.acme.example/mdn?tp=partner01" },
    { name: "Content-Type", value: "application/edifact" },
    { name: "Content-Disposition", value: "attachment; filename=order.edi" },
  ]);
  assert.deepEqual(await collect(m.body, 1e6), BODY);
  // RFC 4130 §7.3.1 b3: unsigned, unencrypted: the MIC covers the body only (E-2 vector)
  assert.equal((await m.done).mic.base64, "o2Ub4SWrUU+SrQ7GS6FkOPh/HWWaBNLiURLo7VQYwRY=");
});

test("golden: signed message skeleton (everything but the signature bytes) and its MIC", async () => {
  const dir = tempDir();
  const id = opensslIdentity("golden", dir);
  const m = buildMessage({ ...fixed, from: "ACME", to: "PARTNER01", payload: BODY, contentType: "application/edifact", filename: "order.edi", sign: { digest: "sha256", key: id.key, certificate: id.certificate } });
  const b = "----=_as2kit_111111111111111111111111";
  assert.equal(m.headers.get("Content-Type"), `multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="${b}"`);
  const text = (await collect(m.body, 1e6)).toString("latin1");
  const part1 = "Content-Type: application/edifact\r\nContent-Transfer-Encoding: binary\r\nContent-Disposition: attachment; filename=order.edi\r\n\r\n" + BODY.toString("latin1");
  const prefix = `--${b}\r\n${part1}\r\n--${b}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7s\r\n\r\n`;
  assert.ok(text.startsWith(prefix));
  assert.ok(text.endsWith(`\r\n--${b}--\r\n`));
  const sigLines = text.slice(prefix.length, -(`\r\n--${b}--\r\n`.length)).split("\r\n");
  assert.ok(sigLines.every((l) => /^[A-Za-z0-9+/=]{1,76}$/.test(l)));
  const { createHash } = await import("node:crypto");
  assert.equal((await m.done).mic.base64, createHash("sha256").update(part1, "latin1").digest("base64"));
});
