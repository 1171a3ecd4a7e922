/**
 * Detached CMS SignedData (RFC 5652 §5; RFC 5751 §3.4.3) for multipart/signed.
 * Signing takes the digest of the content (computed while it streamed) and writes DER.
 * Verification takes the digests the receiver computed and reports every check it made.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { As2Error, ErrorCodes } from "../errors.js";
import { toArrayBuffer } from "../bytes.js";
import { der, tlv } from "../ber/writer.js";
import { Certificate } from "../certs/certificate.js";
import { OID } from "./oids.js";
import { readSignedDataDer } from "./signed-der.js";
import { DIGESTS, type DigestAlgorithm, digestByOid, digestOfRsaSignatureOid } from "./digests.js";

export type SignatureScheme = "rsa" | "rsassa-pss";

export interface SignOptions {
  digest: DigestAlgorithm;
  key: crypto.KeyObject;
  certificate: Certificate;
  /** Extra certificates to embed (intermediates). */
  chain?: Certificate[];
  scheme?: SignatureScheme;
  /** signingTime attribute; injected so output can be reproduced. Omitted when null. */
  signingTime: Date | null;
  /** Identify the signer by subjectKeyIdentifier (SignerInfo v3) instead of issuerAndSerialNumber. */
  useSubjectKeyIdentifier?: boolean;
  /** Include the smimeCapabilities attribute (RFC 5751 §2.5.2). Default true. */
  smimeCapabilities?: boolean;
}

/** What we advertise (RFC 5751 §2.5.2): strongest first, one SMIMECapability per algorithm. */
function capabilities(): Buffer {
  return der.seq(
    der.seq(der.oid(OID.aes256Cbc)),
    der.seq(der.oid(OID.aes192Cbc)),
    der.seq(der.oid(OID.aes128Cbc)),
    der.seq(der.oid(OID.aes256Gcm)),
    der.seq(der.oid(OID.aes128Gcm)),
    der.seq(der.oid(OID.desEde3Cbc)),
    der.seq(der.oid(OID.preferBinaryInside)),
  );
}

function attribute(oid: string, value: Uint8Array): Buffer {
  return der.seq(der.oid(oid), der.set(value));
}

/** SHA-1/SHA-2 AlgorithmIdentifiers are written with parameters absent (RFC 5754 §2, K14). */
function digestAlgId(d: DigestAlgorithm): Buffer {
  return d === "md5" ? der.algorithm(DIGESTS[d].oid, null) : der.algorithm(DIGESTS[d].oid);
}

function pssParams(d: DigestAlgorithm): Buffer {
  // RSASSA-PSS-params, RFC 4055 §3.1; DEFAULT values (sha1, mgf1SHA1, 20) are omitted in DER.
  const fields: Buffer[] = [];
  if (d !== "sha1") {
    fields.push(der.ctx(0, digestAlgId(d)));
    fields.push(der.ctx(1, der.seq(der.oid(OID.mgf1), digestAlgId(d))));
  }
  if (DIGESTS[d].length !== 20) fields.push(der.ctx(2, der.int(DIGESTS[d].length)));
  return der.seq(...fields);
}

function signatureAlgId(d: DigestAlgorithm, scheme: SignatureScheme): Buffer {
  return scheme === "rsassa-pss" ? der.seq(der.oid(OID.rsassaPss), pssParams(d)) : der.algorithm(OID.rsaEncryption, null);
}

function signPadding(key: crypto.KeyObject | crypto.X509Certificate["publicKey"], scheme: SignatureScheme, d: DigestAlgorithm, saltLength?: number) {
  return scheme === "rsassa-pss"
    ? { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: saltLength ?? DIGESTS[d].length }
    : { key, padding: crypto.constants.RSA_PKCS1_PADDING };
}

/**
 * Builds ContentInfo{SignedData} over a content digest (detached: eContent absent, K2).
 * `contentDigest` must be computed with `options.digest` over the exact signed bytes (C1).
 */
