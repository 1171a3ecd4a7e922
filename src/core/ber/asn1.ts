/**
 * The one wrapper around asn1js.fromBER for received bytes. asn1js reports most malformed input
 * with offset -1, but throws plain Errors for some of it - a malformed UTCTime or GeneralizedTime
 * ("Wrong input string for conversion", X.680 §46-47), found by the fuzzer in RecipientInfos and
 * certificate extensions - so every parse of input goes through here and fails as an As2Error.
 */
import * as asn1js from "asn1js";
import { As2Error, ErrorCodes, type ErrorCode } from "../errors.js";
import { toArrayBuffer } from "../bytes.js";

/** Parses one BER element; malformed input is an As2Error with `code` (MALFORMED_BER by default). */
export function parseAsn1(bytes: Uint8Array, what: string, code: ErrorCode = ErrorCodes.MALFORMED_BER): asn1js.AsnType {
  let parsed: ReturnType<typeof asn1js.fromBER>;
  try {
    parsed = asn1js.fromBER(toArrayBuffer(bytes));
  } catch (e) {
    throw new As2Error(code, `${what} is not valid BER: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (parsed.offset === -1) throw new As2Error(code, `${what} is not valid BER${parsed.result.error ? `: ${parsed.result.error}` : ""}`);
  return parsed.result;
}

/** One element of an in-memory BER tree (berTree). */
export interface BerTreeNode {
  tagClass: number;
  constructed: boolean;
  tagNumber: number;
  /** Content octets (primitive elements). */
  content?: Uint8Array;
  children?: BerTreeNode[];
}

/**
 * A small, lenient, synchronous BER reader for checks that must see a structure the way OpenSSL
 * will (definite and indefinite lengths, constructed strings), where asn1js refuses some valid
 * BER (an indefinite-length constructed OCTET STRING inside a definite SEQUENCE, for one).
 * Returns undefined for bytes that are not one BER element.
 */
export function berTree(bytes: Uint8Array, maxDepth = 32): BerTreeNode | undefined {
  let pos = 0;
  const read = (end: number, depth: number): BerTreeNode => {
    if (depth > maxDepth || pos + 2 > end) throw new Error("malformed");
    const b0 = bytes[pos++]!;
    let tagNumber = b0 & 0x1f;
    if (tagNumber === 0x1f) {
      tagNumber = 0;
      for (let i = 0; ; i++) {
        if (i === 4 || pos >= end) throw new Error("malformed");
        const b = bytes[pos++]!;
        tagNumber = tagNumber * 128 + (b & 0x7f);
        if (!(b & 0x80)) break;
      }
    }
    if (pos >= end) throw new Error("malformed");
    const l0 = bytes[pos++]!;
    const node: BerTreeNode = { tagClass: b0 >> 6, constructed: (b0 & 0x20) !== 0, tagNumber };
    if (l0 === 0x80) {
      if (!node.constructed) throw new Error("malformed");
      node.children = [];
      while (!(bytes[pos] === 0 && bytes[pos + 1] === 0)) node.children.push(read(end, depth + 1));
      // The end-of-contents must lie inside the enclosing element too.
      if (pos + 2 > end) throw new Error("malformed");
      pos += 2;
      return node;
    }
    let length = l0;
    if (l0 > 0x80) {
      const n = l0 & 0x7f;
      if (n > 4 || pos + n > end) throw new Error("malformed");
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + bytes[pos++]!;
    }
    const stop = pos + length;
    if (stop > end) throw new Error("malformed");
    if (node.constructed) {
      node.children = [];
      while (pos < stop) node.children.push(read(stop, depth + 1));
      // X.690 §8.1: a constructed element's contents are exactly its children.
      if (pos !== stop) throw new Error("malformed");
    } else {
      node.content = bytes.subarray(pos, stop);
      pos = stop;
    }
    return node;
  };
  try {
    return read(bytes.length, 0);
  } catch {
    return undefined;
  }
}
