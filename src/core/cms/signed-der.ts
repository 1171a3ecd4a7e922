/**
 * Reading a DER SignedData (RFC 5652 §5) by offsets, without building a pkijs object tree: the
 * receive path's hot spot (issue 14: pkijs/asn1js took about 12 ms per message, most of it on the
 * embedded certificates, which are only compared by their bytes).
 *
 * This is a fast path only. Anything it does not read exactly as pkijs would (indefinite lengths,
 * RSASSA-PSS parameters, a GeneralizedTime, an unknown algorithm, a repeated attribute, trailing
 * bytes, ...) makes it answer undefined, and parseSignedData (signed.ts) reads the input with
 * pkijs as before, with its error messages. So the outcome for odd or hostile input is unchanged.
 */
import { Buffer } from "node:buffer";
import { Certificate } from "../certs/certificate.js";
import { OID } from "./oids.js";
import { digestByOid, digestOfRsaSignatureOid } from "./digests.js";
import type { ParsedSignature, ParsedSignerInfo } from "./signed.js";

/** One DER element: its tag byte, and where its contents and the whole element lie. */
interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/** Thrown inside this module only: "not for the fast path". */
class NotFast extends Error {}

function tlvAt(b: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new NotFast();
  const tag = b[pos]!;
  // High tag numbers never occur in SignedData's own structure.
  if ((tag & 0x1f) === 0x1f) throw new NotFast();
  let p = pos + 1;
  const l0 = b[p++]!;
  let len = l0;
  if (l0 & 0x80) {
    const n = l0 & 0x7f;
    // 0x80 is the indefinite form (BER, not DER); more than 4 length bytes is not a message.
    if (n === 0 || n > 4 || p + n > limit) throw new NotFast();
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p++]!;
  }
  const end = p + len;
  if (end > limit) throw new NotFast();
  return { tag, start: pos, contentStart: p, end };
}

