/**
 * What the partner's answer means for one sent file: the HTTP response of the POST (with a sync
 * MDN in it, RFC 4130 §7.3), or an async MDN that arrives later. The MDN is verified on the spot
 * (signature, Original-Message-ID, disposition, MIC against the one computed at build time) and
 * kept where the profile says (contract §4 mdn.destination).
 */
import { Buffer } from "node:buffer";
import { appendFile, mkdir, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import {
  As2Error, ErrorCodes, Headers, parseContentType, parseMdn, verifyMdn, type Certificate, type DigestAlgorithm,
  type MdnVerification, type MessageMic, type ParsedMdn,
} from "../core/index.js";
import type { MdnChecks, MdnMessage, SendDetail } from "../store/records.js";
import { writeFileAtomic } from "../store/atomic-file.js";
import type { PostResponse } from "../transport/index.js";
import type { PartnerConfig } from "../config/schema.js";
import { freeName } from "./free-name.js";

export interface Outcome {
  status: "SUCCESS" | "FAILED" | "AWAITING_MDN";
  error?: { code: string; message: string };
  deliveryStatus: "Delivered" | "Not Delivered" | "No Status";
  mdnStatus: "Pending" | "Received" | "Not Requested" | "No MDN";
  mdnMessage?: MdnMessage;
  mdnChecks?: MdnChecks;
  /** Problems that did not fail the file (a warning disposition, an expired signer certificate). */
  warnings: string[];
  /** The raw MDN, for the file destination. */
  rawMdn?: Buffer;
}

export interface ReceiptContext {
  detail: Pick<SendDetail, "as2MessageId" | "mic" | "micAlgorithm" | "mdnRequest" | "mdnMode" | "mdnDestination">;
  partnerCertificates: readonly Certificate[];
  now: Date;
  /** The partner's interop settings (issue 13): how strictly a missing MIC counts. */
  quirks?: Pick<PartnerConfig["quirks"], "unsignedMdnMic" | "signedMdnWithoutMic">;
}

/**
 * A positive MDN without Received-Content-MIC: optional in an unsigned receipt (as2-reference M6;
 * OpenAS2 sends none when asked for no signature), so a warning there unless the partner's
 * quirks.unsignedMdnMic is "required"; in a signed one a failure unless quirks.signedMdnWithoutMic
 * is "warn" (pyas2lib signs receipts for unsigned messages without a MIC).
 */
function relaxMissingMic(v: MdnVerification, mdn: ParsedMdn, ctx: ReceiptContext): void {
  if (mdn.mic || mdn.dispositionClass === "negative" || v.checks.mic.verdict !== "fail") return;
  const lenient = mdn.signed ? ctx.quirks?.signedMdnWithoutMic === "warn" : ctx.quirks?.unsignedMdnMic !== "required";
  if (!lenient) return;
  v.checks.mic = { verdict: "warn", detail: `${v.checks.mic.detail} (${mdn.signed ? "quirks.signedMdnWithoutMic is \"warn\"" : "optional in an unsigned MDN; quirks.unsignedMdnMic makes it required"})` };
  v.ok = Object.values(v.checks).every((c) => c.verdict !== "fail");
}

const is2xx = (s: number) => s >= 200 && s < 300;

function preview(body: Buffer): string {
  const text = body.subarray(0, 300).toString("latin1").replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
  return text ? `: ${text}${body.length > 300 ? " ..." : ""}` : "";
}

/** The MDN as received: its headers and body, lossless (latin1 keeps every byte). */
export function rawMdnOf(headers: Headers, body: Buffer): Buffer {
  const head = headers.list.map((h) => `${h.name}: ${h.value}\r\n`).join("");
  return Buffer.concat([Buffer.from(`${head}\r\n`, "latin1"), body]);
}

export function responseHeaders(res: PostResponse): Headers {
  const h = new Headers();
  for (const [name, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    for (const value of Array.isArray(v) ? v : [v]) h.list.push({ name, value });
  }
  return h;
}

function looksLikeMdn(headers: Headers): boolean {
  const t = parseContentType(headers.get("content-type")).mediaType;
  return t === "multipart/report" || t === "multipart/signed";
}

function failedChecks(v: MdnVerification): string {
  return Object.entries(v.checks).filter(([, c]) => c.verdict === "fail").map(([name, c]) => `${name}: ${c.detail}`).join("; ");
}

/** Verifies a parsed MDN against what we sent, and turns the verdicts into the file's outcome. */
export function judgeMdn(mdn: ParsedMdn, raw: Buffer, ctx: ReceiptContext): Outcome {
  const expected: MessageMic = { algorithm: ctx.detail.micAlgorithm as DigestAlgorithm, digest: Buffer.from(ctx.detail.mic, "base64"), base64: ctx.detail.mic };
  const v = verifyMdn(mdn, {
    partnerCertificates: ctx.partnerCertificates,
    expectedMessageId: ctx.detail.as2MessageId,
    expectedMics: [expected],
    requireSigned: ctx.detail.mdnRequest === "signed",
    now: ctx.now,
  });
  relaxMissingMic(v, mdn, ctx);
  const warnings = Object.entries(v.checks).filter(([, c]) => c.verdict === "warn").map(([name, c]) => `MDN ${name}: ${c.detail}`);
  const mdnMessage: MdnMessage = {
    persistedTimestamp: ctx.now.getTime(),
    content: ctx.detail.mdnDestination === "joblog" ? raw.toString("latin1") : "",
    disposition: mdn.disposition?.raw ?? mdn.fields.disposition,
    mic: mdn.mic?.base64,
    micAlgorithm: mdn.mic?.token,
    signed: mdn.signed,
    // Contract §7: whether the MDN itself reports an error (a negative disposition); why a file
    // failed, when it did, goes in errorReason.
    mdnError: mdn.dispositionClass === "negative",
  };
  const base = { deliveryStatus: "Delivered" as const, mdnStatus: "Received" as const, mdnChecks: v.checks, warnings, rawMdn: raw, mdnMessage };
  if (mdn.dispositionClass === "negative") {
    const reason = `the partner answered with a negative MDN: ${v.checks.disposition.detail}`;
    mdnMessage.errorReason = reason;
    return { ...base, status: "FAILED", error: { code: ErrorCodes.MDN_NEGATIVE, message: reason } };
  }
  if (!v.ok) {
    const reason = `the MDN does not confirm the message: ${failedChecks(v)}`;
    mdnMessage.errorReason = reason;
    return { ...base, status: "FAILED", error: { code: ErrorCodes.MDN_VERIFICATION_FAILED, message: reason } };
  }
  return { ...base, status: "SUCCESS" };
}

/** The outcome of the POST: HTTP status, and the sync MDN when one was requested (or sent anyway). */
export function judgeResponse(res: PostResponse, ctx: ReceiptContext): Outcome {
  const headers = responseHeaders(res);
  const http = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
  const wantsSync = ctx.detail.mdnRequest !== "none" && ctx.detail.mdnMode === "sync";
  if (wantsSync || looksLikeMdn(headers)) {
    if (looksLikeMdn(headers) || (wantsSync && is2xx(res.status))) {
      try {
        return judgeMdn(parseMdn(headers, res.body), rawMdnOf(headers, res.body), ctx);
      } catch (e) {
        if (!(e instanceof As2Error) || !wantsSync) throw e;
        return {
          status: "FAILED", deliveryStatus: is2xx(res.status) ? "Delivered" : "Not Delivered", mdnStatus: "No MDN", warnings: [],
          error: { code: e.code, message: is2xx(res.status) ? `a synchronous MDN was requested, but the ${http} response is not one: ${e.message.replace(/^the response is not an MDN /, "")}` : `${http}${preview(res.body)}` },
        };
      }
    }
  }
  if (!is2xx(res.status)) {
    const suggestion = res.status === 401 ? " (check the partner's username and password)"
      : res.status >= 300 && res.status < 400 ? ` (redirected to ${String(res.headers.location ?? "?")}; set followRedirects to follow)` : "";
    return { status: "FAILED", deliveryStatus: "Not Delivered", mdnStatus: ctx.detail.mdnRequest === "none" ? "Not Requested" : "No MDN", warnings: [], error: { code: ErrorCodes.HTTP_STATUS, message: `the partner answered ${http}${suggestion}${preview(res.body)}` } };
  }
  if (ctx.detail.mdnRequest === "none") return { status: "SUCCESS", deliveryStatus: "Delivered", mdnStatus: "Not Requested", warnings: [] };
  // Async: accepted now, confirmed when the MDN comes (RFC 4130 §7.3).
  return { status: "AWAITING_MDN", deliveryStatus: "Delivered", mdnStatus: "Pending", warnings: [] };
}

export type WhenExists = "rename" | "append" | "overwrite" | "skip" | "error";

/**
 * Writes an MDN to the file destination, honouring whenExists. Returns where it went, or
 * undefined when skipped. New files appear whole (temp file + rename).
 */
export async function writeMdnFile(path: string, raw: Buffer, whenExists: WhenExists): Promise<string | undefined> {
  await mkdir(dirname(path), { recursive: true });
  const exists = await stat(path).then(() => true, () => false);
  let target = path;
  if (exists) {
    if (whenExists === "skip") return undefined;
    if (whenExists === "error") throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `the MDN file ${path} exists (mdn.whenExists is "error")`);
    if (whenExists === "append") {
      await appendFile(path, Buffer.concat([raw, Buffer.from("\r\n")]));
      return path;
    }
    if (whenExists === "rename") target = await freeName(dirname(path), basename(path));
  }
  await writeFileAtomic(target, raw);
  return target;
}
