/**
 * Job notifications on the shared store (issue 15, contract §6): each one goes through the
 * database's notification queue, so that one whose node is SIGKILLed before posting it is posted
 * by a live node. Two `as2 receive` nodes of station HUB on a throwaway PostgreSQL, a real hook
 * server on 127.0.0.1, messages built by partner MYCO (`as2 send --dry-run`) and posted to node A,
 * which kills itself at a crash point of the notification path.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { before, test } from "node:test";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";
import { freePort } from "../helpers/net.js";
import { readDryRun, request, type Req } from "../helpers/post.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { onCleanup, opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";

const dir = tempDir("as2kit-notify-");
const TOKEN = "Hook-Token-5531";

interface Hook { token?: string; body: { jobId: string; status: string; message: string } }
const hooks: Hook[] = [];
let db: TestPostgres;
let hubConfig: string;
let mycoConfig: string;
let env: Record<string, string>;
/** ms the hook takes to answer: longer than the hand-over time, so other nodes see the entry due. */
let hookDelayMs = 0;

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

before(async () => {
  opensslIdentity("hub", dir);
  opensslIdentity("myco", dir);
  db = await startPostgres();
  env = { AS2_DATABASE_URL: db.url, HOOK_TOKEN: TOKEN };
  const server = http.createServer((req, res) => {
    let data = "";
    req.on("data", (c: Buffer) => { data += c.toString(); });
    req.on("end", () => {
      hooks.push({ token: req.headers["x-token"] as string | undefined, body: JSON.parse(data) as Hook["body"] });
      setTimeout(() => { res.writeHead(204); res.end(); }, hookDelayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/as2`;
  hubConfig = cfg("hub", {
    dataDir: "./hub-data",
    store: { kind: "postgres", url: "${AS2_DATABASE_URL}" },
    station: { as2Id: "HUB", key: { pem: "hub.key", certificate: "hub.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    notify: { url: hookUrl, headers: { "X-Token": "${HOOK_TOKEN}" } },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", sign: "sha256", encrypt: "aes256-cbc" } },
  });
  mycoConfig = cfg("myco", {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { hub: { as2Id: "HUB", url: "http://127.0.0.1:9/as2", certificate: "hub.crt", sign: "sha256", encrypt: "aes256-cbc", mdn: { request: "signed", mode: "sync" } } },
  });
});

async function built(label: string): Promise<{ req: Req; messageId: string }> {
  const file = join(dir, `${label}.edi`);
  writeFileSync(file, `UNB+UNOA:2+MYCO+HUB+261202:1000+${label}'\n`.repeat(50));
  const out = join(dir, `built-${label}`);
  mkdirSync(out, { recursive: true });
  const dry = await as2(["send", "--config", mycoConfig, "--partner", "hub", "--dry-run", "--out", out, "--json", file]);
  assert.equal(dry.status, 0, dry.stderr);
  const m = (JSON.parse(dry.stdout) as { messages: Array<{ out: string; as2MessageId: string }> }).messages[0]!;
  return { req: readDryRun(m.out), messageId: m.as2MessageId };
}

const sql = (q: string) => db.psql(q).trim();
const hooksOf = (jobId: string, status: string) => hooks.filter((h) => h.body.jobId === jobId && h.body.status === status);

/** Posts a message to a node that kills itself at `crashAt`; returns the receive job's run ID. */
async function crashedNodeLeaves(label: string, crashAt: string): Promise<{ runId: string; survivor: As2Server }> {
  const survivor = await startAs2Receive(hubConfig, ["--port", String(await freePort())], env);
  const doomed = await startAs2Receive(hubConfig, ["--port", String(await freePort())], { ...env, AS2KIT_CRASH_AT: crashAt });
  const { req, messageId } = await built(label);
  // The answer may or may not get out before the crash; the notification is what is tested.
  await request(doomed.url, req).catch(() => undefined);
  const exit = await doomed.exited;
  assert.equal(exit.signal, "SIGKILL", doomed.stderr());
  // One message per test, posted one after the other: the newest reservation is this one.
  const runId = sql("SELECT run_id FROM as2_received ORDER BY updated_at DESC LIMIT 1");
  assert.match(runId, /^\S+$/, `a received entry for ${messageId}`);
  return { runId, survivor };
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}; hooks: ${JSON.stringify(hooks)}`);
    await sleep(100);
  }
}

test("a node SIGKILLed after the job completed, before its Completed notification was posted -> the other node posts it, exactly once, with the configured header; the queue is empty, the job SUCCESS without warnings", { timeout: 90_000 }, async () => {
  // @1 is Started (posted by the doomed node itself), @2 is Completed.
  const { runId, survivor } = await crashedNodeLeaves("queued", "notify:queued@2");
  assert.equal(hooksOf(runId, "Started").length, 1);
  assert.equal(sql(`SELECT count(*) FROM as2_notify_outbox WHERE run_id = '${runId}'`), "1", "the Completed notification waits in the queue");
  // The entry names the partner, not the hook: no URL, no header, no token in the database.
  const entry = sql(`SELECT entry::text FROM as2_notify_outbox WHERE run_id = '${runId}'`);
  assert.match(entry, /"status": ?"Completed"/);
  assert.ok(!entry.includes(TOKEN) && !entry.includes("/hooks/as2"), entry);
  await until("Completed from the surviving node", () => hooksOf(runId, "Completed").length > 0);
  await sleep(3000); // a second copy would come within the next sweeps
  assert.equal(hooksOf(runId, "Completed").length, 1, JSON.stringify(hooks));
  assert.equal(hooksOf(runId, "Started").length, 1);
  assert.ok(hooks.filter((h) => h.body.jobId === runId).every((h) => h.token === TOKEN));
  assert.match(hooksOf(runId, "Completed")[0]!.body.message, /^stored /);
  assert.equal(sql("SELECT count(*) FROM as2_notify_outbox"), "0");
  const record = JSON.parse(sql(`SELECT record FROM as2_jobs WHERE run_id = '${runId}'`)) as { state: string; warnings?: string[] };
  assert.equal(record.state, "SUCCESS");
  assert.deepEqual(record.warnings ?? [], []);
  survivor.proc.kill("SIGTERM");
  await survivor.exited;
});

test("a node SIGKILLed after posting Completed, before removing it from the queue -> posted again by the other node (at least once, as documented): never lost", { timeout: 90_000 }, async () => {
  const { runId, survivor } = await crashedNodeLeaves("posted", "notify:posted@2");
  assert.equal(hooksOf(runId, "Completed").length, 1, "the doomed node posted it");
  await until("the repeat from the surviving node", () => hooksOf(runId, "Completed").length === 2);
  await sleep(3000);
  assert.equal(hooksOf(runId, "Completed").length, 2);
  assert.equal(hooksOf(runId, "Started").length, 1);
  assert.equal(sql("SELECT count(*) FROM as2_notify_outbox"), "0");
  survivor.proc.kill("SIGTERM");
  await survivor.exited;
});

test("a live node's queued notification is left to it: a second node never takes an entry whose claimer runs, though it is due while the slow hook answers", { timeout: 60_000 }, async () => {
  hookDelayMs = 3500; // > NOTIFY_HANDOVER_MS (2 s): B's sweeps find both entries due and claimed by A
  const a = await startAs2Receive(hubConfig, ["--port", String(await freePort())], env);
  const b = await startAs2Receive(hubConfig, ["--port", String(await freePort())], env);
  const before = hooks.length;
  const { req } = await built("live");
  const res = await request(a.url, req);
  assert.equal(res.status, 200);
  await until("Started and Completed", () => hooks.length - before === 2);
  await until("the queue emptied by A", () => sql("SELECT count(*) FROM as2_notify_outbox") === "0");
  await sleep(2500); // more sweeps of both nodes
  const mine = hooks.slice(before);
  assert.deepEqual(mine.map((h) => h.body.status), ["Started", "Completed"]);
  hookDelayMs = 0;
  for (const n of [a, b]) n.proc.kill("SIGTERM");
  await Promise.all([a.exited, b.exited]);
});
