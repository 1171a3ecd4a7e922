/**
 * `as2 mdn-verify` (contract §2): checks a saved MDN offline. The MDN may be a whole HTTP
 * response, a MIME entity (job log, MDN file destination) or a body with its headers apart. What
 * it must confirm comes from a job record (the MIC computed at send time, RFC 4130 §7.3.1 and
 * as2-reference M4), from the user (`--mic`), or is recomputed from the original message (§7).
 * Each check keeps its own verdict, as on the send side (architecture §3.5, as2-reference V1-V4).
 */
import { createHash } from "node:crypto";
import {
  As2Error, DIGESTS, ErrorCodes, Headers, normalizeMessageId, normalizeMicAlgorithm, openMessage, parseMdn, readCapturedEntity,
  parseAs2Name, verifyMdn, type Certificate, type DigestAlgorithm, type MessageMic, type ParsedMdn, fromBytes,
} from "../core/index.js";
import { loadKeyMaterial, type KeyMaterial } from "../config/keys.js";
import { partnerByAs2Id, type As2Config } from "../config/schema.js";
import { ConfigError } from "../config/validate.js";
import { openStore, type JobRecord, type MdnChecks } from "../store/index.js";

export interface MdnCheckOptions {
  config: As2Config;
  /** The MDN file, and the separate header file if there is one. */
  mdn: Buffer;
  mdnHeaders?: Buffer;
  partner?: string;
  runId?: string;
  messageId?: string;
  mic?: { base64: string; algorithm: string };
  original?: { bytes: Buffer; name: string };
  /** With --original: the MIC algorithm for an unsigned original (default: the MDN's). */
  micAlgorithm?: string;
  now: Date;
}

export interface MdnCheckReport {
  ok: boolean;
  mdn: {
    form: string;
    signed: boolean;
    from?: string;
    to?: string;
    originalMessageId?: string;
    disposition?: string;
    mic?: { value: string; algorithm: string };
    reportingUa?: string;
    notes: string[];
  };
  /** The partner whose certificate checks the signature. */
  signer?: string;
  expected: { source: "job" | "mic" | "original" | "none"; runId?: string; file?: string; messageId?: string; mic?: string; micAlgorithm?: string; detail: string };
  checks: MdnChecks;
}

/** The order the checks are printed in, with their printed names. */
export const CHECK_LABELS: ReadonlyArray<[keyof MdnChecks, string]> = [
  ["signature", "signature"],
  ["signerCertificate", "signer certificate"],
  ["originalMessageId", "Original-Message-ID"],
  ["disposition", "disposition"],
  ["mic", "MIC"],
];

/** What the MDN should confirm, and whose signature it should carry. */
interface Expectation {
  source: MdnCheckReport["expected"]["source"];
  detail: string;
  runId?: string;
  file?: string;
  messageId?: string;
  /** Every Message-ID of the job, when none matched the MDN. */
  jobMessageIds?: string[];
  mic?: MessageMic;
  /** Why no MIC could be had (a failed check), when one was asked for. */
  micProblem?: string;
  requireSigned?: boolean;
  partner?: string;
}

function micOf(base64: string, algorithm: DigestAlgorithm): MessageMic {
  return { algorithm, base64, digest: Buffer.from(base64, "base64") };
}

/** The MDN's headers and body, whichever way it was saved. */
function readMdn(o: MdnCheckOptions): { parsed: ParsedMdn; form: string; notes: string[]; headers: Headers } {
  const cap = readCapturedEntity(o.mdn, o.mdnHeaders);
  const notes = [...cap.notes];
  let headers = cap.headers;
  const form = o.mdnHeaders ? "body, headers from --headers" : cap.startLine ? `HTTP message (${cap.startLine})` : cap.hadHeaders ? "MIME entity" : "body without headers";
  if (!cap.hadHeaders) {
    // A body alone: its first line is the outer boundary (RFC 2046 §5.1.1); the type follows from the parts.
    const first = cap.body.subarray(0, Math.max(0, cap.body.indexOf(0x0a))).toString("latin1").trim();
    if (!first.startsWith("--") || first.length < 3) {
      throw new As2Error(ErrorCodes.MALFORMED_MDN, "the file has no headers and does not start with a MIME boundary; pass the HTTP headers with --headers");
    }
    const boundary = first.slice(2);
    const signed = /content-type:\s*application\/(x-)?pkcs7-signature/i.test(cap.body.toString("latin1"));
    const type = signed
      ? `multipart/signed; protocol="application/pkcs7-signature"; boundary="${boundary}"`
      : `multipart/report; report-type=disposition-notification; boundary="${boundary}"`;
    headers = new Headers([{ name: "Content-Type", value: type }]);
    notes.push(`the file has no headers: read as ${type.split(";")[0]} with the boundary of its first line (pass --headers to check it as received)`);
  }
  const parsed = parseMdn(headers, cap.body);
  return { parsed, form, notes: [...notes, ...parsed.notes], headers };
}

