/**
 * Onboarding (issue 16): a new station (`as2 init`), new keys (`as2 keys new`), certificates
 * described for people (`as2 keys show`), keys and certificates taken into the configuration
 * (`as2 keys import`), and partner profiles added (`as2 partner add`). The CLI parses flags and
 * renders; everything that decides or writes is here, so it is testable without a process.
 *
 * AS2 trusts pre-exchanged certificates, self-signed included (RFC 4130 §8): a station is
 * usable the moment it has a key, a certificate and its partner's certificate.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import * as asn1js from "asn1js";
import {
  As2Error, ErrorCodes, createSelfSignedCertificate, keyMatchesCertificate, loadPkcs12, type Certificate, type KeyPair,
} from "../core/index.js";
import { certificationRequestPem, createCertificationRequest } from "../core/certs/csr.js";
import { PRESETS, certificateFileOf, type As2Config, type PartnerConfig } from "../config/schema.js";
import { SEARCH_PLACES } from "../config/load.js";
import {
  formatNewConfig, validateDocument, writeFileAtomic, type ConfigDocument, type ConfigFormat,
} from "../config/edit.js";
import { readCertificateFile, readCredentialFile, readKeyFileBytes, readPkcs12File, type Credential } from "../config/key-files.js";

/** A refusal of the caller's request (exit 2): a file that exists, a bad value. */
export class SetupError extends Error {
  override name = "SetupError";
  constructor(readonly code: "AS2_ERR_EXISTS" | "AS2_ERR_USAGE", message: string) {
    super(message);
  }
}

/** RFC 4130 §6.2: 1-128 printable ASCII characters (quoted on the wire when needed). */
export const AS2_ID_PATTERN = /^[ -~]{1,128}$/;
/** Partner names as the schema allows them (they become keys under `partners`). */
export const PARTNER_NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;
/** Self-signed certificates are valid this long unless told otherwise. */
export const DEFAULT_VALIDITY_DAYS = 3 * 365;
/**
 * notBefore is set this far in the past: a partner whose clock runs behind would otherwise see
 * a certificate that is not yet valid (and the modern preset fails such signatures).
 */
const CLOCK_SKEW_MS = 24 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;

/** The host name, upper-cased and cut to a valid AS2 ID. */
export function defaultAs2Id(host: string = hostname()): string {
  const id = host.toUpperCase().replace(/[^ -~]/g, "").trim().slice(0, 128).trim();
  return id || "AS2-STATION";
}

/** A file-name stem from an AS2 ID: "MY CO/EU" -> "my-co-eu". */
export function fileStem(as2Id: string): string {
  const s = as2Id.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[-.]+/, "").replace(/-+$/, "").slice(0, 64);
  return s || "station";
}

/** A path as the configuration writes it: relative to the config's folder when inside it. */
export function configPath(configDir: string, file: string): string {
  const rel = relative(configDir, file);
  if (!rel.startsWith("..") && !isAbsolute(rel)) return rel.split(sep).join("/");
  return file;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Describing certificates

export interface Fingerprints {
  sha256: string;
  sha1: string;
}

function colonHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex").toUpperCase().replace(/(..)(?!$)/g, "$1:");
}

/** SHA-256 and SHA-1 of the DER, as openssl's `x509 -fingerprint` prints them. */
export function fingerprints(cert: Certificate): Fingerprints {
  return {
    sha256: colonHex(crypto.createHash("sha256").update(cert.der).digest()),
    sha1: colonHex(crypto.createHash("sha1").update(cert.der).digest()),
  };
}

const KEY_USAGE_BITS = [
  "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
];
const EKU_NAMES: Record<string, string> = {
  "1.3.6.1.5.5.7.3.1": "serverAuth",
  "1.3.6.1.5.5.7.3.2": "clientAuth",
  "1.3.6.1.5.5.7.3.3": "codeSigning",
  "1.3.6.1.5.5.7.3.4": "emailProtection",
  "1.3.6.1.5.5.7.3.8": "timeStamping",
  "1.3.6.1.5.5.7.3.9": "OCSPSigning",
  "2.5.29.37.0": "anyExtendedKeyUsage",
};

