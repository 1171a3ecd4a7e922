/**
 * `as2 receive` with receive.workers > 1 (contract §7): this process (the supervisor) listens,
 * and hands each accepted connection to one of N worker processes, which run the whole receive
 * path (each is `as2 receive` itself, started with AS2KIT_RECEIVE_WORKER set). They share the
 * data folder: the received ledger's link(2) reservations and compare-and-set replacements work
 * across processes, so a message is stored once whichever worker gets which copy.
 *
 * Why the supervisor accepts and counts rather than letting the kernel or node:cluster spread the
 * connections: receive.maxConnections is a limit on the server as a whole (issue 12 case 7), and
 * only the process that accepts can count all connections; the decision (surplus: answer 503)
 * travels with the socket.
 *
 * - Start-up: the workers recover what a dead receiver left (each takes only entries whose owner
 *   is gone; exactly one wins each, received-ledger.ts `replace`), then say "ready"; only then
 *   does the supervisor listen and print the URL, once.
 * - A worker that dies is replaced; the new one recovers its messages at start (their owner, the
 *   dead worker's host+pid+start time, is gone), and a resend finds them as well.
 * - SIGINT/SIGTERM: the supervisor stops accepting and tells every worker to stop; each finishes
 *   what it has in flight; the exit code is 0 when all of them ended well.
 * - The supervisor killed outright (SIGKILL, OOM): the workers see their IPC channel close and
 *   end at once, as if killed with it, so that nothing keeps answering for a receiver that is gone.
 */
import { fork, type ChildProcess } from "node:child_process";
import * as net from "node:net";
import { EXIT, UsageError, type Context, type GlobalOptions } from "./context.js";
import { startRetentionEvents } from "./receive-retention.js";

/** Set in a worker's environment: its index (0 = the first, which also settles dead send jobs). */
export const WORKER_ENV = "AS2KIT_RECEIVE_WORKER";

/** Messages between the supervisor and a worker (over the IPC channel of child_process.fork). */
export type WorkerMessage =
  | { as2kit: "ready" }
  | { as2kit: "closed" }
  | { as2kit: "conn"; surplus: boolean }
  | { as2kit: "stop" };

/** More restarts than this within RESTART_WINDOW_MS: something is wrong beyond one message; give up. */
const MAX_RESTARTS = 10;
const RESTART_WINDOW_MS = 60_000;

interface Slot {
  index: number;
  child: ChildProcess;
  ready: boolean;
  connections: number;
  /** Sockets sent to the worker whose hand-over has not completed yet. */
  handing: Set<net.Socket>;
}

