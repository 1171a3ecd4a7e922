/**
 * Streaming BER reader (X.690): definite and indefinite lengths, constructed OCTET STRINGs.
 * Single-pass CMS producers (openssl -stream, Bouncy Castle, Mendelson) emit indefinite lengths
 * and chunked OCTET STRINGs (as2-reference.md K16), so the receive path must read full BER while
 * the payload streams. Small structures are captured as raw bytes and handed to asn1js/pkijs.
 */
import { Buffer } from "node:buffer";
import { As2Error, ErrorCodes } from "../errors.js";
import { ByteReader } from "./byte-reader.js";

export const TagClass = { UNIVERSAL: 0, APPLICATION: 1, CONTEXT: 2, PRIVATE: 3 } as const;
export const UniversalTag = {
  EOC: 0, BOOLEAN: 1, INTEGER: 2, BIT_STRING: 3, OCTET_STRING: 4, NULL: 5, OID: 6,
  UTF8_STRING: 12, SEQUENCE: 16, SET: 17, PRINTABLE_STRING: 19, IA5_STRING: 22, UTC_TIME: 23, GENERALIZED_TIME: 24,
} as const;

export interface BerLimits {
  /** Nesting depth. Without a bound a crafted input of nested indefinite lengths recurses without end. */
  maxDepth: number;
  /** Largest element read into memory (RecipientInfos, certificates, signatures). Bulk content streams instead. */
  maxElementBytes: number;
}

export const DEFAULT_BER_LIMITS: BerLimits = {
  maxDepth: 64,
  maxElementBytes: 16 * 1024 * 1024,
};

export interface BerHeader {
  tagClass: number;
  constructed: boolean;
  tagNumber: number;
  /** null = indefinite length (terminated by end-of-contents 00 00). */
  length: number | null;
  /** The identifier and length octets as read. */
  raw: Buffer;
}

/** A constructed element being walked: where it ends (definite) or that it ends at EOC. */
export interface BerContainer {
  end: number | null;
  depth: number;
}

function malformed(msg: string): As2Error {
  return new As2Error(ErrorCodes.MALFORMED_BER, msg);
}

export function describeTag(h: Pick<BerHeader, "tagClass" | "tagNumber" | "constructed">): string {
  const cls = ["UNIVERSAL", "APPLICATION", "CONTEXT", "PRIVATE"][h.tagClass];
  return `${cls} ${h.tagNumber}${h.constructed ? " (constructed)" : ""}`;
}

/** Dotted form of OID content octets (X.690 §8.19). */
export function decodeOid(content: Uint8Array): string {
  if (content.byteLength === 0) throw malformed("empty OBJECT IDENTIFIER");
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < content.byteLength; i++) {
    const b = content[i]!;
    // X.690 §8.19.2: a subidentifier is encoded in the fewest octets, so none starts with 0x80.
    if (b === 0x80 && v === 0) throw malformed("OBJECT IDENTIFIER with a subidentifier padded by 0x80 (X.690 §8.19.2)");
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER) throw malformed("OBJECT IDENTIFIER arc too large");
    if (!(b & 0x80)) {
      if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    } else if (i === content.byteLength - 1) {
      throw malformed("truncated OBJECT IDENTIFIER");
    }
  }
  return arcs.join(".");
}

export class BerReader {
  readonly bytes: ByteReader;
  readonly limits: BerLimits;

