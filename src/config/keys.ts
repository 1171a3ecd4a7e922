/**
 * The keys and certificates a configuration names, loaded and checked up front (contract §4):
 * every unreadable file, wrong password and mismatched key reported at once, each with its key
 * path, the file, and what is wrong in plain words (src/config/key-files.ts translates the
 * decoders' messages). `as2 check` (src/jobs/config-check.ts) reads the same files through the
 * same three loaders below.
 */
import type { KeyObject } from "node:crypto";
import { As2Error, ErrorCodes, keyMatchesCertificate, type Certificate, type KeyPair } from "../core/index.js";
import { ConfigError, type ConfigProblem } from "./validate.js";
import { certificateFileOf, certificateInUse, type As2Config, type CertificateEntry, type KeySource } from "./schema.js";

const fromOf = (e: CertificateEntry): number => (typeof e === "string" || !e.from ? 0 : Date.parse(e.from));
import {
  readCertificateFile, readKeyFileBytes, readPkcs12File, readPrivateKeyFile, tlsCertificatesPem, tlsPrivateKeyPem,
  type ReadCertificateOptions,
} from "./key-files.js";

export interface PartnerMaterial {
  /** The encryption certificate in use when the keys were loaded (the entry with the latest `from`, CEM). */
  encryptionCertificate?: Certificate;
  /** Every certificate that may verify the partner's signatures (all windows). */
  signatureCertificates: Certificate[];
  /** Each signature certificate's window (same order; from/until in ms), from { file, from, until } entries. */
  signatureWindows?: Array<{ from?: number; until?: number }>;
  /** A list of encryption entries (CEM): every one with its window, so a long-running process picks the one in use when it sends. */
  encryptionChoices?: Array<{ certificate: Certificate; from?: number; until?: number }>;
}

/** The encryption certificate in use at `now`: of the entries in their window, the latest `from`; else the one chosen at load. */
export function encryptionCertificateAt(m: PartnerMaterial | undefined, now: Date): Certificate | undefined {
  if (!m?.encryptionChoices?.length) return m?.encryptionCertificate;
  const t = now.getTime();
  const inUse = m.encryptionChoices.filter((c) => (c.from === undefined || c.from <= t) && (c.until === undefined || t < c.until));
  return inUse.sort((a, b) => (a.from ?? 0) - (b.from ?? 0)).at(-1)?.certificate ?? m.encryptionCertificate;
}

/**
 * The signature certificates in use at `now` (issue 17, CEM): an entry whose `until` has passed
 * verifies nothing any more, and one whose `from` has not come yet verifies nothing yet.
 */
export function signersAt(m: PartnerMaterial | undefined, now: Date): Certificate[] {
  if (!m) return [];
  const t = now.getTime();
  return m.signatureCertificates.filter((_, i) => {
    const w = m.signatureWindows?.[i];
    return !w || ((w.from === undefined || w.from <= t) && (w.until === undefined || t < w.until));
  });
}

export interface KeyMaterial {
  station: KeyPair;
  /** Current key first, then previous keys (contract §4 rollover). */
  decryptionKeys: KeyPair[];
  partners: Record<string, PartnerMaterial>;
  /** Certificates outside their validity, each naming the file and the date. */
  warnings: string[];
}

/** A file problem at a key path, with its stable code. */
function problemOf(e: unknown, path: string): ConfigProblem {
  if (e instanceof As2Error) return { path, message: e.message, code: e.code };
  throw e;
}

/** `load()`'s result, or undefined with its problem (at `path`, or the path for the error) added to `problems`. */
function loadAt<T>(path: string | ((e: unknown) => string), problems: ConfigProblem[], load: () => T): T | undefined {
  try {
    return load();
  } catch (e) {
    problems.push(problemOf(e, typeof path === "string" ? path : path(e)));
    return undefined;
  }
}

/**
 * Where a private key's problem belongs: a password that was given and does not open the key is
 * the password's problem; anything else (no password for an encrypted key too) the key file's.
 */
function keyProblemPath(password: string | undefined, keyPath: string, passwordPath: string): (e: unknown) => string {
  return (e) => ((e as As2Error).code === ErrorCodes.BAD_PASSWORD && password !== undefined ? passwordPath : keyPath);
}

