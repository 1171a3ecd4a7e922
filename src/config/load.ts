/**
 * Finding and loading the configuration (contract.md §1, §4): cosmiconfig under the module name
 * `as2`, searched upwards from the working directory, or --config; `${ENV}` expansion; paths
 * relative to the config file. The keys and certificates are loaded by keys.ts.
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { cosmiconfig } from "cosmiconfig";
import { ConfigError, validateConfig } from "./validate.js";
import type { As2Config, CertificateEntry, KeySource } from "./schema.js";

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
  /** Spellings accepted and rewritten, for the user to see. */
  notes: string[];
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
  if (c.smtp) c.smtp.ca = c.smtp.ca.map(abs);
  for (const p of Object.values(c.partners)) {
    if (p.certificate) p.certificate = abs(p.certificate);
    const entry = (e: CertificateEntry): CertificateEntry => (typeof e === "string" ? abs(e) : { ...e, file: abs(e.file) });
    if (p.encryptionCertificate) p.encryptionCertificate = typeof p.encryptionCertificate === "string" ? abs(p.encryptionCertificate) : p.encryptionCertificate.map(entry);
    if (p.signatureCertificates) p.signatureCertificates = p.signatureCertificates.map(entry);
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
  const { config, problems, notes } = validateConfig(found.config, options.env ?? {});
  if (!config) throw new ConfigError(found.filepath, problems);
  resolvePaths(config, dirname(found.filepath));
  return { config, filepath: found.filepath, notes: notes ?? [] };
}