export function createDetachedSignature(contentDigest: Uint8Array, options: SignOptions): Buffer {
  const { digest, certificate } = options;
  const scheme = options.scheme ?? "rsa";
  if (contentDigest.byteLength !== DIGESTS[digest].length) {
    throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `content digest has ${contentDigest.byteLength} bytes, ${digest} has ${DIGESTS[digest].length}`);
  }
  if (digest === "md5") throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, "md5 signatures are accepted for verification only, never created");
  const attrs = [
    attribute(OID.contentType, der.oid(OID.data)),
    attribute(OID.messageDigest, der.octets(contentDigest)),
  ];
  if (options.signingTime) attrs.push(attribute(OID.signingTime, der.time(options.signingTime)));
  if (options.smimeCapabilities !== false) attrs.push(attribute(OID.smimeCapabilities, capabilities()));
  // Signed attributes are signed as a DER SET OF (tag 0x31), sent as [0] IMPLICIT (RFC 5652 §5.4).
  const attrSet = der.setOf(...attrs);
  const signature = crypto.sign(DIGESTS[digest].node, attrSet, signPadding(options.key, scheme, digest));

  const ski = options.useSubjectKeyIdentifier ? certificate.subjectKeyIdentifier : undefined;
  if (options.useSubjectKeyIdentifier && !ski) throw new As2Error(ErrorCodes.BAD_CERTIFICATE, "the signing certificate has no subjectKeyIdentifier");
  const sid = ski ? der.ctxPrim(0, ski) : der.seq(certificate.issuerDer, tlv(0x02, certificate.serialBytes));
  const version = ski ? 3 : 1; // RFC 5652 §5.3
  const signerInfo = der.seq(
    der.int(version),
    sid,
    digestAlgId(digest),
    Buffer.concat([Buffer.from([0xa0]), attrSet.subarray(1)]),
    signatureAlgId(digest, scheme),
    der.octets(signature),
  );
  const certs = [certificate, ...(options.chain ?? [])].map((c) => c.der);
  const signedData = der.seq(
    der.int(version), // 1 with v1 SignerInfos and id-data, 3 with a v3 SignerInfo (RFC 5652 §5.1)
    der.set(digestAlgId(digest)),
    der.seq(der.oid(OID.data)),
    der.ctx(0, ...certs),
    der.set(signerInfo),
  );
  return der.seq(der.oid(OID.signedData), der.ctx(0, signedData));
}

export interface ParsedSignerInfo {
  issuerDer?: Buffer;
  serial?: Buffer;
  subjectKeyIdentifier?: Buffer;
  digest: DigestAlgorithm;
  scheme: SignatureScheme;
  pssSaltLength?: number;
  /**
   * Raw [0] IMPLICIT signedAttrs as received (re-tagged to SET for verification, K5); absent when
   * the signer signed the content itself (RFC 5652 §5.4, allowed for id-data: IBM Sterling B2B
   * Integrator does so), and then messageDigest and contentType are absent too.
   */
  signedAttrs?: Buffer;
  messageDigest?: Buffer;
  contentType?: string;
  signingTime?: Date;
  signature: Buffer;
}

export interface ParsedSignature {
  signers: ParsedSignerInfo[];
  certificates: Certificate[];
}

function bad(msg: string): As2Error {
  return new As2Error(ErrorCodes.MALFORMED_CMS, `SignedData: ${msg}`);
}

/** The OID of an AlgorithmIdentifier (RFC 5280 §4.1.1.2): its first element, which must be one. */
function algorithmOid(algId: asn1js.Sequence, what: string): string {
  const oid = algId.valueBlock.value[0];
  if (!(oid instanceof asn1js.ObjectIdentifier)) throw bad(`${what} has no algorithm OID`);
  return oid.valueBlock.toString();
}

