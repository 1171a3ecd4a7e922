#!/usr/bin/env node
// A plain "env node" shebang (env -S is missing on older systems).
//
// OpenSSL's legacy provider is what Node's crypto needs for CAST5 and IDEA (as2-reference.md §19;
// RC2 is node-forge's, 3DES and AES are in the default provider) and for private keys encrypted
// with single DES. It can only be enabled when Node starts, so a command that may meet such a
// cipher or key runs this program again with --openssl-legacy-provider, passing signals on (the
// program takes a signal that arrives twice as one). A second Node start costs about 60 ms, so
// only the commands in NEEDS_LEGACY_PROVIDER do that; the others (`as2 --version`, `--help`,
// `status`, `init`, ...) run here, in this process (issue 14).
import { spawn } from "node:child_process";
import { statSync } from "node:fs";

const FLAG = "--openssl-legacy-provider";
/** The commands that decrypt, or load a private key or a file that may hold one. */
const NEEDS_LEGACY_PROVIDER = new Set(["send", "receive", "mdn-verify", "keys", "check", "ping", "partner"]);
/** Global options that take a value (contract §2): the word after them is not the command. */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(["-c", "--config", "--data-dir"]);

/** The command word of the arguments (undefined for `as2 --version`, `as2 --help`, `as2`). */
function commandWord(args) {
  for (let i = 0; i < args.length; i++) {
    if (GLOBAL_OPTIONS_WITH_VALUE.has(args[i])) i++;
    else if (args[i] === "--") return args[i + 1];
    else if (!args[i].startsWith("-")) return args[i];
  }
  return undefined;
}

/**
 * The program: the bundle (scripts/bundle-cli.mjs; `npm run build`, pretest and prepack make it).
 * In a checkout (tsconfig.json beside bin/), `npx tsc` alone after a change leaves an older
 * bundle behind: there the newer of the bundle and tsc's dist/cli/main.js runs. An installed
 * package (its files' times are those of unpacking, in any order) always runs its bundle.
 */
function programFile() {
  const bundle = "../dist/bundle/main.js";
  const modified = (url) => statSync(new URL(url, import.meta.url), { throwIfNoEntry: false })?.mtimeMs;
  if (modified("../tsconfig.json") === undefined) return modified(bundle) === undefined ? "../dist/cli/main.js" : bundle;
  return (modified(bundle) ?? -1) >= (modified("../dist/cli/main.js") ?? -1) ? bundle : "../dist/cli/main.js";
}

/**
 * Set by the first start for the second one: the file descriptor of a pipe whose other end only
 * the first start holds. When the first start dies without passing a signal on (SIGKILL, the OOM
 * killer), the pipe reads end-of-file and the second start ends the same way at once: a receiver
 * must not go on holding the port and answering for a program its supervisor believes is gone.
 */
const PARENT_PIPE_ENV = "AS2KIT_PARENT_PIPE";

/** In the second start: die with the first (Linux has PR_SET_PDEATHSIG, Node does not offer it). */
async function followParent() {
  const fd = Number(process.env[PARENT_PIPE_ENV]);
  delete process.env[PARENT_PIPE_ENV]; // not for the processes this one starts (receive workers)
  if (!Number.isInteger(fd) || fd < 3) return;
  const { Socket } = await import("node:net");
  const pipe = new Socket({ fd, readable: true, writable: false });
  const die = () => process.kill(process.pid, "SIGKILL");
  pipe.on("end", die);
  pipe.on("error", die);
  pipe.resume();
  pipe.unref(); // it never keeps the program running
}

const command = commandWord(process.argv.slice(2));
const hasLegacyProvider = process.execArgv.includes(FLAG) || (process.env.NODE_OPTIONS ?? "").includes(FLAG);
if (hasLegacyProvider || !NEEDS_LEGACY_PROVIDER.has(command)) {
  if (process.env[PARENT_PIPE_ENV]) await followParent();
  const { main } = await import(programFile());
  process.exitCode = await main(process.argv);
} else {
  const child = spawn(process.execPath, [...process.execArgv, FLAG, ...process.argv.slice(1)], {
    stdio: ["inherit", "inherit", "inherit", "pipe"],
    env: { ...process.env, [PARENT_PIPE_ENV]: "3" },
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => {
    if (!signal) {
      process.exitCode = code ?? 1;
      return;
    }
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
}
