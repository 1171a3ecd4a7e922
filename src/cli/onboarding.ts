/**
 * What `as2 init`, `as2 keys` and `as2 partner` share: finding the configuration file, turning
 * refusals and unreadable key files into usage errors (exit 2, contract §3), and rendering a
 * certificate for people.
 */
import { isAbsolute, relative } from "node:path";
import { isAs2Error, ErrorCodes } from "../core/errors.js";
import { locateConfigFile, readConfigDocument, type ConfigDocument } from "../config/edit.js";
import { SEARCH_PLACES } from "../config/load.js";
import { SetupError, formatKeyInfo, type CertificateInfo } from "../jobs/station-setup.js";
import { UsageError, type GlobalOptions } from "./context.js";

/** A usage error with a stable code, for the `--json` error document. */
export class OnboardingUsageError extends UsageError {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

const KEY_FILE_CODES: ReadonlySet<string> = new Set([ErrorCodes.BAD_KEY, ErrorCodes.BAD_CERTIFICATE, ErrorCodes.BAD_PASSWORD, ErrorCodes.FILE_UNREADABLE, ErrorCodes.INVALID_ARGUMENT]);

/**
 * Runs a command body; a refusal (SetupError) or a key or certificate file that cannot be used
 * becomes a usage error: nothing was done, and exit 2 says "fix the command or the files".
 */
export async function asUsage<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof SetupError) throw new OnboardingUsageError(e.message, e.code);
    if (isAs2Error(e) && KEY_FILE_CODES.has(e.code)) throw new OnboardingUsageError(e.message, e.code);
    throw e;
  }
}

/** --config, else AS2_CONFIG, as every command reads them. */
export function explicitConfig(g: GlobalOptions): string | undefined {
  return g.config ?? (process.env.AS2_CONFIG || undefined);
}

/** The configuration file to edit; a usage error naming what to do when there is none. */
export async function configDocument(g: GlobalOptions): Promise<ConfigDocument> {
  const file = await locateConfigFile(explicitConfig(g), process.cwd());
  if (!file) {
    throw new OnboardingUsageError(
      `no configuration found (searched ${SEARCH_PLACES.join(", ")} from ${process.cwd()} upwards): create one with \`as2 init\`, or name it with --config`,
      "AS2_ERR_CONFIG",
    );
  }
  return readConfigDocument(file);
}

/** A path as people read it: relative to the working directory when below it. */
export function shownPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith("..") && !isAbsolute(r) ? r : p;
}

export function printJson(doc: unknown): void {
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

function day(iso: string): string {
  return iso.slice(0, 10);
}

export function validityWords(c: CertificateInfo): string {
  if (c.expired) return `expired ${-c.daysLeft} day${c.daysLeft === -1 ? "" : "s"} ago`;
  if (c.notYetValid) return "not yet valid";
  return `${c.daysLeft} day${c.daysLeft === 1 ? "" : "s"} left`;
}

/** A certificate as aligned "Label  value" lines. */
export function renderCertificate(c: CertificateInfo, extra: Array<[string, string]> = []): string[] {
  const rows: Array<[string, string]> = [
    ...extra,
    ["Subject", c.subject],
    ["Issuer", c.selfSigned ? `${c.issuer} (self-signed)` : c.issuer],
    ["Serial", c.serial],
    ["SHA-256", c.sha256],
    ["SHA-1", c.sha1],
    ["Valid", `${day(c.notBefore)} to ${day(c.notAfter)} (${validityWords(c)})`],
    ["Key usage", c.keyUsage ? c.keyUsage.join(", ") || "(none)" : "(no extension: any use)"],
    ["Ext. key usage", c.extendedKeyUsage ? c.extendedKeyUsage.join(", ") || "(none)" : "(no extension: any use)"],
    ["Public key", formatKeyInfo(c.publicKey)],
  ];
  const width = Math.max(...rows.map(([l]) => l.length));
  const lines = rows.map(([l, v]) => `${l.padEnd(width)}  ${v}`);
  for (const n of c.notes) lines.push(`${"Note".padEnd(width)}  ${n}`);
  return lines;
}

/** What partners need to check a certificate they got by mail: its fingerprints, then the PEM. */
export function certificateForPartners(c: CertificateInfo, pem: string): string {
  return `SHA-256 Fingerprint=${c.sha256}\nSHA-1 Fingerprint=${c.sha1}\n${pem.replace(/\s*$/, "\n")}`;
}