  constructor(source: ByteReader | AsyncIterable<Uint8Array>, limits: Partial<BerLimits> = {}) {
    this.bytes = source instanceof ByteReader ? source : new ByteReader(source);
    this.limits = { ...DEFAULT_BER_LIMITS, ...limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isFinite(v) || v <= 0) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `BER limit ${k} must be a positive number, got ${v}`);
    }
  }

  get position(): number {
    return this.bytes.position;
  }

  async readHeader(what = "BER element"): Promise<BerHeader> {
    const first = await this.bytes.readExact(1, what);
    const b0 = first[0]!;
    const raw: number[] = [b0];
    let tagNumber = b0 & 0x1f;
    if (tagNumber === 0x1f) {
      // High tag number form: base-128, at most 4 octets (no CMS tag comes near that).
      tagNumber = 0;
      for (let i = 0; ; i++) {
        if (i === 4) throw malformed(`tag number too long in ${what}`);
        const b = (await this.bytes.readExact(1, what))[0]!;
        raw.push(b);
        tagNumber = tagNumber * 128 + (b & 0x7f);
        if (!(b & 0x80)) break;
      }
    }
    const l0 = (await this.bytes.readExact(1, what))[0]!;
    raw.push(l0);
    let length: number | null;
    if (l0 < 0x80) {
      length = l0;
    } else if (l0 === 0x80) {
      if (!(b0 & 0x20)) throw malformed(`indefinite length on a primitive ${what}`);
      length = null;
    } else {
      const n = l0 & 0x7f;
      // 6 length octets are 2^48 bytes: larger is never a real message and would lose precision.
      if (n > 6) throw malformed(`length of ${n} octets in ${what}`);
      const lb = await this.bytes.readExact(n, what);
      raw.push(...lb);
      length = 0;
      for (const b of lb) length = length * 256 + b;
    }
    return {
      tagClass: b0 >> 6,
      constructed: (b0 & 0x20) !== 0,
      tagNumber,
      length,
      raw: Buffer.from(raw),
    };
  }

  /** Reads a header and checks it is the expected tag. */
  async expect(tagClass: number, tagNumber: number, what: string, constructed?: boolean): Promise<BerHeader> {
    const h = await this.readHeader(what);
    if (h.tagClass !== tagClass || h.tagNumber !== tagNumber || (constructed !== undefined && h.constructed !== constructed)) {
      throw malformed(`expected ${what} (${describeTag({ tagClass, tagNumber, constructed: constructed ?? false })}), found ${describeTag(h)}`);
    }
    return h;
  }

  async peekHeader(): Promise<{ tagClass: number; tagNumber: number; constructed: boolean } | null> {
    const b = await this.bytes.peek(1);
    if (b.length === 0) return null;
    return { tagClass: b[0]! >> 6, constructed: (b[0]! & 0x20) !== 0, tagNumber: b[0]! & 0x1f };
  }

  /** Reads an OBJECT IDENTIFIER element. */
  async readOid(what: string): Promise<string> {
    const h = await this.expect(TagClass.UNIVERSAL, UniversalTag.OID, what, false);
    // OIDs are short; 256 bytes is far beyond any real one.
    if (h.length! > 256) throw malformed(`${what} is ${h.length} bytes long`);
    return decodeOid(await this.bytes.readExact(h.length!, what));
  }

  /** Reads a small INTEGER element as a number. */
  async readSmallInt(what: string): Promise<number> {
    const h = await this.expect(TagClass.UNIVERSAL, UniversalTag.INTEGER, what, false);
    if (h.length! < 1 || h.length! > 6) throw malformed(`${what}: INTEGER of ${h.length} bytes`);
    const b = await this.bytes.readExact(h.length!, what);
    return b.readIntBE(0, b.length);
  }

  /** Enters a constructed element whose header was just read. */
  enter(h: BerHeader, parent?: BerContainer): BerContainer {
    if (!h.constructed) throw malformed(`expected a constructed element, found ${describeTag(h)}`);
    const depth = (parent?.depth ?? 0) + 1;
    if (depth > this.limits.maxDepth) {
      throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `BER nesting deeper than ${this.limits.maxDepth}`);
    }
    return { end: h.length === null ? null : this.position + h.length, depth };
  }

  /** True while the container has more children. */
  async hasMore(c: BerContainer): Promise<boolean> {
    if (c.end !== null) {
      if (this.position > c.end) throw malformed("element overruns its parent's length");
      return this.position < c.end;
    }
    const two = await this.bytes.peek(2);
    if (two.length < 2) throw new As2Error(ErrorCodes.TRUNCATED, "input ends before end-of-contents of an indefinite-length element");
    return !(two[0] === 0 && two[1] === 0);
  }

  /** Leaves a container: consumes EOC (indefinite) or checks the length was used exactly. */
  async leave(c: BerContainer): Promise<void> {
    if (c.end === null) {
      const eoc = await this.bytes.readExact(2, "end-of-contents");
      if (eoc[0] !== 0 || eoc[1] !== 0) throw malformed("expected end-of-contents");
    } else if (this.position !== c.end) {
      throw malformed(`element length mismatch (at ${this.position}, expected end at ${c.end})`);
    }
  }

  /** Content octets of a primitive element, in memory, within the element limit. */
  async readPrimitiveContent(h: BerHeader, what: string): Promise<Buffer> {
    if (h.constructed || h.length === null) throw malformed(`expected a primitive ${what}`);
    this.checkSize(h.length, what);
    return this.bytes.readExact(h.length, what);
  }

  private checkSize(n: number, what: string): void {
    if (n > this.limits.maxElementBytes) {
      throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `${what} of ${n} bytes exceeds the limit of ${this.limits.maxElementBytes}`);
    }
  }

  /**
   * Reads a whole element (header + content, nested indefinite lengths included) as raw bytes,
   * for asn1js/pkijs to parse. `h` is its header if already read.
   */
  async readRawElement(what: string, h?: BerHeader, depth = 0): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    const walk = async (hdr: BerHeader, d: number): Promise<void> => {
      if (d > this.limits.maxDepth) throw new As2Error(ErrorCodes.LIMIT_EXCEEDED, `BER nesting deeper than ${this.limits.maxDepth} in ${what}`);
      parts.push(hdr.raw);
      size += hdr.raw.length;
      if (hdr.length !== null) {
        this.checkSize(size + hdr.length, what);
        parts.push(await this.bytes.readExact(hdr.length, what));
        size += hdr.length;
        return;
      }
      for (;;) {
        const two = await this.bytes.peek(2);
        if (two.length < 2) throw new As2Error(ErrorCodes.TRUNCATED, `input ends inside ${what}`);
        if (two[0] === 0 && two[1] === 0) {
          parts.push(await this.bytes.readExact(2, what));
          size += 2;
          return;
        }
        await walk(await this.readHeader(what), d + 1);
        this.checkSize(size, what);
      }
    };
    await walk(h ?? (await this.readHeader(what)), depth);
    return Buffer.concat(parts);
  }

  /**
   * Streams the content octets of an OCTET STRING (or an IMPLICIT-tagged one such as
   * encryptedContent [0]): primitive, or constructed from nested OCTET STRING segments
   * (X.690 §8.7.3), with definite or indefinite lengths.
   */
  async *octetStringContent(h: BerHeader, what: string, parent?: BerContainer): AsyncGenerator<Buffer> {
    if (!h.constructed) {
      if (h.length === null) throw malformed(`primitive ${what} without length`);
      yield* this.bytes.readStream(h.length, what);
      return;
    }
    const c = this.enter(h, parent);
    while (await this.hasMore(c)) {
      const seg = await this.readHeader(what);
      if (seg.tagClass !== TagClass.UNIVERSAL || seg.tagNumber !== UniversalTag.OCTET_STRING) {
        throw malformed(`segment of ${what} is ${describeTag(seg)}, not an OCTET STRING`);
      }
      yield* this.octetStringContent(seg, what, c);
    }
    await this.leave(c);
  }

  /** Skips an element whose header was read (its content may be large: nothing is kept). */
  async skip(h: BerHeader, what: string, parent?: BerContainer): Promise<void> {
    if (h.length !== null) {
      for await (const _ of this.bytes.readStream(h.length, what)) void _;
      return;
    }
    const c = this.enter(h, parent);
    while (await this.hasMore(c)) await this.skip(await this.readHeader(what), what, c);
    await this.leave(c);
  }
}