/** The key paths of one key + certificate pair in the configuration. */
export interface PairPaths {
  key: string;
  certificate: string;
  password: string;
}

export interface LoadedKey {
  key?: KeyObject;
  certificate?: Certificate;
  /** Where the certificate came from: its file and key path. */
  certificateFile?: string;
  certificatePath?: string;
  problems: ConfigProblem[];
}

/** Every certificate of a file (partner certificates, CA lists; `own` for ours), or the problem with it. */
export function loadCertificatesAt(file: string, path: string, o: ReadCertificateOptions = {}): { certificates: Certificate[]; problems: ConfigProblem[] } {
  try {
    return { certificates: readCertificateFile(readKeyFileBytes(file), file, o), problems: [] };
  } catch (e) {
    return { certificates: [], problems: [problemOf(e, path)] };
  }
}

/**
 * A private key file and its certificate file, each loaded on its own (both problems are told),
 * then compared: the certificate must be the key's. A password problem is told at the password's
 * key path when a password was given (it is the wrong one), else at the key file's.
 */
export function loadKeyPairAt(keyFile: string, certificateFile: string, password: string | undefined, at: PairPaths): LoadedKey {
  const problems: ConfigProblem[] = [];
  const key = loadAt(keyProblemPath(password, at.key, at.password), problems, () => readPrivateKeyFile(readKeyFileBytes(keyFile), keyFile, { password, passwordFrom: at.password }));
  // Our own certificate: one PEM file with the key and its certificate may serve as both.
  const certs = loadCertificatesAt(certificateFile, at.certificate, { own: true });
  problems.push(...certs.problems);
  const certificate = certs.certificates[0];
  if (key && certificate && !keyMatchesCertificate(key, certificate)) {
    problems.push({ path: at.certificate, code: ErrorCodes.BAD_CERTIFICATE, message: `${certificateFile} does not belong to the key in ${keyFile} (their public keys differ)` });
  }
  return { key, certificate, certificateFile, certificatePath: at.certificate, problems };
}

/** One key source of the configuration (station.key, station.previousKeys[i]): pem + certificate, or pkcs12. */
export function loadKeySourceAt(k: KeySource, path: string): LoadedKey {
  if ("pem" in k) return loadKeyPairAt(k.pem, k.certificate, k.password, { key: `${path}.pem`, certificate: `${path}.certificate`, password: `${path}.password` });
  try {
    // The key's own certificate is picked by the core (localKeyId, then the public key).
    const p = readPkcs12File(readKeyFileBytes(k.pkcs12), k.pkcs12, { password: k.password, alias: k.alias, passwordFrom: `${path}.password` });
    return { key: p.key, certificate: p.certificate, certificateFile: k.pkcs12, certificatePath: `${path}.pkcs12`, problems: [] };
  } catch (e) {
    const code = (e as As2Error).code;
    const where = code === ErrorCodes.BAD_PASSWORD && k.password !== undefined ? "password" : /alias/.test((e as Error).message) ? "alias" : "pkcs12";
    return { problems: [problemOf(e, `${path}.${where}`)] };
  }
}

/** TLS files as the configuration names them (receive.tls, partners.<name>.tls), with their key paths. */
export interface TlsFiles {
  ca: string[];
  certificate?: string;
  key?: string;
  password?: string;
  /** Key path of each: `${at}.${paths.ca}[i]`, ... */
  at: string;
  paths: { ca: string; certificate: string; key: string; password: string };
}

/**
 * The TLS files as Node's TLS options want them (PEM only; key decrypted in memory): a valid DER
 * file works, a wrong one is a configuration error in plain words at its key path, all at once.
 */
export function tlsPemOptions(t: TlsFiles): { ca?: Buffer[]; cert?: Buffer; key?: Buffer } {
  const problems: ConfigProblem[] = [];
  const ca = t.ca.map((f, i) => loadAt(`${t.at}.${t.paths.ca}[${i}]`, problems, () => tlsCertificatesPem(f)));
  const cert = t.certificate ? loadAt(`${t.at}.${t.paths.certificate}`, problems, () => tlsCertificatesPem(t.certificate!, { own: true })) : undefined;
  const [keyPath, passwordPath] = [`${t.at}.${t.paths.key}`, `${t.at}.${t.paths.password}`];
  const key = t.key ? loadAt(keyProblemPath(t.password, keyPath, passwordPath), problems, () => tlsPrivateKeyPem(t.key!, t.password, passwordPath)) : undefined;
  if (problems.length) throw new ConfigError("the TLS settings", problems);
  return { ca: ca.length ? (ca as Buffer[]) : undefined, cert, key };
}

