/**
 * `as2 ping --partner <name>` (issue 16; the connector's "Test Connection"): DNS, TCP, the proxy,
 * TLS and an HTTP request, each printed on stderr as it finishes with its verdict, time and
 * detail; the result line (or the --json document) on stdout. Exit 0 only when no step failed.
 */
import { pingPartner, redactUrl, type PingReport } from "../jobs/ping.js";
import type { ProbeStep } from "../transport/index.js";
import { EXIT, UsageError, loadContext, type GlobalOptions } from "./context.js";

export interface PingFlags {
  partner?: string;
  timeout?: string;
}

/** Seconds each step may take, unless --timeout says otherwise. */
export const DEFAULT_PING_TIMEOUT_S = 10;

export function parseTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PING_TIMEOUT_S * 1000;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0) || n > 3600) throw new UsageError(`--timeout takes a number of seconds above 0 and up to 3600 (e.g. 5 or 0.5), not "${value}"`);
  return Math.round(n * 1000);
}

export function formatStep(s: ProbeStep): string {
  return `${s.verdict.toUpperCase().padEnd(4)}  ${s.name.padEnd(5)}  ${`${s.ms} ms`.padStart(8)}  ${s.detail}`;
}

export function resultLine(r: PingReport): string {
  const total = r.steps.reduce((n, s) => n + s.ms, 0);
  const failed = r.steps.find((s) => s.verdict === "fail");
  if (failed) return `ping ${r.partner}: FAILED at ${failed.name}: ${failed.detail}`;
  const warned = r.steps.filter((s) => s.verdict === "warn").map((s) => s.name);
  return `ping ${r.partner}: OK in ${total} ms${warned.length ? ` (with warnings: ${warned.join(", ")})` : ""}`;
}

export async function pingCommand(flags: PingFlags, g: GlobalOptions): Promise<number> {
  const timeoutMs = parseTimeout(flags.timeout);
  const ctx = await loadContext(g);
  const names = Object.keys(ctx.config.partners);
  const configured = `configured: ${names.length ? names.join(", ") : "(none)"}`;
  if (!flags.partner) throw new UsageError(`--partner is required (${configured})`);
  if (!Object.hasOwn(ctx.config.partners, flags.partner)) throw new UsageError(`--partner: no partner "${flags.partner}" in ${ctx.configPath} (${configured})`);
  ctx.output.log(`ping ${flags.partner}: ${redactUrl(ctx.config.partners[flags.partner]!.url)}`);
  const report = await pingPartner(ctx.config, flags.partner, {
    timeoutMs, now: new Date(), env: process.env, onStep: (s) => ctx.output.log(formatStep(s)),
  });
  if (g.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${resultLine(report)}\n`);
  return report.ok ? EXIT.OK : EXIT.FAILED;
}
