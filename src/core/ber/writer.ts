/**
 * DER/BER writer. Small structures (attributes, RecipientInfos, algorithm identifiers) are built
 * as DER; bulk content is framed as a constructed, indefinite-length OCTET STRING of fixed-size
 * segments so it can be written while it streams (X.690 §8.7.3, as2-reference.md K16).
 */
import { Buffer } from "node:buffer";
import { As2Error, ErrorCodes } from "../errors.js";

export function encodeLength(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `invalid BER length ${n}`);
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export type Content = Uint8Array | readonly Uint8Array[];

function flat(content: Content): Buffer {
  return content instanceof Uint8Array ? Buffer.from(content.buffer, content.byteOffset, content.byteLength) : Buffer.concat(content as Uint8Array[]);
}

/** Tag byte for low tag numbers (< 31), which is all CMS needs. */
export function tlv(tag: number, content: Content): Buffer {
  const c = flat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(c.length), c]);
}

export const END_OF_CONTENTS = Buffer.from([0, 0]);
export function indefiniteHeader(tag: number): Buffer {
  return Buffer.from([tag | 0x20, 0x80]);
}

function encodeBase128(v: number): number[] {
  const out = [v & 0x7f];
  for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) out.unshift((v & 0x7f) | 0x80);
  return out;
}

export function encodeOid(oid: string): Buffer {
  const arcs = oid.split(".").map((a) => {
    const n = Number(a);
    if (!/^\d+$/.test(a) || !Number.isSafeInteger(n)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `invalid OID ${oid}`);
    return n;
  });
  if (arcs.length < 2) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `invalid OID ${oid}`);
  const body = [...encodeBase128(arcs[0]! * 40 + arcs[1]!)];
  for (const a of arcs.slice(2)) body.push(...encodeBase128(a));
  return Buffer.from(body);
}

/** Two's-complement minimal encoding of a non-negative integer. */
function integerContent(v: number | bigint | Uint8Array): Buffer {
  let bytes: Buffer;
  if (v instanceof Uint8Array) {
    bytes = Buffer.from(v);
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0 && !(bytes[i + 1]! & 0x80)) i++;
    bytes = bytes.subarray(i);
    if (bytes.length === 0) bytes = Buffer.from([0]);
  } else {
    let n = BigInt(v);
    if (n < 0n) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "negative INTEGER not supported");
    const hex = n.toString(16);
    bytes = Buffer.from(hex.length % 2 ? "0" + hex : hex, "hex");
  }
  return bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/** DER constructors for the small structures the library writes. */
export const der = {
  seq: (...items: Uint8Array[]) => tlv(0x30, items),
  set: (...items: Uint8Array[]) => tlv(0x31, items),
  /** SET OF with its elements sorted by encoding, as DER requires (X.690 §11.6; RFC 5652 §5.4 for signed attributes). */
  setOf: (...items: Uint8Array[]) => tlv(0x31, [...items].map((i) => Buffer.from(i)).sort(Buffer.compare)),
  oid: (oid: string) => tlv(0x06, encodeOid(oid)),
  int: (v: number | bigint | Uint8Array) => tlv(0x02, integerContent(v)),
  octets: (b: Uint8Array) => tlv(0x04, b),
  null: () => Buffer.from([0x05, 0x00]),
  bool: (b: boolean) => Buffer.from([0x01, 0x01, b ? 0xff : 0x00]),
  /** [n] EXPLICIT or IMPLICIT constructed. */
  ctx: (n: number, ...items: Uint8Array[]) => tlv(0xa0 | n, items),
  /** [n] IMPLICIT primitive. */
  ctxPrim: (n: number, content: Uint8Array) => tlv(0x80 | n, content),
  /** signingTime: UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5652 §11.3). */
  time: (d: Date) => {
    const y = d.getUTCFullYear();
    const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
    return y >= 1950 && y < 2050 ? tlv(0x17, Buffer.from(two(y % 100) + rest, "latin1")) : tlv(0x18, Buffer.from(String(y) + rest, "latin1"));
  },
  algorithm: (oid: string, params?: Uint8Array | null) => (params === undefined ? der.seq(der.oid(oid)) : der.seq(der.oid(oid), params ?? der.null())),
};

/** The segment size used when streaming OCTET STRING content: large enough that headers cost nothing. */
export const OCTET_SEGMENT = 64 * 1024;

/**
 * Frames streamed bytes as the content of a constructed indefinite-length OCTET STRING with the
 * given outer tag (0x24 for OCTET STRING, 0xa0 for [0] IMPLICIT encryptedContent): each input
 * chunk becomes one primitive segment; EOC closes it.
 */
export async function* constructedOctetString(tag: number, source: AsyncIterable<Uint8Array>, maxSegment = OCTET_SEGMENT): AsyncGenerator<Uint8Array> {
  yield Buffer.from([tag | 0x20, 0x80]);
  for await (const chunk of source) {
    for (let i = 0; i < chunk.byteLength; i += maxSegment) {
      const seg = chunk.subarray(i, Math.min(i + maxSegment, chunk.byteLength));
      yield Buffer.concat([Buffer.from([0x04]), encodeLength(seg.byteLength)]);
      yield seg;
    }
  }
  yield END_OF_CONTENTS;
}
