// The shared store's benchmark (issue 15): messages per second through
//   1. one `as2 receive` node on the files store (the baseline),
//   2. one node on PostgreSQL,
//   3. BENCH_CLUSTER_NODES (default 3) nodes on PostgreSQL behind HAProxy (round robin),
//   4. the same nodes taken in turn by the client itself (what HAProxy adds),
//   5. as many nodes on the files store sharing one data folder (one host: what more processes
//      on this machine give by themselves),
// each taking BENCH_CLUSTER_MSGS (default 150) distinct 1 KiB messages, signed + encrypted with a
// signed sync MDN, posted BENCH_CLUSTER_CONCURRENCY (default 16) at a time. The messages are built
// beforehand (`as2 send --dry-run`), so only the receiving side is measured. PostgreSQL and
// HAProxy are the real Debian ones (scripts/ensure-test-tools.sh), started here and stopped at
// the end; PostgreSQL with fsync on, as in production.
//   node --openssl-legacy-provider --import tsx bench/cluster.bench.ts
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { startHaproxy } from "../test/helpers/haproxy.js";
import { freePort } from "../test/helpers/net.js";
import { readDryRun, request, type Req } from "../test/helpers/post.js";
import { startPostgres } from "../test/helpers/postgres.js";
import { opensslIdentity, tempDir } from "../test/helpers/tools.js";

const MSGS = Number(process.env.BENCH_CLUSTER_MSGS ?? 150);
const NODES = Number(process.env.BENCH_CLUSTER_NODES ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CLUSTER_CONCURRENCY ?? 16);
const AS2 = ["--openssl-legacy-provider", "bin/as2.js"];
/** Untimed messages first, so that every node's JIT is warm (each node of the cluster gets its share). */
const WARMUP = 2 * CONCURRENCY * NODES;

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [...AS2, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    c.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function node(config: string, port: number, env: Record<string, string>): Promise<ChildProcess> {
  const c = spawn(process.execPath, [...AS2, "receive", "--config", config, "--port", String(port), "--json"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    let buf = "";
    let err = "";
    c.stderr!.on("data", (d: Buffer) => { err += d.toString(); });
    c.stdout!.on("data", (d: Buffer) => { buf += d.toString(); if (buf.includes('"listening"')) resolve(); });
    c.once("exit", (code) => reject(new Error(`as2 receive exited with ${code}: ${err}`)));
  });
  return c;
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  c.kill("SIGTERM");
  await exited;
}

/** Posts the requests, CONCURRENCY at a time; messages per second after the warm-up, and every answer must be 200. */
async function blast(url: string | string[], all: Req[]): Promise<number> {
  await post(url, all.slice(0, WARMUP));
  const reqs = all.slice(WARMUP);
  const start = process.hrtime.bigint();
  await post(url, reqs);
  return reqs.length / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** One URL, or several taken in turn (round robin by the client itself). */
async function post(url: string | string[], reqs: Req[]): Promise<void> {
  const urls = Array.isArray(url) ? url : [url];
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < reqs.length) {
      const i = next++;
      const res = await request(urls[i % urls.length]!, reqs[i]!);
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.toString()}`);
    }
  }));
}

test(`cluster benchmark: ${MSGS} messages, ${CONCURRENCY} at a time`, { timeout: 1_800_000 }, async () => {
  const dir = tempDir("as2kit-cluster-bench-");
  opensslIdentity("hub", dir);
  opensslIdentity("myco", dir);
  const db = await startPostgres({ durable: true });
  const env = { AS2_DATABASE_URL: db.url };
  const hub = (name: string, store?: object) => {
    const f = join(dir, `${name}.json`);
    writeFileSync(f, JSON.stringify({
      dataDir: `./${name}-data`, ...(store ? { store } : {}),
      station: { as2Id: "HUB", key: { pem: "hub.key", certificate: "hub.crt" } },
      receive: { host: "127.0.0.1", port: 0, path: "/as2" },
      partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt" } },
    }));
    return f;
  };
  const filesConfig = hub("files");
  const pgConfig = hub("pg", { kind: "postgres", url: "${AS2_DATABASE_URL}" });
  const myco = join(dir, "myco.json");
  writeFileSync(myco, JSON.stringify({
    dataDir: "./myco-data", station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { hub: { as2Id: "HUB", url: "http://127.0.0.1:9/as2", certificate: "hub.crt", sign: "sha256", encrypt: "aes256-cbc", mdn: { request: "signed", mode: "sync" } } },
  }));
  const batch = async (label: string): Promise<Req[]> => {
    const out = join(dir, `out-${label}`);
    mkdirSync(out);
    const files = Array.from({ length: MSGS + WARMUP }, (_, i) => { const p = join(out, `${label}-${i}.edi`); writeFileSync(p, randomBytes(1024)); return p; });
    const r = await run(["send", "--config", myco, "--partner", "hub", "--dry-run", "--out", join(dir, `built-${label}`), "--json", ...files]);
    if (r.code !== 0) throw new Error(r.stderr);
    return (JSON.parse(r.stdout) as { messages: Array<{ out: string }> }).messages.map((m) => readDryRun(m.out));
  };

  const results: Array<[string, number]> = [];
  {
    const port = await freePort();
    const n = await node(filesConfig, port, env);
    results.push(["1 node, files store", await blast(`http://127.0.0.1:${port}/as2`, await batch("files"))]);
    await stop(n);
  }
  {
    const port = await freePort();
    const n = await node(pgConfig, port, env);
    results.push(["1 node, postgres store", await blast(`http://127.0.0.1:${port}/as2`, await batch("pg1"))]);
    await stop(n);
  }
  {
    const ports = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    const nodes = await Promise.all(ports.map((p) => node(pgConfig, p, env)));
    const lb = await startHaproxy(dir, ports.map((port) => ({ host: "127.0.0.1", port })));
    await new Promise((r) => setTimeout(r, 2500)); // health checks see every node up (rise 2, inter 1 s)
    results.push([`${NODES} nodes behind HAProxy, postgres store`, await blast(lb.url, await batch("cluster"))]);
    // The same nodes without the balancer (the client takes them in turn): HAProxy's own share.
    results.push([`${NODES} nodes, client round robin, postgres`, await blast(ports.map((p) => `http://127.0.0.1:${p}/as2`), await batch("direct"))]);
    await lb.stop();
    await Promise.all(nodes.map(stop));
  }
  {
    // Several processes on one data folder with the files store (one host only): what running
    // more processes on this machine gives by itself, whatever the store.
    const ports = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    const nodes = await Promise.all(ports.map((p) => node(filesConfig, p, env)));
    results.push([`${NODES} nodes, client round robin, files`, await blast(ports.map((p) => `http://127.0.0.1:${p}/as2`), await batch("files3"))]);
    await Promise.all(nodes.map(stop));
  }
  const base = results[0]![1];
  process.stdout.write(`\ncluster benchmark (load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores): ${MSGS} messages of 1 KiB (sha256 + aes256-cbc, signed sync MDN), ${CONCURRENCY} at a time\n`);
  for (const [what, rate] of results) process.stdout.write(`  ${what.padEnd(42)} ${rate.toFixed(1).padStart(7)} messages/s  (${(rate / base).toFixed(2)}x)\n`);
});
