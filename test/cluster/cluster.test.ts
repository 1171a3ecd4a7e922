/**
 * Several `as2 receive` nodes on one PostgreSQL behind a real load balancer (issue 15): station
 * HUB runs three nodes with the same configuration (store postgres, one shared data folder and
 * inbox) behind HAProxy on 127.0.0.1; its partner MYCO is one ordinary node (files store).
 *
 * - concurrent copies of the same messages spread over the nodes: each stored once, every copy
 *   answered with the same MDN;
 * - `as2 send` from HUB with async MDNs: the MDNs arrive at whichever node the balancer picks
 *   (none of them is the sending process), and every job settles SUCCESS;
 * - `as2 status` lists every job, from a configuration whose own data folder is empty;
 * - SIGKILL of a node in the middle of transfers: the partner's resends land once, the dead
 *   node's work is finished by a live node, nothing is left ONGOING;
 * - PostgreSQL restarted mid-run: the nodes answer 503 with Retry-After meanwhile, never a
 *   positive MDN, and recover on their own.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { before, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";
import { startHaproxy, type TestHaproxy } from "../helpers/haproxy.js";
import { freePort } from "../helpers/net.js";
import { checkMdnWithOpenssl } from "../helpers/openssl-sender.js";
import { postTogether, readDryRun, request, type Req } from "../helpers/post.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";

const dir = tempDir("as2kit-cluster-");
const NODES = 3;
const POSITIVE = /^automatic-action\/MDN-sent-automatically;\s*processed$/i;
const hubInbox = join(dir, "hub-data", "inbox", "myco");
const mycoInbox = join(dir, "myco-data", "inbox", "hub");

let db: TestPostgres;
let lb: TestHaproxy;
let env: Record<string, string>;
let hubConfig: string;
let mycoConfig: string;
const nodePorts: number[] = [];
const nodes: Array<As2Server | undefined> = [];

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

const names = (folder: string, match: RegExp) => (existsSync(folder) ? readdirSync(folder) : []).filter((n) => match.test(n)).sort();

async function startNode(i: number, extraEnv: Record<string, string> = {}): Promise<As2Server> {
  const node = await startAs2Receive(hubConfig, ["--port", String(nodePorts[i])], { ...env, ...extraEnv });
  nodes[i] = node;
  return node;
}

async function stopNode(i: number): Promise<void> {
  const n = nodes[i];
  if (!n || n.proc.exitCode !== null || n.proc.signalCode !== null) return;
  n.proc.kill("SIGTERM");
  await n.exited;
}

/** Waits until HAProxy's health checks see every node up (a request to each one). */
async function allNodesServe(): Promise<void> {
  for (const port of nodePorts) {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/as2`, { method: "HEAD" }).then((r) => r.ok, () => false);
      if (ok) break;
      assert.ok(i < 100, `node on ${port} does not answer`);
      await sleep(100);
    }
  }
  await sleep(2500); // two health checks at 1 s ("rise 2")
}

const sql = (q: string) => db.psql(q).trim();

/** Files written by the partner and sent in one `as2 send --dry-run` to HUB: the requests. */
async function builtMessages(label: string, count: number, bytes = 20_000): Promise<Array<{ name: string; req: Req; messageId: string; payload: Buffer }>> {
  const out = join(dir, `out-${label}`);
  mkdirSync(out, { recursive: true });
  const files = Array.from({ length: count }, (_, i) => {
    const p = join(out, `${label}-${i + 1}.edi`);
    writeFileSync(p, randomBytes(bytes));
    return p;
  });
  const built = join(dir, `built-${label}`);
  const dry = await as2(["send", "--config", mycoConfig, "--partner", "hub", "--dry-run", "--out", built, "--json", ...files]);
  assert.equal(dry.status, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as { messages: Array<{ file: string; out: string; as2MessageId: string }> };
  return plan.messages.map((m, i) => ({ name: `${label}-${i + 1}.edi`, req: readDryRun(m.out), messageId: m.as2MessageId, payload: readFileSync(files[i]!) }));
}

before(async () => {
  opensslIdentity("hub", dir);
  opensslIdentity("myco", dir);
  db = await startPostgres();
  env = { AS2_DATABASE_URL: db.url };
  const lbPort = await freePort();
  const lbUrl = `http://127.0.0.1:${lbPort}/as2`;
  const mycoPort = await freePort();
  const mycoUrl = `http://127.0.0.1:${mycoPort}/as2`;
  for (let i = 0; i < NODES; i++) nodePorts.push(await freePort());
  hubConfig = cfg("hub", {
    dataDir: "./hub-data",
    store: { kind: "postgres", url: "${AS2_DATABASE_URL}" },
    station: { as2Id: "HUB", key: { pem: "hub.key", certificate: "hub.crt" }, asyncMdnUrl: lbUrl },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: {
      myco: {
        as2Id: "MYCO", url: mycoUrl, certificate: "myco.crt", sign: "sha256", encrypt: "aes256-cbc", retries: 0, readTimeout: 30,
        mdn: { request: "signed", mode: "async" },
        inbound: { asyncMdnUrls: ["http://127.0.0.1:*"] },
      },
    },
  });
  mycoConfig = cfg("myco", {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" }, asyncMdnUrl: mycoUrl },
    receive: { host: "127.0.0.1", port: mycoPort, path: "/as2" },
    partners: {
      hub: {
        as2Id: "HUB", url: lbUrl, certificate: "hub.crt", sign: "sha256", encrypt: "aes256-cbc", retries: 0, readTimeout: 30,
        mdn: { request: "signed", mode: "sync" },
        inbound: { asyncMdnUrls: ["http://127.0.0.1:*"] },
      },
    },
  });
  // The first node applies the migrations; the others start at once and find them applied.
  await Promise.all(Array.from({ length: NODES }, (_, i) => startNode(i)));
  lb = await startHaproxy(dir, nodePorts.map((port) => ({ host: "127.0.0.1", port })), "/as2", lbPort);
  await startAs2Receive(mycoConfig); // MYCO's own node: takes HUB's messages and answers async MDNs
  await allNodesServe();
});

