/**
 * The exit codes of contract §3 and the usage error (exit 2). Kept apart from context.ts so that
 * main.ts can map errors to exit codes without loading the configuration code (zod, cosmiconfig)
 * or the renderer (chalk, ora): `as2 --version` and `--help` start with almost nothing (issue 14).
 */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, PARTIAL: 3, TIMEOUT: 4, SIGINT: 130, SIGTERM: 143 } as const;

/** A bad flag or combination: exit 2, nothing was done. */
export class UsageError extends Error {
  override name = "UsageError";
}
