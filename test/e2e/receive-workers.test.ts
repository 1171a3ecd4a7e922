/**
 * `as2 receive` with receive.workers > 1 (issue 14, contract §7): several processes behind one
 * port, sharing the exactly-once store.
 *
 * - Identical copies of one message, each on its own connection (so the supervisor spreads them
 *   over the workers), arrive at once: one file, and every copy gets the same MDN bytes. The URL
 *   is printed once; SIGTERM ends the supervisor and every worker with exit code 0.
 * - SIGKILL of one worker under load (AS2KIT_CRASH_AT=receive:opened with AS2KIT_CRASH_SCOPE=
 *   worker): the supervisor starts another; every message, sent again until it has an answer, is
 *   stored exactly once with a positive MDN; no job is left ONGOING, no ledger entry unfinished.
 * - SIGKILL of the whole receiver inside a group commit (store:group-synced: one folder fsync made
 *   several messages' marks durable, none has gone on): after a restart, resends store each
 *   message once.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { before, test } from "node:test";
import { buildMessage } from "../../src/core/index.js";
import { FileReceivedLedger, type JobRecord } from "../../src/store/index.js";
import { opensslIdentity, tempDir, type TestIdentity } from "../helpers/tools.js";
import { startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir("as2kit-receive-workers-");
let myco: TestIdentity;
let acme: TestIdentity;
const POSITIVE = /Disposition: automatic-action\/MDN-sent-automatically; processed\r?\n/i;

before(() => {
  myco = opensslIdentity("myco", dir);
  acme = opensslIdentity("acme", dir);
});

interface Msg { name: string; headers: Record<string, string>; body: Buffer }
interface Res { status: number; body: string }

function config(label: string, workers: number): { file: string; data: string; inbox: string } {
  const data = join(dir, `acme-${label}`);
  const file = join(dir, `acme-${label}.json`);
  writeFileSync(file, JSON.stringify({
    dataDir: data,
    station: { as2Id: "ACME", key: { pem: acme.keyFile, certificate: acme.certFile } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", workers },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: myco.certFile, inbound: { requireSigned: true, requireEncrypted: true } } },
  }));
  return { file, data, inbox: join(data, "inbox", "myco") };
}

async function build(name: string): Promise<Msg> {
  const m = buildMessage({
    from: "MYCO", to: "ACME", payload: Buffer.from(`UNB+UNOA:2+MYCO+ACME+${name}'\r\n`.repeat(30)), contentType: "application/edi-x12", filename: name,
    sign: { digest: "sha256", key: myco.key, certificate: myco.certificate },
    encrypt: { cipher: "aes256-cbc", recipients: [{ certificate: acme.certificate }] },
    receipt: { notificationTo: "mailto:as2@myco.example", signed: true, micAlgorithms: ["sha256"] },
  });
  const parts: Buffer[] = [];
  for await (const c of m.body) parts.push(Buffer.from(c));
  await m.done;
  return { name, headers: m.headers.toObject(), body: Buffer.concat(parts) };
}

/** One POST on its own connection (agent: false), so that copies reach different workers. */
function post(url: string, m: Msg): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", agent: false, headers: { ...m.headers, "Content-Length": String(m.body.length) } }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString("latin1") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    // A connection nobody answers fails the attempt (and deliver sends again), not the whole run.
    req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
    req.end(m.body);
  });
}

/** Sends until a positive MDN comes back (a lost connection or a 503 is sent again); bounded. */
async function deliver(url: () => string, m: Msg): Promise<number> {
  for (let attempt = 1; attempt <= 40; attempt++) {
    const r = await post(url(), m).catch(() => undefined);
    if (r?.status === 200) {
      assert.match(r.body, POSITIVE, `${m.name}: the MDN is positive (attempt ${attempt}): ${r.body.slice(0, 400)}`);
      return attempt;
    }
    await sleep(200);
  }
  throw new Error(`${m.name}: no answer after 40 attempts`);
}

async function assertSettled(c: { data: string; inbox: string }, names: string[]): Promise<void> {
  const stored = readdirSync(c.inbox).filter((n) => !n.startsWith(".")).sort();
  assert.deepEqual(stored, [...names].sort(), "each message stored exactly once, under its own name");
  const jobs = join(c.data, "jobs");
  const records = readdirSync(jobs).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(jobs, f), "utf8")) as JobRecord);
  assert.deepEqual(records.filter((r) => r.state === "ONGOING").map((r) => r.runId), [], "no job left ONGOING");
  assert.equal(records.filter((r) => r.state === "SUCCESS").length, names.length, "one SUCCESS record per message");
  // The ledger's own view: a marker whose reservation never got its entry (a worker killed
  // between the two) is no unfinished message; it is dropped once it is a minute old.
  const unfinished = await new FileReceivedLedger(c.data).unfinished();
  assert.deepEqual(unfinished.map((e) => `${e.messageId} at ${e.step}`), [], "no ledger entry left unfinished");
  const tmp = join(c.inbox, ".as2kit-tmp");
  assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], [], "nothing left in .as2kit-tmp");
}

