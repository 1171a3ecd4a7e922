/**
 * The `as2` program as tests drive it: a one-shot runner, and `as2 receive --json` as a child
 * process whose JSON-lines events the test can wait for.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { onCleanup } from "./tools.js";

export const BIN = join(process.cwd(), "bin", "as2.js");
/** Legacy ciphers (rc2, des) need the legacy provider; the README's bin does the same. */
export const NODE_ARGS = ["--openssl-legacy-provider", BIN];

export interface Run { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export function as2(args: string[], opts: { cwd?: string; env?: Record<string, string>; onSpawn?: (pid: number) => void } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...NODE_ARGS, ...args], { cwd: opts.cwd, env: { ...process.env, NO_COLOR: "1", ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    opts.onSpawn?.(child.pid!);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

export type As2Event = Record<string, unknown> & { event: string };

export interface As2Server {
  url: string;
  proc: ChildProcess;
  events: As2Event[];
  /** Everything the process wrote to stderr so far (for assertion messages). */
  stderr(): string;
  /** Resolves with the first event (past or future) that matches, or rejects after timeoutMs. */
  waitFor(match: (e: As2Event) => boolean, timeoutMs?: number): Promise<As2Event>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `as2 receive --json` with the config and waits for its "listening" line. */
export async function startAs2Receive(configFile: string, extra: string[] = [], env: Record<string, string> = {}): Promise<As2Server> {
  const proc = spawn(process.execPath, [...NODE_ARGS, "receive", "--config", configFile, "--json", ...extra], { env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
  onCleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await exited;
  });
  const events: As2Event[] = [];
  const waiters: Array<{ match: (e: As2Event) => boolean; resolve: (e: As2Event) => void }> = [];
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => { err += d.toString(); });
  let buf = "";
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const e = JSON.parse(line) as As2Event;
      events.push(e);
      for (const w of waiters.splice(0)) (w.match(e) ? w.resolve(e) : waiters.push(w));
    }
  });
  const waitFor = (match: (e: As2Event) => boolean, timeoutMs = 30_000): Promise<As2Event> => {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching as2 receive event in ${timeoutMs} ms; events: ${JSON.stringify(events)}; stderr: ${err}`)), timeoutMs);
      waiters.push({ match, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  };
  const listening = await Promise.race([
    waitFor((e) => e.event === "listening"),
    exited.then(({ code }) => { throw new Error(`as2 receive exited with ${code}: ${err}`); }),
  ]);
  return { url: listening.url as string, proc, events, stderr: () => err, waitFor, exited };
}
