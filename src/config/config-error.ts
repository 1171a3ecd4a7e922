/**
 * The configuration error and its problem list, apart from validate.ts (which loads zod) so that
 * the CLI's error boundary can recognise it without loading the schema (issue 14: start-up).
 */
export interface ConfigProblem {
  /** Dotted key path, e.g. partners.acme.tls.ca[0]. */
  path: string;
  message: string;
  /** Allowed values, when the key takes one of a list. */
  allowed?: string[];
  /** The stable As2Error code of a file problem (AS2_ERR_BAD_KEY, ...), for --json readers. */
  code?: string;
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}`).join("\n");
}

export class ConfigError extends Error {
  readonly code = "AS2_ERR_CONFIG";
  readonly problems: ConfigProblem[];
  constructor(source: string, problems: ConfigProblem[]) {
    super(`invalid configuration in ${source} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${formatProblems(problems)}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}
