/**
 * Persistent connections to one partner (RFC 9112 §9.3: HTTP/1.1 connections stay open unless
 * either side says `Connection: close`): a job that sends many files opens the TCP connection,
 * the proxy tunnel and the TLS session once and posts one message after the other over it.
 *
 * Node's http.Agent keeps the pool (a free socket goes back to it once the answer is read and
 * the request written; a socket the server closes while idle leaves it; the server's
 * `Keep-Alive: timeout=` hint shortens how long an idle one is kept). What it cannot do itself
 * is our connection setup: proxies (HTTP CONNECT, SOCKS) and TLS are done by openConnection,
 * under the connect timeout, and the agent is handed the ready socket.
 *
 * One request at a time per target (maxSockets 1): AS2 messages of a job go in order, and a
 * second socket would only be a second connection for the partner to accept.
 */
import * as http from "node:http";
import type { Duplex } from "node:stream";
import { openConnection, type ProxySpec, type Target, type TlsSpec } from "./connect.js";

/**
 * How long an idle connection is kept when the server does not say (its Keep-Alive hint wins
 * when shorter): below the 5 s that common servers close idle connections after, so that a
 * connection is seldom reused just as the server closes it. Between the files of a job the
 * connection is idle for milliseconds.
 */
export const IDLE_KEEP_MS = 4_000;

/** What a request hands the agent for opening its connection (see createConnection below). */
export interface ConnectRequest {
  target: Target;
  proxy?: ProxySpec;
  tls?: TlsSpec;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** The request option under which the agent finds the ConnectRequest. */
export const CONNECT_REQUEST = "as2kitConnect";

type AgentOptions = http.RequestOptions & { [CONNECT_REQUEST]?: ConnectRequest };

class PartnerAgent extends http.Agent {
  /** Connections opened (each TCP connect, proxy handshake and TLS handshake once). */
  opened = 0;

  constructor() {
    super({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: IDLE_KEEP_MS, scheduling: "lifo" });
  }

  // The pool key: http and https to the same host:port must not share a connection.
  override getName(options: AgentOptions = {}): string {
    const c = options[CONNECT_REQUEST];
    return `${c?.target.secure ? "tls" : "tcp"}:${super.getName(options as http.ClientRequestArgs)}`;
  }

  /**
   * Node calls this (with the request's options) when no free socket is there; the callback form
   * lets the connection be opened asynchronously, proxy and TLS included.
   */
  override createConnection(options: AgentOptions, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    const c = options[CONNECT_REQUEST];
    if (!c) {
      callback(new Error("as2kit: a request without connection settings reached the partner agent"));
      return undefined;
    }
    openConnection(c).then((conn) => {
      this.opened++;
      callback(null, conn.socket);
    }, (e: Error) => callback(e));
    return undefined;
  }
}

/**
 * Kept-alive connections for the messages of one job (or one sender); `close()` when done. An
 * idle connection does not keep the process alive (the agent unrefs it).
 */
export class PartnerConnections {
  readonly agent = new PartnerAgent();

  /** How many connections were opened so far (for --verbose and the job record). */
  get opened(): number {
    return this.agent.opened;
  }

  close(): void {
    this.agent.destroy();
  }
}
