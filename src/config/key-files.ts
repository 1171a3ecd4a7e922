/**
 * Key and certificate files as users hand them to us: PEM, DER, PKCS#12, certs-only PKCS#7.
 * What a file holds is recognised before it is parsed for a purpose, so a mistake is told in
 * plain words ("this file is a private key, not a certificate") instead of an OpenSSL decoder
 * error ("error:1E08010C:DECODER routines::unsupported").
 *
 * The one place for that translation: the key commands (`as2 keys`, `init`, `partner add`) and
 * the configuration's loader (src/config/keys.ts: send, receive, check, mdn-verify) both read
 * files through here. Each failure is an As2Error with a stable code: FILE_UNREADABLE (missing,
 * a folder, no permission), BAD_KEY (not a private key), BAD_CERTIFICATE (not a certificate),
 * BAD_PASSWORD (a password missing or wrong).
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { readFileSync } from "node:fs";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import {
  As2Error, Certificate, ErrorCodes, certsFromPkcs7, keyMatchesCertificate, loadCertificates, loadPkcs12, loadPrivateKey,
} from "../core/index.js";
import { toArrayBuffer } from "../core/bytes.js";

export type FileKind =
  | "certificate"
  | "private-key"
  | "encrypted-private-key"
  | "key-and-certificate"
  | "pkcs12"
  | "pkcs7"
  | "certificate-request"
  | "public-key"
  | "empty"
  | "unknown";

export interface FileIdentity {
  kind: FileKind;
  /** "pem" or "der" (PKCS#12 files are always DER). */
  encoding: "pem" | "der";
  /** Plain words: "a private key (PEM)". */
  description: string;
}

const KIND_WORDS: Record<FileKind, string> = {
  certificate: "a certificate",
  "private-key": "a private key",
  "encrypted-private-key": "a password-protected private key",
  "key-and-certificate": "a private key with its certificate",
  pkcs12: "a PKCS#12 file (private key and certificate)",
  pkcs7: "a PKCS#7 certificate bundle",
  "certificate-request": "a certificate signing request",
  "public-key": "a bare public key (no certificate)",
  empty: "an empty file",
  unknown: "not a key or certificate format as2kit reads (PEM, DER, PKCS#12, PKCS#7)",
};

const OID_DATA = "1.2.840.113549.1.7.1";
const OID_SIGNED_DATA = "1.2.840.113549.1.7.2";

function pemLabels(text: string): string[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]!);
}

function derIdentity(data: Buffer): FileKind {
  const parsed = asn1js.fromBER(toArrayBuffer(data));
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return "unknown";
  const items = parsed.result.valueBlock.value;
  // PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo (data), macData } (RFC 7292 §4)
  if (items[0] instanceof asn1js.Integer && items[0].valueBlock.valueDec === 3 && items[1] instanceof asn1js.Sequence) {
    const ct = items[1].valueBlock.value[0];
    if (ct instanceof asn1js.ObjectIdentifier && ct.valueBlock.toString() === OID_DATA) return "pkcs12";
  }
  // ContentInfo ::= SEQUENCE { contentType OID, [0] content } (RFC 5652 §3)
  if (items[0] instanceof asn1js.ObjectIdentifier && items[0].valueBlock.toString() === OID_SIGNED_DATA) return "pkcs7";
  try {
    new crypto.X509Certificate(data);
    return "certificate";
  } catch { /* not a certificate */ }
  for (const type of ["pkcs8", "pkcs1", "sec1"] as const) {
    try {
      crypto.createPrivateKey({ key: data, format: "der", type, passphrase: "" });
      return "private-key";
    } catch (e) {
      if (/passphrase|password|bad decrypt/i.test((e as Error).message)) return "encrypted-private-key";
    }
  }
  // EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING } (RFC 5958 §3)
  if (items.length === 2 && items[0] instanceof asn1js.Sequence && items[1] instanceof asn1js.OctetString) return "encrypted-private-key";
  try {
    crypto.createPublicKey({ key: data, format: "der", type: "spki" });
    return "public-key";
  } catch { /* not a public key */ }
  // CertificationRequest ::= SEQUENCE { info SEQUENCE { version 0, subject, spki, [0] attrs }, alg, sig }
  try {
    pkijs.CertificationRequest.fromBER(toArrayBuffer(data));
    return "certificate-request";
  } catch { /* not a CSR */ }
  return "unknown";
}

