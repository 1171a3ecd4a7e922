/**
 * Certificates and private keys: PEM/DER/PKCS#12 in, Node KeyObjects and a small Certificate
 * wrapper out. Validity is checked against an injected clock so tests need no real time.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import forge from "node-forge";
import { As2Error, ErrorCodes } from "../errors.js";
import { toArrayBuffer } from "../bytes.js";
import { berTree, parseAsn1, type BerTreeNode } from "../ber/asn1.js";
import { OID } from "../cms/oids.js";

pkijs.setEngine("node", new pkijs.CryptoEngine({ name: "node", crypto: crypto.webcrypto as unknown as pkijs.ICryptoEngine["crypto"] }));

/**
 * X509Certificate objects by their DER bytes, most recently used last (issue 14). Every received
 * signature carries the partner's certificate, the same one message after message, and parsing
 * it again cost about 0.5 ms per message in the receiver's profile. An X509Certificate is
 * immutable, so sharing one between Certificate wrappers is safe; the bytes are the key, so a
 * different certificate can never be served.
 */
const X509_CACHE_SIZE = 64;
const x509Cache = new Map<string, crypto.X509Certificate>();

function parsedX509(der: Buffer): crypto.X509Certificate {
  const key = der.toString("latin1");
  const hit = x509Cache.get(key);
  if (hit) {
    x509Cache.delete(key);
    x509Cache.set(key, hit);
    return hit;
  }
  const x509 = new crypto.X509Certificate(der);
  x509Cache.set(key, x509);
  if (x509Cache.size > X509_CACHE_SIZE) x509Cache.delete(x509Cache.keys().next().value!);
  return x509;
}

const publicKeys = new WeakMap<crypto.X509Certificate, crypto.KeyObject>();

export class Certificate {
  readonly der: Buffer;
  readonly x509: crypto.X509Certificate;
  private parsed: pkijs.Certificate | undefined;
  private issuer_: Buffer | undefined;

  constructor(der: Uint8Array) {
    this.der = Buffer.from(der);
    try {
      this.x509 = parsedX509(this.der);
    } catch (e) {
      throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `not a valid X.509 certificate: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * The pkijs view, parsed on first use: every received signature carries a certificate, and
   * most are only compared by their bytes (a pkijs parse costs milliseconds per message).
   */
  get pkijs(): pkijs.Certificate {
    if (!this.parsed) {
      try {
        this.parsed = pkijs.Certificate.fromBER(toArrayBuffer(this.der));
      } catch (e) {
        throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `not a readable X.509 certificate: ${(e as Error).message}`, { cause: e });
      }
    }
    return this.parsed;
  }

  // Node gives undefined for an empty Name (RFC 5280 §4.1.2.6 allows an empty subject).
  get subject(): string {
    return (this.x509.subject ?? "").replace(/\n/g, ", ");
  }
  get issuer(): string {
    return (this.x509.issuer ?? "").replace(/\n/g, ", ");
  }
  get serialHex(): string {
    return this.x509.serialNumber.toUpperCase();
  }
  get notBefore(): Date {
    return this.validityDate(this.x509.validFrom, "notBefore");
  }
  get notAfter(): Date {
    return this.validityDate(this.x509.validTo, "notAfter");
  }
  /**
   * OpenSSL accepts a certificate whose validity times do not parse and prints them as "Bad time
   * value": as a Date that is Invalid Date, and checkValidity would call the certificate valid
   * (every comparison with NaN is false). Such a certificate has no usable validity.
   */
  private validityDate(text: string, what: string): Date {
    const d = new Date(text);
    if (Number.isNaN(d.getTime())) throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `the certificate's ${what} time cannot be read (${JSON.stringify(text)}): ${this.subject}`);
    return d;
  }
  /** Node throws a plain Error for a key it cannot decode (a malformed or unsupported SubjectPublicKeyInfo). */
  get publicKey(): crypto.KeyObject {
    try {
      // Read once per parsed certificate (a KeyObject is immutable): x509.publicKey builds a new one each time.
      let key = publicKeys.get(this.x509);
      if (!key) publicKeys.set(this.x509, (key = this.x509.publicKey));
      return key;
    } catch (e) {
      throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `the certificate's public key cannot be read: ${(e as Error).message} (${this.subject})`, { cause: e });
    }
  }
  /** DER of the issuer Name, for issuerAndSerialNumber (RFC 5652 §10.2.4). */
  get issuerDer(): Buffer {
    return (this.issuer_ ??= Buffer.from(this.pkijs.issuer.toSchema().toBER(false)));
  }
  /** Serial number content octets as encoded in the certificate. */
  get serialBytes(): Buffer {
    return Buffer.from(this.pkijs.serialNumber.valueBlock.valueHexView);
  }
  /** subjectKeyIdentifier extension value, if present (RFC 5280 §4.2.1.2). */
  get subjectKeyIdentifier(): Buffer | undefined {
    const ext = this.pkijs.extensions?.find((e) => e.extnID === OID.subjectKeyIdentifier);
    if (!ext) return undefined;
    // A malformed extension value is no identifier, as a value that is not an OCTET STRING is not.
    let inner: asn1js.AsnType;
    try {
      inner = parseAsn1(new Uint8Array(ext.extnValue.getValue()), "subjectKeyIdentifier", ErrorCodes.BAD_CERTIFICATE);
    } catch {
      return undefined;
    }
    return inner instanceof asn1js.OctetString ? Buffer.from(inner.getValue()) : undefined;
  }
  /** A short human name for messages: "CN=..., serial 0x...". */
  describe(): string {
    return `${this.subject} (serial 0x${this.serialHex})`;
  }
  toPem(): string {
    return this.x509.toString();
  }

