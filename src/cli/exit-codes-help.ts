/**
 * The "Exit codes" block of `as2 <command> --help` (contract §3): one listing per help page,
 * the command's own where its codes mean something of their own (check, ping), else the global
 * one. Shown after everything else, under the examples.
 */
const JSON_ERRORS = "  With --json, an error is also one document on stdout: {\"error\":{\"code\",\"message\"}}.";

const GLOBAL = [
  "Exit codes: 0 success; 1 failed (transport, negative MDN, MIC mismatch, verification); 2 usage or configuration;",
  "  3 partial (some files failed); 4 status --wait ran out of time; 130/143 interrupted by SIGINT/SIGTERM.",
];

const BY_COMMAND: Record<string, string[]> = {
  check: [
    "Exit codes: 0 no problem (warnings allowed); 1 problems found (each listed with its key path);",
    "  2 the configuration cannot be read or is invalid, or a bad flag.",
  ],
  migrate: [
    "Exit codes: 0 the schema is current; 1 the database refused or is unreachable;",
    "  2 no postgres store configured, or a bad flag.",
  ],
  ping: [
    "Exit codes: 0 every step passed (warnings allowed); 1 a step failed;",
    "  2 unknown partner, invalid configuration or a bad flag.",
  ],
};

/** The block for the help page of `command` (the program's own name gives the global listing). */
export function exitCodesHelp(command: string): string {
  return `\n${[...(BY_COMMAND[command] ?? GLOBAL), JSON_ERRORS].join("\n")}`;
}
