/**
 * Node leases on the shared store (issue 15): a received message left unfinished by a node on
 * another host is taken over by a live node only once that node's lease has run out. The other
 * host is simulated in the database: its lease row (as2_nodes) and its ledger entries, written
 * here with an owner whose host and boot ID are not this machine's, so that only the lease can
 * tell whether it lives. A real `as2 receive` on a throwaway PostgreSQL does the taking over;
 * the partner's messages are real ones, built by MYCO with `as2 send --dry-run`.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { before, test } from "node:test";
import { PgStore, migrate, newRunId, type JobRecord, type LedgerEntry, type Owner } from "../../src/store/index.js";
import { as2, startAs2Receive } from "../helpers/as2-process.js";
import { readDryRun, request, type Req } from "../helpers/post.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { onCleanup, opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";

const dir = tempDir("as2kit-lease-");
const POSITIVE = /^Disposition: automatic-action\/MDN-sent-automatically; processed\r?$/im;
let db: TestPostgres;
let store: PgStore;
let hubConfig: string;
let mycoConfig: string;
let env: Record<string, string>;
const inbox = join(dir, "hub-data", "inbox", "myco");

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

before(async () => {
  opensslIdentity("hub", dir);
  opensslIdentity("myco", dir);
  db = await startPostgres();
  env = { AS2_DATABASE_URL: db.url };
  store = new PgStore(db.url);
  onCleanup(() => store.close());
  await migrate(store.db); // the tables, before the other node's rows are written into them
  hubConfig = cfg("hub", {
    dataDir: "./hub-data",
    store: { kind: "postgres", url: "${AS2_DATABASE_URL}" },
    station: { as2Id: "HUB", key: { pem: "hub.key", certificate: "hub.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", sign: "sha256", encrypt: "aes256-cbc" } },
  });
  mycoConfig = cfg("myco", {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { hub: { as2Id: "HUB", url: "http://127.0.0.1:9/as2", certificate: "hub.crt", sign: "sha256", encrypt: "aes256-cbc", mdn: { request: "signed", mode: "sync" } } },
  });
});

async function built(label: string): Promise<{ req: Req; messageId: string; name: string; payload: Buffer }> {
  const name = `${label}.edi`;
  const file = join(dir, name);
  const payload = randomBytes(10_000);
  writeFileSync(file, payload);
  const out = join(dir, `built-${label}`);
  mkdirSync(out, { recursive: true });
  const dry = await as2(["send", "--config", mycoConfig, "--partner", "hub", "--dry-run", "--out", out, "--json", file]);
  assert.equal(dry.status, 0, dry.stderr);
  const m = (JSON.parse(dry.stdout) as { messages: Array<{ out: string; as2MessageId: string }> }).messages[0]!;
  return { req: readDryRun(m.out), messageId: m.as2MessageId, name, payload };
}

/** A node on another machine: neither this host name nor this boot ID. */
function otherHost(n: number): Owner {
  return { host: `as2-node-${n}.example`, pid: 4000 + n, start: 987_654 + n, boot: `0000000${n}-0000-4000-8000-000000000000` };
}

/** Its lease row, as its own renewals would have left it: running out `seconds` from now (negative: already out). */
function leaseOf(o: Owner, seconds: number): void {
  const key = `${o.host}|${o.boot}|${o.pid}|${o.start}`;
  db.psql(`INSERT INTO as2_nodes (owner_key, owner, lease_until) VALUES ('${key}', '${JSON.stringify(o)}', now() + make_interval(secs => ${seconds}))
    ON CONFLICT (owner_key) DO UPDATE SET lease_until = EXCLUDED.lease_until`);
}

/** The other node's reservation of a message, at `step`, as its pipeline would have written it. */
async function leftBy(owner: Owner, messageId: string, step: LedgerEntry["step"], extra: Partial<LedgerEntry> = {}): Promise<LedgerEntry> {
  const entry: LedgerEntry = {
    from: "MYCO", messageId, runId: newRunId(new Date()), partner: "myco", owner, step, at: new Date().toISOString(),
    mdnRequest: { wanted: true, signed: true, micAlgorithm: "sha256", to: "MYCO" }, ...extra,
  };
  const r = await store.received.reserve(entry);
  assert.ok(r.reserved, `reserved ${messageId}`);
  return entry;
}

