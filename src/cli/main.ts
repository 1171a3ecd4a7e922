/**
 * The `as2` command line. The only place for commander and process.*; commands are thin and
 * one error boundary maps failures to the exit codes of contract §3.
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../version.js";
import { isAs2Error } from "../core/errors.js";

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, PARTIAL: 3, TIMEOUT: 4, SIGINT: 130, SIGTERM: 143 } as const;

class NotAvailable extends Error {}

function notYet(name: string) {
  return () => {
    // Never pretend: a command that is not built yet says so and fails.
    throw new NotAvailable(`as2 ${name} is not available in as2kit ${VERSION} yet; the protocol core is (see README.md, "Library")`);
  };
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("as2")
    .description("AS2 (RFC 4130) file transfer: send, receive and verify EDI messages")
    .version(VERSION, "-V, --version")
    .option("-c, --config <path>", "configuration file (default: searched as .as2rc* / as2.config.* / package.json#as2)")
    .option("--data-dir <path>", "data directory for job logs, inbox, archive (overrides dataDir)")
    .option("--json", "print one JSON document on stdout, nothing else")
    .option("-q, --quiet", "no spinner or progress")
    .option("--verbose", "more detail, stack traces on errors")
    .option("--no-color", "no colours (NO_COLOR / FORCE_COLOR are honoured too)")
    .showHelpAfterError()
    .exitOverride();
  program.command("send").description("send files to a partner as AS2 messages").allowUnknownOption().allowExcessArguments().action(notYet("send"));
  program.command("receive").description("run the AS2 server: receive messages and async MDNs").allowUnknownOption().allowExcessArguments().action(notYet("receive"));
  program.command("mdn-verify").description("check a saved MDN: signature, Original-Message-ID, disposition, MIC").allowUnknownOption().allowExcessArguments().action(notYet("mdn-verify"));
  program.command("status").description("list jobs or show one job").allowUnknownOption().allowExcessArguments().action(notYet("status"));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const verbose = program.opts<{ verbose?: boolean }>().verbose;
    if (e instanceof NotAvailable) {
      process.stderr.write(`as2: ${e.message}\n`);
      return EXIT.FAILED;
    }
    const msg = isAs2Error(e) ? `${e.code}: ${e.message}${e.suggestion ? `\n  ${e.suggestion}` : ""}` : (e as Error).message;
    process.stderr.write(`as2: ${msg}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return EXIT.FAILED;
  }
}