/** What a key or certificate file holds, from its bytes alone (no password needed). */
export function identifyKeyFile(data: Uint8Array): FileIdentity {
  const buf = Buffer.from(data);
  if (buf.toString("latin1").trim() === "") return { kind: "empty", encoding: "der", description: KIND_WORDS.empty };
  const head = buf.subarray(0, Math.min(buf.length, 64 * 1024)).toString("latin1");
  if (head.includes("-----BEGIN ")) {
    const labels = pemLabels(buf.toString("latin1"));
    const isCert = labels.some((l) => /^(X509 |TRUSTED )?CERTIFICATE$/.test(l));
    const isKey = labels.some((l) => /^(RSA |EC |DSA )?PRIVATE KEY$/.test(l) || l === "ENCRYPTED PRIVATE KEY");
    const encrypted = labels.includes("ENCRYPTED PRIVATE KEY") || /Proc-Type: 4,ENCRYPTED/.test(head);
    let kind: FileKind = "unknown";
    if (isKey && isCert) kind = "key-and-certificate";
    else if (isKey) kind = encrypted ? "encrypted-private-key" : "private-key";
    else if (isCert) kind = "certificate";
    else if (labels.some((l) => l === "PKCS7" || l === "CMS")) kind = "pkcs7";
    else if (labels.some((l) => /CERTIFICATE REQUEST$/.test(l))) kind = "certificate-request";
    else if (labels.some((l) => /PUBLIC KEY$/.test(l))) kind = "public-key";
    return { kind, encoding: "pem", description: `${KIND_WORDS[kind]}${kind === "unknown" ? "" : kind === "certificate-request" ? " (CSR, PEM)" : " (PEM)"}` };
  }
  const kind = derIdentity(buf);
  return { kind, encoding: "der", description: `${KIND_WORDS[kind]}${kind === "unknown" || kind === "pkcs12" ? "" : kind === "certificate-request" ? " (CSR, DER)" : " (DER)"}` };
}

/**
 * A key or certificate file's bytes; a file that cannot be read is told in plain words (code
 * FILE_UNREADABLE) instead of "ENOENT: no such file or directory, open ...", after `at` (the key
 * path or flag that names the file) when given.
 */
export function readKeyFileBytes(file: string, at?: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? `file not found: ${file}`
      : err.code === "EACCES" || err.code === "EPERM" ? `cannot read ${file}: permission denied`
      : err.code === "EISDIR" ? `${file} is a folder, not a file`
      : `cannot read ${file}: ${err.code ?? err.message}`;
    throw new As2Error(ErrorCodes.FILE_UNREADABLE, at ? `${at}: ${why}` : why, { cause: e });
  }
}

/** The error for a file that is not what the caller needs, naming what it is instead. */
function wrongKind(file: string, id: FileIdentity, wanted: string, hint?: string): As2Error {
  const code = /key|PKCS#12/.test(wanted) ? ErrorCodes.BAD_KEY : ErrorCodes.BAD_CERTIFICATE;
  const what = id.kind === "unknown" ? `${file} is not ${wanted}` : `${file} is ${id.description}, not ${wanted}`;
  return new As2Error(code, `${what}${hint ? `: ${hint}` : ""}`);
}

const UNKNOWN_HINT = "it is damaged, or in none of the formats as2kit reads (PEM, DER, PKCS#12, PKCS#7); check that the right file is named";

export interface ReadCertificateOptions {
  /**
   * Our own certificate (station.key.certificate, a TLS certificate): a PEM file holding the key
   * and its certificate together is fine there. A partner's file or a CA list must not hold a key.
   */
  own?: boolean;
}

/**
 * Certificates only (a partner's file): PEM, DER or certs-only PKCS#7. A private key, PKCS#12 or
 * CSR is refused in plain words: a partner sends its certificate, never its key.
 */
