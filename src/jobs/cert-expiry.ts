/**
 * Certificate expiry for `as2 send` and `as2 status` (issue 16): a warning for every configured
 * certificate that expires within EXPIRY_WARNING_DAYS, has expired, or is not valid yet.
 *
 * Light on purpose: `as2 status` starts without the crypto libraries (pkijs, node-forge), so
 * PEM and DER certificates are read with node:crypto alone; only a PKCS#12 key or a PKCS#7
 * certificate file loads the core. Unreadable files are skipped here: `as2 check` (and the key
 * loading of `as2 send`) report those.
 */
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { certificateFileOf, type As2Config, type KeySource } from "../config/schema.js";

/** How early a coming expiry is announced: a month leaves time to exchange certificates. */
export const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

/** What a certificate file is for, which decides what to tell the user to do about it. */
export type CertificateUse = "station" | "previous-key" | "partner" | "tls" | "tls-ca";

/** A configured certificate file and its dotted key path (contract §4). */
export interface CertificateRef {
  path: string;
  file: string;
  use: CertificateUse;
  /** Set for a PKCS#12 key source: the certificate is inside, behind this password. */
  pkcs12?: { password?: string; alias?: string };
  /** A CA list: every certificate of the file counts, not only the first. */
  all?: boolean;
}

