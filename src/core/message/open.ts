/**
 * Opens an AS2 message (RFC 4130 §7.1 steps; as2-reference.md P1): decrypt -> decompress ->
 * verify -> decompress, streaming. The payload is handed to `onPayload` as a stream while the
 * layers around it are still being read: signature and GCM tag are checked only after the last
 * byte, so the caller must hold the payload (temp file) until openMessage resolves.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { As2Error, ErrorCodes, isAs2Error } from "../errors.js";
import { collect, fromBytes } from "../bytes.js";
import { drain, tap, limitSize } from "../streams.js";
import { ByteReader } from "../ber/byte-reader.js";
import { berTree } from "../ber/asn1.js";
import { BerReader } from "../ber/reader.js";
import { Headers, parseContentType, parseParameterized } from "../mime/headers.js";
import { readEntityHead, parseEntityBytes, type EntityHead } from "../mime/entity.js";
import { MultipartStream, checkBoundary } from "../mime/multipart.js";
import { dispositionFilename } from "../mime/rfc2231.js";
import { DEFAULT_MAX_ATTACHMENTS, isAttachmentSet, splitRelated, type IncomingAttachment } from "../mime/related.js";
import { decodeTransferStream, parseTransferEncoding } from "../mime/encoding.js";
import { signaturePartBytes } from "./signature-part.js";
import { DIGESTS, type DigestAlgorithm, normalizeMicAlgorithm } from "../cms/digests.js";
import { OID } from "../cms/oids.js";
import { readContentInfoStart } from "../cms/content-info.js";
import { openEnveloped, type DecryptedContent, type DecryptionKey, type KeyEncryption } from "../cms/enveloped.js";
import { openCompressed } from "../cms/compressed.js";
import { parseSignedData, verifyDetachedSignature, type SignatureVerification } from "../cms/signed.js";
import type { ContentCipher } from "../cms/ciphers.js";
import type { Certificate } from "../certs/certificate.js";
import type { CompressionOrder, MessageMic } from "./build.js";

export interface OpenLimits {
  /** Largest inflated payload; protects against decompression bombs (K17). */
  maxInflatedBytes: number;
  /** Largest signature part; a real one is a few KB. */
  maxSignatureBytes: number;
  /** Certificates and signers in one SignedData: real ones carry a chain of a few and one signer. */
  maxCertificates: number;
  maxSigners: number;
  /** Largest compressed signed part held in memory when no `spool` is given (see OpenMessageOptions.spool). */
  maxMemorySpoolBytes: number;
  /** Attachments read from one multipart/related payload (RFC 6362), with `onAttachments`. */
  maxAttachments: number;
}

export const DEFAULT_OPEN_LIMITS: OpenLimits = {
  maxInflatedBytes: 10 * 1024 * 1024 * 1024,
  maxSignatureBytes: 1024 * 1024,
  maxCertificates: 64,
  maxSigners: 16,
  maxMemorySpoolBytes: 64 * 1024 * 1024,
  maxAttachments: DEFAULT_MAX_ATTACHMENTS,
};

/** Marks an error thrown by the caller's onPayload (not by the message). */
const LOCAL_FAILURE = Symbol("as2kit.localFailure");

/** Bytes kept aside to be read again (a temp file, or memory): see OpenMessageOptions.spool. */
export interface Spooled {
  open(): AsyncIterable<Uint8Array>;
  dispose(): Promise<void>;
}

/** The default spool: memory, up to limits.maxMemorySpoolBytes. */
function memorySpool(max: number): (source: AsyncIterable<Uint8Array>) => Promise<Spooled> {
  return async (source) => {
    const bytes = await collect(limitSize(source, max, "a compressed signed part held in memory (give openMessage a spool for larger ones)"), max);
    return { open: () => fromBytes(bytes), dispose: async () => undefined };
  };
}

/**
 * The LF->CRLF fallback digest (C4) is kept only for signed parts up to this size: a sender that
 * canonicalised binary content broke C2 anyway, and canonicalising gigabytes would halve throughput.
 */
export const CANONICAL_FALLBACK_LIMIT = 32 * 1024 * 1024;

