/**
 * receive.retention (contract §7): `as2 receive` prunes daily, each run printed as an event
 * (src/jobs/retention.ts). One process does it: the single receiver, or the supervisor of
 * receive.workers — never every worker, which would only queue behind each other's locks.
 * AS2KIT_RETENTION_DELAY_MS moves the first run (tests; the default is a minute after start).
 */
import { openStore } from "../store/index.js";
import type { Context, GlobalOptions } from "./context.js";

export async function startRetentionEvents(ctx: Context, g: GlobalOptions): Promise<{ stop(): Promise<void> }> {
  const { startRetention } = await import("../jobs/retention.js");
  return startRetention(ctx.config, openStore(ctx.config), (e) => {
    const event = { time: new Date().toISOString(), event: e.event, detail: e.detail, ...(e.report ? { report: e.report } : {}) };
    if (g.json) process.stdout.write(`${JSON.stringify(event)}\n`);
    else ctx.output.log(`${event.time} ${e.event.toUpperCase()} ${e.detail}`);
  }, { firstDelayMs: process.env.AS2KIT_RETENTION_DELAY_MS ? Number(process.env.AS2KIT_RETENTION_DELAY_MS) : undefined });
}
