/**
 * Opening the connection to a partner: directly, through an HTTP(S) proxy (CONNECT), or through a
 * SOCKS4/SOCKS5 proxy, then TLS for https URLs. The connect timeout covers all of it (TCP, proxy
 * handshake, TLS handshake), which is what the connector's "Connection Timeout" means to a user:
 * how long before we give up reaching the partner.
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { SocksClient } from "socks";
import { As2Error, ErrorCodes } from "../core/index.js";

export interface ProxySpec {
  type: "http" | "https" | "socks4" | "socks5";
  host: string;
  /** Tried when the primary proxy does not answer (refused, unreachable, timed out). */
  alternateHost?: string;
  port: number;
  username?: string;
  password?: string;
}

export interface TlsSpec {
  ca?: Buffer[];
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  minVersion?: tls.SecureVersion;
  rejectUnauthorized?: boolean;
}

export interface Target {
  host: string;
  port: number;
  secure: boolean;
}

export interface ConnectOptions {
  target: Target;
  proxy?: ProxySpec;
  tls?: TlsSpec;
  /** Milliseconds; 0 waits as long as the operating system does. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface Connection {
  socket: net.Socket;
  /** True when requests must use the absolute URI (a plain-HTTP target through an HTTP proxy). */
  forwardProxy: boolean;
  /** Where the TCP connection went (the proxy, when there is one). */
  via: string;
}

/** Errors where trying again (or the alternate proxy) can help. */
const UNREACHABLE = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNRESET", "EAI_AGAIN", "ENOTFOUND", "EPIPE"]);

export function isUnreachable(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return (code !== undefined && UNREACHABLE.has(code)) || (e instanceof As2Error && e.code === ErrorCodes.TIMEOUT);
}

/** An HTTP Basic credential (RFC 7617), for Authorization and Proxy-Authorization. */
export function basicCredentials(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
}

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function tcp(host: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // No Nagle: a request goes out as headers, then body, then waits for the answer; a small
    // last write must not sit waiting for the peer's delayed ACK (as Node's own HTTP client does).
    const socket = net.connect({ host, port, noDelay: true });
    const fail = (e: Error) => { socket.destroy(); reject(e); };
    const onAbort = () => fail(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", (e) => { signal.removeEventListener("abort", onAbort); fail(e); });
    socket.once("connect", () => { signal.removeEventListener("abort", onAbort); socket.removeAllListeners("error"); resolve(socket); });
  });
}

function tlsWrap(socket: net.Socket, servername: string, spec: TlsSpec | undefined, signal: AbortSignal): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      socket,
      servername: net.isIP(servername) ? undefined : servername,
      ca: spec?.ca?.length ? spec.ca : undefined,
      cert: spec?.cert,
      key: spec?.key,
      passphrase: spec?.passphrase,
      minVersion: spec?.minVersion ?? "TLSv1.2",
      rejectUnauthorized: spec?.rejectUnauthorized ?? true,
      // tls.connect checks the name against the certificate; for IP addresses too (SAN iPAddress).
      host: servername,
      ALPNProtocols: ["http/1.1"],
    });
    const onAbort = () => { s.destroy(); reject(signal.reason); };
    signal.addEventListener("abort", onAbort, { once: true });
    s.once("error", (e) => {
      signal.removeEventListener("abort", onAbort);
      s.destroy();
      reject(new As2Error(ErrorCodes.TLS_FAILED, `TLS handshake with ${servername} failed: ${e.message}`, {
        cause: e,
        suggestion: /certificate|self.signed|issuer/i.test(e.message) ? "add the partner's CA to tls.ca, or check the server's certificate" : /version|protocol/i.test(e.message) ? "check tls.minVersion against what the partner supports" : undefined,
      }));
    });
    s.once("secureConnect", () => { signal.removeEventListener("abort", onAbort); s.removeAllListeners("error"); resolve(s); });
  });
}

/** Sends CONNECT host:port and reads the proxy's answer head (RFC 9110 §9.3.6). */
function httpConnect(socket: net.Socket, target: Target, proxy: ProxySpec, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const authority = hostPort(target.host, target.port);
    let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
    if (proxy.username !== undefined) head += `Proxy-Authorization: ${basicCredentials(proxy.username, proxy.password ?? "")}\r\n`;
    socket.write(`${head}\r\n`);
    let buf = Buffer.alloc(0);
    const cleanup = () => { socket.off("data", onData); socket.off("error", onError); socket.off("end", onEnd); signal.removeEventListener("abort", onAbort); };
    const fail = (e: Error) => { cleanup(); socket.destroy(); reject(e); };
    const onAbort = () => fail(signal.reason as Error);
    const onError = (e: Error) => fail(e);
    const onEnd = () => fail(new As2Error(ErrorCodes.PROXY_FAILED, `the proxy ${hostPort(proxy.host, proxy.port)} closed the connection during CONNECT`));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buf.length > 16 * 1024) fail(new As2Error(ErrorCodes.PROXY_FAILED, "the proxy's CONNECT answer is too long"));
        return;
      }
      cleanup();
      const statusLine = buf.subarray(0, buf.indexOf("\r\n")).toString("latin1");
      const status = Number(/^HTTP\/\d(?:\.\d)? (\d{3})/.exec(statusLine)?.[1] ?? 0);
      if (status !== 200) {
        socket.destroy();
        reject(new As2Error(ErrorCodes.PROXY_FAILED, `the proxy refused CONNECT ${authority}: ${statusLine}`, {
          suggestion: status === 407 || status === 401 ? "check proxy.username and proxy.password" : undefined,
        }));
        return;
      }
      const rest = buf.subarray(end + 4);
      if (rest.length) socket.unshift(rest);
      resolve(socket);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    socket.on("data", onData);
    socket.once("error", onError);
    socket.once("end", onEnd);
  });
}