/** The elements inside a constructed one, in order. */
function children(b: Uint8Array, t: Tlv): Tlv[] {
  if (!(t.tag & 0x20)) throw new NotFast();
  const out: Tlv[] = [];
  for (let p = t.contentStart; p < t.end;) {
    const c = tlvAt(b, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number): Tlv {
  if (!t || t.tag !== tag) throw new NotFast();
  return t;
}

/** An OBJECT IDENTIFIER's dotted form (X.690 §8.19). */
function oidOf(b: Uint8Array, t: Tlv): string {
  expect(t, 0x06);
  if (t.end === t.contentStart) throw new NotFast();
  const arcs: number[] = [];
  let v = 0;
  for (let p = t.contentStart; p < t.end; p++) {
    const x = b[p]!;
    if (v === 0 && x === 0x80) throw new NotFast(); // non-minimal arc
    v = v * 128 + (x & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 256) throw new NotFast();
    if (!(x & 0x80)) {
      if (!arcs.length) arcs.push(v < 40 ? 0 : v < 80 ? 1 : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    }
  }
  if (b[t.end - 1]! & 0x80) throw new NotFast();
  return arcs.join(".");
}

/** The algorithm OID of an AlgorithmIdentifier whose parameters are absent or NULL. */
function simpleAlgorithm(b: Uint8Array, t: Tlv): string {
  const [oid, params, ...rest] = children(b, expect(t, 0x30));
  if (rest.length || (params && !(params.tag === 0x05 && params.end === params.contentStart))) throw new NotFast();
  return oidOf(b, oid!);
}

const content = (b: Uint8Array, t: Tlv) => Buffer.from(b.subarray(t.contentStart, t.end));
const whole = (b: Uint8Array, t: Tlv) => Buffer.from(b.subarray(t.start, t.end));

/** UTCTime YYMMDDHHMMSSZ (RFC 5280 §4.1.2.5.1; the form signers write), as asn1js reads it. */
function utcTime(b: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(b.subarray(t.contentStart, t.end)).toString("latin1");
  const m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
  if (!m) throw new NotFast();
  const yy = Number(m[1]);
  return new Date(Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

function signerInfo(b: Uint8Array, si: Tlv): ParsedSignerInfo {
  const f = children(b, expect(si, 0x30));
  let i = 0;
  expect(f[i++], 0x02); // version
  const sidT = f[i++];
  let sid: Pick<ParsedSignerInfo, "issuerDer" | "serial" | "subjectKeyIdentifier">;
  if (sidT?.tag === 0x30) {
    const [issuer, serial, ...rest] = children(b, sidT);
    if (rest.length) throw new NotFast();
    sid = { issuerDer: whole(b, expect(issuer, 0x30)), serial: content(b, expect(serial, 0x02)) };
  } else if (sidT?.tag === 0x80) {
    sid = { subjectKeyIdentifier: content(b, sidT) };
  } else {
    throw new NotFast();
  }
  const digest = digestByOid(simpleAlgorithm(b, f[i++]!));
  if (!digest) throw new NotFast();
  const attrsT = f[i]?.tag === 0xa0 ? f[i++] : undefined;
  const sigOid = simpleAlgorithm(b, f[i++]!);
  // RSASSA-PSS (parameters to read) and anything unknown: pkijs's path says what is wrong.
  const named = digestOfRsaSignatureOid(sigOid);
  if (!(sigOid === OID.rsaEncryption || (named && named === digest))) throw new NotFast();
  const signature = content(b, expect(f[i++], 0x04));
  if (f[i]?.tag === 0xa1) i++; // unsignedAttrs: not read
  if (i !== f.length) throw new NotFast();
  if (!attrsT) return { digest, scheme: "rsa", signature, ...sid };

  const attrs = new Map<string, Tlv>();
  for (const a of children(b, attrsT)) {
    const [type, values, ...rest] = children(b, expect(a, 0x30));
    const oid = oidOf(b, type!);
    if (rest.length || attrs.has(oid)) throw new NotFast();
    const vs = children(b, expect(values, 0x31));
    if (vs.length !== 1) throw new NotFast();
    attrs.set(oid, vs[0]!);
  }
  const md = attrs.get(OID.messageDigest);
  const ct = attrs.get(OID.contentType);
  const st = attrs.get(OID.signingTime);
  if (!md || md.tag !== 0x04 || !ct || (st && st.tag !== 0x17)) throw new NotFast();
  return {
    digest, scheme: "rsa", pssSaltLength: undefined,
    // As pkijs gives it (and as it is signed, RFC 5652 §5.4): the [0] IMPLICIT tag made SET.
    signedAttrs: Buffer.concat([Buffer.from([0x31]), b.subarray(attrsT.start + 1, attrsT.end)]),
    messageDigest: content(b, md),
    contentType: oidOf(b, ct),
    signingTime: st ? utcTime(b, st) : undefined,
    signature,
    ...sid,
  };
}

/** The ParsedSignature of a DER ContentInfo(SignedData), or undefined: then pkijs reads it. */
export function readSignedDataDer(input: Uint8Array): ParsedSignature | undefined {
  try {
    const ci = tlvAt(input, 0, input.length);
    if (ci.end !== input.length) return undefined;
    const [type, explicit, ...more] = children(input, expect(ci, 0x30));
    if (more.length || oidOf(input, type!) !== OID.signedData) return undefined;
    const [sd, ...extra] = children(input, expect(explicit, 0xa0));
    if (extra.length) return undefined;
    const f = children(input, expect(sd, 0x30));
    let i = 0;
    expect(f[i++], 0x02); // version
    for (const d of children(input, expect(f[i++], 0x31))) simpleAlgorithm(input, d); // digestAlgorithms
    const encap = children(input, expect(f[i++], 0x30));
    oidOf(input, encap[0]!);
    if (encap.length > 2 || (encap[1] && encap[1].tag !== 0xa0)) return undefined;
    const certificates: Certificate[] = [];
    if (f[i]?.tag === 0xa0) {
      for (const c of children(input, f[i++]!)) {
        // Other CertificateChoices (attribute certificates): pkijs's path.
        if (c.tag !== 0x30) return undefined;
        certificates.push(new Certificate(input.subarray(c.start, c.end)));
      }
    }
    if (f[i]?.tag === 0xa1) return undefined; // CRLs: rare; pkijs's path
    const signers = children(input, expect(f[i++], 0x31)).map((si) => signerInfo(input, si));
    if (i !== f.length || !signers.length) return undefined;
    return { signers, certificates };
  } catch (e) {
    // A certificate X.509 cannot read, or a shape this reader does not take.
    if (e instanceof NotFast) return undefined;
    if (e instanceof Error && (e as { code?: string }).code === "AS2_ERR_BAD_CERTIFICATE") return undefined;
    throw e;
  }
}