export interface PayloadInfo {
  headers: Headers;
  contentType: string;
  /** From Content-Disposition, as sent (the receiver must sanitise it, S8). */
  filename?: string;
}

export interface OpenMessageOptions {
  /** The HTTP request headers (the outer MIME headers, T2). */
  headers: Headers | Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array>;
  /** Our current key first, then previous keys still accepted (contract §4). */
  decryptionKeys: readonly DecryptionKey[];
  /** The partner's signature certificates (several during a rollover). */
  signerCertificates: readonly Certificate[];
  /** MIC algorithm for unsigned messages: the first supported signed-receipt-micalg (M3). */
  micAlgorithm?: DigestAlgorithm;
  /** See BuildMessageOptions.micIncludesHeaders. */
  micIncludesHeaders?: boolean;
  requireSigned?: boolean;
  requireEncrypted?: boolean;
  limits?: Partial<OpenLimits>;
  /** Receives the payload; must consume (or abandon) the stream. */
  onPayload: (info: PayloadInfo, body: AsyncIterable<Uint8Array>) => Promise<void>;
  /**
   * Multiple attachments (RFC 6362; E2): with this, a multipart/related payload (not a CEM one,
   * E7) is split here and its parts handed over in order, each to be consumed before the next;
   * onPayload is not called then. The MIC still covers the whole multipart/related entity
   * (RFC 6362 §2.3). A malformed set (no closing delimiter, a part without Content-Type, more
   * than limits.maxAttachments parts) fails like any other malformed content.
   */
  onAttachments?: (info: PayloadInfo, parts: AsyncIterable<IncomingAttachment>) => Promise<void>;
  /**
   * Where compressed content that was signed (compress-before-signing) waits while its signature
   * is checked: it is inflated only once the signer is known to be the partner, so a stranger's
   * small message cannot make us write gigabytes (issue 12 case 6). Default: memory, up to
   * limits.maxMemorySpoolBytes.
   */
  spool?: (source: AsyncIterable<Uint8Array>) => Promise<Spooled>;
  /**
   * The signer certificate's validity, judged at the signing time (signed attribute), else at
   * `messageDate` (the Date header), else at `now`: partners' certificates expire after the fact,
   * so "now" alone would fail old resends (issue 13 case 5). A warning unless `enforce`.
   */
  signerValidity?: { now: Date; messageDate?: Date; enforce: boolean };
  /** A payload without a Content-Disposition file name takes the Content-Type's `name` (default true). */
  filenameFromContentTypeName?: boolean;
  /** RC2 parameters without a version (pyas2lib): see OpenEnvelopedOptions. */
  rc2WithoutVersion?: "rfc2268" | "key-length";
}

export interface OpenedMessage {
  encrypted: boolean;
  signed: boolean;
  compressed: CompressionOrder | false;
  encryption?: { contentType: string; cipher: ContentCipher; weakCipher: boolean; keyEncryption: KeyEncryption; oaepHash?: DigestAlgorithm; recipient: Certificate };
  signature?: SignatureVerification;
  mic: MessageMic;
  payload: PayloadInfo & { size: number };
  warnings: string[];
}

/**
 * The digests of one signed part (C4): raw; canonical (every bare LF made CRLF); and "headers
 * CRLF" (bare LFs made CRLF in the part's header section only, the body untouched), for
 * captures whose MIME header lines lost their CR on the way while a binary payload's own LF line
 * ends are original (issue 13 case 3).
 */
class PartDigests {
  private readonly raw = new Map<DigestAlgorithm, crypto.Hash>();
  private canonical: Map<DigestAlgorithm, crypto.Hash> | undefined;
  private headersCrlf: Map<DigestAlgorithm, crypto.Hash> | undefined;
  private dropped = false;
  private size = 0;
  private lastByte = -1;
  /** Header section tracking: done once an empty line ends it; characters on the current line. */
  private headerDone = false;
  private lineLength = 0;

  constructor(algs: DigestAlgorithm[]) {
    for (const a of algs) this.raw.set(a, crypto.createHash(DIGESTS[a].node));
  }