test("concurrent copies over the nodes: 6 messages x 3 copies at once through HAProxy -> each stored once, every copy answered 200 with the same MDN bytes", { timeout: 90_000 }, async () => {
  const messages = await builtMessages("dup", 6);
  const burst = Array.from({ length: 18 }, (_, k) => messages[k % 6]!.req);
  const answers = await postTogether(lb.url, burst);
  answers.forEach((res, k) => assert.equal(res.status, 200, `message ${(k % 6) + 1}, copy ${Math.floor(k / 6) + 1}: HTTP ${res.status} ${res.body.toString()}`));
  assert.deepEqual(names(hubInbox, /^dup-/), messages.map((m) => m.name).sort(), "each message stored exactly once");
  for (const m of messages) assert.ok(readFileSync(join(hubInbox, m.name)).equals(m.payload), `${m.name}: bytes identical`);
  for (let i = 0; i < 6; i++) {
    const copies = answers.filter((_, k) => k % 6 === i);
    const mdn = checkMdnWithOpenssl(dir, String(copies[0]!.headers["content-type"]), copies[0]!.body, join(dir, "hub.crt"));
    assert.match(mdn.fields.disposition!, POSITIVE);
    assert.equal(mdn.fields["original-message-id"], messages[i]!.messageId);
    copies.forEach((c, j) => assert.ok(c.body.equals(copies[0]!.body), `message ${i + 1}: copy ${j + 1} got another MDN`));
  }
  const handledBy = nodes.map((n) => n!.events.filter((e) => (e.event === "message" || e.event === "duplicate") && String(e.messageId).startsWith("<")).length);
  assert.ok(handledBy.filter((n) => n > 0).length >= 2, `the copies were spread over the nodes: ${handledBy.join(", ")}`);
  assert.equal(sql("SELECT count(*) FROM as2_received WHERE step <> 'answered'"), "0");
});