function pairOf(k: LoadedKey, problems: ConfigProblem[]): KeyPair | undefined {
  problems.push(...k.problems);
  return k.problems.length === 0 && k.key && k.certificate ? { key: k.key, certificate: k.certificate } : undefined;
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
  const stationKey = loadKeySourceAt(c.station.key, "station.key");
  const station = pairOf(stationKey, problems);
  const previous = c.station.previousKeys.map((k, i) => pairOf(loadKeySourceAt(k, `station.previousKeys[${i}]`), problems));
  if (station) validityWarnings(station.certificate, stationKey.certificateFile!, now, warnings);
  const partners: Record<string, PartnerMaterial> = {};
  const certificatesOf = (file: string, path: string): Certificate[] => {
    const r = loadCertificatesAt(file, path);
    problems.push(...r.problems);
    return r.certificates;
  };
  const firstOf = (file: string, path: string): Certificate | undefined => certificatesOf(file, path)[0];
  for (const name of partnerNames) {
    const p = c.partners[name];
    if (!p) continue;
    const path = `partners.${name}`;
    const main = p.certificate ? firstOf(p.certificate, `${path}.certificate`) : undefined;
    // A list of encryption entries (CEM): the one in use now with the latest `from`; else the last one.
    let encFile: string | undefined;
    let enc = main;
    let encryptionChoices: PartnerMaterial["encryptionChoices"];
    if (typeof p.encryptionCertificate === "string") {
      encFile = p.encryptionCertificate;
      enc = firstOf(encFile, `${path}.encryptionCertificate`);
    } else if (p.encryptionCertificate) {
      const list = p.encryptionCertificate;
      const inUse = list.map((e, i) => ({ e, i })).filter(({ e }) => certificateInUse(e, now));
      const pick = inUse.sort((a, b) => fromOf(a.e) - fromOf(b.e)).at(-1) ?? { e: list[list.length - 1]!, i: list.length - 1 };
      encFile = certificateFileOf(pick.e);
      encryptionChoices = [];
      list.forEach((e, i) => {
        const cert = firstOf(certificateFileOf(e), `${path}.encryptionCertificate[${i}]`);
        if (i === pick.i) enc = cert;
        if (cert) encryptionChoices!.push({ certificate: cert, ...(typeof e !== "string" && e.from ? { from: Date.parse(e.from) } : {}), ...(typeof e !== "string" && e.until ? { until: Date.parse(e.until) } : {}) });
      });
    }
    const sigs: Certificate[] = [];
    const windows: Array<{ from?: number; until?: number }> = [];
    const sigFiles: string[] = [];
    if (p.signatureCertificates) {
      p.signatureCertificates.forEach((e, i) => {
        const file = certificateFileOf(e);
        for (const cert of certificatesOf(file, `${path}.signatureCertificates[${i}]`)) {
          sigs.push(cert);
          sigFiles.push(file);
          windows.push(typeof e === "string" ? {} : { ...(e.from ? { from: Date.parse(e.from) } : {}), ...(e.until ? { until: Date.parse(e.until) } : {}) });
        }
      });
    } else if (main) {
      sigs.push(main);
      sigFiles.push(p.certificate!);
      windows.push({});
    }
    if (enc) validityWarnings(enc, encFile ?? p.certificate!, now, warnings);
    for (const [i, s] of sigs.entries()) if (s !== enc) validityWarnings(s, sigFiles[i]!, now, warnings);
    partners[name] = { encryptionCertificate: enc, signatureCertificates: sigs, signatureWindows: windows, ...(encryptionChoices ? { encryptionChoices } : {}) };
  }
  if (problems.length || !station) throw new ConfigError("the configured keys and certificates", problems);
  return { station, decryptionKeys: [station, ...previous.filter((k): k is KeyPair => !!k)], partners, warnings };
}
