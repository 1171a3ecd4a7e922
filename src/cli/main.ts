/**
 * The `as2` command line. The only place for commander and process.*; commands are thin and
 * one error boundary maps failures to the exit codes of contract §3.
 */
import { Command, CommanderError, Option } from "commander";
import { VERSION } from "../version.js";
import { isAs2Error } from "../core/errors.js";
import { ConfigError } from "../config/config-error.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { exitCodesHelp } from "./exit-codes-help.js";
// Commands are loaded when run (each action's `await import`), and these imports are types only:
// `as2 --version` and `--help` load commander and nothing else of weight, `as2 status` no crypto
// library (issue 14; test/cli-startup.test.ts checks it).
import type { GlobalOptions } from "./context.js";
import type { SendFlags } from "./send.js";
import type { ReceiveFlags } from "./receive.js";
import type { StatusFlags } from "./status.js";
import type { MdnVerifyFlags } from "./mdn-verify.js";

export { EXIT };

/** `state.exitCode` receives the command's exit code (contract §3). */
export function buildProgram(state: { exitCode: number } = { exitCode: EXIT.OK }): Command {
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
    .showSuggestionAfterError()
    // Global options (--config, --json, ...) appear in every subcommand's help too.
    .configureHelp({ showGlobalOptions: true })
    // One exit-code listing per help page: the command's own (check, ping) or the global one.
    .addHelpText("afterAll", ({ command }) => exitCodesHelp(command.name()))
    .exitOverride();
  program
    .command("send")
    .description("send files to a partner as AS2 messages (one message per file)")
    .argument("[files...]", "files to send")
    .option("--partner <name>", "the partner profile (from the configuration)")
    .option("--dir <path>", "send the files of this folder that match --pattern")
    .option("--pattern <glob>", "file name pattern for --dir (* and ? wildcards)", undefined)
    .option("--delete-source", "delete each source file once its transfer is confirmed")
    .option("--archive-dir <path>", "move each source file here once its transfer is confirmed")
    .option("--subject <text>", "Subject header")
    .option("--content-type <mime>", "payload content type (default: profile, then file name, then application/octet-stream)")
    .option("--sign <alg>", "sign with sha1|sha224|sha256|sha384|sha512")
    .option("--no-sign", "do not sign")
    .option("--encrypt <alg>", "encrypt with 3des|rc2-40|rc2-64|rc2-128|cast5|idea|aes128-cbc|aes192-cbc|aes256-cbc|aes128-gcm|aes256-gcm")
    .option("--no-encrypt", "do not encrypt")
    .addOption(new Option("--compress [order]", "compress (before-signing, the default, or after-signing)"))
    .option("--no-compress", "do not compress")
    .option("--mdn <kind>", "receipt: none|signed|unsigned")
    .option("--mdn-mode <mode>", "receipt delivery: sync|async")
    .option("--mic-alg <alg>", "MIC algorithm asked of the partner")
    .option("--wait-mdn <seconds>", "async: wait this long for the MDN before exiting")
    .option("--rerun <runId>", "send the files of that job again, with new Message-IDs")
    .option("--restart <runId>", "send only the files of that job that did not succeed, with their original Message-IDs")
    .option("--multiple-attachments", "send all the files as ONE message (RFC 6362 multipart/related); only to partners that take it (partners.<name>.multipleAttachments)")
    .option("--dry-run", "build the message(s) and write them; send nothing")
    .option("--out <file>", "with --dry-run: where to write (a folder when there are several files)")
    .addHelpText("after", "\nExamples:\n  as2 send --partner acme order.edi\n  as2 send --partner acme --dir outbox --pattern '*.x12' --archive-dir sent\n  as2 send --restart 20261122T163120123Z-1a2b3c4d5e6f --json")
    .action(async (files: string[], flags: SendFlags, cmd: Command) => {
      state.exitCode = await (await import("./send.js")).sendCommand(files, flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  program
    .command("receive")
    .description("run the AS2 server: receive messages and async MDNs")
    .option("--host <addr>", "address to listen on (receive.host)")
    .option("--port <n>", "port (receive.port; 0 picks a free one)")
    .option("--path <path>", "endpoint path (receive.path)")
    .option("--once", "exit after the first message or MDN is handled")
    .addHelpText("after", "\nExamples:\n  as2 receive\n  as2 receive --port 0 --once --json")
    .action(async (flags: ReceiveFlags, cmd: Command) => {
      state.exitCode = await (await import("./receive.js")).receiveCommand(flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  program
    .command("mdn-verify")
    .description("check a saved MDN: signature, signer certificate, Original-Message-ID, disposition, MIC")
    .argument("<mdn-file>", "the MDN: an HTTP response, a MIME entity, or a body with --headers")
    .option("--partner <name>", "whose certificate checks the signature (default: the job's partner, or the one with the MDN's AS2-From)")
    .option("--run <runId>", "compare with the MIC recorded by this send job")
    .option("--message-id <id>", "the Message-ID the MDN should answer (its MIC is looked up in the job log)")
    .option("--mic <base64>", "the original MIC (with --mic-alg)")
    .option("--mic-alg <alg>", "the algorithm of --mic, or for an unsigned --original")
    .option("--original <message-file>", "recompute the MIC from the original message (as sent, or its bare payload)")
    .option("--headers <http-headers-file>", "the HTTP headers, when <mdn-file> is the body alone")
    .addHelpText("after", "\nExamples:\n  as2 mdn-verify acme.mdn --run 20261122T163120123Z-1a2b3c4d5e6f\n  as2 mdn-verify response.http --original orders.as2\n  as2 mdn-verify body.bin --headers headers.txt --partner acme --mic 'Xyz...=' --mic-alg sha-256")
    .action(async (file: string, flags: MdnVerifyFlags, cmd: Command) => {
      state.exitCode = await (await import("./mdn-verify.js")).mdnVerifyCommand(file, flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  program
    .command("status")
    .description("list jobs (newest first) or show one job")
    .argument("[runId]", "the job to show")
    .option("--partner <name>", "only this partner's jobs")
    .option("--direction <dir>", "send or receive")
    .option("--state <STATE>", "NOT_STARTED|ONGOING|AWAITING_MDN|SUCCESS|FAILED|PARTIAL|INTERRUPTED")
    .option("--since <date>", "jobs started at or after this ISO date")
    .option("--page-offset <n>", "skip this many jobs", undefined)
    .option("--page-length <n>", "jobs per page (default 50)", undefined)
    .option("--wait <seconds>", "with a runId: wait until the job is finished (exit 4 when the time runs out)")
    .addHelpText("after", "\nExamples:\n  as2 status\n  as2 status --partner acme --state FAILED --since 2026-11-01\n  as2 status 20261122T163120123Z-1a2b3c4d5e6f --wait 300 --json")
    .action(async (runId: string | undefined, flags: StatusFlags, cmd: Command) => {
      state.exitCode = await (await import("./status.js")).statusCommand(runId, flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  program
    .command("prune")
    .description("remove finished jobs and what belongs to them, older than a duration")
    .option("--older-than <duration>", "age: a whole number and m, h, d or w (30m, 12h, 90d, 2w)")
    .option("--inbox", "remove received files in the partners' inboxes older than that too (they stay otherwise)")
    .option("--dry-run", "count what would go (and its bytes); remove nothing")
    .addHelpText("after", "\nExamples:\n  as2 prune --older-than 90d --dry-run\n  as2 prune --older-than 2w --inbox --json")
    .action(async (flags: import("./prune.js").PruneFlags, cmd: Command) => {
      state.exitCode = await (await import("./prune.js")).pruneCommand(flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  program
    .command("init")
    .description("set up a new station here: key pair, self-signed certificate (or also a CSR) and .as2rc.json")
    .option("--as2-id <id>", "this station's AS2 ID (default: the host name, upper-cased)")
    .option("--dir <path>", "where to write the configuration and the keys (default: the working directory)")
    .addOption(new Option("--format <format>", "configuration file format").choices(["json", "yaml"]).default("json"))
    .option("--csr", "also write a certificate signing request for a CA (the self-signed certificate works meanwhile)")
    .option("--days <n>", "validity of the self-signed certificate in days (default 1095)")
    .option("--force", "replace an existing configuration, key or certificate")
    .addHelpText("after", "\nExamples:\n  as2 init --as2-id MYCO\n  as2 init --as2-id MYCO --dir /etc/as2 --format yaml --csr\n  as2 init --as2-id MYCO --json | jq -r .certificate.sha256")
    .action(async (flags: import("./init.js").InitFlags, cmd: Command) => {
      state.exitCode = await (await import("./init.js")).initCommand(flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  const keys = program
    .command("keys")
    .description("the station's key and certificate, and partners' certificates: new, show, export, import")
    .addHelpText("after", "\nExamples:\n  as2 keys show\n  as2 keys export > myco.crt\n  as2 keys import myco.p12 --alias myco --password '${MYCO_P12_PASS}'");
  keys
    .command("new")
    .description("make a new key pair and self-signed certificate (the configuration changes only with --use)")
    .option("--as2-id <id>", "the certificate's name (default: the station's AS2 ID, else the host name)")
    .option("--out-dir <path>", "where to write them (default: beside the configuration, else here); existing files are never replaced")
    .option("--use", "make them the station's key (the old key stays in station.previousKeys for decryption)")
    .option("--days <n>", "validity in days (default 1095)")
    .addHelpText("after", "\nExamples:\n  as2 keys new --use\n  as2 keys new --as2-id MYCO-TEST --out-dir keys")
    .action(async (flags: import("./keys.js").KeysNewFlags, cmd: Command) => {
      state.exitCode = await (await import("./keys.js")).keysNewCommand(flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  keys
    .command("show")
    .description("describe a certificate: subject, issuer, serial, fingerprints, validity, key usage, key size")
    .argument("[file]", "a certificate, key, PKCS#12 or .p7b file (default: the station's certificate)")
    .option("--partner <name>", "show the certificates of this configured partner")
    .option("--password <p>", "password of [file] (PKCS#12 or encrypted key); '${VAR}' reads it from the environment")
    .option("--alias <a>", "the key to show in a PKCS#12 [file] that holds several")
    .addHelpText("after", "\nExamples:\n  as2 keys show\n  as2 keys show --partner acme\n  as2 keys show acme.cer --json")
    .action(async (file: string | undefined, flags: import("./keys.js").KeysShowFlags, cmd: Command) => {
      state.exitCode = await (await import("./keys.js")).keysShowCommand(file, flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  keys
    .command("export")
    .description("the station's certificate, to send to partners (PEM on stdout, or a file)")
    .option("--out <file>", "write to this file instead of stdout")
    .addOption(new Option("--format <format>", "pem, or der (der only with --out)").choices(["pem", "der"]).default("pem"))
    .option("--force", "replace --out when it holds something else")
    .addHelpText("after", "\nExamples:\n  as2 keys export > myco.crt\n  as2 keys export --out myco.cer --format der")
    .action(async (flags: import("./keys.js").KeysExportFlags, cmd: Command) => {
      state.exitCode = await (await import("./keys.js")).keysExportCommand(flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  keys
    .command("import")
    .description("take a key or certificate into the configuration: a file with a private key becomes the station's key; a certificate for the station's key its certificate; with --partner, the partner's certificate")
    .argument("<file>", "PEM, DER, PKCS#12 (.p12/.pfx) or certs-only PKCS#7 (.p7b)")
    .option("--alias <a>", "the key to take from a PKCS#12 file that holds several (its friendlyName)")
    .option("--password <p>", "password of the PKCS#12 or key file; '${VAR}' (single quotes) keeps it in the environment")
    .option("--partner <name>", "the certificate is this partner's")
    .addHelpText("after", "\nExamples:\n  as2 keys import myco.p12 --alias myco --password '${MYCO_P12_PASS}'\n  as2 keys import ca-signed.crt\n  as2 keys import acme-2027.cer --partner acme")
    .action(async (file: string, flags: import("./keys.js").KeysImportFlags, cmd: Command) => {
      state.exitCode = await (await import("./keys.js")).keysImportCommand(file, flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  const partner = program
    .command("partner")
    .description("partner profiles in the configuration")
    .addHelpText("after", "\nExamples:\n  as2 partner add acme --as2-id ACME --url https://as2.acme.example/as2 --cert acme.crt");
  partner
    .command("add")
    .description("add a partner profile (preset, AS2 ID, URL, certificate) to the configuration file")
    .argument("<name>", "the profile's name (letters, digits, '.', '_', '-'), used as --partner <name>")
    .requiredOption("--as2-id <id>", "the partner's AS2 ID")
    .requiredOption("--url <url>", "the partner's AS2 URL (http:// or https://)")
    .requiredOption("--cert <file>", "the partner's certificate (PEM, DER or .p7b); copied beside the configuration")
    .addOption(new Option("--preset <preset>", "defaults for everything else").choices(["legacy", "modern"]).default("modern"))
    .option("--force", "replace a partner of that name (or add one whose AS2 ID is taken)")
    .addHelpText("after", "\nExamples:\n  as2 partner add acme --as2-id ACME --url https://as2.acme.example/as2 --cert acme.crt\n  as2 partner add oldco --as2-id OLDCO --url http://edi.oldco.example:8080/as2 --cert oldco.cer --preset legacy")
    .action(async (name: string, flags: import("./partner.js").PartnerAddFlags, cmd: Command) => {
      state.exitCode = await (await import("./partner.js")).partnerAddCommand(name, flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  const cem = program
    .command("cem")
    .description("certificate exchange (CEM): send a new certificate to a partner, accept or reject a partner's")
    .addHelpText("after", "\nExamples:\n  as2 cem send --partner acme --cert keys/myco-2027.crt --usage signing,encryption --respond-by 2027-01-31T00:00:00Z\n  as2 status                      # shows pending CEM requests\n  as2 cem accept CEM-ACME-20270101T000000000Z-1a2b3c4d5e6f\n  as2 cem reject CEM-ACME-20270101T000000000Z-1a2b3c4d5e6f --reason 'key too short'");
  cem
    .command("send")
    .description("send a CEM request: the new certificate, signed with the current key, to the partner")
    .requiredOption("--partner <name>", "the partner profile")
    .requiredOption("--cert <file>", "the new certificate (PEM, DER or .p7b): the one whose key you will use from --respond-by on")
    .option("--usage <list>", "comma-separated: signing, encryption, tls", "signing,encryption")
    .requiredOption("--respond-by <date>", "ISO date-time by which the partner answers; from then on the new certificate is used")
    .addHelpText("after", "\nExamples:\n  as2 cem send --partner acme --cert keys/myco-2027.crt --respond-by 2027-01-31T00:00:00Z\n  as2 cem send --partner acme --cert keys/myco-2027.crt --usage signing --respond-by 2027-01-31")
    .action(async (flags: import("./cem.js").CemSendFlags, cmd: Command) => {
      state.exitCode = await (await import("./cem.js")).cemSendCommand(flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  for (const decision of ["accept", "reject"] as const) {
    const c = cem
      .command(decision)
      .description(decision === "accept"
        ? "accept a partner's CEM request: its certificate joins the partner's profile with its window, an Accepted response is sent"
        : "reject a partner's CEM request: nothing changes, a Rejected response with the reason is sent")
      .argument("<request-id>", "the request's ID (as2 status lists pending ones)")
      .option("--partner <name>", "the partner, when two sent requests with the same ID");
    if (decision === "reject") c.requiredOption("--reason <text>", "ReasonForRejection sent to the partner");
    c.addHelpText("after", decision === "accept"
      ? "\nExamples:\n  as2 status                 # lists pending CEM requests\n  as2 cem accept CEM-ACME-20270101T000000000Z-1a2b3c4d5e6f"
      : "\nExamples:\n  as2 cem reject CEM-ACME-20270101T000000000Z-1a2b3c4d5e6f --reason 'please use a 3072-bit key'");
    c.action(async (requestId: string, flags: import("./cem.js").CemDecideFlags, cmd: Command) => {
      state.exitCode = await (await import("./cem.js")).cemDecideCommand(decision, requestId, flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  }
  program
    .command("check")
    .description("check the configuration: every key and certificate loads, keys match their certificates, none expires within 30 days")
    .addHelpText("after", "\nExamples:\n  as2 check\n  as2 check --config /etc/as2/.as2rc.json --verbose\n  as2 check --json | jq '.certificates[] | {path, daysLeft}'")
    .action(async (flags: import("./check.js").CheckFlags, cmd: Command) => {
      state.exitCode = await (await import("./check.js")).checkCommand(flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  program
    .command("ping")
    .description("test the connection to a partner: DNS, TCP, proxy, TLS (chain, expiry, client certificate), an HTTP request with its credentials")
    .option("--partner <name>", "the partner profile (from the configuration)")
    .option("--timeout <seconds>", "time limit of each step (default 10)")
    .addHelpText("after", "\nExamples:\n  as2 ping --partner acme\n  as2 ping --partner acme --timeout 3\n  as2 ping --partner acme --json | jq '.steps[] | select(.verdict != \"pass\")'")
    .action(async (flags: import("./ping.js").PingFlags, cmd: Command) => {
      state.exitCode = await (await import("./ping.js")).pingCommand(flags, cmd.optsWithGlobals<GlobalOptions>());
    });
  const db = program
    .command("db")
    .description("the shared database of a postgres store (store.kind \"postgres\")")
    .addHelpText("after", "\nExamples:\n  as2 db migrate");
  db.command("migrate")
    .description("apply the database schema migrations (nodes also apply them when they start)")
    .addHelpText("after", "\nExamples:\n  as2 db migrate --json\n  AS2_DATABASE_URL=postgres://as2:secret@db.example:5432/as2 as2 db migrate")
    .action(async (_flags: unknown, cmd: Command) => {
      state.exitCode = await (await import("./db.js")).dbMigrateCommand(cmd.optsWithGlobals<GlobalOptions>());
    });
  return program;
}

/** The stable code of an error, for `--json` error documents and scripts (contract §7). */
function errorCode(e: unknown): string {
  // A usage error may carry its own stable code (a key file the key commands refuse: AS2_ERR_BAD_KEY, ...).
  if (e instanceof UsageError) return (e as UsageError & { code?: string }).code ?? "AS2_ERR_USAGE";
  if (e instanceof CommanderError) return "AS2_ERR_USAGE";
  if (e instanceof ConfigError) return e.code;
  if (isAs2Error(e)) return e.code;
  return "AS2_ERR_INTERNAL";
}

/**
 * One error boundary (architecture.md §3.10): exit codes of contract §3, a message on stderr,
 * and with --json also one document on stdout, `{ "error": { "code", "message" } }`, so that a
 * script reading stdout always gets something it can parse.
 */
export async function main(argv: string[]): Promise<number> {
  const state = { exitCode: EXIT.OK as number };
  const program = buildProgram(state);
  const json = argv.slice(2).includes("--json");
  const fail = (e: unknown, exitCode: number, message: string): number => {
    if (json) {
      const extra = e instanceof ConfigError ? { problems: e.problems } : {};
      process.stdout.write(`${JSON.stringify({ error: { code: errorCode(e), message, exitCode, ...extra } })}\n`);
    }
    return exitCode;
  };
  if (json) {
    // Commander's own messages (unknown option, missing argument) go through the same document.
    program.configureOutput({ writeErr: (str) => { process.stderr.write(str); } });
  }
  try {
    await program.parseAsync(argv);
    return state.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      if (e.exitCode === 0) return EXIT.OK;
      return fail(e, EXIT.USAGE, e.message.replace(/^error: /, ""));
    }
    const verbose = program.opts<{ verbose?: boolean }>().verbose;
    if (e instanceof ConfigError || e instanceof UsageError) {
      process.stderr.write(`as2: ${e.message}\n`);
      return fail(e, EXIT.USAGE, e.message);
    }
    const msg = isAs2Error(e) ? `${e.code}: ${e.message}${e.suggestion ? `\n  ${e.suggestion}` : ""}` : (e as Error).message;
    process.stderr.write(`as2: ${msg}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return fail(e, EXIT.FAILED, isAs2Error(e) ? e.message : (e as Error).message);
  }
}