/** Reads RSASSA-PSS-params (RFC 4055 §3.1) and checks they fit what Node can verify. */
function readPss(params: unknown, digest: DigestAlgorithm): number {
  let hash: DigestAlgorithm = "sha1";
  let mgfHash: DigestAlgorithm = "sha1";
  let salt = 20;
  if (params instanceof asn1js.Sequence) {
    for (const f of params.valueBlock.value) {
      const tag = f.idBlock.tagNumber;
      const inner = (f as asn1js.Constructed).valueBlock?.value?.[0];
      if (tag === 0 && inner instanceof asn1js.Sequence) {
        const oid = algorithmOid(inner, "RSASSA-PSS hashAlgorithm");
        hash = digestByOid(oid) ?? (() => { throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `PSS hash ${oid}`); })();
      } else if (tag === 1 && inner instanceof asn1js.Sequence) {
        const mgfParams = inner.valueBlock.value[1];
        if (mgfParams instanceof asn1js.Sequence) {
          mgfHash = digestByOid(algorithmOid(mgfParams, "RSASSA-PSS MGF1 hash")) ?? "sha1";
        }
      } else if (tag === 2 && inner instanceof asn1js.Integer) {
        salt = inner.valueBlock.valueDec;
      }
    }
  }
  // Node's PSS uses the message hash for MGF1 as well; other combinations cannot be verified here.
  if (hash !== digest || mgfHash !== digest) {
    throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `RSASSA-PSS with hash ${hash}, MGF1 ${mgfHash} and digest ${digest} is not supported`);
  }
  return salt;
}

export function parseSignedData(input: Uint8Array): ParsedSignature {
  // DER as every AS2 product writes it: read by offsets (signed-der.ts); anything else: pkijs.
  return readSignedDataDer(input) ?? parseSignedDataWithPkijs(input);
}

/** The general reader (BER, every option), and the one whose errors say what is wrong. */
export function parseSignedDataWithPkijs(input: Uint8Array): ParsedSignature {
  let sd: pkijs.SignedData;
  let ci: pkijs.ContentInfo;
  try {
    ci = pkijs.ContentInfo.fromBER(toArrayBuffer(input));
    if (ci.contentType !== OID.signedData) throw bad(`content type is ${ci.contentType}, not signedData`);
  } catch (e) {
    if (e instanceof As2Error) throw e;
    throw new As2Error(ErrorCodes.MALFORMED_CMS, `not a readable CMS SignedData: ${(e as Error).message}`, { cause: e });
  }
  // The certificates exactly as received: their DER from the parse tree, not pkijs re-encoded
  // (RFC 5652 §5.1 certificates [0] IMPLICIT; other choices such as attribute certificates are skipped).
  const certificates: Certificate[] = [];
  const fields = ci.content instanceof asn1js.Sequence ? ci.content.valueBlock.value : [];
  const certSet = fields.find((b) => b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 0) as asn1js.Constructed | undefined;
  for (const c of certSet?.valueBlock.value ?? []) {
    if (c.idBlock.tagClass === 1 && c.idBlock.tagNumber === 16) certificates.push(new Certificate(new Uint8Array(c.valueBeforeDecodeView)));
  }
  try {
    // pkijs would match every certificate against its schema and build its own objects of them
    // (the larger part of the parse time of an MDN's signature); they are read above, so it gets
    // the SignedData without the optional [0] certificates (RFC 5652 §5.1).
    if (certSet) fields.splice(fields.indexOf(certSet), 1);
    sd = new pkijs.SignedData({ schema: ci.content });
  } catch (e) {
    throw new As2Error(ErrorCodes.MALFORMED_CMS, `not a readable CMS SignedData: ${(e as Error).message}`, { cause: e });
  }
  const signers = sd.signerInfos.map((si): ParsedSignerInfo => {
    const digest = digestByOid(si.digestAlgorithm.algorithmId);
    if (!digest) throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `digest algorithm ${si.digestAlgorithm.algorithmId} is not supported`);
    const sigOid = si.signatureAlgorithm.algorithmId;
    let scheme: SignatureScheme;
    let pssSaltLength: number | undefined;
    if (sigOid === OID.rsassaPss) {
      scheme = "rsassa-pss";
      pssSaltLength = readPss(si.signatureAlgorithm.algorithmParams, digest);
    } else if (sigOid === OID.rsaEncryption || digestOfRsaSignatureOid(sigOid)) {
      // K13: rsaEncryption or shaXWithRSAEncryption; the digest of the latter must agree.
      const named = digestOfRsaSignatureOid(sigOid);
      if (named && named !== digest) throw bad(`signature algorithm ${sigOid} disagrees with digest ${digest}`);
      scheme = "rsa";
    } else {
      throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `signature algorithm ${sigOid} is not supported`);
    }
    const sid = signerIdOf(si);
    if (!si.signedAttrs) {
      // RFC 5652 §5.3: without signed attributes the signature covers the content's digest itself.
      if (scheme !== "rsa") throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, "an RSASSA-PSS signature without signed attributes cannot be verified here");
      return { digest, scheme, signature: Buffer.from(si.signature.getValue()), ...sid };
    }
    const attr = (oid: string) => {
      const found = si.signedAttrs!.attributes.filter((a) => a.type === oid);
      if (found.length > 1) throw bad(`signed attribute ${oid} appears more than once`);
      return found[0]?.values;
    };
    const md = attr(OID.messageDigest)?.[0];
    if (!(md instanceof asn1js.OctetString)) throw bad("messageDigest attribute missing");
    const ct = attr(OID.contentType)?.[0];
    if (!(ct instanceof asn1js.ObjectIdentifier)) throw bad("contentType attribute missing");
    const st = attr(OID.signingTime)?.[0];
    const signingTime = st instanceof asn1js.UTCTime || st instanceof asn1js.GeneralizedTime ? st.toDate() : undefined;
    const out: ParsedSignerInfo = {
      digest,
      scheme,
      pssSaltLength,
      signedAttrs: Buffer.from(si.signedAttrs.encodedValue),
      messageDigest: Buffer.from(md.getValue()),
      contentType: ct.valueBlock.toString(),
      signingTime,
      signature: Buffer.from(si.signature.getValue()),
      ...sid,
    };
    return out;
  });
  if (signers.length === 0) throw bad("no SignerInfo");
  return { signers, certificates };
}