/** keyUsage bits (RFC 5280 §4.2.1.3), or undefined when the certificate has no such extension. */
function keyUsageOf(cert: Certificate): string[] | undefined {
  const ext = cert.pkijs.extensions?.find((e) => e.extnID === "2.5.29.15");
  if (!ext) return undefined;
  const bs = asn1js.fromBER(ext.extnValue.getValue()).result;
  if (!(bs instanceof asn1js.BitString)) return [];
  const bytes = bs.valueBlock.valueHexView;
  const out: string[] = [];
  KEY_USAGE_BITS.forEach((name, i) => {
    const byte = bytes[i >> 3];
    if (byte !== undefined && byte & (0x80 >> (i & 7))) out.push(name);
  });
  return out;
}

/** extendedKeyUsage purposes (RFC 5280 §4.2.1.12), or undefined without the extension. */
function extendedKeyUsageOf(cert: Certificate): string[] | undefined {
  const ext = cert.pkijs.extensions?.find((e) => e.extnID === "2.5.29.37");
  if (!ext) return undefined;
  const seq = asn1js.fromBER(ext.extnValue.getValue()).result;
  if (!(seq instanceof asn1js.Sequence)) return [];
  return seq.valueBlock.value.map((v) => {
    const oid = v instanceof asn1js.ObjectIdentifier ? v.valueBlock.toString() : "?";
    return EKU_NAMES[oid] ?? oid;
  });
}

export interface KeyInfo {
  type: string;
  bits?: number;
  curve?: string;
}

export function keyInfo(key: crypto.KeyObject): KeyInfo {
  const d = key.asymmetricKeyDetails ?? {};
  const type = (key.asymmetricKeyType ?? "unknown").toUpperCase();
  return { type, ...(d.modulusLength ? { bits: d.modulusLength } : {}), ...(d.namedCurve ? { curve: d.namedCurve } : {}) };
}

export function formatKeyInfo(k: KeyInfo): string {
  return `${k.type}${k.bits ? ` ${k.bits} bits` : ""}${k.curve ? ` (${k.curve})` : ""}`;
}

export interface CertificateInfo {
  subject: string;
  issuer: string;
  selfSigned: boolean;
  serial: string;
  sha256: string;
  sha1: string;
  notBefore: string;
  notAfter: string;
  /** Whole days from now to notAfter (negative once expired). */
  daysLeft: number;
  expired: boolean;
  notYetValid: boolean;
  /** undefined: the certificate has no keyUsage extension (any use allowed). */
  keyUsage?: string[];
  extendedKeyUsage?: string[];
  publicKey: KeyInfo;
  /** What an AS2 user should know: expiry soon, a use the key may not serve. */
  notes: string[];
}

/** Certificates expiring within this many days get a note (as `as2 check` warns). */
export const EXPIRY_WARNING_DAYS = 30;

export function describeCertificate(cert: Certificate, now: Date): CertificateInfo {
  const v = cert.checkValidity(now);
  const daysLeft = Math.floor((cert.notAfter.getTime() - now.getTime()) / DAY_MS);
  const keyUsage = keyUsageOf(cert);
  const extendedKeyUsage = extendedKeyUsageOf(cert);
  const notes: string[] = [];
  if (v.expired) notes.push(`expired ${-daysLeft} day${daysLeft === -1 ? "" : "s"} ago: partners may refuse its signatures`);
  else if (v.notYetValid) notes.push(`not valid before ${cert.notBefore.toISOString()}`);
  else if (daysLeft < EXPIRY_WARNING_DAYS) notes.push(`expires in ${daysLeft} day${daysLeft === 1 ? "" : "s"}: exchange a new certificate with the partners soon`);
  if (keyUsage && !keyUsage.includes("digitalSignature") && !keyUsage.includes("nonRepudiation")) notes.push("its key usage does not allow signing: strict partners refuse its signatures and MDNs");
  if (keyUsage && !keyUsage.includes("keyEncipherment")) notes.push("its key usage does not allow keyEncipherment: strict partners refuse to encrypt to it");
  const pub = cert.publicKey;
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    selfSigned: cert.subject === cert.issuer,
    serial: cert.serialHex,
    ...fingerprints(cert),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    daysLeft,
    expired: v.expired,
    notYetValid: v.notYetValid,
    ...(keyUsage ? { keyUsage } : {}),
    ...(extendedKeyUsage ? { extendedKeyUsage } : {}),
    publicKey: keyInfo(pub),
    notes,
  };
}

// ---------------------------------------------------------------------------------------------
// New keys

export interface Identity {
  key: crypto.KeyObject;
  keyPem: string;
  certificate: Certificate;
  certificatePem: string;
  csrPem?: string;
}

