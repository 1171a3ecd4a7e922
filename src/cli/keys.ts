/**
 * `as2 keys new|show|export|import` (contract §7, issue 16): the station's keys and the
 * certificates of both sides. `new` makes a key pair (the config changes only with --use);
 * `show` describes certificates for people; `export` gives the station certificate to partners;
 * `import` takes PEM, DER, PKCS#12 or .p7b files into the configuration.
 */
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { loadConfig } from "../config/load.js";
import { locateConfigFile, readConfigDocument, writeConfigDocument, writeFileAtomic, type ConfigDocument } from "../config/edit.js";
import type { As2Config } from "../config/schema.js";
import { readCredentialFile, readKeyFileBytes } from "../config/key-files.js";
import {
  defaultAs2Id, describeCertificate, formatKeyInfo, importKeyFile, keyInfo, loadStationKey, newKeyFiles, partnerCertificates,
  stationCertificate, useNewKey, type CertificateInfo, type KeyInfo,
} from "../jobs/station-setup.js";
import { EXIT, UsageError, outputFor, type GlobalOptions } from "./context.js";
import { parseDays } from "./init.js";
import { shownPath as shown, asUsage, certificateForPartners, configDocument, explicitConfig, printJson, renderCertificate } from "./onboarding.js";

export interface KeysNewFlags {
  as2Id?: string;
  outDir?: string;
  use?: boolean;
  days?: string;
}

export interface KeysShowFlags {
  partner?: string;
  password?: string;
  alias?: string;
}

export interface KeysExportFlags {
  out?: string;
  format?: string;
  force?: boolean;
}

export interface KeysImportFlags {
  alias?: string;
  password?: string;
  partner?: string;
}


async function loadedConfig(g: GlobalOptions): Promise<{ config: As2Config; filepath: string }> {
  const r = await loadConfig({ configPath: explicitConfig(g), env: process.env });
  if (g.dataDir) r.config.dataDir = resolve(g.dataDir);
  return r;
}

export async function keysNewCommand(flags: KeysNewFlags, g: GlobalOptions): Promise<number> {
  const days = parseDays(flags.days);
  const out = outputFor(g);
  const configFile = await locateConfigFile(explicitConfig(g), process.cwd()).catch(() => undefined);
  let doc: ConfigDocument | undefined;
  if (flags.use) {
    doc = await configDocument(g);
  } else if (configFile) {
    doc = await readConfigDocument(configFile).catch(() => undefined);
  }
  const station = doc && typeof doc.raw.station === "object" && doc.raw.station ? (doc.raw.station as Record<string, unknown>) : undefined;
  const as2Id = flags.as2Id ?? (typeof station?.as2Id === "string" ? station.as2Id : defaultAs2Id());
  const outDir = flags.outDir ?? (doc ? dirname(doc.path) : process.cwd());
  const r = await asUsage(async () => {
    const made = await newKeyFiles({ outDir, as2Id, now: new Date(), days });
    let used: { keptPrevious: boolean } | undefined;
    if (flags.use && doc) {
      used = useNewKey(doc, made.keyFile, made.certificateFile, process.env);
      await writeConfigDocument(doc);
    }
    return { ...made, used };
  });
  if (g.json) {
    printJson({
      as2Id, keyFile: r.keyFile, certificateFile: r.certificateFile,
      certificate: { ...r.certificate, pem: r.certificatePem },
      used: !!r.used, ...(r.used && doc ? { config: doc.path, keptPrevious: r.used.keptPrevious } : {}),
    });
    return EXIT.OK;
  }
  out.log(`as2 keys new: a key pair for ${as2Id}`);
  out.log(`  wrote ${shown(r.keyFile)} (mode 0600): private key (RSA 2048, PKCS#8 PEM)`);
  out.log(`  wrote ${shown(r.certificateFile)}: self-signed certificate`);
  for (const l of renderCertificate(r.certificate)) out.log(`  ${l}`);
  if (r.used && doc) {
    out.log(`${shown(doc.path)}: station.key now names them${r.used.keptPrevious ? "; the previous key stays in station.previousKeys, so messages encrypted for it still open" : ""}.`);
    out.log("Send the new certificate (stdout) to every partner before they need it.");
    if (doc.hasComments) out.warn(`the comments in ${basename(doc.path)} were not kept (YAML is rewritten whole)`);
  } else {
    out.log(`The configuration is unchanged: add --use to make this the station's key.`);
  }
  process.stdout.write(certificateForPartners(r.certificate, r.certificatePem));
  return EXIT.OK;
}

interface ShownCertificate extends CertificateInfo {
  file: string;
  role?: string;
}

