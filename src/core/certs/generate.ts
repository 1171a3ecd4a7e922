/**
 * Self-signed RSA certificates, for the demo, for tests (certificates committed to a repo expire)
 * and for people bringing up a test partner. AS2 trusts the partner's pre-exchanged certificate,
 * self-signed included (RFC 4130 §8; as2-reference.md K6).
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { Certificate, type KeyPair } from "./certificate.js";
import { toArrayBuffer } from "../bytes.js";
import { der, tlv } from "../ber/writer.js";
import { As2Error, ErrorCodes } from "../errors.js";

export interface SelfSignedOptions {
  commonName: string;
  organization?: string;
  /** RSA modulus size; 2048 is the interop baseline. */
  keyBits?: number;
  notBefore: Date;
  notAfter: Date;
  /** Existing key to certify instead of generating one. */
  key?: crypto.KeyObject;
}

export interface GeneratedIdentity extends KeyPair {
  keyPem: string;
  certificatePem: string;
}

/**
 * A Name with one attribute per RDN (pkijs would put them all in one multi-valued RDN).
 * Two-letter country codes and no IA5String in DNs keep old receivers happy (K6, DGI-3Q06 #3).
 */
function name(cn: string, o?: string): pkijs.RelativeDistinguishedNames {
  const atv = (oid: string, value: Uint8Array) => der.set(der.seq(der.oid(oid), value));
  const rdns = [atv("2.5.4.6", tlv(0x13, Buffer.from("XX")))];
  if (o) rdns.push(atv("2.5.4.10", tlv(0x0c, Buffer.from(o, "utf8"))));
  rdns.push(atv("2.5.4.3", tlv(0x0c, Buffer.from(cn, "utf8"))));
  return pkijs.RelativeDistinguishedNames.fromBER(toArrayBuffer(der.seq(...rdns)));
}

function validityTime(d: Date): pkijs.Time {
  if (Number.isNaN(d.getTime())) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "certificate validity dates must be valid dates");
  const y = d.getUTCFullYear();
  if (y < 1 || y > 9999) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `certificate validity year ${y} cannot be encoded (RFC 5280 §4.1.2.5)`);
  return new pkijs.Time({ type: y >= 1950 && y < 2050 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime, value: d });
}

export async function createSelfSignedCertificate(options: SelfSignedOptions): Promise<GeneratedIdentity> {
  const key = options.key ?? crypto.generateKeyPairSync("rsa", { modulusLength: options.keyBits ?? 2048 }).privateKey;
  const spkiDer = crypto.createPublicKey(key).export({ type: "spki", format: "der" });
  const cert = new pkijs.Certificate();
  cert.version = 2;
  const serial = crypto.randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and not starting with a zero byte (K6)
  cert.serialNumber = new asn1js.Integer({ valueHex: toArrayBuffer(serial) });
  cert.subject = name(options.commonName, options.organization);
  cert.issuer = name(options.commonName, options.organization);
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 (asn1js refuses a UTCTime
  // outside 1950-2049 with a plain RangeError; a 30-year certificate made today reaches 2050).
  cert.notBefore = validityTime(options.notBefore);
  cert.notAfter = validityTime(options.notAfter);
  cert.subjectPublicKeyInfo = pkijs.PublicKeyInfo.fromBER(toArrayBuffer(spkiDer));
  const ski = crypto.createHash("sha1").update(Buffer.from(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView)).digest();
  // keyUsage digitalSignature | nonRepudiation | keyEncipherment: bits 0-2, so 5 unused bits in one octet.
  const keyUsage = tlv(0x03, Buffer.from([0x05, 0xe0]));
  cert.extensions = [
    new pkijs.Extension({ extnID: "2.5.29.19", critical: true, extnValue: new pkijs.BasicConstraints({ cA: false }).toSchema().toBER(false) }),
    new pkijs.Extension({ extnID: "2.5.29.15", critical: true, extnValue: toArrayBuffer(keyUsage) }),
    new pkijs.Extension({ extnID: "2.5.29.14", extnValue: new asn1js.OctetString({ valueHex: toArrayBuffer(ski) }).toBER(false) }),
  ];
  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  const webKey = await crypto.webcrypto.subtle.importKey("pkcs8", toArrayBuffer(pkcs8), { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]);
  await cert.sign(webKey as unknown as Parameters<pkijs.Certificate["sign"]>[0], "SHA-256");
  const certificate = new Certificate(new Uint8Array(cert.toSchema(true).toBER(false)));
  return {
    key,
    certificate,
    keyPem: key.export({ type: "pkcs8", format: "pem" }).toString(),
    certificatePem: certificate.toPem(),
  };
}