export function readCertificateFile(data: Uint8Array, file: string, o: ReadCertificateOptions = {}): Certificate[] {
  const id = identifyKeyFile(data);
  switch (id.kind) {
    case "certificate":
    case "pkcs7":
      break;
    case "key-and-certificate":
      if (o.own) break;
      throw wrongKind(file, id, "a certificate alone", "a partner's file must hold only its certificate; a private key never leaves its owner");
    case "private-key":
    case "encrypted-private-key":
      throw wrongKind(file, id, "a certificate", "give the certificate (.crt, .cer, .pem with BEGIN CERTIFICATE); a private key never leaves its owner");
    case "pkcs12":
      throw wrongKind(file, id, "a certificate", "a partner sends its certificate only (PEM, DER or .p7b); a PKCS#12 file holds a private key");
    case "certificate-request":
      throw wrongKind(file, id, "a certificate", "a CSR goes to a certificate authority, which answers with the certificate to use");
    case "public-key":
      throw wrongKind(file, id, "a certificate", "AS2 needs the partner's X.509 certificate, not its bare public key");
    case "empty":
      throw wrongKind(file, id, "a certificate");
    default:
      throw wrongKind(file, id, "a certificate", UNKNOWN_HINT);
  }
  try {
    return id.kind === "pkcs7" && id.encoding === "der" ? certsFromPkcs7(Buffer.from(data)) : loadCertificates(data);
  } catch (e) {
    throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `${file} looks like ${KIND_WORDS[id.kind]} but cannot be read: ${plainCryptoMessage(e)}`, { cause: e });
  }
}

export interface Credential {
  identity: FileIdentity;
  /** The private key, when the file holds one. */
  key?: crypto.KeyObject;
  /** The key's certificate first (when there is a key), then the others. */
  certificates: Certificate[];
}

export interface ReadCredentialOptions {
  password?: string;
  alias?: string;
  /** Where the password is given, for the messages: "--password" (default) or a key path. */
  passwordFrom?: string;
}

function passwordMissing(file: string, what: string, from: string): As2Error {
  return new As2Error(ErrorCodes.BAD_PASSWORD, `${file}: ${what} is password-protected: give its password ${from.startsWith("-") ? "with" : "in"} ${from}`);
}

function passwordWrong(file: string, what: string, from: string): As2Error {
  return new As2Error(ErrorCodes.BAD_PASSWORD, `${file}: wrong password for ${what} (${from})`);
}

/** Node/OpenSSL decoder messages in plain words. */
export function plainCryptoMessage(e: unknown): string {
  const msg = (e as Error)?.message ?? String(e);
  if (/bad decrypt|mac could not be verified|invalid password/i.test(msg)) return "wrong password";
  // OpenSSL's "error:0480006C:PEM routines::no start line", "...:DECODER routines::unsupported",
  // asn1js's and pkijs's structure errors: none of them says anything a user can act on.
  if (/routines|error:[0-9A-F]{8}|unsupported|wrong tag|header too long|not enough data|too long|asn1|object header|Invalid PEM|no start line/i.test(msg)) return "the data is damaged or not in a format as2kit reads";
  return msg.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:?/i, "").trim() || msg;
}

/**
 * Anything with keys or certificates: PKCS#12 (with alias and password), PEM (key, certificate
 * or both), DER, certs-only PKCS#7. The key, when there is one, is checked against its certificate.
 */
