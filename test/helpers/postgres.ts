/**
 * A throwaway PostgreSQL cluster per test file, from Debian's binaries (scripts/ensure-test-tools.sh
 * installs them): initdb into a temp folder, the server in the foreground on 127.0.0.1 with a free
 * port and its unix socket in the temp folder, a database and a password user for as2kit. The
 * server runs as the system user as2kit-pg (PostgreSQL refuses to run as root; setpriv execs, so
 * the child's PID is the postmaster's own) and is stopped by that PID when the file's tests end.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./net.js";
import { onCleanup, tempDir } from "./tools.js";

export const PG_SYSTEM_USER = "as2kit-pg";

function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error("PostgreSQL is not installed: run scripts/ensure-test-tools.sh (Debian package postgresql)");
  return join(root, versions[0]!, "bin");
}

function ids(): { uid: number; gid: number } {
  const uid = Number(execFileSync("id", ["-u", PG_SYSTEM_USER]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", PG_SYSTEM_USER]).toString().trim());
  return { uid, gid };
}

/** Runs a command as the PostgreSQL system user when we are root (CI), as ourselves otherwise. */
function asPgUser(cmd: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [cmd, args];
  return ["setpriv", [`--reuid=${PG_SYSTEM_USER}`, `--regid=${PG_SYSTEM_USER}`, "--init-groups", "--", cmd, ...args]];
}

export interface TestPostgres {
  /** postgres://as2:<password>@127.0.0.1:<port>/as2 */
  url: string;
  port: number;
  password: string;
  /** Runs SQL as the superuser over the unix socket (in database "as2" unless told); returns psql's unaligned output. */
  psql(sql: string, database?: string): string;
  /** Fast shutdown (SIGINT), waiting for the server to exit. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and data. */
  start(): Promise<void>;
}

export interface PostgresOptions {
  /** fsync off: a throwaway cluster in tests need not survive power loss (the benchmark keeps it on). */
  durable?: boolean;
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<TestPostgres> {
  const bin = binDir();
  const root = tempDir("as2kit-pg-");
  const data = join(root, "data");
  const socketDir = join(root, "sock");
  mkdirSync(socketDir);
  if (process.getuid?.() === 0) {
    const { uid, gid } = ids();
    chownSync(root, uid, gid);
    chownSync(socketDir, uid, gid);
  }
  const pwFile = join(root, "superuser.pw");
  writeFileSync(pwFile, "unused\n", { mode: 0o644 });
  const [initCmd, initArgs] = asPgUser(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile", pwFile, "-E", "UTF8", "--no-instructions", "--locale=C"]);
  execFileSync(initCmd, initArgs, { stdio: ["ignore", "pipe", "pipe"] });

  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = "";
  const start = async (): Promise<void> => {
    const settings = ["-c", "listen_addresses=127.0.0.1", "-c", `port=${port}`, "-c", `unix_socket_directories=${socketDir}`, "-c", "max_connections=200",
      ...(opts.durable ? [] : ["-c", "fsync=off", "-c", "full_page_writes=off"])];
    const [cmd, args] = asPgUser(join(bin, "postgres"), ["-D", data, ...settings]);
    const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    proc.stdout!.on("data", (d: Buffer) => { log += d.toString(); });
    proc.stderr!.on("data", (d: Buffer) => { log += d.toString(); });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`postgres exited with ${proc.exitCode}: ${log}`);
      try {
        execFileSync(join(bin, "pg_isready"), ["-h", socketDir, "-p", String(port), "-q"]);
        return;
      } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGINT"); // fast shutdown: active connections are ended, as in a restart by an operator
    await exited;
  };
  onCleanup(stop);
  await start();

  const psql = (sql: string, database = "as2"): string => execFileSync(join(bin, "psql"), ["-h", socketDir, "-p", String(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-A", "-t", "-c", sql]).toString();
  const password = `as2-${Math.random().toString(36).slice(2)}`;
  psql(`CREATE ROLE as2 LOGIN PASSWORD '${password}'`, "postgres");
  psql("CREATE DATABASE as2 OWNER as2", "postgres");
  return { url: `postgres://as2:${password}@127.0.0.1:${port}/as2`, port, password, psql, stop, start };
}
