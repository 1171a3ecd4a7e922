// Multiple attachments (RFC 6362; as2-reference E2, E7): multipart/related built and split as
// streams, the CEM exception, the hostile-input limits, openMessage handing parts over with the
// MIC over the whole entity, and the partner gate over a real job store.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import {
  As2Error, ErrorCodes, buildMessage, buildRelated, collect, isAttachmentSet, openMessage, relatedBoundaryToken, splitRelated,
  type IncomingAttachment,
} from "../../src/core/index.js";
import { JobStore, newRunId, type JobRecord } from "../../src/store/index.js";
import { partnerTakesAttachments } from "../../src/jobs/multiple-attachments.js";
import { partnerSchema } from "../../src/config/schema.js";
import { chunks, tempDir } from "../helpers/tools.js";

const FILES = [
  { contentType: "application/edifact", filename: "order.edi", bytes: Buffer.from("UNB+UNOA:2+A+B'\r\nUNH+1'\n".repeat(30)) },
  // Binary with CR/LF, "--" and a line that starts like the boundary but is longer.
  { contentType: "application/octet-stream", filename: "blob.bin", bytes: Buffer.concat([randomBytes(3000), Buffer.from(`\r\n----=_as2kit_related_${relatedBoundaryToken("<x@y>")}X\r\n--\r\n`), randomBytes(100)]) },
  { contentType: "text/plain; charset=utf-8", filename: "Prüfbericht €.txt", bytes: Buffer.from("ä\r\n".repeat(10)) },
];

async function* from(b: Buffer): AsyncGenerator<Uint8Array> {
  yield b;
}

async function splitAll(contentType: string, body: AsyncIterable<Uint8Array>, max = 100): Promise<Array<Omit<IncomingAttachment, "body" | "headers"> & { bytes: Buffer }>> {
  const out = [];
  for await (const p of splitRelated(contentType, body, max)) out.push({ index: p.index, contentType: p.contentType, filename: p.filename, bytes: await collect(p.body, 1e8) });
  return out;
}

test("build -> split round trip at any chunking: types, RFC 2231 names and bytes survive", async () => {
  const entity = buildRelated(FILES.map((f) => ({ contentType: f.contentType, filename: f.filename, body: () => from(f.bytes) })), relatedBoundaryToken("<x@y>"));
  assert.equal(entity.contentType, `multipart/related; boundary="${entity.boundary}"; type="application/edifact"`);
  const body = await collect(entity.body(), 1e8);
  assert.match(body.toString("latin1"), /filename\*=UTF-8''Pr%C3%BCfbericht%20%E2%82%AC\.txt/);
  for (const size of [1, 7, 64, 100_000]) {
    const parts = await splitAll(entity.contentType, chunks(body, size));
    assert.deepEqual(parts.map((p) => [p.index, p.contentType, p.filename]), FILES.map((f, i) => [i, f.contentType, f.filename]), `chunks of ${size}`);
    parts.forEach((p, i) => assert.deepEqual(p.bytes, FILES[i]!.bytes, `part ${i} at chunks of ${size}`));
  }
});

test("the boundary follows from the Message-ID: a resend repeats it, another message does not", () => {
  assert.equal(relatedBoundaryToken("<a@b>"), relatedBoundaryToken("<a@b>"));
  assert.notEqual(relatedBoundaryToken("<a@b>"), relatedBoundaryToken("<a@c>"));
  assert.match(relatedBoundaryToken("<a@b>"), /^[0-9a-f]{24}$/);
});

test("isAttachmentSet: multipart/related, with or without type; never a CEM message (E7) or anything else", () => {
  assert.equal(isAttachmentSet('multipart/related; boundary="b"; type="application/edifact"'), true);
  assert.equal(isAttachmentSet("Multipart/Related; boundary=b"), true, "older Mendelson omits type (E2)");
  assert.equal(isAttachmentSet('multipart/related; boundary="b"; type="application/ediint-cert-exchange+xml"'), false);
  assert.equal(isAttachmentSet('multipart/related; boundary="b"; type="Application/EDIINT-cert-exchange+XML"'), false);
  assert.equal(isAttachmentSet("multipart/signed; boundary=b"), false);
  assert.equal(isAttachmentSet("application/edifact"), false);
  assert.equal(isAttachmentSet(undefined), false);
});

test("hostile or broken sets fail clearly: no closing delimiter, a part without Content-Type, too many parts, none at all", async () => {
  const ct = 'multipart/related; boundary="b1"; type="text/plain"';
  const part = (n: number) => `--b1\r\nContent-Type: text/plain\r\n\r\npart ${n}\r\n`;
  const fails = async (body: string, code: string, message: RegExp, max = 100) => {
    await assert.rejects(splitAll(ct, from(Buffer.from(body)), max), (e: unknown) => e instanceof As2Error && e.code === code && message.test(e.message));
  };
  await fails(part(1) + part(2), ErrorCodes.TRUNCATED, /closing boundary/);
  await fails(`${part(1)}--b1\r\n\r\nno headers\r\n--b1--\r\n`, ErrorCodes.MALFORMED_MIME, /attachment 2 .* no Content-Type/);
  await fails(`${part(1)}--b1\r\nContent-Disposition: attachment; filename=x\r\n\r\nx\r\n--b1--\r\n`, ErrorCodes.MALFORMED_MIME, /no Content-Type/);
  await fails(`${[1, 2, 3, 4].map(part).join("")}--b1--\r\n`, ErrorCodes.LIMIT_EXCEEDED, /more than 3 attachments/, 3);
  await fails("--b1--\r\n", ErrorCodes.MALFORMED_MIME, /holds no attachment/);
  await assert.rejects(splitAll("multipart/related", from(Buffer.from(part(1)))), /no boundary/);
  // The limit itself must be a real number (0 is not "unlimited").
  await assert.rejects(splitAll(ct, from(Buffer.from(part(1))), 0), /positive integer/);
});