export function readCredentialFile(data: Uint8Array, file: string, o: ReadCredentialOptions = {}): Credential {
  const identity = identifyKeyFile(data);
  const from = o.passwordFrom ?? "--password";
  switch (identity.kind) {
    case "pkcs12": {
      try {
        const kp = loadPkcs12(data, { password: o.password, alias: o.alias });
        return { identity, key: kp.key, certificates: [kp.certificate, ...(kp.chain ?? [])] };
      } catch (e) {
        if (e instanceof As2Error && e.code === ErrorCodes.BAD_PASSWORD) {
          throw o.password === undefined || o.password === "" ? passwordMissing(file, "the PKCS#12 file", from) : passwordWrong(file, "the PKCS#12 file", from);
        }
        throw new As2Error(e instanceof As2Error ? e.code : ErrorCodes.BAD_KEY, `${file}: ${e instanceof As2Error ? e.message : plainCryptoMessage(e)}`, { cause: e });
      }
    }
    case "certificate":
    case "pkcs7":
      if (o.alias !== undefined) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `${file} is ${identity.description}: --alias is for PKCS#12 files`);
      return { identity, certificates: readCertificateFile(data, file) };
    case "private-key":
    case "encrypted-private-key":
    case "key-and-certificate": {
      let key: crypto.KeyObject;
      try {
        key = loadPrivateKey(data, o.password);
      } catch (e) {
        if (e instanceof As2Error && e.code === ErrorCodes.BAD_PASSWORD) {
          throw o.password ? passwordWrong(file, "the private key", from) : passwordMissing(file, "the private key", from);
        }
        throw new As2Error(ErrorCodes.BAD_KEY, `${file} looks like ${KIND_WORDS[identity.kind]} but cannot be read: ${plainCryptoMessage(e)}`, { cause: e });
      }
      const certificates = identity.kind === "key-and-certificate" ? loadCertificates(data) : [];
      const mine = certificates.findIndex((c) => keyMatchesCertificate(key, c));
      if (certificates.length && mine < 0) throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `${file}: none of its certificates belongs to its private key`);
      if (mine > 0) certificates.unshift(...certificates.splice(mine, 1));
      return { identity, key, certificates };
    }
    case "certificate-request":
      throw wrongKind(file, identity, "a key or certificate", "a CSR goes to a certificate authority, which answers with the certificate");
    case "public-key":
      throw wrongKind(file, identity, "a private key or certificate");
    case "empty":
      throw wrongKind(file, identity, "a key or certificate");
    default:
      throw wrongKind(file, identity, "a key or certificate", UNKNOWN_HINT);
  }
}

/** Why a file that is not a private key cannot be one, for the key's owner. */
const NOT_A_KEY_HINT: Partial<Record<FileKind, string>> = {
  certificate: "name the private key file here (BEGIN PRIVATE KEY), and this certificate beside it",
  pkcs7: "name the private key file here; the certificates belong beside it",
  "certificate-request": "a CSR is made from the key; name the key file it was made with",
  "public-key": "the private key is needed to sign and decrypt",
  unknown: UNKNOWN_HINT,
};

/**
 * A private key alone (the station's key file, a TLS key): a certificate, CSR or anything else
 * given instead is told so; a PKCS#12 file or a PEM with key and certificate gives its key.
 */
export function readPrivateKeyFile(data: Uint8Array, file: string, o: Omit<ReadCredentialOptions, "alias"> = {}): crypto.KeyObject {
  const identity = identifyKeyFile(data);
  if (!["private-key", "encrypted-private-key", "key-and-certificate", "pkcs12"].includes(identity.kind)) {
    throw wrongKind(file, identity, "a private key", NOT_A_KEY_HINT[identity.kind]);
  }
  return readCredentialFile(data, file, o).key!;
}

/** A PKCS#12 file (the station's pkcs12 key): anything else is told what it is instead. */
export function readPkcs12File(data: Uint8Array, file: string, o: ReadCredentialOptions = {}): { key: crypto.KeyObject; certificate: Certificate; chain: Certificate[] } {
  const identity = identifyKeyFile(data);
  if (identity.kind !== "pkcs12") {
    const hint = identity.kind === "key-and-certificate" || identity.kind === "private-key" || identity.kind === "encrypted-private-key"
      ? "configure a PEM or DER key as { pem, certificate }" : identity.kind === "unknown" ? UNKNOWN_HINT : undefined;
    throw wrongKind(file, identity, "a PKCS#12 file", hint);
  }
  const c = readCredentialFile(data, file, o);
  const [certificate, ...chain] = c.certificates;
  return { key: c.key!, certificate: certificate!, chain };
}

/**
 * Node's TLS options read PEM only (a DER file fails there with a decoder message): the
 * certificates of a file as2kit reads (PEM, DER, certs-only PKCS#7) as PEM text.
 */
export function tlsCertificatesPem(file: string, o: ReadCertificateOptions = {}): Buffer {
  return Buffer.from(readCertificateFile(readKeyFileBytes(file), file, o).map((c) => c.x509.toString()).join(""));
}

/**
 * A private key file in any form as2kit reads (PEM, DER, encrypted with its password, PKCS#12)
 * as PKCS#8 PEM for Node's TLS options. Decrypted, it stays in this process's memory only.
 */
export function tlsPrivateKeyPem(file: string, password: string | undefined, passwordFrom: string): Buffer {
  const key = readPrivateKeyFile(readKeyFileBytes(file), file, { password, passwordFrom });
  return Buffer.from(key.export({ type: "pkcs8", format: "pem" }) as string);
}