  update(c: Uint8Array): void {
    const buf = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    this.size += buf.length;
    if (this.size > CANONICAL_FALLBACK_LIMIT) {
      this.dropped = true;
      this.canonical = undefined;
    }
    const headerEnd = this.headerDone ? 0 : this.headerEndIn(buf);
    if (!this.dropped && !this.canonical && this.hasBareLf(buf)) {
      // Up to the first bare LF the canonical form equals the raw bytes: fork the hash state there.
      this.canonical = new Map([...this.raw].map(([a, h]) => [a, h.copy()]));
      // A bare LF inside the header section: "headers CRLF" starts to differ from raw too.
      if (headerEnd !== 0) this.headersCrlf = new Map([...this.raw].map(([a, h]) => [a, h.copy()]));
    }
    if (this.canonical) {
      const canon = this.canonicalize(buf);
      for (const h of this.canonical.values()) h.update(canon);
    }
    if (this.headersCrlf) {
      const cut = headerEnd < 0 ? buf.length : headerEnd;
      const head = cut > 0 ? this.canonicalize(buf.subarray(0, cut)) : buf.subarray(0, 0);
      for (const h of this.headersCrlf.values()) h.update(head).update(buf.subarray(cut));
    }
    for (const h of this.raw.values()) h.update(buf);
    if (buf.length) this.lastByte = buf[buf.length - 1]!;
  }

  /**
   * Where the header section ends in `buf` (the index after its empty line), -1 when it goes on
   * past `buf`; 0 when it ended before. An empty line is LF after nothing but CR since the last LF.
   */
  private headerEndIn(buf: Buffer): number {
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i]!;
      if (b === 0x0a) {
        if (this.lineLength === 0) {
          this.headerDone = true;
          return i + 1;
        }
        this.lineLength = 0;
      } else if (b !== 0x0d) {
        this.lineLength++;
      }
    }
    return -1;
  }

  private hasBareLf(buf: Buffer): boolean {
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
      if ((i > 0 ? buf[i - 1] : this.lastByte) !== 0x0d) return true;
    }
    return false;
  }

  /** LF -> CRLF where no CR precedes (RFC 5751 §3.1.1 canonical form). */
  private canonicalize(buf: Buffer): Buffer {
    const parts: Buffer[] = [];
    let start = 0;
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
      if ((i > 0 ? buf[i - 1] : this.lastByte) !== 0x0d) {
        parts.push(buf.subarray(start, i), CR);
        start = i;
      }
    }
    if (start === 0) return buf;
    parts.push(buf.subarray(start));
    return Buffer.concat(parts);
  }

  result(): Map<DigestAlgorithm, Map<string, Buffer>> {
    const out = new Map<DigestAlgorithm, Map<string, Buffer>>();
    for (const [a, h] of this.raw) {
      const variants = new Map<string, Buffer>([["raw", h.copy().digest()]]);
      const c = this.canonical?.get(a);
      if (c) variants.set("canonical-crlf", c.copy().digest());
      const hc = this.headersCrlf?.get(a);
      if (hc) variants.set("headers-crlf", hc.copy().digest());
      out.set(a, variants);
    }
    return out;
  }
}

const CR = Buffer.from([0x0d]);

interface State {
  encrypted: boolean;
  signedLayer: boolean;
  compressedAt?: "outer" | "inner";
  result: Partial<OpenedMessage> & { warnings: string[] };
  micHash?: { alg: DigestAlgorithm; hash: crypto.Hash };
  payloadDelivered: boolean;
}

function isPkcs7Mime(mediaType: string): boolean {
  return mediaType === "application/pkcs7-mime" || mediaType === "application/x-pkcs7-mime";
}

function isPkcs7Signature(mediaType: string): boolean {
  return mediaType === "application/pkcs7-signature" || mediaType === "application/x-pkcs7-signature";
}