export interface CertificateDates {
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

export interface ExpiryFinding {
  kind: "expired" | "not-yet-valid" | "expiring";
  daysLeft: number;
  message: string;
}

function keyRef(k: KeySource, path: string, use: CertificateUse): CertificateRef {
  return "pem" in k
    ? { path: `${path}.certificate`, file: k.certificate, use }
    : { path: `${path}.pkcs12`, file: k.pkcs12, use, pkcs12: { password: k.password, alias: k.alias } };
}

export interface CertificateRefOptions {
  /** Only these partners (default: all). */
  partners?: string[];
  /** The previous keys of a rollover (default true). */
  previousKeys?: boolean;
  /** The partners' TLS client certificates and CA lists (default true). */
  tls?: boolean;
  /** The server certificate and CA list of receive.tls (default true; not a sender's concern). */
  receiveTls?: boolean;
}

/** Every certificate file the configuration names, with its key path. */
export function certificateRefs(c: As2Config, o: CertificateRefOptions = {}): CertificateRef[] {
  const refs: CertificateRef[] = [keyRef(c.station.key, "station.key", "station")];
  if (o.previousKeys ?? true) c.station.previousKeys.forEach((k, i) => refs.push(keyRef(k, `station.previousKeys[${i}]`, "previous-key")));
  const tls = o.tls ?? true;
  if ((o.receiveTls ?? true) && c.receive.tls) {
    refs.push({ path: "receive.tls.certificate", file: c.receive.tls.certificate, use: "tls" });
    c.receive.tls.ca.forEach((f, i) => refs.push({ path: `receive.tls.ca[${i}]`, file: f, use: "tls-ca", all: true }));
  }
  for (const name of o.partners ?? Object.keys(c.partners)) {
    const p = c.partners[name];
    if (!p) continue;
    const at = `partners.${name}`;
    if (p.certificate) refs.push({ path: `${at}.certificate`, file: p.certificate, use: "partner" });
    if (typeof p.encryptionCertificate === "string") refs.push({ path: `${at}.encryptionCertificate`, file: p.encryptionCertificate, use: "partner" });
    else p.encryptionCertificate?.forEach((f, i) => refs.push({ path: `${at}.encryptionCertificate[${i}]`, file: certificateFileOf(f), use: "partner" }));
    p.signatureCertificates?.forEach((f, i) => refs.push({ path: `${at}.signatureCertificates[${i}]`, file: certificateFileOf(f), use: "partner" }));
    if (tls && p.tls) {
      if (p.tls.clientCertificate) refs.push({ path: `${at}.tls.clientCertificate`, file: p.tls.clientCertificate, use: "tls" });
      p.tls.ca.forEach((f, i) => refs.push({ path: `${at}.tls.ca[${i}]`, file: f, use: "tls-ca", all: true }));
    }
  }
  return refs;
}

/** "C=XX\nO=...\nCN=..." as one line. */
export function oneLineName(name: string): string {
  return name.split("\n").filter(Boolean).join(", ");
}

/** Whole days from now to the end of validity; negative once expired. */
export function daysLeft(notAfter: Date, now: Date): number {
  return Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
}

const ADVICE: Record<CertificateUse, string> = {
  station: "make a new one (as2 keys new --use) and send its certificate to your partners before then",
  "previous-key": "only used to decrypt older messages; remove it from station.previousKeys once they are done",
  partner: "ask the partner for its new certificate",
  tls: "renew the TLS certificate",
  "tls-ca": "renew the CA certificate",
};

/** The warning for a certificate outside its validity, or inside the warning window; else undefined. */
export function expiryFinding(cert: CertificateDates, now: Date, use: CertificateUse, withinDays = EXPIRY_WARNING_DAYS): ExpiryFinding | undefined {
  const left = daysLeft(cert.notAfter, now);
  const date = cert.notAfter.toISOString().slice(0, 10);
  if (now.getTime() > cert.notAfter.getTime()) {
    const ago = -left;
    return { kind: "expired", daysLeft: left, message: `certificate ${cert.subject} expired on ${date}${ago >= 1 ? ` (${ago} day${ago === 1 ? "" : "s"} ago)` : ""}; ${ADVICE[use]}` };
  }
  if (now.getTime() < cert.notBefore.getTime()) {
    return { kind: "not-yet-valid", daysLeft: left, message: `certificate ${cert.subject} is not valid before ${cert.notBefore.toISOString()}` };
  }
  if (left < withinDays) {
    const when = left === 0 ? "within a day" : `in ${left} day${left === 1 ? "" : "s"}`;
    return { kind: "expiring", daysLeft: left, message: `certificate ${cert.subject} expires ${when}, on ${date}; ${ADVICE[use]}` };
  }
  return undefined;
}

const PEM_CERT = /-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----[\s\S]*?-----END (?:X509 |TRUSTED )?CERTIFICATE-----/g;

function dates(x: X509Certificate): CertificateDates {
  return { subject: oneLineName(x.subject), notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
}

/** The certificates of a file, with node:crypto for PEM and DER, the core for PKCS#7 and PKCS#12. */
export async function readCertificateDates(ref: CertificateRef): Promise<CertificateDates[]> {
  const data = await readFile(ref.file);
  if (ref.pkcs12) {
    const { loadPkcs12 } = await import("../core/index.js");
    const pair = loadPkcs12(data, ref.pkcs12);
    return [{ subject: pair.certificate.subject, notBefore: pair.certificate.notBefore, notAfter: pair.certificate.notAfter }];
  }
  const text = data.subarray(0, 4096).toString("latin1").includes("-----BEGIN ") ? data.toString("latin1") : undefined;
  const blocks = text?.match(PEM_CERT);
  let certs: CertificateDates[];
  if (text !== undefined && blocks?.length) certs = blocks.map((b) => dates(new X509Certificate(b)));
  else {
    try {
      if (text !== undefined) throw new Error("no CERTIFICATE block");
      certs = [dates(new X509Certificate(data))];
    } catch {
      // A certs-only PKCS#7 (.p7b/.p7c), PEM or DER.
      const { loadCertificates } = await import("../core/index.js");
      certs = loadCertificates(data).map((c) => ({ subject: c.subject, notBefore: c.notBefore, notAfter: c.notAfter }));
    }
  }
  return ref.all ? certs : certs.slice(0, 1);
}

export interface ExpiryWarningOptions extends CertificateRefOptions {
  withinDays?: number;
  /**
   * Also report certificates already expired or not yet valid (default true). `as2 send` passes
   * false: loadKeyMaterial's warnings already name those, and each should be said once.
   */
  includeInvalid?: boolean;
}

/**
 * One line per configured certificate that expires within `withinDays` (30), each starting with
 * its key path. For `as2 status`: everything but the previous keys; for `as2 send`:
 * `{ partners: [name], receiveTls: false, includeInvalid: false }`.
 */
export async function expiryWarnings(config: As2Config, now: Date = new Date(), o: ExpiryWarningOptions = {}): Promise<string[]> {
  const refs = certificateRefs(config, { previousKeys: false, tls: true, ...o });
  const found = await Promise.all(refs.map(async (ref) => {
    let certs: CertificateDates[];
    try {
      certs = await readCertificateDates(ref);
    } catch {
      return []; // unreadable: `as2 check` says why, and sending reports it on its own
    }
    return certs.map((c) => expiryFinding(c, now, ref.use, o.withinDays))
      .filter((f): f is ExpiryFinding => !!f && (f.kind === "expiring" || (o.includeInvalid ?? true)))
      .map((f) => `${ref.path}: ${f.message}`);
  }));
  return [...new Set(found.flat())];
}