async function viaSocks(host: string, target: Target, proxy: ProxySpec, signal: AbortSignal): Promise<net.Socket> {
  return socksHandshake(await tcp(host, proxy.port, signal), host, target, proxy, signal);
}

/** The SOCKS4/SOCKS5 handshake over a TCP connection to the proxy `host`. */
async function socksHandshake(tcpSocket: net.Socket, host: string, target: Target, proxy: ProxySpec, signal: AbortSignal): Promise<net.Socket> {
  const onAbort = () => tcpSocket.destroy(signal.reason as Error);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const { socket } = await SocksClient.createConnection({
      proxy: {
        host, port: proxy.port, type: proxy.type === "socks4" ? 4 : 5,
        // SOCKS4 carries a user ID only; SOCKS5 uses username/password (RFC 1929).
        userId: proxy.username, password: proxy.type === "socks5" ? proxy.password : undefined,
      },
      command: "connect",
      destination: { host: target.host, port: target.port },
      existing_socket: tcpSocket,
    });
    return socket;
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    if (isUnreachable(e)) throw e;
    throw new As2Error(ErrorCodes.PROXY_FAILED, `the ${proxy.type} proxy ${hostPort(host, proxy.port)} did not connect us to ${hostPort(target.host, target.port)}: ${(e as Error).message}`, {
      cause: e,
      suggestion: /auth/i.test((e as Error).message) ? "check proxy.username and proxy.password" : undefined,
    });
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

async function throughProxy(host: string, o: ConnectOptions, signal: AbortSignal): Promise<Connection> {
  const proxy = o.proxy!;
  const via = `${proxy.type} proxy ${hostPort(host, proxy.port)}`;
  if (proxy.type === "socks4" || proxy.type === "socks5") {
    const s = await viaSocks(host, o.target, proxy, signal);
    return { socket: o.target.secure ? await tlsWrap(s, o.target.host, o.tls, signal) : s, forwardProxy: false, via };
  }
  let s = await tcp(host, proxy.port, signal);
  // An "https" proxy is reached over TLS itself (checked with the same CA list).
  if (proxy.type === "https") s = await tlsWrap(s, host, { ca: o.tls?.ca, rejectUnauthorized: o.tls?.rejectUnauthorized }, signal);
  // Plain HTTP goes through the proxy as an absolute-URI request (proxies often allow CONNECT only to 443).
  if (!o.target.secure) return { socket: s, forwardProxy: true, via };
  s = await httpConnect(s, o.target, proxy, signal);
  return { socket: await tlsWrap(s, o.target.host, o.tls, signal), forwardProxy: false, via };
}

/** Runs one connection attempt under its own connect timeout, cancelled by the caller's signal too. */
async function withinTimeout<T>(o: ConnectOptions, what: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = o.timeoutMs > 0
    ? setTimeout(() => controller.abort(new As2Error(ErrorCodes.TIMEOUT, `connecting to ${what} timed out after ${o.timeoutMs / 1000} s`, { suggestion: "raise connectTimeout, or check the URL and the network" })), o.timeoutMs)
    : undefined;
  const onOuterAbort = () => controller.abort(o.signal!.reason);
  if (o.signal?.aborted) onOuterAbort();
  o.signal?.addEventListener("abort", onOuterAbort, { once: true });
  try {
    return await run(controller.signal);
  } finally {
    if (timer) clearTimeout(timer);
    o.signal?.removeEventListener("abort", onOuterAbort);
  }
}

/**
 * The pieces openConnection is made of, one by one, for `as2 ping` (issue 16), which times and
 * reports each step: TCP to a host, the HTTP CONNECT or SOCKS handshake through a proxy, TLS.
 * Each takes a signal that aborts it; TLS failures come as TLS_FAILED with a suggestion.
 */
export const connectSteps = { tcp, tls: tlsWrap, httpConnect, socks: socksHandshake } as const;

/** Opens a ready-to-use socket to the target (TLS done for https), within the connect timeout. */
export async function openConnection(o: ConnectOptions): Promise<Connection> {
  const target = hostPort(o.target.host, o.target.port);
  try {
    if (!o.proxy) {
      return await withinTimeout(o, target, async (signal) => {
        const s = await tcp(o.target.host, o.target.port, signal);
        return { socket: o.target.secure ? await tlsWrap(s, o.target.host, o.tls, signal) : s, forwardProxy: false, via: "direct" };
      });
    }
    const proxy = o.proxy;
    const attempt = (host: string) => withinTimeout(o, `${target} through the ${proxy.type} proxy ${hostPort(host, proxy.port)}`, (signal) => throughProxy(host, o, signal));
    try {
      return await attempt(proxy.host);
    } catch (e) {
      // The alternate proxy host is for a primary that does not answer, not for one that refuses us.
      if (!proxy.alternateHost || !isUnreachable(e) || o.signal?.aborted) throw e;
      return await attempt(proxy.alternateHost);
    }
  } catch (e) {
    if (e instanceof As2Error) throw e;
    const err = e as NodeJS.ErrnoException;
    const where = o.proxy ? `the ${o.proxy.type} proxy ${hostPort(o.proxy.host, o.proxy.port)}${o.proxy.alternateHost ? ` or ${hostPort(o.proxy.alternateHost, o.proxy.port)}` : ""}` : target;
    throw new As2Error(ErrorCodes.CONNECT_FAILED, `cannot connect to ${where}: ${err.code ?? err.message}`, { cause: e });
  }
}