  /** Validity against `now` (RFC 5280 §4.1.2.5); never reads the system clock itself. */
  checkValidity(now: Date): CertificateValidity {
    const expired = now.getTime() > this.notAfter.getTime();
    const notYetValid = now.getTime() < this.notBefore.getTime();
    return { valid: !expired && !notYetValid, expired, notYetValid, notBefore: this.notBefore, notAfter: this.notAfter };
  }

  matchesIssuerSerial(issuerDer: Uint8Array, serial: Uint8Array): boolean {
    return this.issuerDer.equals(Buffer.from(issuerDer)) && stripLeadingZeros(this.serialBytes).equals(stripLeadingZeros(Buffer.from(serial)));
  }
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

export interface CertificateValidity {
  valid: boolean;
  expired: boolean;
  notYetValid: boolean;
  notBefore: Date;
  notAfter: Date;
}

export interface KeyPair {
  key: crypto.KeyObject;
  certificate: Certificate;
  /** Further certificates (chain) that came with the key, e.g. from a PKCS#12 file. */
  chain?: Certificate[];
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

function pemBlocks(text: string): Array<{ label: string; der: Buffer; text: string }> {
  const out: Array<{ label: string; der: Buffer; text: string }> = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const body = m[2]!.split(/\r?\n/).filter((l) => !/^[A-Za-z-]+:/.test(l)).join("");
    out.push({ label: m[1]!, der: Buffer.from(body, "base64"), text: m[0] });
  }
  return out;
}

function looksLikePem(data: Uint8Array): boolean {
  return Buffer.from(data.subarray(0, Math.min(data.byteLength, 4096))).toString("latin1").includes("-----BEGIN ");
}

/** Certificates from PEM (one or many), DER, or a certs-only PKCS#7 (PEM or DER). */
export function loadCertificates(data: Uint8Array): Certificate[] {
  if (looksLikePem(data)) {
    const blocks = pemBlocks(Buffer.from(data).toString("latin1"));
    const certs: Certificate[] = [];
    for (const b of blocks) {
      if (b.label === "CERTIFICATE" || b.label === "X509 CERTIFICATE" || b.label === "TRUSTED CERTIFICATE") certs.push(new Certificate(b.der));
      else if (b.label === "PKCS7" || b.label === "CMS") certs.push(...certsFromPkcs7(b.der));
    }
    if (certs.length === 0) throw new As2Error(ErrorCodes.BAD_CERTIFICATE, "no CERTIFICATE or PKCS7 block in the PEM data");
    return certs;
  }
  try {
    return [new Certificate(data)];
  } catch (e) {
    try {
      return certsFromPkcs7(Buffer.from(data));
    } catch {
      throw e;
    }
  }
}

/** Certificates of a (certs-only or any) PKCS#7 SignedData, RFC 5751 §3.6 (.p7c). */
export function certsFromPkcs7(derBytes: Buffer): Certificate[] {
  try {
    const ci = pkijs.ContentInfo.fromBER(toArrayBuffer(derBytes));
    if (ci.contentType !== OID.signedData) throw new Error(`content type ${ci.contentType} is not signedData`);
    const sd = new pkijs.SignedData({ schema: ci.content });
    const certs = (sd.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
    if (certs.length === 0) throw new Error("it holds no certificates");
    return certs.map((c) => new Certificate(new Uint8Array(c.toSchema().toBER(false))));
  } catch (e) {
    throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `not a certificate or certs-only PKCS#7: ${(e as Error).message}`, { cause: e });
  }
}

function isPasswordError(e: unknown): boolean {
  const msg = (e as Error)?.message ?? "";
  return /bad decrypt|passphrase|password|interrupted or cancelled/i.test(msg);
}

/**
 * Iteration counts beyond which an encrypted key is refused. The key derivation runs in native
 * code (OpenSSL) or in JavaScript (node-forge, for PKCS#12) and cannot be interrupted: a file that
 * asks for 2^31 PBKDF2 iterations (one changed byte does it; found by the fuzzer) would block the
 * process for half an hour. OpenSSL writes 2048 and Java 10,000; .NET refuses more than 600,000 on
 * import, which is also OWASP's advice for PBKDF2-HMAC-SHA256. node-forge is about ten times
 * slower than OpenSSL and a PKCS#12 file takes two to four derivations, hence its lower limit.
 */
export const MAX_KEY_ITERATIONS = 600_000;
export const MAX_PKCS12_ITERATIONS = 100_000;

function tooManyIterations(count: number, max: number, what: string): As2Error {
  return new As2Error(ErrorCodes.LIMIT_EXCEEDED, `the ${what} asks for ${count} key-derivation iterations; at most ${max} are run`, {
    suggestion: "re-encrypt it with fewer iterations, e.g. openssl pkcs8 -topk8 -iter 2048, or openssl pkcs12 -export -iter 2048 -maciter",
  });
}

/** Unsigned value of an INTEGER's content octets; Infinity beyond 2^48. */
function integerValue(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  if (bytes.length - i > 6) return Infinity;
  let v = 0;
  for (; i < bytes.length; i++) v = v * 256 + bytes[i]!;
  return v;
}

/**
 * Checks the iteration counts of an EncryptedPrivateKeyInfo (RFC 5958 §3) before OpenSSL sees it.
 * Every PBE parameter structure has the count right after the salt: PBKDF2-params (RFC 8018
 * A.2), PBEParameter (RFC 8018 A.3) and pkcs-12PbeParams (RFC 7292 C) alike. Bytes that are not
 * BER are left to OpenSSL, which then refuses them.
 */
function checkKeyIterations(der: Uint8Array): void {
  const walk = (node: BerTreeNode | undefined, depth: number): void => {
    const children = node?.children ?? [];
    children.forEach((c, i) => {
      const prev = children[i - 1];
      const isSequence = node!.tagClass === 0 && node!.tagNumber === 16;
      if (isSequence && c.tagClass === 0 && c.tagNumber === 2 && c.content && prev?.tagClass === 0 && prev.tagNumber === 4) {
        const count = integerValue(c.content);
        if (count > MAX_KEY_ITERATIONS) throw tooManyIterations(count, MAX_KEY_ITERATIONS, "encrypted private key");
      }
      if (depth < 16) walk(c, depth + 1);
    });
  };
  // berTree, not asn1js: OpenSSL reads BER that asn1js refuses (a constructed salt, found by the fuzzer).
  walk(berTree(der), 0);
}

/** A private key from PEM (PKCS#1, PKCS#8, encrypted PKCS#8, legacy DEK-Info) or DER. */
export function loadPrivateKey(data: Uint8Array, password?: string): crypto.KeyObject {
  if (looksLikePem(data)) {
    // Every block, whatever its label: OpenSSL's decoders do not go by the label alone.
    for (const b of pemBlocks(Buffer.from(data).toString("latin1"))) checkKeyIterations(b.der);
  } else {
    checkKeyIterations(data);
  }
  const attempts: crypto.PrivateKeyInput[] = looksLikePem(data)
    ? [{ key: Buffer.from(data).toString("latin1"), format: "pem", passphrase: password ?? "" }]
    : [
        { key: Buffer.from(data), format: "der", type: "pkcs8", passphrase: password ?? "" },
        { key: Buffer.from(data), format: "der", type: "pkcs1" },
      ];
  let last: unknown;
  for (const a of attempts) {
    try {
      return crypto.createPrivateKey(a);
    } catch (e) {
      last = e;
      if (isPasswordError(e)) {
        throw new As2Error(ErrorCodes.BAD_PASSWORD, password ? "wrong password for the private key" : "the private key is encrypted and no password was given", { cause: e });
      }
    }
  }
  throw new As2Error(ErrorCodes.BAD_KEY, `not a readable private key: ${(last as Error)?.message}`, { cause: last });
}

export interface Pkcs12Options {
  password?: string;
  /** friendlyName of the key to take when the file holds several. */
  alias?: string;
}

type Kdf = (...args: unknown[]) => unknown;

/**
 * Runs node-forge's PKCS#12 parse with its key derivations bounded (MAX_PKCS12_ITERATIONS). The
 * counts are read by forge itself, some only after decrypting a SafeContents, so the check sits in
 * front of its three derivation functions (MAC key, PKCS#12 PBE, PBES2/PBKDF2) for the duration
 * of this synchronous call, and the originals are put back before anything else can run.
 */
function withBoundedForgeKdf<T>(fn: () => T): T {
  const p12 = forge.pkcs12 as unknown as { generateKey: Kdf };
  const pbe = (forge.pki as unknown as { pbe: { generatePkcs12Key: Kdf } }).pbe;
  const pkcs5 = forge.pkcs5 as unknown as { pbkdf2: Kdf };
  const saved = { generateKey: p12.generateKey, generatePkcs12Key: pbe.generatePkcs12Key, pbkdf2: pkcs5.pbkdf2 };
  const bounded = (original: Kdf, countAt: number): Kdf => function (this: unknown, ...args: unknown[]) {
    const count = args[countAt];
    if (typeof count === "number" && count > MAX_PKCS12_ITERATIONS) throw tooManyIterations(count, MAX_PKCS12_ITERATIONS, "PKCS#12 file");
    return original.apply(this, args);
  };
  p12.generateKey = bounded(saved.generateKey, 3); // (password, salt, id, iter, n, md)
  pbe.generatePkcs12Key = bounded(saved.generatePkcs12Key, 3);
  pkcs5.pbkdf2 = bounded(saved.pbkdf2, 2); // (password, salt, count, dkLen, md)
  try {
    return fn();
  } finally {
    p12.generateKey = saved.generateKey;
    pbe.generatePkcs12Key = saved.generatePkcs12Key;
    pkcs5.pbkdf2 = saved.pbkdf2;
  }
}

/** Key and certificate from a PKCS#12 file: OpenSSL 3 (PBES2/AES), legacy RC2-40/3DES, empty password. */
export function loadPkcs12(data: Uint8Array, options: Pkcs12Options = {}): KeyPair {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(data).toString("binary")));
    p12 = withBoundedForgeKdf(() => forge.pkcs12.pkcs12FromAsn1(asn1, false, options.password ?? ""));
  } catch (e) {
    if (e instanceof As2Error) throw e;
    const msg = (e as Error).message ?? String(e);
    if (/mac could not be verified|invalid password/i.test(msg)) throw new As2Error(ErrorCodes.BAD_PASSWORD, "wrong password for the PKCS#12 file", { cause: e });
    throw new As2Error(ErrorCodes.BAD_KEY, `not a readable PKCS#12 file: ${msg}`, { cause: e });
  }
  const keyBags = [
    ...(p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!] ?? []),
    ...(p12.getBags({ bagType: forge.pki.oids.keyBag! })[forge.pki.oids.keyBag!] ?? []),
  ];
  const certBags = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ?? [];
  const aliases = keyBags.map((b) => b.attributes?.friendlyName?.[0]).filter((a): a is string => !!a);
  let keyBag: forge.pkcs12.Bag | undefined = keyBags[0];
  if (options.alias !== undefined) {
    keyBag = keyBags.find((b) => b.attributes?.friendlyName?.[0] === options.alias);
    if (!keyBag) throw new As2Error(ErrorCodes.BAD_KEY, `no key with alias "${options.alias}" in the PKCS#12 file (aliases: ${aliases.join(", ") || "none"})`);
  } else if (keyBags.length > 1) {
    throw new As2Error(ErrorCodes.BAD_KEY, `the PKCS#12 file holds ${keyBags.length} keys: choose one with alias (${aliases.join(", ")})`);
  }
  if (!keyBag?.key) throw new As2Error(ErrorCodes.BAD_KEY, "the PKCS#12 file holds no private key");
  // What forge decoded is handed to OpenSSL (the key) and re-encoded (the certificates): both can
  // fail with plain Errors on values forge accepted.
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(forge.pki.privateKeyToPem(keyBag.key));
  } catch (e) {
    throw new As2Error(ErrorCodes.BAD_KEY, `the PKCS#12 file's private key cannot be read: ${(e as Error).message}`, { cause: e });
  }
  let certs: Array<{ cert: Certificate; localKeyId: string | undefined }>;
  try {
    certs = certBags
      .filter((b) => b.cert)
      .map((b) => ({ cert: new Certificate(Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(b.cert!)).getBytes(), "binary")), localKeyId: b.attributes?.localKeyId?.[0] }));
  } catch (e) {
    if (e instanceof As2Error) throw e;
    throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `a certificate in the PKCS#12 file cannot be read: ${(e as Error).message}`, { cause: e });
  }
  const keyId = keyBag.attributes?.localKeyId?.[0];
  const mine = certs.find((c) => keyId !== undefined && c.localKeyId === keyId)?.cert ?? certs.find((c) => keyMatchesCertificate(key, c.cert))?.cert;
  if (!mine) throw new As2Error(ErrorCodes.BAD_CERTIFICATE, "the PKCS#12 file holds no certificate for its key");
  return { key, certificate: mine, chain: certs.map((c) => c.cert).filter((c) => c !== mine) };
}

/** True when the private key belongs to the certificate's public key. */
export function keyMatchesCertificate(key: crypto.KeyObject, cert: Certificate): boolean {
  const a = crypto.createPublicKey(key).export({ type: "spki", format: "der" });
  const b = cert.publicKey.export({ type: "spki", format: "der" });
  return Buffer.from(a).equals(Buffer.from(b));
}
