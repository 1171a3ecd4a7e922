/**
 * Multiple attachments (RFC 6362; as2-reference E2): several files in one AS2 message, as one
 * `multipart/related; boundary=...; type="<root part's type>"` entity (RFC 2387) that is then
 * signed, compressed and encrypted like a single payload; the MIC covers the whole entity
 * (RFC 6362 §2.3, the §7 table of as2-reference). Both directions stream: parts are built from
 * and split into streams, never held whole.
 *
 * A multipart/related whose `type` is application/ediint-cert-exchange+xml is a certificate
 * exchange message (E7), not a set of files: it is left whole for the CEM code.
 */
import { createHash } from "node:crypto";
import { As2Error, ErrorCodes } from "../errors.js";
import { ascii, chain } from "../bytes.js";
import { ByteReader } from "../ber/byte-reader.js";
import { drain } from "../streams.js";
import { formatHeaderBlock, formatParameterized, parseContentType, parseParameterized, type Headers } from "./headers.js";
import { readEntityHead } from "./entity.js";
import { MultipartStream, checkBoundary } from "./multipart.js";
import { decodeTransferStream, parseTransferEncoding } from "./encoding.js";
import { dispositionFilename, formatContentDisposition } from "./rfc2231.js";

export const MULTIPART_RELATED = "multipart/related";
/** E7: the root type of a CEM request or response. */
export const CEM_ROOT_TYPE = "application/ediint-cert-exchange+xml";
/** The EDIINT-Features token (RFC 6362 §3; E1). */
export const MULTIPLE_ATTACHMENTS_FEATURE = "multiple-attachments";

/** Parts read from one message unless the caller says otherwise (receive.maxAttachments). */
export const DEFAULT_MAX_ATTACHMENTS = 100;

/**
 * Whether a payload's Content-Type is a set of attachments to store one by one: multipart/related
 * with a boundary, and not a CEM message (E7).
 */
export function isAttachmentSet(contentType: string | undefined): boolean {
  const ct = parseContentType(contentType);
  if (ct.mediaType !== MULTIPART_RELATED) return false;
  return (ct.params.type ?? "").trim().toLowerCase() !== CEM_ROOT_TYPE;
}

/** One attachment to send: its type, its file name, and its bytes (opened when the part is reached). */
export interface OutgoingAttachment {
  contentType: string;
  filename: string;
  body: () => AsyncIterable<Uint8Array>;
}

export interface RelatedEntity {
  /** `multipart/related; boundary="..."; type="<first part's type>"` (RFC 2387 §3.1: type is mandatory). */
  contentType: string;
  boundary: string;
  /** The entity's body: every part, delimited; streamed, each part's file opened in turn. */
  body: () => AsyncIterable<Uint8Array>;
}

/**
 * The boundary token of a message's multipart/related, derived from its Message-ID: the MIC
 * covers the whole entity (RFC 6362 §2.3), so a resend under the same Message-ID (--restart,
 * RFC 6017 duplicate detection; I5) must repeat the boundary byte for byte, or its MIC would
 * differ from the one the receiver recorded for the first copy. The Message-ID carries 64 random
 * bits, so the token is no more guessable than a random one before the message exists.
 */
export function relatedBoundaryToken(messageId: string): string {
  return createHash("sha256").update(`as2kit multipart/related ${messageId}`).digest("hex").slice(0, 24);
}

/**
 * Builds the multipart/related body. Each part has its own Content-Type (E2: no defaulting to
 * text/plain) and `Content-Disposition: attachment; filename=...` (with RFC 2231 filename* when
 * the name is not ASCII); `binary` transfer encoding (AS2 runs over HTTP, RFC 4130 §5.2).
 * `token` makes the boundary (relatedBoundaryToken: unpredictable, stable per Message-ID).
 */
export function buildRelated(parts: readonly OutgoingAttachment[], token: string, quoteFilename = false): RelatedEntity {
  if (!parts.length) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "multiple attachments need at least one file");
  const boundary = `----=_as2kit_related_${token}`;
  checkBoundary(boundary);
  const rootType = parseContentType(parts[0]!.contentType).mediaType;
  const contentType = formatParameterized(MULTIPART_RELATED, { boundary, type: rootType }, ["boundary", "type"]);
  const body = (): AsyncIterable<Uint8Array> => chain(...parts.flatMap((p, i) => [
    ascii(`${i === 0 ? "" : "\r\n"}--${boundary}\r\n${formatHeaderBlock([
      { name: "Content-Type", value: p.contentType },
      { name: "Content-Transfer-Encoding", value: "binary" },
      { name: "Content-Disposition", value: formatContentDisposition(p.filename, quoteFilename) },
    ])}\r\n`),
    p.body,
  ]), ascii(`\r\n--${boundary}--\r\n`));
  return { contentType, boundary, body };
}

/** One received attachment: its headers and its decoded bytes (consume them before the next part). */
export interface IncomingAttachment {
  /** 0-based position in the message. */
  index: number;
  headers: Headers;
  contentType: string;
  /** From Content-Disposition (or the Content-Type's name), as sent: the receiver sanitises it (S8). */
  filename?: string;
  body: AsyncIterable<Uint8Array>;
}

/**
 * Splits a multipart/related body into its parts, streaming. Fails (MALFORMED_MIME) on a part
 * without a Content-Type (E2), on an entity with no part, and (TRUNCATED) on one without its
 * closing delimiter; LIMIT_EXCEEDED past `maxParts`, before the part beyond the limit is read.
 */
export async function* splitRelated(contentType: string, body: AsyncIterable<Uint8Array>, maxParts: number): AsyncGenerator<IncomingAttachment> {
  if (!Number.isInteger(maxParts) || maxParts < 1) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `the limit on attachments must be a positive integer, got ${maxParts}`);
  const boundary = checkBoundary(parseContentType(contentType).params.boundary);
  const parts = new MultipartStream(body, boundary);
  let index = 0;
  for (let raw = await parts.nextPart(); raw; raw = await parts.nextPart()) {
    if (index >= maxParts) {
      throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `the message has more than ${maxParts} attachments (receive.maxAttachments)`);
    }
    const reader = new ByteReader(raw);
    const head = await readEntityHead(reader);
    const type = head.headers.get("content-type");
    if (!head.hadHeaders || !type) {
      throw new As2Error(ErrorCodes.MALFORMED_MIME, `attachment ${index + 1} of the multipart/related has no Content-Type header (RFC 6362, as2-reference E2)`);
    }
    const disposition = head.headers.get("content-disposition");
    const filename = (disposition ? dispositionFilename(parseParameterized(disposition).params) : undefined) ?? parseParameterized(type).params.name;
    yield {
      index, headers: head.headers, contentType: type, ...(filename !== undefined ? { filename } : {}),
      body: decodeTransferStream(reader.rest(), parseTransferEncoding(head.headers.get("content-transfer-encoding"))),
    };
    // Whatever the consumer left (it stopped early) is read past, so the next delimiter is found.
    await drain(reader.rest());
    index++;
  }
  if (index === 0) throw new As2Error(ErrorCodes.MALFORMED_MIME, "the multipart/related holds no attachment");
}
