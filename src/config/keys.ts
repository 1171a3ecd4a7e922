/**
 * The keys and certificates a configuration names, loaded and checked up front (contract §4):
 * every unreadable file, wrong password and mismatched key reported at once.
 */
import { readFileSync } from "node:fs";
import {
  As2Error, loadCertificates, loadPkcs12, loadPrivateKey, keyMatchesCertificate, type Certificate, type KeyPair,
} from "../core/index.js";
import { ConfigError, type ConfigProblem } from "./validate.js";
import type { As2Config, KeySource } from "./schema.js";

export interface PartnerMaterial {
  encryptionCertificate?: Certificate;
  signatureCertificates: Certificate[];
}

export interface KeyMaterial {
  station: KeyPair;
  /** Current key first, then previous keys (contract §4 rollover). */
  decryptionKeys: KeyPair[];
  partners: Record<string, PartnerMaterial>;
  /** Certificates outside their validity, each naming the file and the date. */
  warnings: string[];
}

function readKeyPair(k: KeySource, path: string, problems: ConfigProblem[]): KeyPair | undefined {
  const file = "pem" in k ? k.pem : k.pkcs12;
  try {
    if ("pkcs12" in k) return loadPkcs12(readFileSync(k.pkcs12), { password: k.password, alias: k.alias });
    const key = loadPrivateKey(readFileSync(k.pem), k.password);
    const certificate = loadCertificates(readFileSync(k.certificate))[0]!;
    if (!keyMatchesCertificate(key, certificate)) {
      problems.push({ path: `${path}.certificate`, message: `${k.certificate} does not belong to the key in ${k.pem}` });
      return undefined;
    }
    return { key, certificate };
  } catch (e) {
    problems.push({ path, message: describeFileError(e, file) });
    return undefined;
  }
}

function describeFileError(e: unknown, file: string): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ENOENT") return `file not found: ${err.path ?? file}`;
  if (err.code === "EACCES") return `cannot read ${err.path ?? file}: permission denied`;
  if (e instanceof As2Error) return `${file}: ${e.message}`;
  return `${file}: ${err.message}`;
}

function readCertificate(file: string, path: string, problems: ConfigProblem[]): Certificate[] {
  try {
    return loadCertificates(readFileSync(file));
  } catch (e) {
    problems.push({ path, message: describeFileError(e, file) });
    return [];
  }
}

function validityWarnings(cert: Certificate, file: string, now: Date, warnings: string[]): void {
  const v = cert.checkValidity(now);
  if (v.expired) warnings.push(`${file}: certificate ${cert.subject} expired on ${v.notAfter.toISOString()}`);
  if (v.notYetValid) warnings.push(`${file}: certificate ${cert.subject} is not valid before ${v.notBefore.toISOString()}`);
}

/**
 * Loads every key and certificate the configuration names (or only those of `partnerNames`),
 * reporting every unreadable file, wrong password and mismatched key at once. Validity against
 * `now` gives warnings: AS2 trusts pre-exchanged certificates, and partners often keep using
 * expired ones (RFC 4130 §8), but the user should hear about it.
 */
export function loadKeyMaterial(c: As2Config, now: Date, partnerNames: string[] = Object.keys(c.partners)): KeyMaterial {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const station = readKeyPair(c.station.key, "station.key", problems);
  const previous = c.station.previousKeys.map((k, i) => readKeyPair(k, `station.previousKeys[${i}]`, problems));
  if (station) validityWarnings(station.certificate, "pem" in c.station.key ? c.station.key.certificate : c.station.key.pkcs12, now, warnings);
  const partners: Record<string, PartnerMaterial> = {};
  for (const name of partnerNames) {
    const p = c.partners[name];
    if (!p) continue;
    const path = `partners.${name}`;
    const main = p.certificate ? readCertificate(p.certificate, `${path}.certificate`, problems)[0] : undefined;
    const enc = p.encryptionCertificate ? readCertificate(p.encryptionCertificate, `${path}.encryptionCertificate`, problems)[0] : main;
    const sigs = p.signatureCertificates
      ? p.signatureCertificates.flatMap((f, i) => readCertificate(f, `${path}.signatureCertificates[${i}]`, problems))
      : main ? [main] : [];
    if (enc) validityWarnings(enc, p.encryptionCertificate ?? p.certificate!, now, warnings);
    for (const [i, s] of sigs.entries()) if (s !== enc) validityWarnings(s, p.signatureCertificates?.[i] ?? p.certificate!, now, warnings);
    partners[name] = { encryptionCertificate: enc, signatureCertificates: sigs };
  }
  if (problems.length || !station) throw new ConfigError("the configured keys and certificates", problems);
  return { station, decryptionKeys: [station, ...previous.filter((k): k is KeyPair => !!k)], partners, warnings };
}