export interface IdentityOptions {
  as2Id: string;
  now: Date;
  days?: number;
  csr?: boolean;
}

/** An RSA-2048 key and a self-signed certificate for it (CN = the AS2 ID), and a CSR if asked. */
export async function generateIdentity(o: IdentityOptions): Promise<Identity> {
  const days = o.days ?? DEFAULT_VALIDITY_DAYS;
  const id = await createSelfSignedCertificate({
    commonName: o.as2Id,
    keyBits: 2048,
    notBefore: new Date(o.now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(o.now.getTime() + days * DAY_MS),
  });
  const csrPem = o.csr ? certificationRequestPem(createCertificationRequest({ key: id.key, commonName: o.as2Id })) : undefined;
  return { key: id.key, keyPem: id.keyPem, certificate: id.certificate, certificatePem: id.certificatePem, ...(csrPem ? { csrPem } : {}) };
}

export interface WrittenFile {
  path: string;
  /** "private key", "certificate", ... */
  what: string;
  mode?: string;
}

function checkAs2Id(as2Id: string, flag: string): void {
  if (!AS2_ID_PATTERN.test(as2Id)) {
    throw new SetupError("AS2_ERR_USAGE", `${flag}: ${JSON.stringify(as2Id)} is not an AS2 ID: use 1-128 printable ASCII characters (RFC 4130 §6.2)`);
  }
}

function checkDays(days: number | undefined): void {
  if (days !== undefined && (!Number.isInteger(days) || days < 1 || days > 36500)) {
    throw new SetupError("AS2_ERR_USAGE", `--days: ${days} is not a number of days from 1 to 36500`);
  }
}

/** The shipped as2rc.schema.json (the package root), if it is there. */
export function shippedSchemaFile(): string | undefined {
  const f = fileURLToPath(new URL("../../as2rc.schema.json", import.meta.url));
  return existsSync(f) ? f : undefined;
}

export interface InitOptions {
  dir: string;
  as2Id: string;
  format: ConfigFormat;
  csr: boolean;
  force: boolean;
  now: Date;
  days?: number;
  /** Written as dataDir (relative to dir when inside it). */
  dataDir?: string;
  /** The JSON Schema to point `$schema` at (undefined: no `$schema`). */
  schemaFile?: string;
}

export interface InitResult {
  dir: string;
  configFile: string;
  as2Id: string;
  files: WrittenFile[];
  certificate: CertificateInfo;
  certificatePem: string;
  csrFile?: string;
}

export const CONFIG_FILE_NAMES: Record<ConfigFormat, string> = { json: ".as2rc.json", yaml: ".as2rc.yaml" };

/** Other config files in `dir` that the search would find before or instead of ours. */
async function otherConfigFiles(dir: string, ours: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of SEARCH_PLACES) {
    const f = join(dir, name);
    if (f === ours || !(await exists(f))) continue;
    if (name === "package.json") {
      try {
        const pkg = JSON.parse(await readFile(f, "utf8")) as Record<string, unknown>;
        if (pkg.as2 === undefined) continue;
      } catch {
        continue;
      }
    }
    found.push(f);
  }
  return found;
}

/**
 * A new station in `dir`: key (0600), self-signed certificate, a CSR when asked, and the config
 * file naming them. Refuses to replace an existing config, key or certificate without `force`;
 * nothing is written when it refuses.
 */
