/**
 * Builds an AS2 message (RFC 4130 §4.2, RFC 5402 §3) as HTTP headers plus a streamed body:
 * payload entity -> [compress] -> [multipart/signed] -> [compress] -> [EnvelopedData].
 * The MIC is computed while the bytes pass, by the rules of as2-reference.md §7.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { As2Error, ErrorCodes } from "../errors.js";
import { ascii, chain } from "../bytes.js";
import { inlineHash, offloadedHash, tapHash, type StreamHash } from "../parallel-hash.js";
import { Headers, formatHeaderBlock, type Header } from "../mime/headers.js";
import { formatContentDisposition } from "../mime/rfc2231.js";
import { multipartSignedType, signatureTail } from "./signature-part.js";
import { DIGESTS, micAlgorithmName, type DigestAlgorithm, type MicNaming } from "../cms/digests.js";
import { createDetachedSignature, type SignatureScheme } from "../cms/signed.js";
import { CIPHERS, type ContentCipher, WEAK_CIPHERS, type Cast5ParamStyle } from "../cms/ciphers.js";
import { encryptStream, type Recipient } from "../cms/enveloped.js";
import { compressStream } from "../cms/compressed.js";
import type { Certificate } from "../certs/certificate.js";
import type { KeyObject } from "node:crypto";
import { formatDispositionOptions } from "../mdn/options.js";
import { formatAs2Name, formatHttpDate, generateMessageId } from "./as2-name.js";

export type CompressionOrder = "before-signing" | "after-signing";

export interface SigningSpec {
  digest: DigestAlgorithm;
  key: KeyObject;
  certificate: Certificate;
  chain?: Certificate[];
  scheme?: SignatureScheme;
  useSubjectKeyIdentifier?: boolean;
}

export interface EncryptionSpec {
  cipher: ContentCipher;
  recipients: Recipient[];
  cast5Params?: Cast5ParamStyle;
}

export interface ReceiptRequest {
  /** Where the MDN is wanted: Disposition-Notification-To (its value is not interpreted, §7.3). */
  notificationTo: string;
  signed: boolean;
  /** signed-receipt-micalg list, preferred first (R3). */
  micAlgorithms?: DigestAlgorithm[];
  /** Receipt-Delivery-Option for an async MDN: an http(s) URL or mailto: (R6). */
  asyncUrl?: string;
}

export interface BuildMessageOptions {
  from: string;
  to: string;
  payload: Uint8Array | AsyncIterable<Uint8Array>;
  contentType: string;
  filename?: string;
  subject?: string;
  sign?: SigningSpec | false;
  encrypt?: EncryptionSpec | false;
  compress?: CompressionOrder | false;
  receipt?: ReceiptRequest | false;
  /** MIC algorithm for unsigned messages (signed ones use the signing digest, M2). */
  micAlgorithm?: DigestAlgorithm;
  /**
   * For unsigned, unencrypted, compressed messages: include the MIME headers of the inflated
   * entity in the MIC (RFC 5402 §4.3, the default) or not (OpenAS2's behaviour, §7 table).
   */
  micIncludesHeaders?: boolean;
  micNaming?: MicNaming;
  /** Sends `Content-Transfer-Encoding: binary` among the HTTP headers (products that insist on it). */
  outerTransferEncoding?: boolean;
  /** Always quotes the file name in Content-Disposition (products that read only quoted ones). */
  quoteFilename?: boolean;
  /** Reuse an ID (a resend must repeat it with identical bytes, I5). */
  messageId?: string;
  /** Injected clock and randomness, so tests can produce golden bytes. */
  now?: () => Date;
  randomBytes?: (n: number) => Buffer;
  userAgent?: string;
  /**
   * Where the MIC/signature digest is computed: on this thread (default; best for small
   * messages) or on a shared worker thread, which lets hashing and encryption use two cores
   * (about 1.6x for large payloads on CPUs without SHA extensions).
   */
  hashing?: "inline" | "worker";
}

export interface MessageMic {
  algorithm: DigestAlgorithm;
  digest: Buffer;
  /** As written in Received-Content-MIC: base64 of the digest. */
  base64: string;
}

export interface BuiltMessage {
  messageId: string;
  date: Date;
  /** HTTP request headers: AS2 headers and the outer MIME headers (T2). */
  headers: Headers;
  /** The HTTP body. Consume it once. */
  body: AsyncIterable<Uint8Array>;
  /** Settles when the body has been consumed: the MIC and the body size. */
  done: Promise<{ mic: MessageMic; bodyBytes: number }>;
  signed: boolean;
  encrypted: boolean;
  compressed: CompressionOrder | false;
  warnings: string[];
}