test("openMessage hands the parts over and hashes the whole entity (RFC 6362 §2.3); a CEM payload goes to onPayload whole", async () => {
  const entity = buildRelated(FILES.map((f) => ({ contentType: f.contentType, filename: f.filename, body: () => from(f.bytes) })), relatedBoundaryToken("<m@x>"));
  const built = buildMessage({ from: "A", to: "B", payload: entity.body(), contentType: entity.contentType, messageId: "<m@x>" });
  const body = await collect(built.body, 1e8);
  const { mic } = await built.done;
  // Plain: the MIC is the body's digest (RFC 4130 §7.3.1 b3), the whole multipart/related.
  assert.equal(mic.base64, createHash("sha256").update(body).digest("base64"));
  const got: Array<{ name?: string; bytes: Buffer }> = [];
  const opened = await openMessage({
    headers: built.headers, body: chunks(body, 333), decryptionKeys: [], signerCertificates: [],
    onPayload: async () => assert.fail("a set of attachments is not one payload"),
    onAttachments: async (_info, parts) => {
      for await (const p of parts) got.push({ name: p.filename, bytes: await collect(p.body, 1e8) });
    },
  });
  assert.equal(opened.mic.base64, mic.base64);
  assert.deepEqual(got.map((g) => g.name), FILES.map((f) => f.filename));
  got.forEach((g, i) => assert.deepEqual(g.bytes, FILES[i]!.bytes));

  const cem = Buffer.from('--c\r\nContent-Type: application/ediint-cert-exchange+xml\r\n\r\n<EDIINTCertificateExchangeRequest/>\r\n--c--\r\n');
  let whole: Buffer | undefined;
  await openMessage({
    headers: { "content-type": 'multipart/related; boundary="c"; type="application/ediint-cert-exchange+xml"' }, body: from(cem), decryptionKeys: [], signerCertificates: [],
    onPayload: async (_info, b) => { whole = await collect(b, 1e6); },
    onAttachments: async () => assert.fail("a CEM message is not split (E7)"),
  });
  assert.deepEqual(whole, cem);
});

test("the partner gate: true / false / auto from the partner's most recent advertised EDIINT-Features", async () => {
  const jobs = new JobStore(tempDir());
  const partner = (v: unknown) => partnerSchema.parse({ as2Id: "ACME", url: "http://127.0.0.1:9/as2", multipleAttachments: v });
  const rec = (at: string, type: JobRecord["type"], features: string[] | undefined, p = "acme"): JobRecord => ({
    runId: newRunId(new Date(at)), type, command: "transfer", partner: p, senderId: "MYCO", receiverId: "ACME", startedBy: "t", host: "h", pid: 1,
    startTime: at, state: "SUCCESS", statusCode: 0, files: [], messages: [],
    ...(type === "AS2 Receive" ? { receiveDetails: features ? { ediintFeatures: features } : {} } : { sendDetails: features ? [{ partnerFeatures: features } as never] : [] }),
  });
  assert.deepEqual(await partnerTakesAttachments(jobs, "acme", partner(true)), { allowed: true, reason: "partners.acme.multipleAttachments is true" });
  assert.equal((await partnerTakesAttachments(jobs, "acme", partner(false))).allowed, false);
  assert.equal(partner(undefined).multipleAttachments, "auto", "the default");
  let v = await partnerTakesAttachments(jobs, "acme", partner("auto"));
  assert.equal(v.allowed, false);
  assert.match(v.reason, /no recorded message or MDN of acme advertised/);
  await jobs.save(rec("2026-01-01T00:00:00Z", "AS2 Send", ["Multiple-Attachments", "AS2-Reliability"]));
  assert.equal((await partnerTakesAttachments(jobs, "acme", partner("auto"))).allowed, true, "tokens compared without case");
  // A newer message of the partner without the token wins; a newer job that recorded nothing
  // from it, and another partner's job, do not count.
  await jobs.save(rec("2026-01-02T00:00:00Z", "AS2 Receive", ["CEM", "AS2-Reliability"]));
  await jobs.save(rec("2026-01-03T00:00:00Z", "AS2 Send", undefined));
  await jobs.save(rec("2026-01-04T00:00:00Z", "AS2 Receive", ["multiple-attachments"], "other"));
  v = await partnerTakesAttachments(jobs, "acme", partner("auto"));
  assert.equal(v.allowed, false);
  assert.match(v.reason, /are "CEM, AS2-Reliability", without multiple-attachments/);
  await jobs.save(rec("2026-01-05T00:00:00Z", "AS2 Receive", ["multiple-attachments"]));
  assert.equal((await partnerTakesAttachments(jobs, "acme", partner("auto"))).allowed, true);
});
