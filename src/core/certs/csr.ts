/**
 * PKCS#10 certification requests (RFC 2986), for stations whose partners want a CA-issued
 * certificate: `as2 init --csr` writes one beside the self-signed certificate.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { der, tlv } from "../ber/writer.js";
import { As2Error, ErrorCodes } from "../errors.js";

export interface CertificationRequestOptions {
  /** The key to certify (RSA); its public half goes into the request, it signs the request. */
  key: crypto.KeyObject;
  commonName: string;
  organization?: string;
}

const OID_CN = "2.5.4.3";
const OID_O = "2.5.4.10";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"; // PKCS#9 extensionRequest (RFC 2985 §5.4.2)
const OID_KEY_USAGE = "2.5.29.15";
const OID_SHA256_WITH_RSA = "1.2.840.113549.1.1.11";

/** A DirectoryString as UTF8String (RFC 5280 §4.1.2.4 prefers it). */
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));

/** DER of a PKCS#10 request, signed with sha256WithRSAEncryption by its own key. */
export function createCertificationRequest(o: CertificationRequestOptions): Buffer {
  if (o.key.type !== "private" || o.key.asymmetricKeyType !== "rsa") {
    throw new As2Error(ErrorCodes.INVALID_ARGUMENT, "a certification request needs an RSA private key");
  }
  const rdns = [];
  if (o.organization) rdns.push(der.set(der.seq(der.oid(OID_O), utf8(o.organization))));
  rdns.push(der.set(der.seq(der.oid(OID_CN), utf8(o.commonName))));
  const subject = der.seq(...rdns);
  const spki = crypto.createPublicKey(o.key).export({ type: "spki", format: "der" });
  // keyUsage digitalSignature | nonRepudiation | keyEncipherment, as the self-signed certificate
  // has: AS2 signs (messages, MDNs) and receives content keys with the same key.
  const keyUsage = der.seq(der.oid(OID_KEY_USAGE), tlv(0x01, Buffer.from([0xff])), tlv(0x04, tlv(0x03, Buffer.from([0x05, 0xe0]))));
  const extensionRequest = der.seq(der.oid(OID_EXTENSION_REQUEST), der.set(der.seq(keyUsage)));
  const info = der.seq(tlv(0x02, Buffer.from([0])), subject, spki, tlv(0xa0, extensionRequest));
  const signature = crypto.sign("sha256", info, o.key);
  const algorithm = der.seq(der.oid(OID_SHA256_WITH_RSA), tlv(0x05, Buffer.alloc(0)));
  return der.seq(info, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
}

export function certificationRequestPem(derBytes: Uint8Array): string {
  const b64 = Buffer.from(derBytes).toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
}
