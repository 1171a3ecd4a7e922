/**
 * MDNs (RFC 4130 §7.4, RFC 3798, RFC 3462): build (signed or unsigned, for sync or async
 * delivery), parse leniently (vendor variants of as2-reference.md Q1-Q6, F4, D3), and verify
 * with a verdict per check (architecture.md §3.5: "no MIC" is not success).
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { As2Error, ErrorCodes, isAs2Error } from "../errors.js";
import { ascii, asBuffer } from "../bytes.js";
import { Headers, parseContentType, parseHeaderBlock, formatParameterized } from "../mime/headers.js";
import { parseEntityBytes } from "../mime/entity.js";
import { splitMultipart, checkBoundary } from "../mime/multipart.js";
import { decodeTransfer, parseTransferEncoding } from "../mime/encoding.js";
import { DIGESTS, type DigestAlgorithm, micAlgorithmName, normalizeMicAlgorithm, type MicNaming } from "../cms/digests.js";
import { createDetachedSignature, parseSignedData, verifyDetachedSignature, type ParsedSignature, type SignatureScheme, type SignatureVerification } from "../cms/signed.js";
import type { Certificate } from "../certs/certificate.js";
import { formatAs2Name, formatHttpDate, generateMessageId, normalizeMessageId } from "../message/as2-name.js";
import { multipartSignedType, signatureTail, signaturePartBytes } from "../message/signature-part.js";
import { AS2_VERSION, EDIINT_FEATURES, type MessageMic } from "../message/build.js";
import { classifyDisposition, formatDisposition, parseDisposition, type Disposition, type DispositionClass, type DispositionSpec } from "./disposition.js";

export interface BuildMdnOptions {
  /** What the request said (the MDN echoes it: AS2-From/To swapped, Original-Message-ID as received, I3). */
  original: { messageId: string; from: string; to: string; subject?: string; date?: string };
  disposition: DispositionSpec;
  /** Error:/Warning:/Failure: text (RFC 3798 §3.2.7-3.2.9). */
  detail?: string;
  /** Received-Content-MIC; the algorithm token is echoed as the partner spelled it when known. */
  mic?: { base64: string; algorithm: DigestAlgorithm; token?: string };
  sign?: { digest: DigestAlgorithm; key: crypto.KeyObject; certificate: Certificate; scheme?: SignatureScheme; token?: string } | false;
  reportingUa?: string;
  micNaming?: MicNaming;
  now?: () => Date;
  randomBytes?: (n: number) => Buffer;
  messageId?: string;
  /** Human-readable part; a summary is written when omitted (P6). */
  humanText?: string;
}

export interface BuiltMdn {
  messageId: string;
  /** Headers for the HTTP response (sync) or the MDN POST (async): X1, X3. */
  headers: Headers;
  body: Buffer;
  signed: boolean;
}

function ensureText(v: string, what: string): string {
  if (/[\r\n]/.test(v)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `${what} must be a single line`);
  return v;
}