export async function openMessage(options: OpenMessageOptions): Promise<OpenedMessage> {
  const limits: OpenLimits = { ...DEFAULT_OPEN_LIMITS, ...options.limits };
  const httpHeaders = options.headers instanceof Headers ? options.headers : Headers.from(options.headers);
  const unsignedMicAlg = options.micAlgorithm ?? "sha256";
  const state: State = { encrypted: false, signedLayer: false, result: { warnings: [] }, payloadDelivered: false };

  const outerType = parseContentType(httpHeaders.get("content-type"));
  if (options.requireEncrypted && !isPkcs7Mime(outerType.mediaType)) {
    throw new As2Error(ErrorCodes.INSUFFICIENT_SECURITY, "the partner's messages must be encrypted, and this one is not");
  }

  // The outermost entity: headers from HTTP, body from the HTTP body (T2). Its rawHeader is empty:
  // HTTP headers are never part of a MIC (RFC 4130 §7.3.1 b3).
  await handleEntity({ headers: httpHeaders, rawHeader: Buffer.alloc(0), hadHeaders: true }, options.body, state, options, limits, unsignedMicAlg);

  if (!state.payloadDelivered) throw new As2Error(ErrorCodes.MALFORMED_MIME, "the message holds no payload");
  const r = state.result;
  if (!r.mic) throw new As2Error(ErrorCodes.MALFORMED_MIME, "no MIC could be computed");
  return {
    encrypted: state.encrypted,
    signed: !!r.signature,
    compressed: state.compressedAt === undefined ? false : state.compressedAt === "inner" ? "before-signing" : "after-signing",
    encryption: r.encryption,
    signature: r.signature,
    mic: r.mic,
    payload: r.payload!,
    warnings: r.warnings,
  };
}

