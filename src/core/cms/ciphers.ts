/**
 * Content-encryption algorithms (as2-reference.md K11, §15): their OIDs, key sizes and parameter
 * encodings, and streaming cipher objects over Node crypto (node-forge for RC2, which Node only
 * has with the legacy provider and without control of the effective key bits).
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import forge from "node-forge";
import * as asn1js from "asn1js";
import { As2Error, ErrorCodes } from "../errors.js";
import { der } from "../ber/writer.js";
import { toArrayBuffer } from "../bytes.js";
import { OID } from "./oids.js";
import type { ContentCipher } from "./cipher-names.js";

export { CONTENT_CIPHERS, WEAK_CIPHERS, type ContentCipher } from "./cipher-names.js";


interface CipherSpec {
  oid: string;
  keyLength: number;
  ivLength: number;
  /** Node cipher name; undefined = node-forge (RC2). */
  node?: string;
  /** RC2 effective key bits. */
  rc2Bits?: number;
  aead?: boolean;
  /** Needs OpenSSL's legacy provider (node --openssl-legacy-provider). */
  legacy?: boolean;
}

export const CIPHERS: Record<ContentCipher, CipherSpec> = {
  "3des": { oid: OID.desEde3Cbc, keyLength: 24, ivLength: 8, node: "des-ede3-cbc" },
  "aes128-cbc": { oid: OID.aes128Cbc, keyLength: 16, ivLength: 16, node: "aes-128-cbc" },
  "aes192-cbc": { oid: OID.aes192Cbc, keyLength: 24, ivLength: 16, node: "aes-192-cbc" },
  "aes256-cbc": { oid: OID.aes256Cbc, keyLength: 32, ivLength: 16, node: "aes-256-cbc" },
  "rc2-40": { oid: OID.rc2Cbc, keyLength: 5, ivLength: 8, rc2Bits: 40 },
  "rc2-64": { oid: OID.rc2Cbc, keyLength: 8, ivLength: 8, rc2Bits: 64 },
  "rc2-128": { oid: OID.rc2Cbc, keyLength: 16, ivLength: 8, rc2Bits: 128 },
  cast5: { oid: OID.cast5Cbc, keyLength: 16, ivLength: 8, node: "cast5-cbc", legacy: true },
  idea: { oid: OID.ideaCbc, keyLength: 16, ivLength: 8, node: "idea-cbc", legacy: true },
  "aes128-gcm": { oid: OID.aes128Gcm, keyLength: 16, ivLength: 12, node: "aes-128-gcm", aead: true },
  "aes192-gcm": { oid: OID.aes192Gcm, keyLength: 24, ivLength: 12, node: "aes-192-gcm", aead: true },
  "aes256-gcm": { oid: OID.aes256Gcm, keyLength: 32, ivLength: 12, node: "aes-256-gcm", aead: true },
};

/** RC2 parameter versions for effective key bits (RFC 3370 §5.2 / RFC 2268 §6). */
const RC2_VERSION_OF_BITS: Record<number, number> = { 40: 160, 64: 120, 128: 58 };
function rc2BitsOfVersion(v: number): number {
  for (const [bits, ver] of Object.entries(RC2_VERSION_OF_BITS)) if (ver === v) return Number(bits);
  // RFC 2268: versions >= 256 are the effective bits themselves (at most 1024).
  if (v >= 256 && v <= 1024) return v;
  throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `RC2 parameter version ${v} is not supported`);
}

/** The GCM tag length we write (16 bytes, the RFC 5084 maximum). */
export const GCM_TAG_LENGTH = 16;

/**
 * How CAST5 parameters are written: RFC 2984's SEQUENCE { iv, keyLength } (Bouncy Castle and the
 * Java AS2 products), or the bare IV that OpenSSL writes and insists on reading.
 */
export type Cast5ParamStyle = "rfc2984" | "iv-only";

/** Parameters of a content-encryption algorithm, as written into the AlgorithmIdentifier. */
export function encodeCipherParams(alg: ContentCipher, iv: Uint8Array, cast5Style: Cast5ParamStyle = "rfc2984"): Buffer {
  const spec = CIPHERS[alg];
  if (spec.rc2Bits) return der.seq(der.int(RC2_VERSION_OF_BITS[spec.rc2Bits]!), der.octets(iv));
  if (alg === "cast5") return cast5Style === "iv-only" ? der.octets(iv) : der.seq(der.octets(iv), der.int(spec.keyLength * 8));
  if (alg === "idea") return der.seq(der.octets(iv));
  if (spec.aead) return der.seq(der.octets(iv), der.int(GCM_TAG_LENGTH)); // GCMParameters, RFC 5084 §3.2
  return der.octets(iv);
}

export interface DecodedCipher {
  alg: ContentCipher;
  iv: Buffer;
  /** RC2 effective bits / CAST5 key length in bytes. */
  keyLength: number;
  rc2Bits?: number;
  tagLength?: number;
  /** RC2 parameters without rc2ParameterVersion: RFC 2268 says 32 effective bits (see rc2FromKeyLength). */
  rc2VersionMissing?: boolean;
}