export const AS2_VERSION = "1.2";
/**
 * EDIINT-Features we implement (E1), on every message and MDN: multiple-attachments (RFC 6362:
 * as2 send --multiple-attachments, and as2 receive stores each part); CEM (certificate exchange,
 * as2 cem send|accept|reject, E7/E8); AS2-Reliability (RFC 6017:
 * resend with the same Message-ID and duplicate detection).
 */
export const EDIINT_FEATURES = "multiple-attachments, CEM, AS2-Reliability";

interface Entity {
  headers: Header[];
  body: () => AsyncIterable<Uint8Array>;
}

function serialize(e: Entity): AsyncIterable<Uint8Array> {
  return chain(ascii(formatHeaderBlock(e.headers) + "\r\n"), e.body);
}

function compressedEntity(inner: Entity): Entity {
  return {
    // RFC 5402 §2 / K18; no CTE needed inside an encrypted layer, binary over HTTP (T4).
    headers: [
      { name: "Content-Type", value: "application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z" },
      { name: "Content-Transfer-Encoding", value: "binary" },
      { name: "Content-Disposition", value: "attachment; filename=smime.p7z" },
    ],
    body: () => compressStream(serialize(inner)),
  };
}

export function buildMessage(options: BuildMessageOptions): BuiltMessage {
  const now = options.now ?? (() => new Date());
  const random = options.randomBytes ?? crypto.randomBytes;
  const date = now();
  const messageId = options.messageId ?? generateMessageId(date, random(8).toString("hex"), options.from);
  const sign = options.sign || undefined;
  const encrypt = options.encrypt || undefined;
  const compress = options.compress || false;
  const receipt = options.receipt || undefined;
  const naming = options.micNaming ?? "rfc5751";
  const warnings: string[] = [];
  if (encrypt && WEAK_CIPHERS.has(encrypt.cipher)) warnings.push(`${encrypt.cipher} is a weak cipher, kept only for legacy partners; prefer aes256-cbc or aes256-gcm`);
  if (sign?.digest === "sha1") warnings.push("sha1 signatures are weak; prefer sha256");

  const micAlgorithm: DigestAlgorithm = sign ? sign.digest : options.micAlgorithm ?? receipt?.micAlgorithms?.[0] ?? "sha256";
  const mic: StreamHash = options.hashing === "worker" ? offloadedHash(DIGESTS[micAlgorithm].node) : inlineHash(DIGESTS[micAlgorithm].node);
  // One digest serves both the signature (messageDigest) and the MIC: M2 says they are equal.
  let micDigest: Promise<Buffer> | undefined;
  const finalDigest = () => (micDigest ??= mic.digest());
  const plain = !sign && !encrypt;
  // §7 table: unsigned+unencrypted+uncompressed hashes the body only; with compression the
  // inflated entity with headers (RFC 5402 §4.3) unless the partner wants OpenAS2's form.
  const micOverHeaders = !sign && (encrypt !== undefined || (compress !== false && options.micIncludesHeaders !== false));

  const payloadSource = options.payload;
  const payloadHeaders: Header[] = [{ name: "Content-Type", value: options.contentType }];
  if (!plain || compress) payloadHeaders.push({ name: "Content-Transfer-Encoding", value: "binary" });
  if (options.filename) payloadHeaders.push({ name: "Content-Disposition", value: formatContentDisposition(options.filename, options.quoteFilename) });
  const payloadBody = (): AsyncIterable<Uint8Array> => (payloadSource instanceof Uint8Array ? chain(payloadSource) : payloadSource);

  let entity: Entity = {
    headers: payloadHeaders,
    body: () => (sign ? payloadBody() : tapHash(payloadBody(), mic)),
  };
  if (micOverHeaders) {
    const inner = entity;
    // The headers are only hashed here; serialize() writes them.
    const hashHeaders = async function* (): AsyncGenerator<Uint8Array> {
      await mic.update(ascii(formatHeaderBlock(inner.headers) + "\r\n"));
    };
    entity = { headers: inner.headers, body: () => chain(hashHeaders, inner.body) };
  }

  if (compress === "before-signing" && sign) entity = compressedEntity(entity);

  if (sign) {
    const inner = entity;
    const boundary = `----=_as2kit_${random(12).toString("hex")}`;
    entity = {
      headers: [{ name: "Content-Type", value: multipartSignedType(sign.digest, boundary, naming) }],
      body: () => chain(
        ascii(`--${boundary}\r\n`),
        // C1/M2: part 1 (headers included) is hashed exactly as sent; the CRLF before the next delimiter is not.
        tapHash(serialize(inner), mic),
        () => (async function* () {
          yield ascii(signatureTail(createDetachedSignature(await finalDigest(), {
            digest: sign.digest, key: sign.key, certificate: sign.certificate, chain: sign.chain, scheme: sign.scheme,
            signingTime: date, useSubjectKeyIdentifier: sign.useSubjectKeyIdentifier,
          }), boundary));
        })(),
      ),
    };
  }

  if (compress && (compress === "after-signing" || !sign)) entity = compressedEntity(entity);

  let outerHeaders: Header[];
  let body: AsyncIterable<Uint8Array>;
  if (encrypt) {
    const inner = entity;
    const smimeType = CIPHERS[encrypt.cipher].aead ? "authEnveloped-data" : "enveloped-data";
    outerHeaders = [
      { name: "Content-Type", value: `application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m` },
      { name: "Content-Transfer-Encoding", value: "binary" },
      { name: "Content-Disposition", value: "attachment; filename=smime.p7m" },
    ];
    body = encryptStream(serialize(inner), { cipher: encrypt.cipher, recipients: encrypt.recipients, randomBytes: options.randomBytes, cast5Params: encrypt.cast5Params });
  } else {
    // T2: the outermost MIME headers travel as HTTP headers; the HTTP body is that entity's body.
    outerHeaders = entity.headers.filter((h) => !(plain && !compress && h.name === "Content-Transfer-Encoding"));
    body = entity.body();
  }

  const headers = new Headers([
    { name: "AS2-Version", value: AS2_VERSION },
    { name: "EDIINT-Features", value: EDIINT_FEATURES },
    { name: "AS2-From", value: formatAs2Name(options.from) },
    { name: "AS2-To", value: formatAs2Name(options.to) },
    { name: "Message-ID", value: messageId },
    { name: "Date", value: formatHttpDate(date) },
  ]);
  if (options.subject !== undefined) {
    if (/[\r\n]/.test(options.subject)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "the subject must be a single line");
    headers.set("Subject", options.subject);
  }
  headers.set("MIME-Version", "1.0");
  if (receipt) {
    headers.set("Disposition-Notification-To", receipt.notificationTo);
    const micAlgorithms = receipt.micAlgorithms?.length ? receipt.micAlgorithms : [micAlgorithm];
    // An unsigned receipt still names the MIC algorithm (micalg without protocol, RFC 4130 §7.3):
    // without it OpenAS2 computes no MIC at all (issue 13 case 1).
    headers.set("Disposition-Notification-Options", receipt.signed
      ? formatDispositionOptions(micAlgorithms, naming)
      : `signed-receipt-micalg=optional, ${micAlgorithms.map((a) => micAlgorithmName(a, naming)).join(", ")}`);
    if (receipt.asyncUrl) headers.set("Receipt-Delivery-Option", receipt.asyncUrl);
  }
  if (options.userAgent) headers.set("User-Agent", options.userAgent);
  for (const h of outerHeaders) headers.set(h.name, h.value);
  if (options.outerTransferEncoding && !headers.has("Content-Transfer-Encoding")) headers.set("Content-Transfer-Encoding", "binary");
  formatHeaderBlock(headers); // refuses CR/LF in any value before anything is sent

  let resolveDone!: (v: { mic: MessageMic; bodyBytes: number }) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<{ mic: MessageMic; bodyBytes: number }>((res, rej) => { resolveDone = res; rejectDone = rej; });
  done.catch(() => undefined); // the body consumer sees the error first
  let consumed = false;
  let finished = false;
  async function* counted(): AsyncGenerator<Uint8Array> {
    if (consumed) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "the message body can be consumed only once");
    consumed = true;
    let n = 0;
    try {
      for await (const c of body) {
        n += c.byteLength;
        yield c;
      }
      const digest = await finalDigest();
      finished = true;
      resolveDone({ mic: { algorithm: micAlgorithm, digest, base64: digest.toString("base64") }, bodyBytes: n });
    } catch (e) {
      rejectDone(e);
      throw e;
    } finally {
      if (!finished) {
        mic.dispose();
        rejectDone(new As2Error(ErrorCodes.INVALID_ARGUMENT, "the message body was not read to the end"));
      }
    }
  }

  return { messageId, date, headers, body: counted(), done, signed: !!sign, encrypted: !!encrypt, compressed: compress && (sign ? compress : "after-signing"), warnings };
}