async function handleEntity(
  head: EntityHead, body: AsyncIterable<Uint8Array>, state: State, options: OpenMessageOptions, limits: OpenLimits,
  unsignedMicAlg: DigestAlgorithm,
): Promise<void> {
  const ct = parseContentType(head.headers.get("content-type"));
  const cte = parseTransferEncoding(head.headers.get("content-transfer-encoding"));

  if (isPkcs7Mime(ct.mediaType)) {
    const r = new BerReader(decodeTransferStream(body, cte), { maxElementBytes: 16 * 1024 * 1024 });
    // S4: sniff the CMS content type; smime-type may be missing or wrong.
    const ci = await readContentInfoStart(r);
    if (ci.contentType === OID.envelopedData || ci.contentType === OID.authEnvelopedData) {
      if (state.encrypted || state.signedLayer || state.compressedAt) throw new As2Error(ErrorCodes.MALFORMED_CMS, "encryption must be the outermost layer (RFC 5402 §3)");
      const dec = await openEnveloped(r, ci, options.decryptionKeys, { rc2WithoutVersion: options.rc2WithoutVersion });
      state.encrypted = true;
      state.result.encryption = { contentType: dec.contentType, cipher: dec.cipher, weakCipher: dec.weakCipher, keyEncryption: dec.keyEncryption, oaepHash: dec.oaepHash, recipient: dec.recipient };
      if (dec.weakCipher) state.result.warnings.push(`the partner encrypted with ${dec.cipher}, a weak cipher`);
      await openDecrypted(dec, state, options, limits, unsignedMicAlg);
      return;
    }
    if (ci.contentType === OID.compressedData) {
      if (state.compressedAt) throw new As2Error(ErrorCodes.MALFORMED_CMS, "more than one compression layer (RFC 5402 §3)", { disposition: "decompression-failed" });
      state.compressedAt = state.signedLayer ? "inner" : "outer";
      const inflated = await openCompressed(r, ci, { maxInflatedBytes: limits.maxInflatedBytes });
      await handleInner(inflated, state, options, limits, unsignedMicAlg);
      return;
    }
    throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `application/pkcs7-mime with CMS content type ${ci.contentType} is not supported`);
  }

  if (ct.mediaType === "multipart/signed") {
    if (state.signedLayer) throw new As2Error(ErrorCodes.MALFORMED_MIME, "nested multipart/signed");
    if (ct.params.protocol && !isPkcs7Signature(ct.params.protocol.toLowerCase())) {
      throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `multipart/signed protocol ${ct.params.protocol} is not supported`);
    }
    state.signedLayer = true;
    const declared = ct.params.micalg ? normalizeMicAlgorithm(ct.params.micalg.split(",")[0]!) : undefined;
    // Without a usable micalg the signer's digest is unknown until the end: hash with the common ones.
    const algs: DigestAlgorithm[] = declared ? [declared] : ["sha256", "sha1", "sha384", "sha512"];
    if (!declared) state.result.warnings.push(`multipart/signed has ${ct.params.micalg ? `an unknown micalg "${ct.params.micalg}"` : "no micalg"}`);
    const parts = new MultipartStream(body, checkBoundary(ct.params.boundary));
    const part1 = await parts.nextPart();
    if (!part1) throw new As2Error(ErrorCodes.MALFORMED_MIME, "multipart/signed has no signed part");
    const digests = new PartDigests(algs);
    const part1Reader = new ByteReader(tap(part1, (c) => digests.update(c)));
    const part1Head = await readEntityHead(part1Reader);
    // Compress-before-signing: the signed part is CompressedData. It is kept aside (hashed as it
    // passes) and inflated only after the signature checks out, so that a message signed by
    // anyone cannot make us inflate gigabytes first (issue 12 case 6). Everything else streams.
    const verifyFirst = isPkcs7Mime(parseContentType(part1Head.headers.get("content-type")).mediaType);
    const spooled = verifyFirst ? await (options.spool ?? memorySpool(limits.maxMemorySpoolBytes))(part1Reader.rest()) : undefined;
    try {
      if (!spooled) await handleEntity(part1Head, part1Reader.rest(), state, options, limits, unsignedMicAlg);
      await drain(part1Reader.rest());
      const part2 = await parts.nextPart();
      if (!part2) throw new As2Error(ErrorCodes.MALFORMED_MIME, "multipart/signed has no signature part");
      const sigEntity = parseEntityBytes(await collect(limitSize(part2, limits.maxSignatureBytes, "signature part"), limits.maxSignatureBytes));
      for (let p = await parts.nextPart(); p; p = await parts.nextPart()) await drain(p); // extra parts are ignored
      const sigType = parseContentType(sigEntity.headers.get("content-type")).mediaType;
      if (sigEntity.hadHeaders && sigEntity.headers.has("content-type") && !isPkcs7Signature(sigType)) {
        throw new As2Error(ErrorCodes.MALFORMED_MIME, `the signature part is ${sigType}, not application/pkcs7-signature`);
      }
      const sigBytes = signaturePartBytes(sigEntity);
      checkSignedDataCounts(sigBytes, limits);
      const parsed = parseSignedData(sigBytes);
      if (parsed.certificates.length > limits.maxCertificates) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `the SignedData carries ${parsed.certificates.length} certificates; at most ${limits.maxCertificates} are read`);
      if (parsed.signers.length > limits.maxSigners) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `the SignedData has ${parsed.signers.length} signers; at most ${limits.maxSigners} are checked`);
      const candidates = digests.result();
      const verification = verifyDetachedSignature(parsed, candidates, options.signerCertificates);
      if (verification.matchedVariant !== "raw") state.result.warnings.push(`the signature matched only after ${verification.matchedVariant} canonicalisation (C4)`);
      state.result.signature = verification;
      if (options.signerValidity) checkSignerValidity(verification, options.signerValidity, state);
      // M2: for a signed message the MIC is the digest of part 1 with the signing algorithm.
      const d = candidates.get(verification.digest)!.get(verification.matchedVariant)!;
      state.result.mic = { algorithm: verification.digest, digest: d, base64: d.toString("base64") };
      if (spooled) await handleEntity(part1Head, spooled.open(), state, options, limits, unsignedMicAlg);
    } finally {
      await spooled?.dispose();
    }
    return;
  }

  // The payload entity.
  if (options.requireSigned && !state.signedLayer) {
    throw new As2Error(ErrorCodes.INSUFFICIENT_SECURITY, "the partner's messages must be signed, and this one is not");
  }
  let payloadBody = body;
  if (!state.signedLayer) {
    // §7 table for unsigned messages: the decrypted or inflated entity with its headers; the body only for plain ones.
    const hash = crypto.createHash(DIGESTS[unsignedMicAlg].node);
    const withHeaders = state.encrypted || (state.compressedAt !== undefined && options.micIncludesHeaders !== false);
    if (withHeaders) hash.update(head.rawHeader);
    payloadBody = tap(body, (c) => hash.update(c));
    state.micHash = { alg: unsignedMicAlg, hash };
  }
  const disposition = head.headers.get("content-disposition");
  // OpenAS2 sends "Content-Disposition: attachment" without a file name: the Content-Type's
  // `name` (RFC 2046 §4.5.1's older place for it) is the next best source (issue 13 case 7).
  const typeName = options.filenameFromContentTypeName === false ? undefined : parseParameterized(head.headers.get("content-type") ?? "").params.name;
  const filename = (disposition ? dispositionFilename(parseParameterized(disposition).params) : undefined) ?? typeName;
  const info: PayloadInfo = { headers: head.headers, contentType: head.headers.get("content-type") ?? "application/octet-stream", filename };
  let size = 0;
  const counted = tap(decodeTransferStream(payloadBody, cte), (c) => (size += c.byteLength));
  // Errors of the payload stream (the message's content: inflation, decoding, deciphering) are
  // marked as such, so that only the receiver's own failures (a full disk, a refused write) count
  // as local: openDecrypted passes those on as they are, since they say nothing about the ciphertext.
  let fromSource = false;
  const source = (async function* () {
    try {
      yield* counted;
    } catch (e) {
      fromSource = true;
      throw e;
    }
  })();
  // The parts are read from `source`, and their framing errors are the message's own (not
  // local): after CBC decryption they are answered as decryption-failed like any content error.
  const attachments = options.onAttachments && isAttachmentSet(info.contentType)
    ? (async function* () {
      try {
        yield* splitRelated(info.contentType, source, limits.maxAttachments);
      } catch (e) {
        fromSource = true;
        throw e;
      }
    })()
    : undefined;
  try {
    if (attachments) await options.onAttachments!(info, attachments);
    else await options.onPayload(info, source);
  } catch (e) {
    if (!fromSource && e && typeof e === "object") (e as Record<symbol, unknown>)[LOCAL_FAILURE] = true;
    throw e;
  }
  await drain(counted);
  state.payloadDelivered = true;
  state.result.payload = { ...info, size };
  if (state.micHash) {
    const d = state.micHash.hash.digest();
    state.result.mic = { algorithm: state.micHash.alg, digest: d, base64: d.toString("base64") };
  }
}