export async function initStation(o: InitOptions): Promise<InitResult> {
  checkAs2Id(o.as2Id, "--as2-id");
  checkDays(o.days);
  const dir = resolve(o.dir);
  const configFile = join(dir, CONFIG_FILE_NAMES[o.format]);
  const stem = fileStem(o.as2Id);
  const keyFile = join(dir, `${stem}.key`);
  const certFile = join(dir, `${stem}.crt`);
  const csrFile = o.csr ? join(dir, `${stem}.csr`) : undefined;
  if (await exists(dir)) {
    if (!(await lstat(dir)).isDirectory()) throw new SetupError("AS2_ERR_USAGE", `--dir: ${dir} is a file, not a folder`);
    const others = await otherConfigFiles(dir, configFile);
    if (others.length) {
      throw new SetupError("AS2_ERR_EXISTS", `${others.map((f) => basename(f)).join(", ")} already configure${others.length === 1 ? "s" : ""} a station in ${dir}: two configuration files in one folder would hide one another; remove or rename ${others.length === 1 ? "it" : "them"}, or choose another --dir`);
    }
    if (!o.force) {
      const taken = [];
      for (const f of [configFile, keyFile, certFile, ...(csrFile ? [csrFile] : [])]) if (await exists(f)) taken.push(basename(f));
      if (taken.length) throw new SetupError("AS2_ERR_EXISTS", `${taken.join(", ")} already exist${taken.length === 1 ? "s" : ""} in ${dir}: nothing was written; add --force to replace (a replaced key cannot be recovered)`);
    }
  } else {
    await mkdir(dir, { recursive: true });
  }
  const id = await generateIdentity({ as2Id: o.as2Id, now: o.now, days: o.days, csr: o.csr });
  const files: WrittenFile[] = [];
  await writeFileAtomic(keyFile, id.keyPem, 0o600);
  files.push({ path: keyFile, what: "private key (RSA 2048, PKCS#8 PEM; keep it secret)", mode: "0600" });
  await writeFileAtomic(certFile, id.certificatePem, 0o644);
  files.push({ path: certFile, what: "self-signed certificate (send it to your partners)" });
  if (csrFile && id.csrPem) {
    await writeFileAtomic(csrFile, id.csrPem, 0o644);
    files.push({ path: csrFile, what: "certificate signing request for your CA (the station uses the self-signed certificate until `as2 keys import` takes the CA's answer)" });
  }
  const raw: Record<string, unknown> = {};
  // Relative, so that editors resolve it from the file (also when the folder is moved with the package).
  if (o.schemaFile) raw.$schema = relative(dir, o.schemaFile).split(sep).join("/");
  raw.dataDir = o.dataDir ? configPath(dir, resolve(o.dataDir)) : "./as2-data";
  raw.station = { as2Id: o.as2Id, key: { pem: basename(keyFile), certificate: basename(certFile) } };
  raw.receive = { host: "0.0.0.0", port: 4080, path: "/as2" };
  raw.partners = {};
  const doc: ConfigDocument = { path: configFile, format: o.format, raw, indent: 2, hasComments: false };
  validateDocument(doc, {});
  await writeFileAtomic(configFile, formatNewConfig(raw, o.format), 0o644);
  files.push({ path: configFile, what: `configuration (${o.format.toUpperCase()})` });
  return {
    dir, configFile, as2Id: o.as2Id, files,
    certificate: describeCertificate(id.certificate, o.now), certificatePem: id.certificatePem,
    ...(csrFile ? { csrFile } : {}),
  };
}

/** `stem.ext` in dir, else `stem-YYYYMMDD.ext`, else `stem-YYYYMMDD-2.ext`, ...: free for every ext. */
async function freeStem(dir: string, stem: string, exts: string[], now: Date): Promise<string> {
  const date = now.toISOString().slice(0, 10).replace(/-/g, "");
  for (let i = 0; ; i++) {
    const s = i === 0 ? stem : i === 1 ? `${stem}-${date}` : `${stem}-${date}-${i}`;
    let free = true;
    for (const e of exts) if (await exists(join(dir, `${s}${e}`))) free = false;
    if (free) return s;
  }
}

export interface NewKeyResult {
  keyFile: string;
  certificateFile: string;
  certificate: CertificateInfo;
  certificatePem: string;
  key: crypto.KeyObject;
  cert: Certificate;
}

/** A new key and self-signed certificate in outDir, under names that are free (never overwrites). */
export async function newKeyFiles(o: { outDir: string; as2Id: string; now: Date; days?: number }): Promise<NewKeyResult> {
  checkAs2Id(o.as2Id, "--as2-id");
  checkDays(o.days);
  const dir = resolve(o.outDir);
  if ((await exists(dir)) && !(await lstat(dir)).isDirectory()) throw new SetupError("AS2_ERR_USAGE", `--out-dir: ${dir} is a file, not a folder`);
  await mkdir(dir, { recursive: true });
  const stem = await freeStem(dir, fileStem(o.as2Id), [".key", ".crt"], o.now);
  const id = await generateIdentity({ as2Id: o.as2Id, now: o.now, days: o.days });
  const keyFile = join(dir, `${stem}.key`);
  const certificateFile = join(dir, `${stem}.crt`);
  await writeFileAtomic(keyFile, id.keyPem, 0o600);
  await writeFileAtomic(certificateFile, id.certificatePem, 0o644);
  return { keyFile, certificateFile, certificate: describeCertificate(id.certificate, o.now), certificatePem: id.certificatePem, key: id.key, cert: id.certificate };
}