test("as2 send from HUB with async MDNs: the MDNs reach the nodes through HAProxy (not the sending process), and every job settles SUCCESS", { timeout: 120_000 }, async () => {
  const out = join(dir, "hub-out");
  mkdirSync(out, { recursive: true });
  const runIds: string[] = [];
  for (let j = 0; j < 2; j++) {
    const files = Array.from({ length: 3 }, (_, i) => {
      const p = join(out, `to-myco-${j}-${i}.edi`);
      writeFileSync(p, randomBytes(10_000));
      return p;
    });
    const sent = await as2(["send", "--config", hubConfig, "--partner", "myco", "--json", ...files], { env });
    assert.equal(sent.status, 0, sent.stderr + sent.stdout);
    const job = JSON.parse(sent.stdout) as JobRecord;
    assert.equal(job.state, "AWAITING_MDN");
    runIds.push(job.runId);
  }
  for (const runId of runIds) {
    const st = await as2(["status", runId, "--config", hubConfig, "--wait", "60", "--json"], { env });
    assert.equal(st.status, 0, st.stderr + st.stdout);
    const record = JSON.parse(st.stdout) as JobRecord & { jobStatus: string };
    assert.equal(record.jobStatus, "SUCCESS", JSON.stringify({ files: record.files, warnings: record.warnings }));
    assert.ok(record.messages.every((m) => m.mdnStatus === "Received"));
  }
  const mdnsAt = nodes.map((n) => n!.events.filter((e) => e.event === "mdn").length);
  assert.equal(mdnsAt.reduce((a, b) => a + b, 0), 6, `six MDNs, one per message: ${mdnsAt.join(", ")}`);
  assert.ok(mdnsAt.filter((n) => n > 0).length >= 2, `the MDNs arrived at several nodes: ${mdnsAt.join(", ")}`);
  assert.equal(names(mycoInbox, /^to-myco-/).length, 6);
});

test("as2 status lists every job of every node, also from a configuration whose own data folder is empty", { timeout: 60_000 }, async () => {
  const elsewhere = cfg("hub-elsewhere", { ...JSON.parse(readFileSync(hubConfig, "utf8")) as object, dataDir: "./empty-data" });
  const st = await as2(["status", "--config", elsewhere, "--json", "--page-length", "1000"], { env });
  assert.equal(st.status, 0, st.stderr);
  const page = JSON.parse(st.stdout) as { totalRecords: number; records: JobRecord[] };
  const inDb = sql("SELECT run_id FROM as2_jobs ORDER BY run_id DESC").split("\n").filter(Boolean);
  assert.ok(inDb.length >= 8, `receive and send jobs: ${inDb.length}`);
  assert.equal(page.totalRecords, inDb.length);
  assert.deepEqual(page.records.map((r) => r.runId), inDb, "every job, newest first");
  const sends = await as2(["status", "--config", elsewhere, "--json", "--direction", "send"], { env });
  assert.equal((JSON.parse(sends.stdout) as { totalRecords: number }).totalRecords, 2);
  assert.ok(!existsSync(join(dir, "empty-data", "jobs")) || readdirSync(join(dir, "empty-data", "jobs")).filter((f) => f.endsWith(".json")).length === 0);
});