export function buildMdn(o: BuildMdnOptions): BuiltMdn {
  const now = o.now ?? (() => new Date());
  const random = o.randomBytes ?? crypto.randomBytes;
  const date = now();
  const naming = o.micNaming ?? "rfc5751";
  // F6: the MDN's own Message-ID differs from the original's.
  const messageId = o.messageId ?? generateMessageId(date, random(8).toString("hex"), o.original.to);
  const ourName = formatAs2Name(o.original.to);
  const lines = [
    `Reporting-UA: ${ensureText(o.reportingUa ?? "as2kit", "Reporting-UA")}`,
    `Original-Recipient: rfc822; ${ourName}`, // N5: quoted like the headers
    `Final-Recipient: rfc822; ${ourName}`,
    `Original-Message-ID: ${ensureText(o.original.messageId, "Original-Message-ID")}`,
    `Disposition: ${formatDisposition(o.disposition)}`,
  ];
  if (o.detail) {
    const field = o.disposition.modifier === "warning" ? "Warning" : o.disposition.type === "failed" ? "Failure" : "Error";
    lines.push(`${field}: ${o.detail.replace(/[\r\n]+/g, " ")}`);
  }
  if (o.mic) lines.push(`Received-Content-MIC: ${o.mic.base64}, ${o.mic.token ?? micAlgorithmName(o.mic.algorithm, naming)}`);
  const outcome = o.disposition.type === "processed" && !o.disposition.modifier
    ? "was received and processed successfully"
    : `was received, but processing reported: ${formatDisposition(o.disposition).split("; ")[1]}${o.detail ? ` (${o.detail.replace(/[\r\n]+/g, " ")})` : ""}`;
  const human = o.humanText ?? [
    `The AS2 message ${o.original.messageId} sent by ${formatAs2Name(o.original.from)} to ${ourName}`,
    `${o.original.subject ? `(subject: ${o.original.subject.replace(/[\r\n]+/g, " ")}${o.original.date ? `, sent ${o.original.date}` : ""}) ` : ""}${outcome}.`,
  ].join("\r\n");

  const reportBoundary = `----=_as2kit_report_${random(12).toString("hex")}`;
  const reportType = formatParameterized("multipart/report", { "report-type": "disposition-notification", boundary: reportBoundary }, ["boundary"]);
  const reportBody =
    `--${reportBoundary}\r\n` +
    "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
    `${human}\r\n` +
    `--${reportBoundary}\r\n` +
    "Content-Type: message/disposition-notification\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
    `${lines.join("\r\n")}\r\n\r\n` +
    `--${reportBoundary}--\r\n`;

  const headers = new Headers([
    { name: "AS2-Version", value: AS2_VERSION },
    { name: "EDIINT-Features", value: EDIINT_FEATURES },
    { name: "AS2-From", value: formatAs2Name(o.original.to) },
    { name: "AS2-To", value: formatAs2Name(o.original.from) },
    { name: "Message-ID", value: messageId },
    { name: "Date", value: formatHttpDate(date) },
    { name: "Subject", value: "AS2 MDN" },
    { name: "MIME-Version", value: "1.0" },
  ]);
  let body: Buffer;
  if (o.sign) {
    // F2: part 1 is the whole multipart/report entity with its Content-Type line.
    const part1 = ascii(`Content-Type: ${reportType}\r\n\r\n${reportBody}`);
    const boundary = `----=_as2kit_signed_${random(12).toString("hex")}`;
    const digest = crypto.createHash(DIGESTS[o.sign.digest].node).update(part1).digest();
    const cms = createDetachedSignature(digest, { digest: o.sign.digest, key: o.sign.key, certificate: o.sign.certificate, scheme: o.sign.scheme, signingTime: date });
    headers.set("Content-Type", multipartSignedType(o.sign.digest, boundary, naming));
    body = Buffer.concat([ascii(`--${boundary}\r\n`), part1, ascii(signatureTail(cms, boundary))]);
  } else {
    headers.set("Content-Type", reportType);
    body = ascii(reportBody);
  }
  return { messageId, headers, body, signed: !!o.sign };
}

export interface ParsedMic {
  base64: string;
  digest: Buffer;
  /** The token as sent (sha-256, SHA256, ...). */
  token: string;
  algorithm?: DigestAlgorithm;
}

export interface ParsedMdn {
  headers: Headers;
  signed: boolean;
  /** For a signed MDN: the raw signed bytes (part 1) and the parsed signature. */
  signedPart?: Buffer;
  signature?: ParsedSignature;
  /** A signed MDN whose signature part could not be read: why (the signature check fails with it). */
  signatureError?: string;
  humanText?: string;
  /** All machine-readable fields, names lower-cased, first occurrence. */
  fields: Record<string, string>;
  reportingUa?: string;
  originalRecipient?: string;
  finalRecipient?: string;
  originalMessageId?: string;
  disposition?: Disposition;
  dispositionClass: DispositionClass;
  /** Error/Warning/Failure field texts. */
  errors: string[];
  warnings: string[];
  failures: string[];
  mic?: ParsedMic;
  /** Problems tolerated while parsing. */
  notes: string[];
}