// ---------------------------------------------------------------------------------------------
// Reading what the configuration names

export interface StationCertificate {
  file: string;
  certificate: Certificate;
}

/** The station's certificate from a loaded configuration (paths resolved, ${ENV} expanded). */
export async function stationCertificate(config: As2Config): Promise<StationCertificate> {
  const k = config.station.key;
  if ("pem" in k) {
    const data = readKeyFileBytes(k.certificate, "station.key.certificate");
    return { file: k.certificate, certificate: readCertificateFile(data, k.certificate, { own: true })[0]! };
  }
  const data = readKeyFileBytes(k.pkcs12, "station.key.pkcs12");
  const c = readPkcs12File(data, k.pkcs12, { password: k.password, alias: k.alias, passwordFrom: "station.key.password" });
  return { file: k.pkcs12, certificate: c.certificate };
}

export interface PartnerCertificate {
  /** "certificate", "encryptionCertificate", "signatureCertificates[1]". */
  role: string;
  file: string;
  certificate: Certificate;
}

/** Every certificate a partner profile names, each with the key it comes from. */
export async function partnerCertificates(config: As2Config, name: string): Promise<PartnerCertificate[]> {
  const p = config.partners[name];
  if (!p) {
    const names = Object.keys(config.partners);
    throw new SetupError("AS2_ERR_USAGE", `--partner: no partner "${name}" in the configuration (partners: ${names.join(", ") || "none"})`);
  }
  const entries: Array<[string, string]> = [];
  if (p.certificate) entries.push(["certificate", p.certificate]);
  if (typeof p.encryptionCertificate === "string") entries.push(["encryptionCertificate", p.encryptionCertificate]);
  else p.encryptionCertificate?.forEach((f, i) => entries.push([`encryptionCertificate[${i}]`, certificateFileOf(f)]));
  p.signatureCertificates?.forEach((f, i) => entries.push([`signatureCertificates[${i}]`, certificateFileOf(f)]));
  if (!entries.length) throw new SetupError("AS2_ERR_USAGE", `partner "${name}" has no certificate in the configuration`);
  const out: PartnerCertificate[] = [];
  for (const [role, file] of entries) {
    const data = readKeyFileBytes(file, `partners.${name}.${role}`);
    for (const certificate of readCertificateFile(data, file)) out.push({ role, file, certificate });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Editing the configuration

function partnersOf(doc: ConfigDocument): Record<string, unknown> {
  if (doc.raw.partners === undefined || doc.raw.partners === null) doc.raw.partners = {};
  if (!isObject(doc.raw.partners)) throw new SetupError("AS2_ERR_USAGE", `${doc.path}: "partners" is not an object; fix it by hand first`);
  return doc.raw.partners;
}

function stationOf(doc: ConfigDocument): Record<string, unknown> {
  if (!isObject(doc.raw.station)) throw new SetupError("AS2_ERR_USAGE", `${doc.path} has no "station" section: create one with \`as2 init\``);
  return doc.raw.station;
}

/**
 * Where a certificate copied beside the config goes: `stem.crt`, unless that exists with other
 * content (an older certificate is never overwritten: stem.1.crt, stem.2.crt, ...).
 */
async function placeBesideConfig(configDir: string, stem: string, ext: string, data: Uint8Array): Promise<{ file: string; write: boolean }> {
  for (let i = 0; ; i++) {
    const f = join(configDir, i === 0 ? `${stem}${ext}` : `${stem}.${i}${ext}`);
    if (!(await exists(f))) return { file: f, write: true };
    if (Buffer.from(await readFile(f)).equals(Buffer.from(data))) return { file: f, write: false };
  }
}

function certificatesPem(certs: Certificate[]): string {
  return certs.map((c) => c.toPem().replace(/\s*$/, "\n")).join("");
}

export interface AddPartnerOptions {
  name: string;
  as2Id: string;
  url: string;
  /** The partner's certificate file (PEM, DER or certs-only PKCS#7). */
  certFile: string;
  preset: (typeof PRESETS)[number];
  force: boolean;
  now: Date;
  env: Record<string, string | undefined>;
}

export interface AddPartnerResult {
  configFile: string;
  name: string;
  replaced: boolean;
  profile: Record<string, unknown>;
  certificateFile: string;
  certificate: CertificateInfo;
  /** The profile as the commands will use it (preset and defaults applied). */
  effective: PartnerConfig;
  warnings: string[];
}

/**
 * Adds (or with `force` replaces) a partner profile: minimal (preset, as2Id, url, certificate;
 * the preset supplies the rest), its certificate copied beside the config as PEM, the whole
 * configuration validated before anything is written.
 */
export async function addPartner(doc: ConfigDocument, o: AddPartnerOptions): Promise<AddPartnerResult> {
  if (!PARTNER_NAME_PATTERN.test(o.name)) {
    throw new SetupError("AS2_ERR_USAGE", `<name>: ${JSON.stringify(o.name)} is not a partner name: use letters, digits, '.', '_' and '-'`);
  }
  checkAs2Id(o.as2Id, "--as2-id");
  let url: URL | undefined;
  try {
    url = new URL(o.url);
  } catch { /* below */ }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || /\s/.test(o.url)) {
    throw new SetupError("AS2_ERR_USAGE", `--url: ${JSON.stringify(o.url)} is not an http:// or https:// URL (e.g. https://as2.acme.example/as2)`);
  }
  if (!PRESETS.includes(o.preset)) throw new SetupError("AS2_ERR_USAGE", `--preset: "${o.preset}" is not a preset (allowed: ${PRESETS.join(", ")})`);
  const partners = partnersOf(doc);
  const replaced = partners[o.name] !== undefined;
  const warnings: string[] = [];
  if (replaced && !o.force) {
    throw new SetupError("AS2_ERR_EXISTS", `partner "${o.name}" already exists in ${doc.path}: nothing was changed; add --force to replace its profile, or use \`as2 keys import <file> --partner ${o.name}\` for a new certificate`);
  }
  if (!o.force) {
    const same = Object.entries(partners).find(([n, p]) => n !== o.name && isObject(p) && p.as2Id === o.as2Id);
    if (same) throw new SetupError("AS2_ERR_EXISTS", `--as2-id: partner "${same[0]}" already has the AS2 ID ${o.as2Id}: received messages could not tell the two apart; add --force to add it anyway`);
    const station = isObject(doc.raw.station) ? doc.raw.station : {};
    if (station.as2Id === o.as2Id) throw new SetupError("AS2_ERR_USAGE", `--as2-id: ${o.as2Id} is this station's own AS2 ID; add --force to add it anyway (loopback tests)`);
  }
  const data = readKeyFileBytes(o.certFile, "--cert");
  let certs: Certificate[];
  try {
    certs = readCertificateFile(data, o.certFile);
  } catch (e) {
    const err = e as As2Error;
    throw new As2Error(err.code ?? ErrorCodes.BAD_CERTIFICATE, `--cert: ${err.message}`, { cause: e });
  }
  const info = describeCertificate(certs[0]!, o.now);
  if (info.expired) warnings.push(`the certificate in ${o.certFile} expired on ${info.notAfter}`);
  if (certs.length > 1) warnings.push(`${o.certFile} holds ${certs.length} certificates: the first (${certs[0]!.subject}) is the partner's`);
  const configDir = dirname(doc.path);
  const pem = Buffer.from(certificatesPem(certs));
  const source = resolve(o.certFile);
  const inPlace = dirname(source) === configDir;
  const place = inPlace ? { file: source, write: false } : await placeBesideConfig(configDir, o.name, ".crt", pem);
  const profile: Record<string, unknown> = { preset: o.preset, as2Id: o.as2Id, url: o.url, certificate: configPath(configDir, place.file) };
  partners[o.name] = profile;
  const config = validateDocument(doc, o.env);
  if (place.write) await writeFileAtomic(place.file, pem, 0o644);
  return {
    configFile: doc.path, name: o.name, replaced, profile, certificateFile: place.file, certificate: info,
    effective: config.partners[o.name]!, warnings,
  };
}

/** Sets the station's key, keeping a different old key under previousKeys (decryption during rollover). */
function setStationKey(doc: ConfigDocument, key: Record<string, unknown>, keepOld: boolean): boolean {
  const station = stationOf(doc);
  const old = station.key;
  station.key = key;
  if (keepOld && isObject(old)) {
    const prev = Array.isArray(station.previousKeys) ? station.previousKeys : [];
    station.previousKeys = [old, ...prev];
    return true;
  }
  return false;
}

export interface UseKeyResult {
  /** The old key went to station.previousKeys. */
  keptPrevious: boolean;
}

/** `keys new --use`: the new key and certificate become the station's; the old key stays for decryption. */
export function useNewKey(doc: ConfigDocument, keyFile: string, certificateFile: string, env: Record<string, string | undefined>): UseKeyResult {
  const configDir = dirname(doc.path);
  const keptPrevious = setStationKey(doc, { pem: configPath(configDir, keyFile), certificate: configPath(configDir, certificateFile) }, true);
  validateDocument(doc, env);
  return { keptPrevious };
}

export interface ImportOptions {
  file: string;
  alias?: string;
  /** As given: may be "${ENV_VAR}", which is expanded to read the file and written as it is. */
  password?: string;
  partner?: string;
  now: Date;
  env: Record<string, string | undefined>;
  /** The station's current key, when it could be loaded (to recognise its new certificate). */
  stationKey?: KeyPair;
}

export interface ImportResult {
  configFile: string;
  /** What the file held, in words. */
  found: string;
  /** station: the key and certificate; station-certificate: a new certificate for the current key; partner. */
  target: "station" | "station-certificate" | "partner";
  partner?: string;
  /** The configuration keys written. */
  changed: Record<string, unknown>;
  copiedTo?: string;
  keptPrevious: boolean;
  certificate: CertificateInfo;
  warnings: string[];
}

function expandPassword(p: string | undefined, env: Record<string, string | undefined>): string | undefined {
  if (p === undefined) return undefined;
  return p.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) throw new SetupError("AS2_ERR_USAGE", `--password: environment variable ${name} is not set`);
    return v;
  });
}

