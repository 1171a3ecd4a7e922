/**
 * Finding and loading the configuration (contract.md §1, §4): cosmiconfig under the module name
 * `as2`, searched upwards from the working directory, or --config; `${ENV}` expansion; paths
 * relative to the config file; keys and certificates loaded and checked up front.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { cosmiconfig } from "cosmiconfig";
import {
  As2Error, loadCertificates, loadPkcs12, loadPrivateKey, keyMatchesCertificate, type Certificate, type KeyPair,
} from "../core/index.js";
import { ConfigError, validateConfig, type ConfigProblem } from "./validate.js";
import type { As2Config, KeySource } from "./schema.js";

export const SEARCH_PLACES = [
  "package.json", ".as2rc", ".as2rc.json", ".as2rc.yaml", ".as2rc.yml", "as2.config.js", "as2.config.mjs", "as2.config.cjs",
];

export interface LoadConfigOptions {
  /** --config: a file named directly. */
  configPath?: string;
  /** Where the upward search starts. */
  cwd?: string;
  env?: Record<string, string | undefined>;
}

export interface LoadedConfig {
  config: As2Config;
  filepath: string;
}

/** Every file-path key, so they can be made absolute against the config file's folder. */
function resolvePaths(c: As2Config, base: string): void {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const key = (k: KeySource) => {
    if ("pem" in k) { k.pem = abs(k.pem); k.certificate = abs(k.certificate); } else { k.pkcs12 = abs(k.pkcs12); }
  };
  c.dataDir = abs(c.dataDir);
  key(c.station.key);
  c.station.previousKeys.forEach(key);
  if (c.receive.tls) {
    c.receive.tls.key = abs(c.receive.tls.key);
    c.receive.tls.certificate = abs(c.receive.tls.certificate);
    c.receive.tls.ca = c.receive.tls.ca.map(abs);
  }
  for (const p of Object.values(c.partners)) {
    if (p.certificate) p.certificate = abs(p.certificate);
    if (p.encryptionCertificate) p.encryptionCertificate = abs(p.encryptionCertificate);
    if (p.signatureCertificates) p.signatureCertificates = p.signatureCertificates.map(abs);
    if (p.tls) {
      if (p.tls.clientCertificate) p.tls.clientCertificate = abs(p.tls.clientCertificate);
      if (p.tls.clientKey) p.tls.clientKey = abs(p.tls.clientKey);
      p.tls.ca = p.tls.ca.map(abs);
    }
    if (p.mdn.file) p.mdn.file = abs(p.mdn.file);
    if (p.inbound.inbox) p.inbound.inbox = abs(p.inbound.inbox);
  }
}

/** Finds, expands, validates and resolves the configuration. Throws ConfigError with every problem. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const explorer = cosmiconfig("as2", { searchPlaces: SEARCH_PLACES, searchStrategy: "global", cache: false });
  let found: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  try {
    found = options.configPath ? await explorer.load(resolve(options.cwd ?? ".", options.configPath)) : await explorer.search(options.cwd);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const where = options.configPath ?? "the configuration file";
    const message = err.code === "ENOENT" ? `file not found: ${resolve(options.cwd ?? ".", options.configPath ?? "")}` : `cannot be read: ${err.message}`;
    throw new ConfigError(where, [{ path: "(file)", message }]);
  }
  if (!found || found.isEmpty) {
    throw new ConfigError(options.cwd ?? "the working directory", [{
      path: "(file)",
      message: found?.isEmpty ? `${found.filepath} is empty` : `no configuration found: searched ${SEARCH_PLACES.join(", ")} (package.json#as2) from ${resolve(options.cwd ?? ".")} upwards; name one with --config`,
    }]);
  }
  const { config, problems } = validateConfig(found.config, options.env ?? {});
  if (!config) throw new ConfigError(found.filepath, problems);
  resolvePaths(config, dirname(found.filepath));
  return { config, filepath: found.filepath };
}

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
