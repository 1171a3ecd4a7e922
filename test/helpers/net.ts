/**
 * Real network peers for transport tests, all on 127.0.0.1: tinyproxy (HTTP proxy) and danted
 * (SOCKS4/5) from Debian, started with generated configs; a CA with server and client
 * certificates made by openssl at test time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { onCleanup, openssl } from "./tools.js";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => { s.destroy(); resolve(true); });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`proxy did not listen on ${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startDaemon(cmd: string, args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => { out += d.toString(); });
  child.stderr!.on("data", (d: Buffer) => { out += d.toString(); });
  onCleanup(() => { child.kill("SIGKILL"); });
  return waitForPort(port, child, () => out).then(() => child);
}

export const PROXY_USER = { username: "proxyuser", password: "proxy-Pass" };
/** Created by scripts/ensure-test-tools.sh: dante checks SOCKS5 logins against system accounts. */
export const SOCKS_USER = { username: "as2kit-socks", password: "as2kit-socks-test" };

/** tinyproxy on 127.0.0.1 with basic auth; CONNECT allowed to any port. */
export async function startTinyproxy(dir: string, auth = true): Promise<number> {
  const port = await freePort();
  const conf = join(dir, `tinyproxy-${port}.conf`);
  writeFileSync(conf, [
    `Port ${port}`, "Listen 127.0.0.1", "Timeout 30", "MaxClients 20", "Allow 127.0.0.1", "DisableViaHeader Yes", "LogLevel Connect",
    ...(auth ? [`BasicAuth ${PROXY_USER.username} ${PROXY_USER.password}`] : []),
  ].join("\n") + "\n");
  await startDaemon("tinyproxy", ["-d", "-c", conf], port);
  return port;
}

/** danted on 127.0.0.1: SOCKS4 without auth, or SOCKS5 requiring a username. */
export async function startDante(dir: string, mode: "socks4" | "socks5-auth"): Promise<number> {
  const port = await freePort();
  const conf = join(dir, `danted-${port}.conf`);
  writeFileSync(conf, [
    "logoutput: stderr",
    `internal: 127.0.0.1 port = ${port}`,
    "external: 127.0.0.1",
    `socksmethod: ${mode === "socks4" ? "none" : "username"}`,
    "user.privileged: root",
    "user.unprivileged: nobody",
    "client pass {", "  from: 127.0.0.0/8 to: 0.0.0.0/0", "}",
    "socks pass {", "  from: 127.0.0.0/8 to: 127.0.0.0/8",
    ...(mode === "socks4" ? ["  protocol: tcp", "  command: connect"] : ["  socksmethod: username", "  protocol: tcp", "  command: connect"]),
    "}",
  ].join("\n") + "\n");
  await startDaemon("/usr/sbin/danted", ["-f", conf, "-N", "1"], port);
  return port;
}

export interface TestPki {
  caCert: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
  /** A second CA that signed nothing we trust. */
  otherCaCert: string;
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, by openssl. */
export function makePki(dir: string): TestPki {
  const p = (n: string) => join(dir, n);
  const ca = (name: string) => {
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p(`${name}.key`), "-out", p(`${name}.crt`), "-days", "2", "-subj", `/CN=${name}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  };
  ca("test-ca");
  ca("other-ca");
  const leaf = (name: string, ext: string) => {
    openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`), "-subj", `/CN=${name}`]);
    writeFileSync(p(`${name}.ext`), ext);
    openssl(["x509", "-req", "-in", p(`${name}.csr`), "-CA", p("test-ca.crt"), "-CAkey", p("test-ca.key"), "-CAcreateserial", "-out", p(`${name}.crt`), "-days", "2", "-extfile", p(`${name}.ext`)]);
  };
  leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  leaf("client", "extendedKeyUsage=clientAuth\n");
  return { caCert: p("test-ca.crt"), serverKey: p("server.key"), serverCert: p("server.crt"), clientKey: p("client.key"), clientCert: p("client.crt"), otherCaCert: p("other-ca.crt") };
}