async function stopGracefully(s: As2Server): Promise<void> {
  s.proc.kill("SIGTERM");
  const end = await Promise.race([s.exited, sleep(20_000).then(() => undefined)]);
  assert.ok(end, `as2 receive did not stop within 20 s of SIGTERM: ${s.stderr()}`);
  assert.deepEqual(end, { code: 0, signal: null }, `exit after SIGTERM: ${s.stderr()}`);
}

/** The worker pids under the supervisor. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test("3 workers: 6 identical copies at once are stored once and all get the same MDN bytes; one URL line; SIGTERM ends every process with 0", async () => {
  const c = config("copies", 3);
  const acmeRx = await startAs2Receive(c.file);
  const workers = childrenOf(acmeRx.proc.pid!);
  assert.equal(workers.length, 3, "three worker processes");
  const m = await build("copies.edi");
  const answers = await Promise.all(Array.from({ length: 6 }, () => post(acmeRx.url, m)));
  for (const a of answers) {
    assert.equal(a.status, 200);
    assert.match(a.body, POSITIVE);
  }
  // The MDN is the one recorded for the message: every copy's body is the same, byte for byte.
  assert.equal(new Set(answers.map((a) => a.body)).size, 1, "every copy gets the same MDN bytes");
  assert.equal(acmeRx.events.filter((e) => e.event === "listening").length, 1, "the URL is printed once");
  assert.equal(acmeRx.events.filter((e) => e.event === "message").length, 1, "one message event");
  assert.equal(acmeRx.events.filter((e) => e.event === "duplicate").length + acmeRx.events.filter((e) => e.event === "message").length, 6, "the other copies are duplicates");
  await stopGracefully(acmeRx);
  for (const pid of workers) assert.throws(() => process.kill(pid, 0), "every worker has ended");
  await assertSettled(c, ["copies.edi"]);
});

test("2 workers, one killed at receive:opened under load: it is replaced, and every message is stored once with a positive MDN", async () => {
  const c = config("kill", 2);
  const acmeRx = await startAs2Receive(c.file, [], { AS2KIT_CRASH_AT: "receive:opened@4", AS2KIT_CRASH_SCOPE: "worker" });
  const msgs = await Promise.all(Array.from({ length: 24 }, (_, i) => build(`kill-${i}.edi`)));
  let next = 0;
  const attempts: number[] = [];
  await Promise.all(Array.from({ length: 6 }, async () => {
    while (next < msgs.length) attempts.push(await deliver(() => acmeRx.url, msgs[next++]!));
  }));
  assert.match(acmeRx.stderr(), /worker \d \(pid \d+\) ended \(SIGKILL\); starting another/, "the supervisor replaced a killed worker");
  assert.ok(attempts.some((n) => n > 1), "some message had to be sent again (a worker died with it)");
  assert.equal(acmeRx.proc.exitCode, null, "the receiver as a whole runs on");
  await stopGracefully(acmeRx);
  await assertSettled(c, msgs.map((m) => m.name));
});

test("1 worker, SIGKILL inside a group commit (store:group-synced): after a restart, resends store each message once", async () => {
  const c = config("group", 1);
  const msgs = await Promise.all(Array.from({ length: 12 }, (_, i) => build(`group-${i}.edi`)));
  const first = await startAs2Receive(c.file, [], { AS2KIT_CRASH_AT: "store:group-synced" });
  const results = await Promise.all(msgs.map((m) => post(first.url, m).catch(() => undefined)));
  const ended = await Promise.race([first.exited, sleep(20_000).then(() => undefined)]);
  assert.ok(ended, "the receiver killed itself inside a group commit");
  assert.equal(ended.signal, "SIGKILL");
  // What was answered positively before the kill is in the inbox now, whole.
  for (const [i, r] of results.entries()) {
    if (r?.status === 200 && POSITIVE.test(r.body)) assert.ok(existsSync(join(c.inbox, msgs[i]!.name)), `${msgs[i]!.name}: positive MDN before the kill, so it is stored`);
  }
  const second = await startAs2Receive(c.file);
  for (const m of msgs) await deliver(() => second.url, m);
  await stopGracefully(second);
  await assertSettled(c, msgs.map((m) => m.name));
});
