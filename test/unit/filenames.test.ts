/**
 * File names beyond ASCII and hostile ones (issue 12 case 4): RFC 2231 `filename*` read before
 * `filename` (UTF-8, ISO-8859-1, continuations), written beside an ASCII fallback when a name is
 * not ASCII, and every control character (C0, DEL, C1, bidi, line separators) gone when stored.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildMessage, collect, dispositionFilename, formatContentDisposition, fromBytes, openMessage, parseParameterized } from "../../src/core/index.js";
import { sanitizeFilename } from "../../src/jobs/inbox.js";

const params = (v: string) => parseParameterized(v).params;

test("filename* (RFC 2231) wins over filename; UTF-8, ISO-8859-1 and continuations; bad UTF-8 falls back to filename", () => {
  assert.equal(dispositionFilename(params(`attachment; filename="EUR rates.txt"; filename*=UTF-8''%E2%82%AC%20rates.txt`)), "€ rates.txt");
  assert.equal(dispositionFilename(params(`attachment; filename*=iso-8859-1'de'Gr%FC%DFe.edi`)), "Grüße.edi");
  assert.equal(dispositionFilename(params(`attachment; filename*0*=UTF-8''%E8%AE%A2; filename*1*=%E5%8D%95.x12`)), "订单.x12");
  assert.equal(dispositionFilename(params(`attachment; filename*0="long"; filename*1="name.edi"`)), "longname.edi");
  assert.equal(dispositionFilename(params(`attachment; filename="plain.edi"; filename*=UTF-8''%FF%FE`)), "plain.edi");
  assert.equal(dispositionFilename(params(`attachment; filename="plain.edi"`)), "plain.edi");
});

test("non-ASCII names are written as filename* with an ASCII fallback, and open to the same name", async () => {
  for (const name of ["заказ.edi", "订单-😀.x12", "Grüße.edi", "plain name.edi"]) {
    const value = formatContentDisposition(name);
    assert.match(value, /^[ -~]+$/, "the header is ASCII");
    assert.equal(dispositionFilename(params(value)), name);
    const msg = buildMessage({ from: "A", to: "B", payload: fromBytes(Buffer.from("x")), contentType: "text/plain", filename: name, sign: false, encrypt: false });
    const body = await collect(msg.body, 1 << 20);
    let seen: string | undefined;
    await openMessage({ headers: msg.headers, body: fromBytes(body), decryptionKeys: [], signerCertificates: [], onPayload: async (info, b) => { seen = info.filename; await collect(b, 1 << 20); } });
    assert.equal(seen, name);
  }
});

test("stored names lose C0, DEL, C1, bidi and line-separator controls, folders and traversal; non-Latin letters stay", () => {
  assert.equal(sanitizeFilename("a\u0085b\u009fc.edi", "<m@x>"), "a_b_c.edi");
  assert.equal(sanitizeFilename("invoice\u202Etxt.exe", "<m@x>"), "invoice_txt.exe");
  assert.equal(sanitizeFilename("x\u2028y\u0000z\u007f.edi", "<m@x>"), "x_y_z_.edi");
  assert.equal(sanitizeFilename("../../etc/passwd", "<m@x>"), "passwd");
  assert.equal(sanitizeFilename("..\\..\\boot.ini", "<m@x>"), "boot.ini");
  assert.equal(sanitizeFilename("заказ 订单.edi", "<m@x>"), "заказ 订单.edi");
  assert.equal(sanitizeFilename("\u0085\u202E", "<m@x>"), "__");
});