/** `Received-content-MIC: <b64>, <alg>` split on the first comma, lenient on spaces and case (M5). */
export function parseReceivedContentMic(value: string): ParsedMic | undefined {
  const comma = value.indexOf(",");
  if (comma < 0) return undefined;
  const base64 = value.slice(0, comma).replace(/\s+/g, "");
  const token = value.slice(comma + 1).trim();
  if (!base64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return undefined;
  return { base64, digest: Buffer.from(base64, "base64"), token, algorithm: normalizeMicAlgorithm(token) };
}

function parseFields(text: string): Record<string, string> & { __all?: never } {
  const headers = parseHeaderBlock(text.replace(/^\s+/, ""));
  const out: Record<string, string> = {};
  for (const h of headers.list) {
    const n = h.name.toLowerCase();
    if (!(n in out)) out[n] = h.value;
  }
  return out;
}

function allFields(text: string, name: string): string[] {
  return parseHeaderBlock(text.replace(/^\s+/, "")).list.filter((h) => h.name.toLowerCase() === name).map((h) => h.value);
}

/** The address of `rfc822; ID` (F4: the type token is case-insensitive, spaces optional). */
function recipientAddress(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const semi = v.indexOf(";");
  return (semi >= 0 ? v.slice(semi + 1) : v).trim();
}

/**
 * Parses an MDN from its headers (HTTP response or MIME headers) and body. Accepts a signed MDN
 * (multipart/signed around multipart/report) or an unsigned one (V1); anything else - an HTML
 * error page, say - is an AS2_ERR_MALFORMED_MDN that quotes what came instead.
 */
export function parseMdn(headersIn: Headers | Record<string, string | string[] | undefined>, bodyIn: Uint8Array): ParsedMdn {
  const headers = headersIn instanceof Headers ? headersIn : Headers.from(headersIn);
  const body = asBuffer(bodyIn);
  const notes: string[] = [];
  const ct = parseContentType(headers.get("content-type"));
  let reportType = ct;
  let reportBody = body;
  let signedPart: Buffer | undefined;
  let signature: ParsedSignature | undefined;
  let signatureError: string | undefined;
  const notMdn = (what: string) => {
    const preview = body.subarray(0, 200).toString("latin1").replace(/\s+/g, " ").trim();
    return new As2Error(ErrorCodes.MALFORMED_MDN, `the response is not an MDN (${what})${preview ? `: ${preview}` : ""}`);
  };
  if (ct.mediaType === "multipart/signed") {
    const parts = splitMultipart(body, checkBoundary(ct.params.boundary));
    if (parts.length < 2) throw notMdn("multipart/signed with fewer than two parts");
    signedPart = parts[0]!.raw;
    const inner = parseEntityBytes(signedPart);
    reportType = parseContentType(inner.headers.get("content-type"));
    reportBody = decodeTransfer(inner.body, parseTransferEncoding(inner.headers.get("content-transfer-encoding")));
    // An unreadable signature must not hide the rest of the MDN (issue 13 case 4): it is kept as
    // a failed signature check, and the disposition and MIC are still read and reported.
    try {
      signature = parseSignedData(signaturePartBytes(parseEntityBytes(parts[1]!.raw)));
    } catch (e) {
      if (!isAs2Error(e)) throw e;
      signatureError = e.message;
      notes.push(`the signature part cannot be read: ${e.message}`);
    }
  }
  if (reportType.mediaType !== "multipart/report") throw notMdn(`content type ${reportType.mediaType || "missing"}`);
  if ((reportType.params["report-type"] ?? "").toLowerCase() !== "disposition-notification") {
    notes.push(`multipart/report has report-type "${reportType.params["report-type"] ?? ""}" instead of disposition-notification`);
  }
  const parts = splitMultipart(reportBody, checkBoundary(reportType.params.boundary)).map((p) => parseEntityBytes(p.raw));
  let machine = parts.find((p) => parseContentType(p.headers.get("content-type")).mediaType === "message/disposition-notification");
  if (!machine && parts.length >= 2) {
    machine = parts[1];
    notes.push("the second report part is not labelled message/disposition-notification");
  }
  if (!machine) throw new As2Error(ErrorCodes.MALFORMED_MDN, "the MDN has no message/disposition-notification part");
  const text = decodeTransfer(machine.body, parseTransferEncoding(machine.headers.get("content-transfer-encoding") ?? "7bit")).toString("latin1");
  const fields = parseFields(text);
  const humanPart = parts.find((p) => p !== machine);
  const disposition = fields.disposition ? parseDisposition(fields.disposition) : undefined;
  if (disposition && disposition.modifier === "error" && !disposition.description && fields.error) disposition.description = fields.error; // RFC 3798 form, D3
  const micField = fields["received-content-mic"];
  const mic = micField ? parseReceivedContentMic(micField) : undefined;
  if (micField && !mic) notes.push(`unreadable Received-Content-MIC "${micField}"`);
  if (mic && !mic.algorithm) notes.push(`unknown MIC algorithm "${mic.token}"`);
  return {
    headers,
    signed: !!signature || signatureError !== undefined,
    signedPart,
    signature,
    ...(signatureError !== undefined ? { signatureError } : {}),
    humanText: humanPart ? humanPart.body.toString("latin1") : undefined,
    fields,
    reportingUa: fields["reporting-ua"],
    originalRecipient: recipientAddress(fields["original-recipient"]),
    finalRecipient: recipientAddress(fields["final-recipient"]),
    originalMessageId: fields["original-message-id"],
    disposition,
    dispositionClass: classifyDisposition(disposition),
    errors: allFields(text, "error"),
    warnings: allFields(text, "warning"),
    failures: allFields(text, "failure"),
    mic,
    notes,
  };
}

export type Verdict = "pass" | "fail" | "warn" | "skip";
export interface Check {
  verdict: Verdict;
  detail: string;
}

export interface MdnVerification {
  ok: boolean;
  checks: {
    signature: Check;
    signerCertificate: Check;
    originalMessageId: Check;
    disposition: Check;
    mic: Check;
  };
  signer?: SignatureVerification;
}

export interface VerifyMdnOptions {
  /** The partner's certificates for the MDN signature. */
  partnerCertificates: readonly Certificate[];
  /** The Message-ID we sent (compared after normalisation, I3). */
  expectedMessageId?: string;
  /** The MIC(s) recorded at send time (M4: keep one per algorithm the partner may answer with). */
  expectedMics?: readonly MessageMic[];
  /** We asked for a signed MDN: an unsigned one fails (V4) unless allowUnsigned. */
  requireSigned?: boolean;
  /** Clock for certificate validity (injected). */
  now?: Date;
}

/** Verifies a parsed MDN: each check gets its own verdict; ok only if none failed. */
export function verifyMdn(mdn: ParsedMdn, o: VerifyMdnOptions): MdnVerification {
  const checks: MdnVerification["checks"] = {
    signature: { verdict: "skip", detail: "" },
    signerCertificate: { verdict: "skip", detail: "" },
    originalMessageId: { verdict: "skip", detail: "" },
    disposition: { verdict: "skip", detail: "" },
    mic: { verdict: "skip", detail: "" },
  };
  let signer: SignatureVerification | undefined;
  if (mdn.signature && mdn.signedPart) {
    const algs = new Set(mdn.signature.signers.map((s) => s.digest));
    const digests = new Map<DigestAlgorithm, Map<string, Buffer>>();
    for (const a of algs) {
      const variants = new Map<string, Buffer>([["raw", crypto.createHash(DIGESTS[a].node).update(mdn.signedPart).digest()]]);
      // C4 fallback: some products sign the canonical (CRLF) form of what they send with LF.
      const canon: Buffer = Buffer.from(mdn.signedPart.toString("latin1").replace(/\r?\n/g, "\r\n"), "latin1");
      if (!canon.equals(mdn.signedPart)) variants.set("canonical-crlf", crypto.createHash(DIGESTS[a].node).update(canon).digest());
      // Header lines that lost their CR, body as signed (issue 13 case 3).
      const headerEnd = /\r?\n\r?\n/.exec(mdn.signedPart.toString("latin1"));
      if (headerEnd) {
        const cut = headerEnd.index + headerEnd[0].length;
        const head = Buffer.from(mdn.signedPart.subarray(0, cut).toString("latin1").replace(/\r?\n/g, "\r\n"), "latin1");
        const headersCrlf = Buffer.concat([head, mdn.signedPart.subarray(cut)]);
        if (!headersCrlf.equals(mdn.signedPart) && !headersCrlf.equals(canon)) variants.set("headers-crlf", crypto.createHash(DIGESTS[a].node).update(headersCrlf).digest());
      }
      digests.set(a, variants);
    }
    try {
      signer = verifyDetachedSignature(mdn.signature, digests, o.partnerCertificates);
      checks.signature = { verdict: "pass", detail: `signed with ${signer.digest}${signer.scheme === "rsassa-pss" ? " (RSASSA-PSS)" : ""} by ${signer.signer.describe()}${signer.matchedVariant !== "raw" ? `, after ${signer.matchedVariant} canonicalisation` : ""}` };
      if (o.now) {
        const v = signer.signer.checkValidity(o.now);
        checks.signerCertificate = v.valid
          ? { verdict: "pass", detail: `valid until ${v.notAfter.toISOString()}` }
          : { verdict: "warn", detail: v.expired ? `the signer's certificate expired on ${v.notAfter.toISOString()}` : `the signer's certificate is not valid before ${v.notBefore.toISOString()}` };
      }
    } catch (e) {
      checks.signature = { verdict: "fail", detail: (e as Error).message };
    }
  } else if (mdn.signatureError !== undefined) {
    checks.signature = { verdict: "fail", detail: `the signature cannot be read: ${mdn.signatureError}` };
  } else {
    checks.signature = o.requireSigned
      ? { verdict: "fail", detail: "a signed MDN was requested, but this one is not signed (V4)" }
      : { verdict: "skip", detail: "the MDN is not signed" };
  }
  if (o.expectedMessageId !== undefined) {
    if (!mdn.originalMessageId) checks.originalMessageId = { verdict: "fail", detail: "the MDN has no Original-Message-ID" };
    else if (normalizeMessageId(mdn.originalMessageId) === normalizeMessageId(o.expectedMessageId)) checks.originalMessageId = { verdict: "pass", detail: mdn.originalMessageId };
    else checks.originalMessageId = { verdict: "fail", detail: `the MDN answers ${mdn.originalMessageId}, not ${o.expectedMessageId}` };
  }
  const d = mdn.disposition;
  if (!d) checks.disposition = { verdict: "fail", detail: mdn.fields.disposition ? `unreadable Disposition "${mdn.fields.disposition}"` : "the MDN has no Disposition" };
  else if (mdn.dispositionClass === "ok") checks.disposition = { verdict: "pass", detail: d.raw };
  else if (mdn.dispositionClass === "warning") checks.disposition = { verdict: "warn", detail: `${d.raw}${mdn.warnings.length ? ` (${mdn.warnings.join("; ")})` : ""}` };
  else checks.disposition = { verdict: "fail", detail: `${d.raw}${[...mdn.errors, ...mdn.failures].length ? ` (${[...mdn.errors, ...mdn.failures].join("; ")})` : ""}` };
  if (o.expectedMics && o.expectedMics.length) {
    const m = mdn.mic;
    if (!m) {
      // M6: only a successful disposition must carry the MIC; "no MIC" is never success.
      checks.mic = mdn.dispositionClass === "negative" ? { verdict: "skip", detail: "no MIC (the disposition is negative)" } : { verdict: "fail", detail: "the MDN has no Received-Content-MIC" };
    } else if (!m.algorithm) {
      checks.mic = { verdict: "fail", detail: `unknown MIC algorithm "${m.token}"` };
    } else {
      const expected = o.expectedMics.find((x) => x.algorithm === m.algorithm);
      if (!expected) checks.mic = { verdict: "fail", detail: `the MDN's MIC uses ${m.algorithm}; the MIC recorded at send time is ${o.expectedMics.map((x) => x.algorithm).join("/")}` };
      else if (expected.digest.equals(m.digest)) checks.mic = { verdict: "pass", detail: `${m.base64}, ${m.token}` };
      else checks.mic = { verdict: "fail", detail: `MIC mismatch: the partner computed ${m.base64}, we sent ${expected.base64} (${m.algorithm})` };
    }
  }
  const ok = Object.values(checks).every((c) => c.verdict !== "fail");
  return { ok, checks, signer };
}
