/**
 * `as2 receive` (contract §2): the AS2 server in the foreground. One line per event on stderr
 * (JSON lines on stdout with --json); the listening URL at start; SIGINT/SIGTERM stop accepting,
 * finish what is in flight, and exit 0; --once exits after the first message or MDN.
 */
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { availableParallelism } from "node:os";
import { loadKeyMaterial, tlsPemOptions } from "../config/keys.js";
import { openStore } from "../store/index.js";
import { settleDeadSendJobs } from "../jobs/send-recovery.js";
import { createReceiver, type ReceiveEvent, type Receiver } from "../jobs/receive.js";
import { EXIT, UsageError, loadContext, type GlobalOptions } from "./context.js";
import { WORKER_ENV, superviseWorkers, type WorkerMessage } from "./receive-workers.js";
import { startRetentionEvents } from "./receive-retention.js";

export interface ReceiveFlags {
  host?: string;
  port?: string;
  path?: string;
  once?: boolean;
}

function describe(e: ReceiveEvent): string {
  const parts = [e.time, e.event.toUpperCase()];
  if (e.partner) parts.push(e.partner);
  if (e.messageId) parts.push(e.messageId);
  if (e.file) parts.push(`-> ${e.file}${e.files && e.files.length > 1 ? ` (+${e.files.length - 1} more attachments)` : ""}`);
  if (e.bytes !== undefined) parts.push(`${e.bytes} bytes`);
  if (e.disposition) parts.push(e.disposition);
  if (e.status) parts.push(`HTTP ${e.status}`);
  if (e.detail) parts.push(`(${e.detail})`);
  if (e.remote) parts.push(`from ${e.remote}`);
  return parts.join("  ");
}

