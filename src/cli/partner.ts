/**
 * `as2 partner add <name> --as2-id <id> --url <url> --cert <file> [--preset legacy|modern]`
 * (contract §7, issue 16): a partner profile added to the configuration file in use, its
 * certificate copied beside it, the whole configuration validated before it is written.
 */
import { basename } from "node:path";
import { writeConfigDocument } from "../config/edit.js";
import { PRESETS } from "../config/schema.js";
import { addPartner } from "../jobs/station-setup.js";
import { EXIT, UsageError, outputFor, type GlobalOptions } from "./context.js";
import { shownPath as shown, asUsage, configDocument, printJson, renderCertificate } from "./onboarding.js";

export interface PartnerAddFlags {
  as2Id: string;
  url: string;
  cert: string;
  preset?: string;
  force?: boolean;
}

export async function partnerAddCommand(name: string, flags: PartnerAddFlags, g: GlobalOptions): Promise<number> {
  const preset = flags.preset ?? "modern";
  if (!(PRESETS as readonly string[]).includes(preset)) throw new UsageError(`--preset: "${preset}" is not a preset (allowed: ${PRESETS.join(", ")})`);
  const out = outputFor(g);
  const doc = await configDocument(g);
  const r = await asUsage(async () => {
    const res = await addPartner(doc, {
      name, as2Id: flags.as2Id, url: flags.url, certFile: flags.cert, preset: preset as (typeof PRESETS)[number],
      force: !!flags.force, now: new Date(), env: process.env,
    });
    await writeConfigDocument(doc);
    return res;
  });
  const e = r.effective;
  const word = (v: string | false) => (v === false ? "no" : v);
  const summary = {
    sign: word(e.sign), encrypt: word(e.encrypt), compress: word(e.compress),
    mdn: e.mdn.request === "none" ? "none" : `${e.mdn.request} ${e.mdn.mode} (${e.mdn.micAlgorithm})`,
  };
  if (g.json) {
    printJson({
      config: r.configFile, partner: r.name, replaced: r.replaced, profile: r.profile, certificateFile: r.certificateFile,
      certificate: r.certificate, settings: summary, warnings: r.warnings,
    });
    return EXIT.OK;
  }
  out.log(`as2 partner add: ${r.replaced ? "replaced" : "added"} partner ${r.name} (${flags.as2Id}) in ${shown(r.configFile)}`);
  out.log(`  certificate ${shown(r.certificateFile)}`);
  for (const l of renderCertificate(r.certificate)) out.log(`    ${l}`);
  out.log(`  preset ${preset}: sign ${summary.sign}, encrypt ${summary.encrypt}, compress ${summary.compress}, MDN ${summary.mdn}`);
  for (const w of r.warnings) out.warn(w);
  if (doc.hasComments) out.warn(`the comments in ${basename(doc.path)} were not kept (YAML is rewritten whole)`);
  out.log(`Check the SHA-256 fingerprint with ${flags.as2Id} by another channel; then: as2 send --partner ${r.name} FILE`);
  process.stdout.write(`${r.name}: ${flags.as2Id} at ${flags.url} (preset ${preset})\n`);
  return EXIT.OK;
}
