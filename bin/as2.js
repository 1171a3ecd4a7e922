#!/usr/bin/env node
// A plain "env node" shebang (env -S is missing on older systems). The legacy OpenSSL provider
// (partners that still use CAST5 or IDEA: as2-reference.md §19) can only be enabled when Node
// starts, so without it on the command line or in NODE_OPTIONS the program runs itself again
// with it, passing signals on (the program takes a signal that arrives twice as one).
import { spawn } from "node:child_process";

const FLAG = "--openssl-legacy-provider";
if (process.execArgv.includes(FLAG) || (process.env.NODE_OPTIONS ?? "").includes(FLAG)) {
  const { main } = await import("../dist/cli/main.js");
  process.exitCode = await main(process.argv);
} else {
  const child = spawn(process.execPath, [...process.execArgv, FLAG, ...process.argv.slice(1)], { stdio: "inherit" });
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