test("an `as2 send` killed mid-job holds its run lock in the database: `as2 status` from another configuration records the job INTERRUPTED and clears the lock; --restart sends it", { timeout: 120_000 }, async () => {
  const file = join(dir, "hub-out", "killed-send.edi");
  writeFileSync(file, randomBytes(5_000));
  const killed = await as2(["send", "--config", hubConfig, "--partner", "myco", "--json", file], { env: { ...env, AS2KIT_CRASH_AT: "send:started" } });
  assert.equal(killed.signal, "SIGKILL", killed.stderr);
  const runId = sql("SELECT run_id FROM as2_job_locks");
  assert.match(runId, /^\d{8}T\d{9}Z-[0-9a-f]+$/, "the dead process's lock is in the database");
  assert.equal(sql(`SELECT state FROM as2_jobs WHERE run_id = '${runId}'`), "ONGOING");
  const elsewhere = cfg("hub-elsewhere-2", { ...JSON.parse(readFileSync(hubConfig, "utf8")) as object, dataDir: "./empty-data-2" });
  const st = await as2(["status", runId, "--config", elsewhere, "--json"], { env });
  assert.equal(st.status, 0, st.stderr);
  assert.equal((JSON.parse(st.stdout) as { jobStatus: string }).jobStatus, "INTERRUPTED");
  assert.equal(sql("SELECT count(*) FROM as2_job_locks"), "0", "the stale lock is cleared");
  const again = await as2(["send", "--config", hubConfig, "--partner", "myco", "--restart", runId, "--wait-mdn", "60", "--json"], { env });
  assert.equal(again.status, 0, again.stderr + again.stdout);
  assert.equal((JSON.parse(again.stdout) as JobRecord).state, "SUCCESS");
  assert.deepEqual(names(mycoInbox, /^killed-send/), ["killed-send.edi"]);
});

test("SIGKILL of a node mid-transfer: the partner's restart lands once on a live node, which finishes the dead node's message; nothing is left ONGOING", { timeout: 180_000 }, async () => {
  // Node 3 is restarted with a fault: it kills itself after linking its first payload into the inbox.
  await stopNode(2);
  await startNode(2, { AS2KIT_CRASH_AT: "receive:linked" });
  await allNodesServe();
  const out = join(dir, "kill-out");
  mkdirSync(out, { recursive: true });
  const files = Array.from({ length: 6 }, (_, i) => {
    const p = join(out, `kill-${i + 1}.edi`);
    writeFileSync(p, randomBytes(50_000));
    return p;
  });
  const first = await as2(["send", "--config", mycoConfig, "--partner", "hub", "--json", ...files]);
  const job = JSON.parse(first.stdout) as JobRecord;
  const killed = await Promise.race([nodes[2]!.exited, sleep(5000).then(() => undefined)]);
  assert.equal(killed?.signal, "SIGKILL", `node 3 killed itself: ${nodes[2]!.stderr()}`);
  assert.ok(job.files.some((f) => f.status !== "SUCCESS"), `the file node 3 had was not confirmed: ${JSON.stringify(job.files)}`);
  // No positive MDN without the file: every confirmed file is in the inbox already.
  for (const f of job.files.filter((x) => x.status === "SUCCESS")) assert.ok(existsSync(join(hubInbox, basename(f.name))), `${f.name} confirmed but not stored`);

  const again = await as2(["send", "--config", mycoConfig, "--partner", "hub", "--restart", job.runId, "--json"]);
  assert.equal(again.status, 0, again.stderr + again.stdout);
  assert.equal((JSON.parse(again.stdout) as JobRecord).state, "SUCCESS");
  assert.deepEqual(names(hubInbox, /^kill-/), files.map((f) => f.split("/").pop()!).sort(), "each file stored exactly once");
  for (const f of files) assert.ok(readFileSync(join(hubInbox, f.split("/").pop()!)).equals(readFileSync(f)));
  const recovered = nodes.slice(0, 2).flatMap((n) => n!.events.filter((e) => e.event === "recovered"));
  assert.ok(recovered.length >= 1, "a live node took over the dead node's message");
  for (let i = 0; ; i++) {
    const left = sql("SELECT count(*) FROM as2_jobs WHERE state IN ('ONGOING', 'NOT_STARTED')") + "/" + sql("SELECT count(*) FROM as2_received WHERE step <> 'answered'");
    if (left === "0/0") break;
    assert.ok(i < 600, `left ONGOING / unfinished: ${left}`);
    await sleep(100);
  }
  await startNode(2);
  await allNodesServe();
});

