/**
 * What every command starts from: the global options (contract §2), the loaded configuration
 * (with --data-dir applied) and the stderr renderer.
 */
import { resolve } from "node:path";
import { loadConfig } from "../config/load.js";
import type { As2Config } from "../config/schema.js";
import { Output, colorWanted } from "./output.js";
import { EXIT, UsageError } from "./exit-codes.js";

export { EXIT, UsageError };

export interface GlobalOptions {
  config?: string;
  dataDir?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  color?: boolean;
}

export interface Context {
  config: As2Config;
  configPath: string;
  output: Output;
}

export function outputFor(g: GlobalOptions): Output {
  return new Output({ quiet: !!g.quiet, verbose: !!g.verbose, color: colorWanted(g.color === false, process.env, !!process.stderr.isTTY) });
}

export async function loadContext(g: GlobalOptions): Promise<Context> {
  // --config, else AS2_CONFIG (contract §7), else the cosmiconfig search.
  const { config, filepath, notes } = await loadConfig({ configPath: g.config ?? (process.env.AS2_CONFIG || undefined), env: process.env });
  if (g.dataDir) config.dataDir = resolve(g.dataDir);
  const output = outputFor(g);
  for (const n of notes) output.log(`note: ${n}`);
  return { config, configPath: filepath, output };
}