/**
 * pyas2lib writes RC2 parameters without rc2ParameterVersion while its key is 128 bits (Bouncy
 * Castle's JCE path reads the key length as the effective bits). For a partner whose
 * quirks.rc2WithoutVersion is "key-length", the effective bits follow the content key's length.
 */
export function rc2FromKeyLength(d: DecodedCipher, keyBytes: number): DecodedCipher {
  if (!d.rc2VersionMissing) return d;
  const bits = keyBytes * 8;
  return { ...d, rc2Bits: bits, keyLength: keyBytes, alg: bits <= 40 ? "rc2-40" : bits <= 64 ? "rc2-64" : "rc2-128" };
}

/** Reads an AlgorithmIdentifier (DER/BER bytes) of a content-encryption algorithm. */
export function decodeCipherAlgorithm(algId: Uint8Array): DecodedCipher {
  let parsed: ReturnType<typeof asn1js.fromBER>;
  try {
    parsed = asn1js.fromBER(toArrayBuffer(algId));
  } catch (e) {
    // asn1js throws plain Errors on some malformed values (a bad time string): fuzz finding.
    throw new As2Error(ErrorCodes.MALFORMED_CMS, `content-encryption AlgorithmIdentifier cannot be read: ${(e as Error).message}`, { cause: e });
  }
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) {
    throw new As2Error(ErrorCodes.MALFORMED_CMS, "content-encryption AlgorithmIdentifier is not a SEQUENCE");
  }
  const [oidNode, params] = parsed.result.valueBlock.value;
  if (!(oidNode instanceof asn1js.ObjectIdentifier)) throw new As2Error(ErrorCodes.MALFORMED_CMS, "content-encryption algorithm has no OID");
  const oid = oidNode.valueBlock.toString();
  const bad = (why: string) => new As2Error(ErrorCodes.MALFORMED_CMS, `content-encryption parameters: ${why}`);
  const octets = (n: unknown): Buffer => {
    if (!(n instanceof asn1js.OctetString)) throw bad("IV is not an OCTET STRING");
    return Buffer.from(n.getValue());
  };
  const int = (n: unknown): number => {
    if (!(n instanceof asn1js.Integer)) throw bad("expected an INTEGER");
    return n.valueBlock.valueDec;
  };
  switch (oid) {
    case OID.desEde3Cbc: return { alg: "3des", iv: octets(params), keyLength: 24 };
    case OID.aes128Cbc: return { alg: "aes128-cbc", iv: octets(params), keyLength: 16 };
    case OID.aes192Cbc: return { alg: "aes192-cbc", iv: octets(params), keyLength: 24 };
    case OID.aes256Cbc: return { alg: "aes256-cbc", iv: octets(params), keyLength: 32 };
    case OID.rc2Cbc: {
      // RC2CBCParameter ::= SEQUENCE { rc2ParameterVersion INTEGER OPTIONAL, iv OCTET STRING }; legacy senders send the IV alone.
      if (params instanceof asn1js.OctetString) return { alg: "rc2-40", iv: octets(params), keyLength: 4, rc2Bits: 32, rc2VersionMissing: true };
      if (!(params instanceof asn1js.Sequence)) throw bad("RC2 parameters");
      const v = params.valueBlock.value;
      const bits = v.length === 2 ? rc2BitsOfVersion(int(v[0])) : 32;
      const alg: ContentCipher = bits <= 40 ? "rc2-40" : bits <= 64 ? "rc2-64" : "rc2-128";
      return { alg, iv: octets(v[v.length - 1]), keyLength: Math.ceil(bits / 8), rc2Bits: bits, ...(v.length === 2 ? {} : { rc2VersionMissing: true }) };
    }
    case OID.cast5Cbc: {
      // OpenSSL writes the IV alone; RFC 2984 (Bouncy Castle) a SEQUENCE { iv, keyLength }.
      if (params instanceof asn1js.OctetString) return { alg: "cast5", iv: octets(params), keyLength: 16 };
      if (!(params instanceof asn1js.Sequence)) throw bad("CAST5 parameters");
      const v = params.valueBlock.value;
      const iv = v[0] instanceof asn1js.OctetString ? octets(v[0]) : Buffer.alloc(8);
      const last = v[v.length - 1];
      const bits = last instanceof asn1js.Integer ? int(last) : 128;
      // RFC 2144/2984: 40 to 128 bits in steps of 8 (a fuzzed -1664 once reached randomBytes).
      if (!Number.isInteger(bits) || bits < 40 || bits > 128 || bits % 8) throw bad(`CAST5 key length ${bits} bits (40-128, whole bytes)`);
      return { alg: "cast5", iv, keyLength: bits / 8 };
    }
    case OID.ideaCbc: {
      const iv = params instanceof asn1js.Sequence && params.valueBlock.value[0] ? octets(params.valueBlock.value[0]) : Buffer.alloc(8);
      return { alg: "idea", iv, keyLength: 16 };
    }
    case OID.aes128Gcm:
    case OID.aes192Gcm:
    case OID.aes256Gcm: {
      if (!(params instanceof asn1js.Sequence)) throw bad("GCMParameters");
      const v = params.valueBlock.value;
      const tagLength = v.length > 1 ? int(v[1]) : 12; // aes-ICVlen DEFAULT 12 (RFC 5084 §3.2)
      if (tagLength < 12 || tagLength > 16) throw bad(`GCM tag length ${tagLength}`);
      const alg: ContentCipher = oid === OID.aes128Gcm ? "aes128-gcm" : oid === OID.aes192Gcm ? "aes192-gcm" : "aes256-gcm";
      return { alg, iv: octets(v[0]), keyLength: CIPHERS[alg].keyLength, tagLength };
    }
    default:
      throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM, `content-encryption algorithm ${oid} is not supported`);
  }
}

