/**
 * `as2 check` (issue 16): after the schema (the loader already reports every problem with its key
 * path), every key and certificate the configuration names is loaded — the station key, the
 * previous keys, each partner's certificates, the TLS files — each private key is compared with
 * its certificate (their public keys), and certificates that expire within 30 days, have expired
 * or are not valid yet are warned about. Every finding carries its dotted key path; nothing stops
 * at the first one.
 */
import type { KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  As2Error, ErrorCodes, keyMatchesCertificate, loadCertificates, loadPkcs12, loadPrivateKey, type Certificate,
} from "../core/index.js";
import type { As2Config, KeySource } from "../config/schema.js";
import { certificateRefs, daysLeft, expiryFinding, type CertificateUse } from "./cert-expiry.js";

export { expiryWarnings, EXPIRY_WARNING_DAYS } from "./cert-expiry.js";

export interface CheckFinding {
  /** Dotted key path, e.g. partners.acme.tls.clientKey. */
  path: string;
  message: string;
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

function fileError(e: unknown, file: string): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ENOENT") return `file not found: ${file}`;
  if (err.code === "EACCES") return `cannot read ${file}: permission denied`;
  if (err.code === "EISDIR") return `${file} is a folder, not a file`;
  return `${file}: ${err.message}`;
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

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  private read(file: string, path: string): Buffer | undefined {
    try {
      return readFileSync(file);
    } catch (e) {
      this.problem(path, fileError(e, file));
      return undefined;
    }
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
  certificateFile(file: string, path: string, all: boolean): Certificate[] {
    const data = this.read(file, path);
    if (!data) return [];
    try {
      const certs = loadCertificates(data);
      const used = all ? certs : certs.slice(0, 1);
      for (const c of used) this.record(c, path, file);
      return used;
    } catch (e) {
      const looksLikeKey = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.test(data.subarray(0, 4096).toString("latin1"));
      this.problem(path, looksLikeKey ? `${file} is a private key, not a certificate` : `${file}: ${(e as Error).message}`);
      return [];
    }
  }

  /** A private key file (PEM or DER); a wrong or missing password is reported at `passwordPath`. */
  privateKey(file: string, password: string | undefined, path: string, passwordPath: string): KeyObject | undefined {
    const data = this.read(file, path);
    if (!data) return undefined;
    try {
      const key = loadPrivateKey(data, password);
      this.keys++;
      return key;
    } catch (e) {
      if (e instanceof As2Error && e.code === ErrorCodes.BAD_PASSWORD) this.problem(password === undefined ? path : passwordPath, `${file}: ${e.message}`);
      else {
        const looksLikeCert = /-----BEGIN CERTIFICATE-----/.test(data.subarray(0, 4096).toString("latin1"));
        this.problem(path, looksLikeCert ? `${file} is a certificate, not a private key` : `${file}: ${(e as Error).message}`);
      }
      return undefined;
    }
  }

  /** A key and its certificate: both loaded, and the key must be the certificate's. */
  pair(keyFile: string, certFile: string, password: string | undefined, at: { key: string; certificate: string; password: string }): void {
    const key = this.privateKey(keyFile, password, at.key, at.password);
    const [cert] = this.certificateFile(certFile, at.certificate, false);
    if (key && cert && !keyMatchesCertificate(key, cert)) {
      this.problem(at.certificate, `${certFile} does not belong to the key in ${keyFile} (their public keys differ)`);
    }
  }

  keySource(k: KeySource, path: string): void {
    if ("pem" in k) {
      this.pair(k.pem, k.certificate, k.password, { key: `${path}.pem`, certificate: `${path}.certificate`, password: `${path}.password` });
      return;
    }
    const data = this.read(k.pkcs12, `${path}.pkcs12`);
    if (!data) return;
    try {
      // loadPkcs12 picks the key's own certificate (localKeyId, then the public key).
      const pair = loadPkcs12(data, { password: k.password, alias: k.alias });
      this.keys++;
      this.record(pair.certificate, `${path}.pkcs12`, k.pkcs12);
    } catch (e) {
      const bad = e instanceof As2Error && e.code === ErrorCodes.BAD_PASSWORD;
      const aliasProblem = /alias/.test((e as Error).message);
      this.problem(bad && k.password !== undefined ? `${path}.password` : aliasProblem ? `${path}.alias` : `${path}.pkcs12`, `${k.pkcs12}: ${(e as Error).message}`);
    }
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
    if (p.encryptionCertificate) c.certificateFile(p.encryptionCertificate, `${at}.encryptionCertificate`, false);
    p.signatureCertificates?.forEach((f, i) => c.certificateFile(f, `${at}.signatureCertificates[${i}]`, false));
    if (p.tls) {
      if (p.tls.clientCertificate && p.tls.clientKey) {
        c.pair(p.tls.clientKey, p.tls.clientCertificate, p.tls.clientKeyPassword, { key: `${at}.tls.clientKey`, certificate: `${at}.tls.clientCertificate`, password: `${at}.tls.clientKeyPassword` });
      }
      p.tls.ca.forEach((f, i) => c.certificateFile(f, `${at}.tls.ca[${i}]`, true));
      if (!p.tls.rejectUnauthorized) c.warn(`${at}.tls.rejectUnauthorized`, "set to false: the partner's TLS certificate is not checked, so anyone on the way can pose as the partner");
    }
  }
  const byPath = (a: CheckFinding, b: CheckFinding) => a.path.localeCompare(b.path);
  return { ok: c.problems.length === 0, problems: c.problems.sort(byPath), warnings: c.warnings.sort(byPath), certificates: c.certificates, keys: c.keys };
}