export async function superviseWorkers(ctx: Context, g: GlobalOptions, workers: number): Promise<number> {
  const r = ctx.config.receive;
  const slots: Slot[] = [];
  let stopping = false;
  let failure: number | undefined;
  const restarts: number[] = [];
  let server: net.Server | undefined;
  let connections = 0;
  let next = 0;
  let settleStart: () => void = () => undefined;
  const allReady = new Promise<void>((resolve) => { settleStart = resolve; });
  let settleEnd: () => void = () => undefined;
  const allEnded = new Promise<void>((resolve) => { settleEnd = resolve; });

  const spawnWorker = (index: number, replacement = false): Slot => {
    // File operations (fsyncs above all) wait in libuv's thread pool, 4 threads by default: with
    // many messages in flight a worker's disk work queued behind them (issue 14).
    const env: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: "16", ...process.env, [WORKER_ENV]: String(index) };
    // A crash test's instruction (crash-point.ts) is for the first workers; their replacements run on.
    if (replacement) delete env.AS2KIT_CRASH_AT;
    const child = fork(process.argv[1]!, process.argv.slice(2), {
      execArgv: process.execArgv,
      env,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const slot: Slot = { index, child, ready: false, connections: 0, handing: new Set() };
    child.on("message", (m: WorkerMessage) => {
      if (m?.as2kit === "ready") {
        slot.ready = true;
        if (slots.every((s) => s.ready)) settleStart();
      } else if (m?.as2kit === "closed") {
        slot.connections--;
        connections--;
      }
    });
    child.once("exit", (code, signal) => {
      connections -= slot.connections;
      slot.connections = 0;
      // A hand-over cut short by the worker's death may never call back: the socket would stay
      // here, unread, and its client would wait for ever. Closing it lets the client send again.
      for (const socket of slot.handing) socket.destroy();
      slot.handing.clear();
      if (stopping) {
        if (code !== 0) failure = EXIT.FAILED;
        if (slots.every((s) => s.child.exitCode !== null || s.child.signalCode !== null)) settleEnd();
        return;
      }
      if (!slot.ready && !server) {
        // A worker that cannot even start (keys, permissions, a full disk): the whole receiver fails.
        failure = code === EXIT.USAGE ? EXIT.USAGE : EXIT.FAILED;
        ctx.output.log(`as2 receive: worker ${index} (pid ${child.pid}) could not start (${signal ?? `exit ${code}`})`);
        void shutdown();
        settleStart();
        return;
      }
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
      if (restarts.length > MAX_RESTARTS) {
        ctx.output.log(`as2 receive: workers ended ${restarts.length} times within ${RESTART_WINDOW_MS / 1000} s; stopping`);
        failure = EXIT.FAILED;
        void shutdown();
        return;
      }
      ctx.output.log(`as2 receive: worker ${index} (pid ${child.pid}) ended (${signal ?? `exit ${code}`}); starting another, which recovers its messages`);
      slots[slots.indexOf(slot)] = spawnWorker(index, true);
    });
    return slot;
  };

  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    server?.close();
    for (const s of slots) {
      if (s.child.exitCode === null && s.child.signalCode === null && s.child.connected) s.child.send({ as2kit: "stop" } satisfies WorkerMessage);
    }
    if (slots.every((s) => s.child.exitCode !== null || s.child.signalCode !== null)) settleEnd();
  };

  for (let i = 0; i < workers; i++) slots.push(spawnWorker(i));
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (!stopping) ctx.output.log(`${sig}: no new connections; finishing what is in flight (in every worker)`);
      void shutdown();
    });
  }
  await allReady;
  if (stopping) {
    await allEnded;
    return failure ?? EXIT.OK;
  }

  // Paused until a worker has it: no byte is read here, the worker's HTTP(S) server reads all.
  server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const ready = slots.filter((s) => s.ready && s.child.connected);
    // Beyond twice the limit the accept is simply closed, as with one process (there Node's
    // server.maxConnections does it; here a socket leaves this process's count once handed over).
    if (!ready.length || stopping || connections >= r.maxConnections * 2) return socket.destroy();
    connections++;
    const slot = ready[next++ % ready.length]!;
    slot.connections++;
    slot.handing.add(socket);
    slot.child.send({ as2kit: "conn", surplus: connections > r.maxConnections } satisfies WorkerMessage, socket, (e) => {
      slot.handing.delete(socket);
      if (!e) return;
      slot.connections--;
      connections--;
      socket.destroy();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server!.once("error", (e: NodeJS.ErrnoException) => reject(e.code === "EADDRINUSE" ? new UsageError(`cannot listen on ${r.host}:${r.port}: the port is in use`) : e));
      server!.listen(r.port, r.host, () => resolve());
    });
  } catch (e) {
    await shutdown();
    await allEnded;
    throw e;
  }
  const addr = server.address() as net.AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const url = `${r.tls ? "https" : "http"}://${host}:${addr.port}${r.path}`;
  if (g.json) process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event: "listening", url })}\n`);
  ctx.output.log(`as2 receive: listening on ${url} as ${ctx.config.station.as2Id} (${workers} workers)`);
  const retention = await startRetentionEvents(ctx, g);
  await allEnded;
  await retention.stop();
  return failure ?? EXIT.OK;
}