/** A streaming cipher: update() per chunk, final() at the end (GCM: tag after final / set before final). */
export interface StreamCipher {
  update(data: Uint8Array): Buffer;
  final(): Buffer;
  /** GCM encryption: the tag, after final(). */
  authTag?(): Buffer;
}

function legacyCheck(alg: ContentCipher, e: unknown): never {
  throw new As2Error(ErrorCodes.UNSUPPORTED_ALGORITHM,
    `${alg} needs OpenSSL's legacy provider: run Node with --openssl-legacy-provider (NODE_OPTIONS is allowed)`, { cause: e });
}

function rc2Cipher(encrypt: boolean, key: Uint8Array, iv: Uint8Array, bits: number): StreamCipher {
  const c = (encrypt ? forge.rc2.createEncryptionCipher : forge.rc2.createDecryptionCipher)(forge.util.createBuffer(Buffer.from(key).toString("binary")), bits);
  c.start(forge.util.createBuffer(Buffer.from(iv).toString("binary")));
  // forge strips the padding from its buffered output in finish(), so on decryption the last
  // block must still be in that buffer then.
  const drain = (keep: number): Buffer => {
    const n = Math.max(0, c.output.length() - keep);
    return Buffer.from(c.output.getBytes(n), "binary");
  };
  return {
    update(data) {
      c.update(forge.util.createBuffer(Buffer.from(data).toString("binary")));
      return drain(encrypt ? 0 : 8);
    },
    final() {
      // forge's RC2 applies/removes PKCS#7 padding in finish(); false means bad padding.
      if (!c.finish()) throw new As2Error(ErrorCodes.DECRYPTION_FAILED, "RC2 decryption failed (bad padding)");
      return drain(0);
    },
  };
}

export function createContentEncryptor(alg: ContentCipher, key: Uint8Array, iv: Uint8Array): StreamCipher {
  const spec = CIPHERS[alg];
  if (spec.rc2Bits) return rc2Cipher(true, key, iv, spec.rc2Bits);
  try {
    if (spec.aead) {
      const c = crypto.createCipheriv(spec.node! as crypto.CipherGCMTypes, key, iv, { authTagLength: GCM_TAG_LENGTH });
      return { update: (d) => c.update(d), final: () => c.final(), authTag: () => c.getAuthTag() };
    }
    const c = crypto.createCipheriv(spec.node!, key, iv);
    return { update: (d) => c.update(d), final: () => c.final() };
  } catch (e) {
    if (spec.legacy) legacyCheck(alg, e);
    throw e;
  }
}

export function createContentDecryptor(d: DecodedCipher, key: Uint8Array, tag?: () => Buffer): StreamCipher {
  const spec = CIPHERS[d.alg];
  // RC2 and CAST5 keys are variable length; the others must match exactly.
  if (!d.rc2Bits && d.alg !== "cast5" && key.byteLength !== d.keyLength) {
    // A wrong-size content key means the key transport gave garbage (wrong key or RFC 3218 random key).
    throw new As2Error(ErrorCodes.DECRYPTION_FAILED, "content key has the wrong length for the algorithm");
  }
  if (d.rc2Bits) return rc2Cipher(false, key, d.iv, d.rc2Bits);
  const node = spec.node!;
  try {
    if (spec.aead) {
      const c = crypto.createDecipheriv(node as crypto.CipherGCMTypes, key, d.iv, { authTagLength: d.tagLength ?? 12 });
      return {
        update: (x) => c.update(x),
        final: () => {
          c.setAuthTag(tag!());
          return c.final();
        },
      };
    }
    const c = crypto.createDecipheriv(node, key, d.iv);
    return { update: (x) => c.update(x), final: () => c.final() };
  } catch (e) {
    if (spec.legacy) legacyCheck(d.alg, e);
    throw new As2Error(ErrorCodes.DECRYPTION_FAILED, `cannot set up ${d.alg} decryption`, { cause: e });
  }
}
