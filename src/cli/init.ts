/**
 * `as2 init` (contract §7, issue 16): a new station in one command. Writes a key (0600), a
 * self-signed certificate (and with --csr a certificate signing request as well) and
 * `.as2rc.json` / `.as2rc.yaml` in --dir; prints what it wrote on stderr and the certificate to
 * send to partners, with its fingerprints, on stdout.
 */
import { relative } from "node:path";
import { DEFAULT_VALIDITY_DAYS, defaultAs2Id, initStation, shippedSchemaFile } from "../jobs/station-setup.js";
import { EXIT, UsageError, outputFor, type GlobalOptions } from "./context.js";
import { shownPath as shown, asUsage, certificateForPartners, printJson, renderCertificate } from "./onboarding.js";

export interface InitFlags {
  as2Id?: string;
  dir?: string;
  format?: string;
  csr?: boolean;
  force?: boolean;
  days?: string;
}

export function parseDays(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < 1 || n > 36500) throw new UsageError(`--days: "${v}" is not a number of days from 1 to 36500`);
  return n;
}

export async function initCommand(flags: InitFlags, g: GlobalOptions): Promise<number> {
  const format = flags.format ?? "json";
  if (format !== "json" && format !== "yaml") throw new UsageError(`--format: "${format}" is not a configuration format (allowed: json, yaml)`);
  const days = parseDays(flags.days);
  const out = outputFor(g);
  const r = await asUsage(() => initStation({
    dir: flags.dir ?? process.cwd(),
    as2Id: flags.as2Id ?? defaultAs2Id(),
    format,
    csr: !!flags.csr,
    force: !!flags.force,
    now: new Date(),
    days,
    dataDir: g.dataDir,
    schemaFile: shippedSchemaFile(),
  }));
  if (g.json) {
    printJson({
      station: r.as2Id,
      dir: r.dir,
      config: r.configFile,
      files: r.files,
      certificate: { ...r.certificate, pem: r.certificatePem },
      ...(r.csrFile ? { csr: r.csrFile } : {}),
    });
    return EXIT.OK;
  }
  // The files are named relative to the station's folder, which the first line names.
  const inDir = (p: string) => relative(r.dir, p);
  out.log(`as2 init: station ${r.as2Id} in ${r.dir}`);
  for (const f of r.files) out.log(`  wrote ${inDir(f.path)}${f.mode ? ` (mode ${f.mode})` : ""}: ${f.what}`);
  out.log("");
  for (const l of renderCertificate(r.certificate)) out.log(`  ${l}`);
  out.log("");
  if (r.csrFile) {
    out.log(`The station works now with the self-signed certificate. Send ${shown(r.csrFile)} to your certificate authority;`);
    out.log("when its certificate comes back, make it the station's with `as2 keys import <file>`, and send it to your partners.");
    out.log("");
  }
  out.log("Next:");
  out.log("  1. send the certificate below (stdout; or `as2 keys export`) to each partner, and confirm the");
  out.log("     SHA-256 fingerprint with them by another channel (phone);");
  out.log("  2. add each partner with its certificate:");
  out.log("       as2 partner add acme --as2-id ACME --url https://as2.acme.example/as2 --cert acme.crt");
  out.log(`  3. receive with \`as2 receive\` (port 4080, path /as2; see ${shown(r.configFile)}), send with \`as2 send --partner acme FILE\`.`);
  if (days === undefined) out.info(`(the certificate is valid ${DEFAULT_VALIDITY_DAYS} days; --days changes that)`);
  process.stdout.write(certificateForPartners(r.certificate, r.certificatePem));
  return EXIT.OK;
}
