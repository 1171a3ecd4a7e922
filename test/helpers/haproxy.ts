/**
 * A real load balancer (HAProxy from Debian) in front of several `as2 receive` nodes, all on
 * 127.0.0.1: round robin, with health checks so that a node that dies is taken out of the
 * rotation. Runs in the foreground (-db) with a generated configuration; stopped by its PID.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { freePort } from "./net.js";
import { onCleanup } from "./tools.js";

export interface TestHaproxy {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** The configuration as README shows it, with the backends' ports filled in. */
export function haproxyConfig(port: number, backends: Array<{ host: string; port: number }>, path = "/as2"): string {
  return [
    "global",
    "  maxconn 512",
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    "  timeout client 120s",
    "  timeout server 120s",
    // A node busy with signatures answers its health check late: slow is not down.
    "  timeout check 10s",
    // A request a node failed to answer (connection refused: it just died) goes to another one.
    "  retries 2",
    "  option redispatch",
    "frontend as2",
    `  bind 127.0.0.1:${port}`,
    "  default_backend as2_nodes",
    "backend as2_nodes",
    "  balance roundrobin",
    // Any HTTP answer shows the node is up (a GET on the AS2 path is answered 405).
    `  option httpchk GET ${path}`,
    "  http-check expect rstatus ^[2-5]",
    ...backends.map((b, i) => `  server node${i + 1} ${b.host}:${b.port} check inter 1s fall 3 rise 2`),
    "",
  ].join("\n");
}

export async function startHaproxy(dir: string, backends: Array<{ host: string; port: number }>, path = "/as2", listenPort?: number): Promise<TestHaproxy> {
  const port = listenPort ?? (await freePort());
  const conf = join(dir, `haproxy-${port}.cfg`);
  writeFileSync(conf, haproxyConfig(port, backends, path));
  const proc = spawn("haproxy", ["-db", "-f", conf], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stdout!.on("data", (d: Buffer) => { log += d.toString(); });
  proc.stderr!.on("data", (d: Buffer) => { log += d.toString(); });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    await exited;
  };
  onCleanup(stop);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`haproxy exited with ${proc.exitCode}: ${log}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => { s.destroy(); resolve(true); });
      s.once("error", () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`haproxy did not listen on ${port}: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://127.0.0.1:${port}${path}`, port, stop };
}