/**
 * `as2 keys import`: a file with a private key becomes the station's key (the old one kept for
 * decryption); a certificate for the station's current key (a CA's answer to `init --csr`)
 * becomes its certificate; with `partner`, a certificate becomes that partner's. The file is
 * copied beside the config, the result validated, and only then written.
 */
export async function importKeyFile(doc: ConfigDocument, o: ImportOptions): Promise<ImportResult> {
  const data = readKeyFileBytes(o.file, "<file>");
  const password = expandPassword(o.password, o.env);
  let cred: Credential;
  try {
    cred = o.partner !== undefined
      ? { identity: { kind: "certificate", encoding: "pem", description: "" }, certificates: readCertificateFile(data, o.file) }
      : readCredentialFile(data, o.file, { password, alias: o.alias });
  } catch (e) {
    if (e instanceof As2Error && e.code === ErrorCodes.BAD_CERTIFICATE && o.partner !== undefined && /private key|PKCS#12/.test(e.message)) {
      throw new SetupError("AS2_ERR_USAGE", `${e.message} (without --partner, a file with a private key becomes the station's key)`);
    }
    throw e;
  }
  if (cred.certificates.length === 0) {
    throw new SetupError("AS2_ERR_USAGE", `${o.file} holds a private key without its certificate: import a PEM file with both (cat key.pem cert.pem > both.pem), or a PKCS#12 file`);
  }
  const found = o.partner !== undefined ? `${cred.certificates.length} certificate${cred.certificates.length === 1 ? "" : "s"}` : cred.identity.description;
  const configDir = dirname(doc.path);
  const source = resolve(o.file);
  const inPlace = dirname(source) === configDir;
  const warnings: string[] = [];
  const first = cred.certificates[0]!;
  const info = describeCertificate(first, o.now);
  if (info.expired) warnings.push(`the certificate ${first.subject} expired on ${info.notAfter}`);
  if (o.password !== undefined && !/\$\{[A-Za-z_][A-Za-z0-9_]*\}/.test(o.password) && (o.partner === undefined && cred.key)) {
    warnings.push(`the password is written into ${basename(doc.path)} as it is: to keep it out of the file, import with --password '\${VAR}' (single quotes) and set VAR in the environment`);
  }

  if (o.partner !== undefined) {
    if (o.alias !== undefined) throw new SetupError("AS2_ERR_USAGE", "--alias is for PKCS#12 files, which hold the station's key: a partner's file holds only its certificate");
    const partners = partnersOf(doc);
    const p = partners[o.partner];
    if (!isObject(p)) {
      throw new SetupError("AS2_ERR_USAGE", `--partner: no partner "${o.partner}" in ${doc.path}: add it with \`as2 partner add ${o.partner} --as2-id <id> --url <url> --cert ${o.file}\``);
    }
    const pem = Buffer.from(certificatesPem(cred.certificates));
    const place = inPlace ? { file: source, write: false } : await placeBesideConfig(configDir, o.partner, ".crt", pem);
    p.certificate = configPath(configDir, place.file);
    if (p.encryptionCertificate !== undefined || p.signatureCertificates !== undefined) {
      warnings.push(`partners.${o.partner} also names encryptionCertificate/signatureCertificates, which take precedence over certificate: edit them by hand`);
    }
    validateDocument(doc, o.env);
    if (place.write) await writeFileAtomic(place.file, pem, 0o644);
    return {
      configFile: doc.path, found, target: "partner", partner: o.partner, changed: { [`partners.${o.partner}.certificate`]: p.certificate },
      ...(place.write ? { copiedTo: place.file } : {}), keptPrevious: false, certificate: info, warnings,
    };
  }

  if (!cred.key) {
    // A certificate alone: the station's current key's new certificate (e.g. signed by a CA).
    const station = stationOf(doc);
    const current = o.stationKey;
    if (!current || !keyMatchesCertificate(current.key, first)) {
      throw new SetupError("AS2_ERR_USAGE", `${o.file} holds ${found} that does not belong to the station's key${current ? "" : " (which could not be loaded)"}: for a partner's certificate add --partner <name>; for a new station key import a PKCS#12 file or a PEM file with the key and its certificate`);
    }
    const key = station.key;
    if (!isObject(key) || key.pem === undefined) {
      throw new SetupError("AS2_ERR_USAGE", "the station's key is in a PKCS#12 file, which holds its certificate too: make a new PKCS#12 file with the new certificate and import that");
    }
    const pem = Buffer.from(certificatesPem(cred.certificates));
    const place = inPlace ? { file: source, write: false } : await placeBesideConfig(configDir, fileStem(String(station.as2Id ?? "station")), ".crt", pem);
    key.certificate = configPath(configDir, place.file);
    validateDocument(doc, o.env);
    if (place.write) await writeFileAtomic(place.file, pem, 0o644);
    return {
      configFile: doc.path, found, target: "station-certificate", changed: { "station.key.certificate": key.certificate },
      ...(place.write ? { copiedTo: place.file } : {}), keptPrevious: false, certificate: info, warnings,
    };
  }

  // A private key with its certificate: the station's new key.
  if (o.alias !== undefined && cred.identity.kind !== "pkcs12") throw new SetupError("AS2_ERR_USAGE", `--alias is for PKCS#12 files; ${o.file} is ${cred.identity.description}`);
  const ext = extname(source) || (cred.identity.kind === "pkcs12" ? ".p12" : ".pem");
  const stem = basename(source, extname(source));
  const place = inPlace ? { file: source, write: false } : await placeBesideConfig(configDir, stem, ext, data);
  const rel = configPath(configDir, place.file);
  const key: Record<string, unknown> = cred.identity.kind === "pkcs12" ? { pkcs12: rel } : { pem: rel, certificate: rel };
  if (o.password !== undefined && o.password !== "") key.password = o.password;
  if (o.alias !== undefined) key.alias = o.alias;
  const sameKey = !!o.stationKey && keyMatchesCertificate(o.stationKey.key, first);
  const keptPrevious = setStationKey(doc, key, !sameKey);
  validateDocument(doc, o.env);
  if (place.write) await writeFileAtomic(place.file, data, 0o600);
  return {
    configFile: doc.path, found, target: "station", changed: { "station.key": key, ...(keptPrevious ? { "station.previousKeys[0]": "the previous key" } : {}) },
    ...(place.write ? { copiedTo: place.file } : {}), keptPrevious, certificate: info, warnings,
  };
}

/** A key pair of a PKCS#12 file or key + certificate files, for loading the station's key without the whole key material. */
export async function loadStationKey(config: As2Config): Promise<KeyPair | undefined> {
  const k = config.station.key;
  try {
    if ("pkcs12" in k) return loadPkcs12(await readFile(k.pkcs12), { password: k.password, alias: k.alias });
    const c = readCredentialFile(await readFile(k.pem), k.pem, { password: k.password });
    const cert = (await stationCertificate(config)).certificate;
    return c.key ? { key: c.key, certificate: cert } : undefined;
  } catch {
    return undefined;
  }
}