async function fromJob(o: MdnCheckOptions, record: JobRecord, mdn: ParsedMdn): Promise<Expectation> {
  const answered = o.messageId ?? mdn.originalMessageId;
  const same = (id: string | undefined) => !!id && !!answered && normalizeMessageId(id) === normalizeMessageId(answered);
  if (record.type !== "AS2 Send") {
    throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `job ${record.runId} is a receive job; --run names the send job whose MDN this is`);
  }
  const details = record.sendDetails ?? [];
  const match = details.find((d) => same(d.as2MessageId)) ?? (details.length === 1 && !o.messageId ? details[0] : undefined);
  if (!match) {
    return {
      source: "job", runId: record.runId, partner: record.partner, messageId: o.messageId,
      detail: `job ${record.runId}`, jobMessageIds: details.map((d) => d.as2MessageId),
      micProblem: `job ${record.runId} did not send ${answered ?? "the message this MDN answers"}`,
    };
  }
  const alg = normalizeMicAlgorithm(match.micAlgorithm);
  return {
    source: "job", runId: record.runId, partner: record.partner, file: match.file, messageId: match.as2MessageId,
    detail: `the MIC recorded when job ${record.runId} sent ${match.file}`,
    mic: alg ? micOf(match.mic, alg) : undefined, micProblem: alg ? undefined : `job ${record.runId} recorded an unknown MIC algorithm "${match.micAlgorithm}"`,
    requireSigned: match.mdnRequest === "signed",
  };
}

/**
 * The MIC of the original message, recomputed by the rules of as2-reference §7: a bare payload
 * is hashed whole (unsigned, unencrypted: content only, RFC 4130 §7.3.1); an AS2 message is
 * opened as a receiver would (decrypted when it was sent to us, its signature checked) and its
 * MIC taken as the receiver computes it.
 */
async function fromOriginal(o: MdnCheckOptions, mdn: ParsedMdn, keys: () => KeyMaterial): Promise<Expectation> {
  const { bytes, name } = o.original!;
  const cap = readCapturedEntity(bytes);
  const wanted = o.micAlgorithm ? normalizeMicAlgorithm(o.micAlgorithm) : mdn.mic?.algorithm;
  const base = { source: "original" as const, messageId: o.messageId };
  if (!cap.hadHeaders || !cap.headers.has("content-type")) {
    const alg = wanted ?? "sha256";
    const digest = createHash(DIGESTS[alg].node).update(cap.body).digest();
    return { ...base, mic: { algorithm: alg, digest, base64: digest.toString("base64") }, detail: `the ${alg} of the whole of ${name}, a payload without MIME headers (RFC 4130 §7.3.1: unsigned, unencrypted content only)` };
  }
  const k = keys();
  const signers: Certificate[] = [...k.decryptionKeys.map((x) => x.certificate), ...Object.values(k.partners).flatMap((p) => p.signatureCertificates)];
  const messageId = o.messageId ?? cap.headers.get("message-id");
  try {
    const opened = await openMessage({
      headers: cap.headers, body: fromBytes(cap.body), decryptionKeys: k.decryptionKeys, signerCertificates: signers,
      micAlgorithm: wanted, onPayload: async (_info, payload) => { for await (const _ of payload) { /* only the MIC is wanted */ } },
    });
    const layers = [opened.encrypted && "decrypted", opened.signed && `signed (${opened.mic.algorithm})`, opened.compressed && "compressed"].filter(Boolean).join(", ");
    return { ...base, messageId, mic: opened.mic, detail: `the MIC recomputed from ${name}${layers ? ` (${layers})` : ""}` };
  } catch (e) {
    const err = e as As2Error;
    const encrypted = err.code === ErrorCodes.NO_MATCHING_RECIPIENT || err.code === ErrorCodes.DECRYPTION_FAILED;
    return {
      ...base, messageId, detail: `from ${name}`,
      micProblem: encrypted
        ? `${name} is encrypted for its recipient, so only the recipient can recompute its MIC (${err.message}); use --run or --message-id (the MIC recorded at send time) or --mic`
        : `the MIC of ${name} could not be computed: ${err.message}`,
    };
  }
}

async function expectationOf(o: MdnCheckOptions, mdn: ParsedMdn, keys: () => KeyMaterial): Promise<Expectation> {
  const store = openStore(o.config).jobs;
  if (o.runId) {
    const record = await store.load(o.runId);
    if (!record) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `no job ${o.runId} in ${o.config.dataDir}`);
    return fromJob(o, record, mdn);
  }
  if (o.mic) {
    const alg = normalizeMicAlgorithm(o.mic.algorithm)!;
    return { source: "mic", messageId: o.messageId, mic: micOf(o.mic.base64, alg), detail: "the MIC given with --mic" };
  }
  if (o.original) return fromOriginal(o, mdn, keys);
  if (o.messageId) {
    const runId = await openStore(o.config).sent.runIdOf(o.messageId);
    const record = runId ? await store.load(runId) : undefined;
    if (record) return fromJob(o, record, mdn);
    return { source: "none", messageId: o.messageId, detail: "--message-id", micProblem: `no job in ${o.config.dataDir} sent ${o.messageId}, so there is no MIC to compare (use --mic or --original)` };
  }
  return { source: "none", detail: "nothing given" };
}

