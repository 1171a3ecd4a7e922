/**
 * `as2 check` (issue 16): the configuration (its schema problems end the run with exit 2, as
 * everywhere: contract §3), then every key and certificate it names, each key against its
 * certificate, and certificates near or past their end. Findings go to stderr with their key
 * paths; the summary line (or the --json document) to stdout. Exit 0 without problems (warnings
 * allowed), 1 with problems.
 */
import { checkConfig, type ConfigCheckReport } from "../jobs/config-check.js";
import { EXIT, loadContext, type GlobalOptions } from "./context.js";

export type CheckFlags = Record<string, never>;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function summaryLine(r: ConfigCheckReport, configPath: string): string {
  const findings = `${plural(r.problems.length, "problem")}, ${plural(r.warnings.length, "warning")}`;
  return `check: ${r.ok ? "OK" : "FAILED"}: ${findings} (${plural(r.keys, "key")} and ${plural(r.certificates.length, "certificate")} loaded; ${configPath})`;
}

export async function checkCommand(_flags: CheckFlags, g: GlobalOptions): Promise<number> {
  const ctx = await loadContext(g);
  const report = checkConfig(ctx.config, new Date());
  const out = ctx.output;
  for (const p of report.problems) out.log(`problem: ${p.path}: ${p.message}`);
  for (const w of report.warnings) out.warn(`${w.path}: ${w.message}`);
  for (const c of report.certificates) out.info(`certificate ${c.path}: ${c.subject}, valid ${c.notBefore.slice(0, 10)} to ${c.notAfter.slice(0, 10)} (${plural(c.daysLeft, "day")} left)`);
  if (g.json) process.stdout.write(`${JSON.stringify({ ok: report.ok, config: ctx.configPath, problems: report.problems, warnings: report.warnings, certificates: report.certificates, keys: report.keys }, null, 2)}\n`);
  else process.stdout.write(`${summaryLine(report, ctx.configPath)}\n`);
  return report.ok ? EXIT.OK : EXIT.FAILED;
}
