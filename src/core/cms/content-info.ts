/** The ContentInfo wrapper (RFC 5652 §3) read from a stream: its type decides what follows. */
import { As2Error, ErrorCodes } from "../errors.js";
import { BerReader, TagClass, UniversalTag, type BerContainer } from "../ber/reader.js";

export interface ContentInfoStart {
  contentType: string;
  outer: BerContainer;
  /** The [0] EXPLICIT content. */
  content: BerContainer;
}

export async function readContentInfoStart(r: BerReader): Promise<ContentInfoStart> {
  const h = await r.expect(TagClass.UNIVERSAL, UniversalTag.SEQUENCE, "ContentInfo", true);
  const outer = r.enter(h);
  const contentType = await r.readOid("ContentInfo contentType");
  const c = await r.expect(TagClass.CONTEXT, 0, "ContentInfo content [0]", true);
  return { contentType, outer, content: r.enter(c, outer) };
}

/**
 * Closes the ContentInfo and checks nothing but line-end whitespace follows. Senders must not
 * append anything after the final EOC (K16, DGI-1Q09 #4); a stray CRLF is tolerated on input.
 */
export async function finishContentInfo(r: BerReader, ci: ContentInfoStart): Promise<void> {
  await r.leave(ci.content);
  await r.leave(ci.outer);
  let extra = 0;
  for await (const chunk of r.bytes.rest()) {
    for (const b of chunk) {
      if (b !== 0x0d && b !== 0x0a && b !== 0x20 && b !== 0x09) {
        throw new As2Error(ErrorCodes.MALFORMED_BER, "unexpected data after the end of the CMS structure");
      }
    }
    extra += chunk.length;
    if (extra > 64) throw new As2Error(ErrorCodes.MALFORMED_BER, "unexpected data after the end of the CMS structure");
  }
}