function signingTimeOf(mdn: ParsedMdn, headers: Headers): { at: Date; what: string } | undefined {
  const t = mdn.signature?.signers.find((s) => s.signingTime)?.signingTime;
  if (t) return { at: t, what: "the signing time" };
  const date = headers.get("date");
  const d = date ? new Date(date) : undefined;
  if (d && !Number.isNaN(d.getTime())) return { at: d, what: "the MDN's Date" };
  return undefined;
}

/** Checks a saved MDN; every check gets a verdict, `ok` only when none failed. */
export async function checkMdnFile(o: MdnCheckOptions): Promise<MdnCheckReport> {
  const { parsed, form, notes, headers } = readMdn(o);
  if (o.partner && !o.config.partners[o.partner]) {
    throw new ConfigError("--partner", [{ path: "--partner", message: `no partner "${o.partner}" in the configuration (configured: ${Object.keys(o.config.partners).join(", ") || "none"})` }]);
  }
  const loaded = new Map<string, KeyMaterial>();
  const keys = (p: string | undefined) => loaded.get(p ?? "") ?? loaded.set(p ?? "", loadKeyMaterial(o.config, o.now, p ? [p] : [])).get(p ?? "")!;
  // Whose MDN: --partner, else the job's partner, else the one whose AS2 ID sent it.
  const from = headers.get("as2-from");
  const byFrom = from ? partnerByAs2Id(o.config, parseAs2Name(from))?.[0] : undefined;
  const expected = await expectationOf(o, parsed, () => keys(o.partner ?? byFrom));
  const partner = o.partner ?? expected.partner ?? byFrom;
  const certs: Certificate[] = partner ? keys(partner).partners[partner]?.signatureCertificates ?? [] : [];
  const when = signingTimeOf(parsed, headers) ?? { at: o.now, what: "now" };
  const v = verifyMdn(parsed, {
    partnerCertificates: certs, expectedMessageId: expected.messageId, expectedMics: expected.mic ? [expected.mic] : undefined,
    requireSigned: expected.requireSigned, now: when.at,
  });
  const checks: MdnChecks = { ...v.checks };
  if (parsed.signed && !certs.length) {
    const why = partner ? `partner ${partner} has no certificate configured (certificate or signatureCertificates)`
      : `${from ? `no partner has the AS2 ID "${from}"; ` : ""}name the partner with --partner`;
    checks.signature = { verdict: "fail", detail: `no certificate to check it with: ${why}` };
  }
  if (checks.signerCertificate.verdict !== "skip") checks.signerCertificate = { ...checks.signerCertificate, detail: `${checks.signerCertificate.detail} (checked at ${when.what}, ${when.at.toISOString()})` };
  if (expected.jobMessageIds && parsed.originalMessageId) {
    checks.originalMessageId = { verdict: "fail", detail: `the MDN answers ${parsed.originalMessageId}, which job ${expected.runId} did not send (it sent ${expected.jobMessageIds.join(", ")})` };
  } else if (expected.messageId === undefined) {
    checks.originalMessageId = parsed.originalMessageId
      ? { verdict: "skip", detail: `${parsed.originalMessageId} (nothing to compare with: use --run or --message-id)` }
      : { verdict: "skip", detail: "the MDN has no Original-Message-ID" };
  }
  if (!expected.mic) {
    const says = parsed.mic ? `the MDN says ${parsed.mic.base64}, ${parsed.mic.token}` : "the MDN has no Received-Content-MIC";
    checks.mic = expected.micProblem
      ? { verdict: "fail", detail: `${expected.micProblem} (${says})` }
      : { verdict: "skip", detail: `no original MIC to compare with: use --run, --message-id, --mic or --original (${says})` };
  } else if (checks.mic.verdict === "pass") {
    checks.mic = { ...checks.mic, detail: `${checks.mic.detail}: equals ${expected.detail}` };
  }
  return {
    ok: Object.values(checks).every((c) => c.verdict !== "fail"),
    mdn: {
      form, signed: parsed.signed, from, to: headers.get("as2-to"), originalMessageId: parsed.originalMessageId,
      disposition: parsed.disposition?.raw ?? parsed.fields.disposition, mic: parsed.mic ? { value: parsed.mic.base64, algorithm: parsed.mic.token } : undefined,
      reportingUa: parsed.reportingUa, notes,
    },
    signer: partner,
    expected: {
      source: expected.source, runId: expected.runId, file: expected.file, messageId: expected.messageId,
      mic: expected.mic?.base64, micAlgorithm: expected.mic?.algorithm, detail: expected.detail,
    },
    checks,
  };
}