/** The signer identifier: issuerAndSerialNumber, or [0] SubjectKeyIdentifier IMPLICIT OCTET STRING (RFC 5652 §5.3). */
function signerIdOf(si: pkijs.SignerInfo): Pick<ParsedSignerInfo, "issuerDer" | "serial" | "subjectKeyIdentifier"> {
  if (si.sid instanceof pkijs.IssuerAndSerialNumber) {
    return { issuerDer: Buffer.from(si.sid.issuer.toSchema().toBER(false)), serial: Buffer.from(si.sid.serialNumber.valueBlock.valueHexView) };
  }
  if (si.sid instanceof asn1js.Primitive) return { subjectKeyIdentifier: Buffer.from(si.sid.valueBlock.valueHexView) };
  throw bad("the signer identifier is neither issuerAndSerialNumber nor subjectKeyIdentifier");
}

/**
 * A signature over the content digest itself (no signed attributes): RSA PKCS#1 v1.5 recovers the
 * DigestInfo, which must equal DigestInfo{ algorithm, digest } as a whole (RFC 8017 §8.2.2), with
 * or without the NULL parameters some encoders omit (RFC 4055 §2.1 allows both for SHA-2).
 */
function verifiesContentDigest(cert: Certificate, s: ParsedSignerInfo, digest: Buffer): boolean {
  let recovered: Buffer;
  try {
    recovered = crypto.publicDecrypt({ key: cert.publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, s.signature);
  } catch {
    return false;
  }
  const oid = DIGESTS[s.digest].oid;
  return [der.seq(der.algorithm(oid, null), der.octets(digest)), der.seq(der.algorithm(oid), der.octets(digest))]
    .some((expected) => expected.length === recovered.length && crypto.timingSafeEqual(expected, recovered));
}

function signerMatches(s: ParsedSignerInfo, c: Certificate): boolean {
  if (s.subjectKeyIdentifier) return !!c.subjectKeyIdentifier?.equals(s.subjectKeyIdentifier);
  return c.matchesIssuerSerial(s.issuerDer!, s.serial!);
}

/** The bytes a signer signed: signedAttrs with the [0] tag turned into SET (K5); nothing re-encoded. */
function signedAttrsAsSet(raw: Buffer): Buffer {
  const out = Buffer.from(raw);
  out[0] = 0x31;
  return out;
}

export interface SignatureVerification {
  signer: Certificate;
  digest: DigestAlgorithm;
  scheme: SignatureScheme;
  signingTime?: Date;
  /** Which digest variant matched (raw bytes, or the LF->CRLF canonical fallback of C4). */
  matchedVariant: string;
  /** False when the signer signed the content digest itself (no signed attributes). */
  signedAttributes?: boolean;
}

/**
 * Verifies a detached signature against content digests computed by the caller. `digests` maps
 * a digest algorithm to the candidate digests (variant name -> digest). Only `trusted`
 * certificates are accepted as signers (RFC 4130 §8: the partner's pre-exchanged certificate);
 * embedded certificates are used to explain a failure, never to trust.
 */
export function verifyDetachedSignature(
  parsed: ParsedSignature,
  digests: ReadonlyMap<DigestAlgorithm, ReadonlyMap<string, Buffer>>,
  trusted: readonly Certificate[],
): SignatureVerification {
  let lastError: As2Error | undefined;
  for (const s of parsed.signers) {
    if (!s.signedAttrs) {
      const candidates = trusted.filter((c) => signerMatches(s, c));
      const toTry = candidates.length ? candidates : trusted;
      for (const [variant, d] of digests.get(s.digest) ?? []) {
        for (const cert of toTry) {
          if (verifiesContentDigest(cert, s, d)) return { signer: cert, digest: s.digest, scheme: s.scheme, matchedVariant: variant, signedAttributes: false };
        }
      }
      const embedded = parsed.certificates.find((c) => signerMatches(s, c));
      lastError = candidates.length || !trusted.length
        ? new As2Error(ErrorCodes.SIGNATURE_INVALID, `the signature (without signed attributes) does not verify over the content${candidates[0] ? ` with ${candidates[0].describe()}` : ""}: the content was changed, or another key signed it`)
        : new As2Error(ErrorCodes.SIGNER_UNKNOWN, `the message was signed by ${embedded ? embedded.describe() : "a certificate"} that is not the partner's configured certificate`);
      continue;
    }
    if (s.contentType !== OID.data) {
      lastError = new As2Error(ErrorCodes.SIGNATURE_INVALID, `contentType attribute is ${s.contentType}, not id-data (RFC 5652 §5.6)`);
      continue;
    }
    const candidates = trusted.filter((c) => signerMatches(s, c));
    // K3: several certificates may share an SKI; as a last resort try every trusted certificate.
    const toTry = candidates.length ? candidates : trusted;
    const variants = digests.get(s.digest);
    if (!variants) {
      lastError = new As2Error(ErrorCodes.DIGEST_MISMATCH, `the content was not hashed with ${s.digest}, the signer's digest algorithm`);
      continue;
    }
    let matchedVariant: string | undefined;
    for (const [name, d] of variants) if (d.equals(s.messageDigest!)) { matchedVariant = name; break; }
    if (!matchedVariant) {
      lastError = new As2Error(ErrorCodes.DIGEST_MISMATCH, `the content's ${s.digest} digest does not match the signed messageDigest: the content was changed`);
      continue;
    }
    const data = signedAttrsAsSet(s.signedAttrs);
    for (const cert of toTry) {
      let ok = false;
      try {
        ok = crypto.verify(DIGESTS[s.digest].node, data, signPadding(cert.publicKey, s.scheme, s.digest, s.pssSaltLength), s.signature);
      } catch {
        ok = false;
      }
      if (ok) return { signer: cert, digest: s.digest, scheme: s.scheme, signingTime: s.signingTime, matchedVariant };
    }
    const embedded = parsed.certificates.find((c) => signerMatches(s, c));
    lastError = candidates.length
      ? new As2Error(ErrorCodes.SIGNATURE_INVALID, `the signature does not verify with ${candidates[0]!.describe()}`)
      : new As2Error(ErrorCodes.SIGNER_UNKNOWN, `the message was signed by ${embedded ? embedded.describe() : "a certificate"} that is not the partner's configured certificate`);
  }
  throw lastError ?? new As2Error(ErrorCodes.SIGNATURE_INVALID, "no SignerInfo verified");
}