/**
 * Counts certificates and SignerInfos before the SignedData is parsed: thousands of them would
 * otherwise stall the parser, or trip its node limit with a message that names no limit
 * (issue 12 case 7). Bytes berTree cannot read are left to the parser's own errors.
 */
function checkSignedDataCounts(der: Uint8Array, limits: OpenLimits): void {
  // ContentInfo { contentType, [0] EXPLICIT SignedData { ..., [0] certificates?, ..., signerInfos SET } }
  const signedData = berTree(der)?.children?.[1]?.children?.[0]?.children;
  if (!signedData) return;
  const certs = signedData.find((c) => c.tagClass === 2 && c.tagNumber === 0)?.children?.length ?? 0;
  if (certs > limits.maxCertificates) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `the SignedData carries ${certs} certificates; at most ${limits.maxCertificates} are read`);
  const last = signedData[signedData.length - 1];
  const signers = last?.tagClass === 0 && last.tagNumber === 17 ? last.children?.length ?? 0 : 0;
  if (signers > limits.maxSigners) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `the SignedData has ${signers} signers; at most ${limits.maxSigners} are checked`);
}

function checkSignerValidity(v: SignatureVerification, o: NonNullable<OpenMessageOptions["signerValidity"]>, state: State): void {
  const validDate = (d: Date | undefined) => (d && !Number.isNaN(d.getTime()) ? d : undefined);
  const [at, what] = validDate(v.signingTime) ? [v.signingTime!, "the signing time"] : validDate(o.messageDate) ? [o.messageDate!, "the message's Date"] : [o.now, "now"];
  const c = v.signer.checkValidity(at);
  if (c.valid) return;
  const why = `the signer's certificate (${v.signer.describe()}) ${c.expired ? `expired on ${c.notAfter.toISOString()}` : `is not valid before ${c.notBefore.toISOString()}`}, checked at ${what} (${at.toISOString()})`;
  if (o.enforce) throw new As2Error(ErrorCodes.SIGNER_UNKNOWN, `${why}; the partner's inbound.signerCertificateValidity is "enforce"`);
  state.result.warnings.push(why);
}