export async function receiveCommand(flags: ReceiveFlags, g: GlobalOptions): Promise<number> {
  const ctx = await loadContext(g);
  let closing = false;
  let server: http.Server | undefined;
  let stopped: () => void = () => undefined;
  const stop = () => {
    if (closing || !server) return;
    closing = true;
    const srv = server;
    // Stop accepting; in-flight requests finish; keep-alive sockets go as soon as they are idle.
    const sweep = setInterval(() => srv.closeIdleConnections(), 100);
    srv.close(() => { clearInterval(sweep); stopped(); });
    srv.closeIdleConnections();
  };
  const r = ctx.config.receive;
  if (flags.host) r.host = flags.host;
  if (flags.port !== undefined) {
    const n = Number(flags.port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port takes 0-65535, not "${flags.port}"`);
    r.port = n;
  }
  if (flags.path) {
    if (!flags.path.startsWith("/")) throw new UsageError(`--path must start with /, not "${flags.path}"`);
    r.path = flags.path;
  }
  // receive.workers (contract §7): several processes behind this one (receive-workers.ts); --once takes one message, in one process.
  const worker = process.env[WORKER_ENV] !== undefined && process.send ? Number(process.env[WORKER_ENV]) : undefined;
  const workers = flags.once ? 1 : (r.workers ?? availableParallelism());
  const keys = loadKeyMaterial(ctx.config, new Date());
  // The server's TLS files as PEM for Node (valid DER converted); a wrong one in plain words, before anything starts.
  const tlsPem = r.tls && tlsPemOptions({ ...r.tls, at: "receive.tls", paths: { ca: "ca", certificate: "certificate", key: "key", password: "password" } });
  // Said once: by the single process, or by the supervisor (which loads the keys to check them before any worker starts).
  if (worker === undefined) for (const w of keys.warnings) ctx.output.warn(w);
  if (worker === undefined && workers > 1) return superviseWorkers(ctx, g, workers);

  const receiver = createReceiver({
    config: ctx.config, keys, configPath: ctx.configPath,
    onEvent: (e) => {
      if (g.json) process.stdout.write(`${JSON.stringify(e)}\n`);
      else ctx.output.log(describe(e));
    },
    onHandled: () => { if (flags.once) stop(); },
  });
  // Before listening: messages a killed receiver left unfinished are finished or failed (the
  // README's receive pipeline), so a resend arriving now finds them settled.
  const { recovered, swept } = await receiver.start();
  if (!worker) await settleDeadSendJobs(openStore(ctx.config), ctx.config.dataDir);
  if (recovered) ctx.output.log(`recovered ${recovered} message(s) that an earlier receiver did not finish`);
  if (swept) ctx.output.log(`removed ${swept} incomplete temp file(s) left in the inboxes by an earlier receiver that did not finish`);

  const handler = receiver.handle;
  const finished = new Promise<void>((resolve) => { stopped = resolve; });
  const requestClientCert = !!r.tls?.requestClientCertificate || Object.values(ctx.config.partners).some((p) => p.inbound.requireClientCertificate);
  const options = {
    maxHeaderSize: r.maxHeaderBytes,
    requestTimeout: r.requestTimeout * 1000,
    // A client that trickles its headers is cut off (Node answers 408 and closes); Node wants it
    // no longer than requestTimeout.
    headersTimeout: Math.min(r.headersTimeout, r.requestTimeout) * 1000,
    // Node checks the timeouts every connectionsCheckingInterval (30 s by default); check often
    // enough that receive.requestTimeout is kept to within a quarter of itself.
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, (Math.min(r.requestTimeout, r.headersTimeout) * 1000) / 4)),
  };
  server = r.tls
    ? https.createServer({
      ...options,
      ...tlsPem,
      // Per-partner enforcement happens in the handler; the handshake only asks.
      requestCert: requestClientCert, rejectUnauthorized: false,
    }, handler)
    : http.createServer(options, handler);
  // One more than the limit, so that the handler can tell "more than allowed" (431) from "exactly".
  server.maxHeadersCount = r.maxHeaderCount + 1;
  if (worker !== undefined) return serveAsWorker(server, receiver);
  receiver.watch(server);
  // on, not once: the same signal may arrive twice (the process group and bin/as2.js passing it
  // on), and a second delivery must not kill a receiver that is finishing its messages.
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => { if (!closing) ctx.output.log(`${sig}: no new connections; finishing what is in flight`); stop(); });
  await new Promise<void>((resolve, reject) => {
    server!.once("error", (e: NodeJS.ErrnoException) => reject(e.code === "EADDRINUSE" ? new UsageError(`cannot listen on ${r.host}:${r.port}: the port is in use`) : e));
    server!.listen(r.port, r.host, () => resolve());
  });
  const addr = server!.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const url = `${r.tls ? "https" : "http"}://${host}:${addr.port}${r.path}`;
  if (g.json) process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event: "listening", url })}\n`);
  ctx.output.log(`as2 receive: listening on ${url} as ${ctx.config.station.as2Id}${flags.once ? " (--once)" : ""}`);
  const retention = await startRetentionEvents(ctx, g);
  await finished;
  await retention.stop();
  await receiver.stop();
  return EXIT.OK;
}

/**
 * A worker of receive-workers.ts: connections come from the supervisor, which listens and counts
 * them; stopping is the supervisor's word (or a signal to the whole process group).
 */
async function serveAsWorker(server: http.Server, receiver: Receiver): Promise<number> {
  const sockets = new Set<Socket>();
  const counted = new WeakSet<Socket>();
  let closing = false;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => { done = resolve; });
  receiver.watch(server, (socket) => counted.has(socket));
  // Once stopping, every response closes its connection; idle ones are closed at once.
  server.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => { if (closing) res.shouldKeepAlive = false; });
  const stop = () => {
    if (closing) return;
    closing = true;
    const sweep = setInterval(() => {
      server.closeIdleConnections();
      if (!sockets.size) { clearInterval(sweep); done(); }
    }, 50);
  };
  process.on("message", (m: WorkerMessage, socket?: Socket) => {
    if (m?.as2kit === "stop") return stop();
    if (m?.as2kit !== "conn" || !socket) return;
    if (closing) return void socket.destroy();
    sockets.add(socket);
    if (m.surplus) counted.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      if (process.connected) process.send!({ as2kit: "closed" } satisfies WorkerMessage);
    });
    server.emit("connection", socket);
  });
  // The supervisor is gone without telling us (killed): end now, as if killed with it.
  process.on("disconnect", () => { if (!closing) process.kill(process.pid, "SIGKILL"); else done(); });
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, stop);
  // This server never listens (the supervisor does), but Node starts its check of
  // headersTimeout/requestTimeout on "listening": without it a client that trickles its headers
  // would hold a connection for ever (issue 12 case 7).
  server.emit("listening");
  process.send!({ as2kit: "ready" } satisfies WorkerMessage);
  await finished;
  await receiver.stop();
  if (process.connected) process.disconnect();
  return EXIT.OK;
}
