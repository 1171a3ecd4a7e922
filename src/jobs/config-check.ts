/**
 * `as2 check` (issue 16): after the schema (the loader already reports every problem with its key
 * path), every key and certificate the configuration names is loaded — the station key, the
 * previous keys, each partner's certificates, the TLS files — each private key is compared with
 * its certificate (their public keys), and certificates that expire within 30 days, have expired
 * or are not valid yet are warned about. Every finding carries its dotted key path; nothing stops
 * at the first one.
 */
import type { Certificate } from "../core/index.js";
import { certificateFileOf, type As2Config, type KeySource } from "../config/schema.js";
import { loadCertificatesAt, loadKeyPairAt, loadKeySourceAt, type LoadedKey, type PairPaths } from "../config/keys.js";
import { certificateRefs, daysLeft, expiryFinding, type CertificateUse } from "./cert-expiry.js";

export { expiryWarnings, EXPIRY_WARNING_DAYS } from "./cert-expiry.js";

export interface CheckFinding {
  /** Dotted key path, e.g. partners.acme.tls.clientKey. */
  path: string;
  message: string;
  /** The stable code of a file problem (AS2_ERR_BAD_KEY, AS2_ERR_FILE_UNREADABLE, ...). */
  code?: string;
}

export interface CertificateSummary {
  path: string;
  file: string;
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** Whole days until notAfter; negative once expired. */
  daysLeft: number;
}

export interface ConfigCheckReport {
  /** True when there is no problem (warnings allowed). */
  ok: boolean;
  problems: CheckFinding[];
  warnings: CheckFinding[];
  certificates: CertificateSummary[];
  /** Private keys loaded (and compared with their certificates). */
  keys: number;
}

/** Runs the checks; collects findings instead of throwing. */
class Checker {
  readonly problems: CheckFinding[] = [];
  readonly warnings: CheckFinding[] = [];
  readonly certificates: CertificateSummary[] = [];
  keys = 0;
  /** Use of each certificate key path, for the advice in expiry warnings. */
  private readonly uses = new Map<string, CertificateUse>();

  constructor(config: As2Config, private readonly now: Date) {
    for (const r of certificateRefs(config)) this.uses.set(r.path, r.use);
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  /** Adds the certificate to the inventory and warns about its validity. */
  record(cert: Certificate, path: string, file: string): void {
    this.certificates.push({
      path, file, subject: cert.subject, issuer: cert.issuer, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString(),
      daysLeft: daysLeft(cert.notAfter, this.now),
    });
    const f = expiryFinding(cert, this.now, this.uses.get(path) ?? "partner");
    if (f) this.warn(path, f.message);
  }

  /** The certificates of a file: the first one (`all` false) or all of them (a CA list). */
  certificateFile(file: string, path: string, all: boolean): void {
    const r = loadCertificatesAt(file, path);
    this.problems.push(...r.problems);
    for (const c of all ? r.certificates : r.certificates.slice(0, 1)) this.record(c, path, file);
  }

  /** A loaded key (pair or PKCS#12): its problems, the key counted, its certificate recorded. */
  private loaded(k: LoadedKey): void {
    this.problems.push(...k.problems);
    if (k.key) this.keys++;
    if (k.certificate) this.record(k.certificate, k.certificatePath!, k.certificateFile!);
  }

  /** A key and its certificate: both loaded, and the key must be the certificate's. */
  pair(keyFile: string, certFile: string, password: string | undefined, at: PairPaths): void {
    this.loaded(loadKeyPairAt(keyFile, certFile, password, at));
  }

  keySource(k: KeySource, path: string): void {
    this.loaded(loadKeySourceAt(k, path));
  }
}

/**
 * Loads and checks every key and certificate of a valid configuration (the schema has been
 * applied by the loader). `now` is injected (architecture §3.7).
 */
export function checkConfig(config: As2Config, now: Date): ConfigCheckReport {
  const c = new Checker(config, now);
  c.keySource(config.station.key, "station.key");
  config.station.previousKeys.forEach((k, i) => c.keySource(k, `station.previousKeys[${i}]`));
  const tls = config.receive.tls;
  if (tls) {
    c.pair(tls.key, tls.certificate, tls.password, { key: "receive.tls.key", certificate: "receive.tls.certificate", password: "receive.tls.password" });
    tls.ca.forEach((f, i) => c.certificateFile(f, `receive.tls.ca[${i}]`, true));
  }
  for (const [name, p] of Object.entries(config.partners)) {
    const at = `partners.${name}`;
    if (p.certificate) c.certificateFile(p.certificate, `${at}.certificate`, false);
    if (typeof p.encryptionCertificate === "string") c.certificateFile(p.encryptionCertificate, `${at}.encryptionCertificate`, false);
    else p.encryptionCertificate?.forEach((f, i) => c.certificateFile(certificateFileOf(f), `${at}.encryptionCertificate[${i}]`, false));
    p.signatureCertificates?.forEach((f, i) => c.certificateFile(certificateFileOf(f), `${at}.signatureCertificates[${i}]`, false));
    if (p.tls) {
      if (p.tls.clientCertificate && p.tls.clientKey) {
        c.pair(p.tls.clientKey, p.tls.clientCertificate, p.tls.clientKeyPassword, { key: `${at}.tls.clientKey`, certificate: `${at}.tls.clientCertificate`, password: `${at}.tls.clientKeyPassword` });
      }
      p.tls.ca.forEach((f, i) => c.certificateFile(f, `${at}.tls.ca[${i}]`, true));
      if (!p.tls.rejectUnauthorized) c.warn(`${at}.tls.rejectUnauthorized`, "set to false: the partner's TLS certificate is not checked, so anyone on the way can pose as the partner");
    }
  }
  config.smtp?.ca.forEach((f, i) => c.certificateFile(f, `smtp.ca[${i}]`, true));
  if (!config.smtp) {
    // E-mail receipts (issue 17): allowed addresses without a relay are refused at delivery.
    for (const [name, p] of Object.entries(config.partners)) {
      if (p.inbound.asyncMdnUrls?.some((u) => /^mailto:/i.test(u))) c.warn(`partners.${name}.inbound.asyncMdnUrls`, "lists mailto: addresses, but no smtp is configured: e-mail receipts to this partner are refused");
    }
  }
  const byPath = (a: CheckFinding, b: CheckFinding) => a.path.localeCompare(b.path);
  return { ok: c.problems.length === 0, problems: c.problems.sort(byPath), warnings: c.warnings.sort(byPath), certificates: c.certificates, keys: c.keys };
}
