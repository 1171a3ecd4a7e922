/**
 * CompressedData (RFC 3274, as2-reference.md K17): ContentInfo{ id-ct-compressedData,
 * CompressedData{ 0, zlibCompress, EncapsulatedContentInfo{ id-data, [0] OCTET STRING } } }.
 * The eContent is a zlib stream (RFC 1950), not raw deflate. Streams both ways.
 */
import { Buffer } from "node:buffer";
import * as zlib from "node:zlib";
import { As2Error, ErrorCodes, asAs2Error } from "../errors.js";
import { der, constructedOctetString, END_OF_CONTENTS, indefiniteHeader } from "../ber/writer.js";
import { BerReader, TagClass, UniversalTag } from "../ber/reader.js";
import { rechunk } from "../bytes.js";
import { viaTransform, limitSize } from "../streams.js";
import { OID } from "./oids.js";
import { finishContentInfo, readContentInfoStart, type ContentInfoStart } from "./content-info.js";

export interface CompressOptions {
  /** zlib level 1-9; 6 is zlib's default balance. */
  level?: number;
}

export async function* compressStream(content: AsyncIterable<Uint8Array>, options: CompressOptions = {}): AsyncGenerator<Uint8Array> {
  yield Buffer.concat([
    indefiniteHeader(0x10), der.oid(OID.compressedData),
    indefiniteHeader(0x80),
    indefiniteHeader(0x10), der.int(0),
    der.seq(der.oid(OID.zlibCompress)), // parameters absent (RFC 3274 §2)
    indefiniteHeader(0x10), der.oid(OID.data),
    indefiniteHeader(0x80), // eContent [0] EXPLICIT
  ]);
  const deflated = viaTransform(content, zlib.createDeflate({ level: options.level ?? 6, chunkSize: 64 * 1024 }));
  yield* constructedOctetString(0x04, rechunk(deflated, 16 * 1024));
  // [0] eContent, EncapsulatedContentInfo, CompressedData, [0], ContentInfo
  yield Buffer.concat([END_OF_CONTENTS, END_OF_CONTENTS, END_OF_CONTENTS, END_OF_CONTENTS, END_OF_CONTENTS]);
}

export interface DecompressOptions {
  /**
   * Largest inflated size accepted. A few KB of zlib can inflate to gigabytes (a decompression
   * bomb); past this the stream fails with decompression-failed and nothing more is produced.
   */
  maxInflatedBytes: number;
}

/** A zlib header has CM=8 and a check value that makes CMF*256+FLG a multiple of 31 (RFC 1950 §2.2). */
function isZlibHeader(b: Buffer): boolean {
  return b.length >= 2 && (b[0]! & 0x0f) === 8 && (b[0]! * 256 + b[1]!) % 31 === 0;
}

/** Reads CompressedData whose ContentInfo header was read, returning the inflated stream. */
export async function openCompressed(r: BerReader, ci: ContentInfoStart, options: DecompressOptions): Promise<AsyncIterable<Uint8Array>> {
  const body = r.enter(await r.expect(TagClass.UNIVERSAL, UniversalTag.SEQUENCE, "CompressedData", true), ci.content);
  await r.readSmallInt("CompressedData version");
  const alg = r.enter(await r.expect(TagClass.UNIVERSAL, UniversalTag.SEQUENCE, "compressionAlgorithm", true), body);
  const algOid = await r.readOid("compression algorithm");
  if (algOid !== OID.zlibCompress) {
    throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `compression algorithm ${algOid} is not supported (only zlib, RFC 3274)`, { disposition: "decompression-failed" });
  }
  while (await r.hasMore(alg)) await r.skip(await r.readHeader("compression parameters"), "compression parameters", alg);
  await r.leave(alg);
  const eci = r.enter(await r.expect(TagClass.UNIVERSAL, UniversalTag.SEQUENCE, "EncapsulatedContentInfo", true), body);
  await r.readOid("eContentType");
  const explicit = r.enter(await r.expect(TagClass.CONTEXT, 0, "eContent", true), eci);
  const os = await r.readHeader("eContent OCTET STRING");
  if (os.tagClass !== TagClass.UNIVERSAL || os.tagNumber !== UniversalTag.OCTET_STRING) throw new As2Error(ErrorCodes.MALFORMED_CMS, "CompressedData eContent is not an OCTET STRING");

  async function* compressed(): AsyncGenerator<Uint8Array> {
    yield* r.octetStringContent(os, "compressed content", explicit);
    await r.leave(explicit);
    await r.leave(eci);
    await r.leave(body);
    await finishContentInfo(r, ci);
  }
  async function* inflated(): AsyncGenerator<Uint8Array> {
    const src = compressed()[Symbol.asyncIterator]();
    const first = await src.next();
    if (first.done) throw new As2Error(ErrorCodes.DECOMPRESSION_FAILED, "CompressedData holds no content");
    const head = Buffer.from(first.value);
    // raw deflate is accepted as a tolerance for broken senders (as2-reference.md §19)
    const inflater = isZlibHeader(head) ? zlib.createInflate({ chunkSize: 64 * 1024 }) : zlib.createInflateRaw({ chunkSize: 64 * 1024 });
    async function* all(): AsyncGenerator<Uint8Array> {
      yield head;
      for (let n = await src.next(); !n.done; n = await src.next()) yield n.value;
    }
    try {
      yield* limitSize(viaTransform(all(), inflater), options.maxInflatedBytes, "inflated content", "decompression-failed");
    } catch (e) {
      throw asAs2Error(e, ErrorCodes.DECOMPRESSION_FAILED, "decompression failed");
    }
  }
  return inflated();
}

/** Convenience: inflate a stream that is a ContentInfo{CompressedData}. */
export async function decompressStream(source: AsyncIterable<Uint8Array>, options: DecompressOptions): Promise<AsyncIterable<Uint8Array>> {
  const r = new BerReader(source);
  const ci = await readContentInfoStart(r);
  if (ci.contentType !== OID.compressedData) throw new As2Error(ErrorCodes.MALFORMED_CMS, `expected CompressedData, found content type ${ci.contentType}`);
  return openCompressed(r, ci, options);
}