for (const point of ["accepted", "queued"] as const) {
  test(`SIGKILL of a node holding async work (killed at "${point}": ${point === "accepted" ? "the 200 sent, the message not yet opened" : "the MDN queued, not yet delivered"}): a live node finishes it from the shared spool and delivers the MDN; the send job settles SUCCESS`, { timeout: 180_000 }, async () => {
    await stopNode(2);
    await startNode(2, { AS2KIT_CRASH_AT: `receive:${point}` });
    await allNodesServe();
    const out = join(dir, `async-kill-${point}`);
    mkdirSync(out, { recursive: true });
    const files = Array.from({ length: 3 }, (_, i) => {
      const p = join(out, `ak-${point}-${i + 1}.edi`);
      writeFileSync(p, randomBytes(40_000));
      return p;
    });
    const sent = await as2(["send", "--config", mycoConfig, "--partner", "hub", "--mdn-mode", "async", "--json", ...files]);
    assert.equal(sent.status, 0, sent.stderr + sent.stdout);
    const job = JSON.parse(sent.stdout) as JobRecord;
    const killed = await Promise.race([nodes[2]!.exited, sleep(10_000).then(() => undefined)]);
    assert.equal(killed?.signal, "SIGKILL", `node 3 killed itself: ${nodes[2]!.stderr()}`);
    const st = await as2(["status", job.runId, "--config", mycoConfig, "--wait", "90", "--json"]);
    assert.equal(st.status, 0, st.stderr + st.stdout);
    assert.equal((JSON.parse(st.stdout) as { jobStatus: string }).jobStatus, "SUCCESS");
    assert.deepEqual(names(hubInbox, new RegExp(`^ak-${point}-`)), files.map((f) => basename(f)).sort(), "each file stored exactly once");
    for (let i = 0; ; i++) {
      const left = sql("SELECT count(*) FROM as2_jobs WHERE state IN ('ONGOING', 'NOT_STARTED')") + "/" + sql("SELECT count(*) FROM as2_received WHERE step <> 'answered'");
      if (left === "0/0") break;
      assert.ok(i < 600, `left ONGOING / unfinished: ${left}`);
      await sleep(100);
    }
    await startNode(2);
    await allNodesServe();
  });
}

test("PostgreSQL restarted mid-run: the nodes answer 503 with Retry-After (no MDN, nothing stored) while it is down, and take messages again on their own once it is back", { timeout: 120_000 }, async () => {
  const [m] = await builtMessages("pgdown", 1);
  await db.stop();
  for (let i = 0; i < NODES; i++) {
    const res = await request(lb.url, m!.req);
    assert.equal(res.status, 503, `attempt ${i + 1}: HTTP ${res.status} ${res.body.toString()}`);
    assert.match(String(res.headers["retry-after"]), /^\d+$/);
    assert.doesNotMatch(String(res.headers["content-type"]), /multipart|disposition-notification/i, "no MDN");
  }
  assert.deepEqual(names(hubInbox, /^pgdown-/), [], "nothing stored while the database was down");
  await db.start();
  let res;
  for (let i = 0; ; i++) {
    res = await request(lb.url, m!.req);
    if (res.status === 200) break;
    assert.ok(i < 60 && res.status === 503, `HTTP ${res.status} ${res.body.toString()}`);
    await sleep(500);
  }
  const mdn = checkMdnWithOpenssl(dir, String(res.headers["content-type"]), res.body, join(dir, "hub.crt"));
  assert.match(mdn.fields.disposition!, POSITIVE);
  assert.deepEqual(names(hubInbox, /^pgdown-/), ["pgdown-1.edi"]);
  // Every node answers again (each one its own request), and none has died.
  for (const port of nodePorts) {
    const [n] = await builtMessages(`pgback-${port}`, 1);
    const r = await request(`http://127.0.0.1:${port}/as2`, n!.req);
    assert.equal(r.status, 200, `node on ${port}: ${r.body.toString()}`);
  }
  assert.ok(nodes.every((n) => n!.proc.exitCode === null && n!.proc.signalCode === null));
});
