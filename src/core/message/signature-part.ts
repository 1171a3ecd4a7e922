/** The second part of multipart/signed (RFC 1847 §2.1, RFC 5751 §3.4.3): the detached signature. */
import type { Buffer } from "node:buffer";
import { decodeTransfer, encodeBase64Lines, parseTransferEncoding } from "../mime/encoding.js";
import type { EntityHead } from "../mime/entity.js";
import { formatParameterized } from "../mime/headers.js";
import { micAlgorithmName, type DigestAlgorithm, type MicNaming } from "../cms/digests.js";

/** The multipart/signed Content-Type: protocol quoted (S3), micalg per the naming style. */
export function multipartSignedType(digest: DigestAlgorithm, boundary: string, naming: MicNaming): string {
  return formatParameterized("multipart/signed", { protocol: "application/pkcs7-signature", micalg: micAlgorithmName(digest, naming), boundary }, ["protocol", "boundary"]);
}

/** Everything after part 1: the delimiter (whose leading CRLF is not signed, C1), the signature part, the close delimiter. */
export function signatureTail(cms: Uint8Array, boundary: string): string {
  return (
    `\r\n--${boundary}\r\n` +
    "Content-Type: application/pkcs7-signature; name=smime.p7s\r\n" +
    "Content-Transfer-Encoding: base64\r\n" +
    "Content-Disposition: attachment; filename=smime.p7s\r\n\r\n" +
    encodeBase64Lines(cms) +
    `\r\n--${boundary}--\r\n`
  );
}

/**
 * The CMS bytes of a received signature part. Usually base64; Sterling B2Bi sends raw DER/BER with
 * no Content-Transfer-Encoding (S7), recognised by its SEQUENCE tag.
 */
export function signaturePartBytes(part: EntityHead & { body: Buffer }): Buffer {
  const cte = part.headers.get("content-transfer-encoding");
  if (cte) return decodeTransfer(part.body, parseTransferEncoding(cte));
  return part.body[0] === 0x30 ? part.body : decodeTransfer(part.body, "base64");
}