/**
 * The content of an EnvelopedData layer. RFC 3218: whether the key block was good must change
 * neither the answer nor its timing. So whatever happens inside, the ciphertext is deciphered to
 * its end; a message whose key block could not be opened (a random key stood in) then always ends
 * as decryption-failed, and so does content that is not a MIME entity - noise from a wrong key
 * never has headers, and taking it as a bare payload once stored random bytes as "processed"
 * (issue 12 case 2).
 */
async function openDecrypted(dec: DecryptedContent, state: State, options: OpenMessageOptions, limits: OpenLimits, unsignedMicAlg: DigestAlgorithm): Promise<void> {
  const it = dec.content[Symbol.asyncIterator]();
  let finished = false;
  /** An error of the ciphertext stream itself (its framing, the transport), as opposed to the content's. */
  let outer: unknown;
  // The inner parsers read through this view; an early error there must not close the decipher.
  const view: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        try {
          const r = await it.next();
          if (r.done) finished = true;
          return r;
        } catch (e) {
          outer ??= e;
          finished = true;
          throw e;
        }
      },
      return: async () => ({ done: true as const, value: undefined }),
    }),
  };
  let inner: unknown;
  try {
    await handleInner(view, state, options, limits, unsignedMicAlg, true);
  } catch (e) {
    inner = e;
  }
  let tail: unknown = outer;
  try {
    while (!finished) if ((await it.next()).done) finished = true;
  } catch (e) {
    tail ??= e;
  }
  // Errors of the outer structure or the transport (truncation, size) say nothing about the key.
  if (isAs2Error(tail) && tail.code !== ErrorCodes.DECRYPTION_FAILED) throw tail;
  // CBC has no integrity of its own: a flipped ciphertext bit garbles the content (a signature or
  // structure failure) unless it breaks the padding (a decryption failure). Answering the two
  // differently is a padding oracle that lets anyone holding a captured message decrypt it
  // (Vaudenay 2002; EFAIL). So after a non-authenticated cipher every failure inside is answered
  // as decryption-failed; the real cause stays in `cause` for the job record. AES-GCM
  // (AuthEnvelopedData) checks its tag, so a failure after it is genuine and keeps its answer.
  const aead = dec.contentType === "authEnveloped-data";
  if (!tail && inner && typeof inner === "object" && (inner as Record<symbol, unknown>)[LOCAL_FAILURE] && dec.keyRecovered) throw inner;
  if (!dec.keyRecovered || tail || (inner && !aead) || (isAs2Error(inner) && inner.code === ErrorCodes.DECRYPTION_FAILED)) {
    throw new As2Error(ErrorCodes.DECRYPTION_FAILED, "decryption failed: the message was not encrypted for our key, or it was corrupted", { cause: tail ?? inner });
  }
  if (inner) throw inner;
}

/** A layer's content is a MIME entity (S6: bytes without headers are taken as a bare payload, except after decryption). */
async function handleInner(content: AsyncIterable<Uint8Array>, state: State, options: OpenMessageOptions, limits: OpenLimits, unsignedMicAlg: DigestAlgorithm, decrypted = false): Promise<void> {
  const reader = new ByteReader(content);
  const head = await readEntityHead(reader);
  if (!head.hadHeaders && decrypted) throw new As2Error(ErrorCodes.DECRYPTION_FAILED, "the decrypted content is not a MIME entity");
  if (!head.hadHeaders) state.result.warnings.push("the inflated content had no MIME headers; taken as the payload (S6)");
  await handleEntity(head.hadHeaders ? head : { ...head, headers: new Headers([{ name: "Content-Type", value: "application/octet-stream" }]) }, reader.rest(), state, options, limits, unsignedMicAlg);
  await drain(reader.rest());
}