const ownerOfRun = (runId: string) => db.psql(`SELECT entry->'owner'->>'host' FROM as2_received WHERE run_id = '${runId}'`).trim();
const stored = () => (existsSync(inbox) ? readdirSync(inbox) : []).filter((n) => n !== ".as2kit-tmp").sort();

test("another host's node with an expired lease: its reserved message is failed and the partner's resend accepted once; its spooled message without a body failed cleanly; a node whose lease is fresh is left alone until its lease runs out", { timeout: 120_000 }, async () => {
  const expired = otherHost(1);
  const fresh = otherHost(2);
  leaseOf(expired, -60);
  leaseOf(fresh, 600);
  const m1 = await built("expired-reserved");
  const m2 = await built("expired-spooled");
  const m3 = await built("fresh-reserved");
  const e1 = await leftBy(expired, m1.messageId, "reserved");
  const e2 = await leftBy(expired, m2.messageId, "spooled", { spool: join(dir, "hub-data", "spool", "in-gone.body"), headers: { "content-type": "application/pkcs7-mime" } });
  const e3 = await leftBy(fresh, m3.messageId, "reserved");

  // Start-up recovery takes the expired node's entries, and only those.
  const node = await startAs2Receive(hubConfig, [], env);
  for (const e of [e1, e2]) {
    assert.equal(ownerOfRun(e.runId), "", `the entry of ${e.messageId} was released: ${node.stderr()}`);
    const job = (await store.jobs.load(e.runId)) as JobRecord;
    assert.equal(job?.state, "FAILED", `the expired node's run ${e.runId} ends FAILED`);
    assert.equal(job.error?.code, "AS2_ERR_INTERRUPTED");
  }
  assert.match((await store.jobs.load(e2.runId))!.error!.message, /spooled body is gone/);
  assert.equal(ownerOfRun(e3.runId), fresh.host, "the live node's entry is still its own");
  assert.equal(await store.jobs.load(e3.runId), undefined, "and no job was failed for it");
  assert.ok(node.events.some((e) => e.event === "recovered" && e.runId === e1.runId));
  assert.ok(!node.events.some((e) => e.runId === e3.runId), JSON.stringify(node.events));

  // The partner's resend of the taken-over message: processed anew, stored once; a second copy gets the same MDN.
  const first = await request(node.url, m1.req);
  assert.equal(first.status, 200, first.body.toString());
  assert.match(first.body.toString("latin1"), POSITIVE);
  const again = await request(node.url, m1.req);
  assert.equal(again.status, 200);
  assert.deepEqual(again.body, first.body, "a resend is answered with the same MDN");
  assert.deepEqual(stored(), [m1.name]);
  assert.deepEqual(readFileSync(join(inbox, m1.name)), m1.payload);

  // Still fresh a moment later: not taken.
  await sleep(1500);
  assert.equal(ownerOfRun(e3.runId), fresh.host);
  assert.deepEqual(stored(), [m1.name]);

  // Its lease runs out (the node stopped renewing): the partner's resend is taken over and accepted, once.
  leaseOf(fresh, -1);
  const taken = await request(node.url, m3.req);
  assert.equal(taken.status, 200, taken.body.toString());
  assert.match(taken.body.toString("latin1"), POSITIVE);
  assert.deepEqual(stored(), [m1.name, m3.name].sort());
  assert.deepEqual(readFileSync(join(inbox, m3.name)), m3.payload);
  assert.equal((await store.jobs.load(e3.runId))?.state, "FAILED", "the dead node's run of it is failed");
  const runs = db.psql(`SELECT state FROM as2_jobs WHERE type = 'AS2 Receive' AND state <> 'FAILED'`).trim().split("\n");
  assert.deepEqual(runs, ["SUCCESS", "SUCCESS"], "one successful receive job per message");
  assert.equal(db.psql("SELECT count(*) FROM as2_jobs WHERE state = 'ONGOING'").trim(), "0");
  node.proc.kill("SIGTERM");
  await node.exited;
});