export async function keysShowCommand(file: string | undefined, flags: KeysShowFlags, g: GlobalOptions): Promise<number> {
  if (file !== undefined && flags.partner !== undefined) throw new UsageError("[file] and --partner exclude each other: show a file, or the certificate of a configured partner");
  if ((flags.password !== undefined || flags.alias !== undefined) && file === undefined) throw new UsageError(`${flags.password !== undefined ? "--password" : "--alias"} goes with a [file] (a PKCS#12 or encrypted key file)`);
  const out = outputFor(g);
  const now = new Date();
  const { source, certs, key } = await asUsage(async () => {
    if (file !== undefined) {
      const data = readKeyFileBytes(file, "[file]");
      const c = readCredentialFile(data, file, { password: flags.password, alias: flags.alias });
      return {
        source: `${file}: ${c.identity.description}`,
        certs: c.certificates.map((cert, i): ShownCertificate => ({ file, ...(c.key ? { role: i === 0 ? "the key's certificate" : "chain" } : {}), ...describeCertificate(cert, now) })),
        key: c.key ? keyInfo(c.key) : undefined,
      };
    }
    const { config } = await loadedConfig(g);
    if (flags.partner !== undefined) {
      const list = await partnerCertificates(config, flags.partner);
      return {
        source: `partner ${flags.partner} (${config.partners[flags.partner]!.as2Id})`,
        certs: list.map((p): ShownCertificate => ({ file: p.file, role: `partners.${flags.partner}.${p.role}`, ...describeCertificate(p.certificate, now) })),
        key: undefined as KeyInfo | undefined,
      };
    }
    const s = await stationCertificate(config);
    return {
      source: `station ${config.station.as2Id}`,
      certs: [{ file: s.file, role: "station.key", ...describeCertificate(s.certificate, now) }],
      key: undefined as KeyInfo | undefined,
    };
  });
  if (g.json) {
    printJson({ source, ...(key ? { privateKey: key } : {}), certificates: certs });
    return EXIT.OK;
  }
  const blocks: string[] = [];
  if (key) blocks.push(`Private key  ${formatKeyInfo(key)}`);
  for (const c of certs) blocks.push(renderCertificate(c, [["File", shown(c.file)], ...(c.role ? [["Role", c.role] as [string, string]] : [])]).join("\n"));
  if (!certs.length && !key) blocks.push("(no certificates)");
  out.info(source);
  process.stdout.write(`${blocks.join("\n\n")}\n`);
  return EXIT.OK;
}

export async function keysExportCommand(flags: KeysExportFlags, g: GlobalOptions): Promise<number> {
  const format = (flags.format ?? "pem").toLowerCase();
  if (format !== "pem" && format !== "der") throw new UsageError(`--format: "${flags.format}" is not a certificate format (allowed: pem, der)`);
  if (format === "der" && !flags.out) throw new UsageError("--format der writes binary, which does not belong on a terminal: give --out <file> (e.g. --out myco.cer)");
  const out = outputFor(g);
  const { config } = await asUsage(() => loadedConfig(g));
  const s = await asUsage(() => stationCertificate(config));
  const info = describeCertificate(s.certificate, new Date());
  const pem = s.certificate.toPem().replace(/\s*$/, "\n");
  let written: string | undefined;
  if (flags.out) {
    const target = resolve(flags.out);
    const data = format === "der" ? s.certificate.der : Buffer.from(pem);
    const existing = await readFile(target).catch(() => undefined);
    if (existing && !existing.equals(data) && !flags.force) {
      throw new UsageError(`--out: ${flags.out} exists (and is not this certificate): add --force to replace it`);
    }
    await writeFileAtomic(target, data, 0o644).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`--out: cannot write ${flags.out}: ${e.code === "ENOENT" ? `the folder ${dirname(target)} does not exist` : e.code === "EACCES" ? "permission denied" : e.code === "EISDIR" ? "it is a folder" : e.message}`);
    });
    written = target;
  }
  if (g.json) {
    printJson({
      station: config.station.as2Id, source: s.file, format, ...(written ? { file: written } : {}),
      subject: info.subject, serial: info.serial, sha256: info.sha256, sha1: info.sha1, notAfter: info.notAfter, daysLeft: info.daysLeft,
      pem,
    });
    return EXIT.OK;
  }
  if (written) {
    out.log(`as2 keys export: wrote ${shown(written)} (${format.toUpperCase()}): the certificate of ${config.station.as2Id}`);
    process.stdout.write(`${written}\n`);
  } else {
    process.stdout.write(pem);
  }
  out.log(`SHA-256 Fingerprint=${info.sha256}`);
  out.log(`SHA-1 Fingerprint=${info.sha1}`);
  for (const n of info.notes) out.warn(n);
  return EXIT.OK;
}

export async function keysImportCommand(file: string, flags: KeysImportFlags, g: GlobalOptions): Promise<number> {
  const out = outputFor(g);
  const doc = await configDocument(g);
  // The station's current key, to recognise its new certificate and to keep a replaced key for
  // decryption. A station whose key cannot be loaded can still be given a new one.
  const stationKey = await loadConfig({ configPath: doc.path, env: process.env }).then((c) => loadStationKey(c.config), () => undefined);
  const r = await asUsage(async () => {
    const res = await importKeyFile(doc, { file, alias: flags.alias, password: flags.password, partner: flags.partner, now: new Date(), env: process.env, stationKey });
    await writeConfigDocument(doc);
    return res;
  });
  if (g.json) {
    printJson(r);
    return EXIT.OK;
  }
  out.log(`as2 keys import: ${shown(file)} holds ${r.found}`);
  if (r.copiedTo) out.log(`  copied to ${shown(r.copiedTo)}`);
  for (const [k, v] of Object.entries(r.changed)) out.log(`  ${k} = ${typeof v === "string" ? v : JSON.stringify(v, (kk, vv: unknown) => (kk === "password" ? "(hidden)" : vv))}`);
  if (r.keptPrevious) out.log("  the previous station key stays in station.previousKeys: messages encrypted for it still open");
  for (const l of renderCertificate(r.certificate)) out.log(`  ${l}`);
  for (const w of r.warnings) out.warn(w);
  if (doc.hasComments) out.warn(`the comments in ${basename(doc.path)} were not kept (YAML is rewritten whole)`);
  if (r.target !== "partner") out.log("Send the station's certificate (`as2 keys export`) to every partner.");
  const what = r.target === "partner" ? `partner ${r.partner}'s certificate` : r.target === "station" ? "the station's key and certificate" : "the station's certificate";
  process.stdout.write(`${shown(doc.path)}: ${what} is now ${r.certificate.subject} (SHA-256 ${r.certificate.sha256})\n`);
  return EXIT.OK;
}
