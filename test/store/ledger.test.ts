/**
 * The store pieces the exactly-once guarantee rests on (issue 11), in process: the received
 * ledger's atomic reservation and compare-and-set, owner locks that survive their owner's death
 * (and a reused pid), and the no-clobber name search with its O(log n) probe bound.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { FileReceivedLedger, PgStore, isAlive, isPidAlive, thisProcess, tryOwnerLock, type LedgerEntry, type ReceivedLedger } from "../../src/store/index.js";
import { firstFreeNumber, linkNoClobber } from "../../src/jobs/free-name.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { onCleanup, tempDir } from "../helpers/tools.js";

const dir = tempDir("as2kit-ledger-");

/**
 * The ledger tests run against both store kinds (issue 15): local files, and PostgreSQL (a
 * throwaway cluster for this file; a database of its own per ledger).
 */
const KINDS = ["files", "postgres"] as const;
let pg: Promise<TestPostgres> | undefined;
async function ledgerOf(kind: (typeof KINDS)[number], name: string): Promise<ReceivedLedger> {
  if (kind === "files") return new FileReceivedLedger(join(dir, name));
  const db = await (pg ??= startPostgres());
  db.psql(`CREATE DATABASE "ledger_${name}" OWNER as2`, "postgres");
  const store = new PgStore(db.url.replace(/\/as2$/, `/ledger_${name}`));
  onCleanup(() => store.close());
  return store.received;
}

function entry(runId: string, messageId = "<m1@partner>"): LedgerEntry {
  return {
    from: "PARTNER", messageId, runId, partner: "p", owner: thisProcess(), step: "reserved", at: new Date().toISOString(),
    mdnRequest: { wanted: true, signed: true, to: "US" },
  };
}

/** A process that has exited: its owner identity, as a dead receiver's entry would hold it. */
function deadOwner() {
  const r = spawnSync(process.execPath, ["-e", "const fs=require('fs');const s=fs.readFileSync('/proc/self/stat','latin1');console.log(JSON.stringify({pid:process.pid,start:Number(s.slice(s.lastIndexOf(')')+2).split(' ')[19])}))"], { encoding: "utf8" });
  const { pid, start } = JSON.parse(r.stdout) as { pid: number; start: number };
  return { ...thisProcess(), pid, start };
}

for (const kind of KINDS) {
  test(`${kind}: 50 concurrent reservations of one (AS2-From, Message-ID): exactly one wins, every other one sees the winner's entry`, async () => {
    const ledger = await ledgerOf(kind, "race");
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => ledger.reserve(entry(`20261202T000000000Z-${String(i).padStart(12, "0")}`))));
    const winners = results.filter((r) => r.reserved);
    assert.equal(winners.length, 1);
    for (const r of results.filter((x) => !x.reserved)) assert.equal(r.entry.runId, winners[0]!.entry.runId);
    assert.deepEqual((await ledger.unfinished()).map((e) => e.runId), [winners[0]!.entry.runId], "one pending marker, the winner's");
  });

  test(`${kind}: replace is compare-and-set on the run ID; release only removes the holder's entry; answered entries leave recovery's list`, async () => {
    const ledger = await ledgerOf(kind, "cas");
    const a = entry("20261202T000000000Z-aaaaaaaaaaaa");
    assert.equal((await ledger.reserve(a)).reserved, true);
    const b = entry("20261202T000000000Z-bbbbbbbbbbbb");
    assert.equal(await ledger.replace("20261202T000000000Z-cccccccccccc", b), false, "a stale expectation changes nothing");
    assert.equal((await ledger.get(a.from, a.messageId))!.runId, a.runId);
    assert.equal(await ledger.replace(a.runId, b), true);
    assert.deepEqual((await ledger.unfinished()).map((e) => e.runId), [b.runId], "the replaced run's marker is gone");
    await ledger.release(a.from, a.messageId, a.runId);
    assert.equal((await ledger.get(a.from, a.messageId))!.runId, b.runId, "a release by the old run does not remove the new one");
    await ledger.advance({ ...b, step: "answered" });
    assert.deepEqual(await ledger.unfinished(), []);
    await ledger.release(b.from, b.messageId, b.runId);
    assert.equal(await ledger.get(b.from, b.messageId), undefined);
  });

  test(`${kind}: a Message-ID is the same key with or without angle brackets and surrounding space`, async () => {
    const ledger = await ledgerOf(kind, "norm");
    assert.equal((await ledger.reserve(entry("20261202T000000000Z-aaaaaaaaaaaa", "<x@y>"))).reserved, true);
    assert.equal((await ledger.reserve(entry("20261202T000000000Z-bbbbbbbbbbbb", " x@y "))).reserved, false);
  });
}

test("owner liveness: this process lives; an exited process is dead, also when its pid is reused with another start time", () => {
  assert.equal(isAlive(thisProcess()), true);
  const dead = deadOwner();
  assert.equal(isAlive(dead), false);
  // Our own pid with another start time: a reused pid is not the owner.
  assert.equal(isAlive({ ...thisProcess(), start: thisProcess().start + 1 }), false);
});

test("a zombie (killed, not reaped: an orphaned receiver worker where init is slow to reap) is dead, for owners and for temp-file pids", async () => {
  // sh starts a child that exits at once, then execs a sleep that never reaps it: a zombie.
  const { spawn } = await import("node:child_process");
  const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 20"], { stdio: ["ignore", "pipe", "ignore"] });
  onCleanup(() => { parent.kill("SIGKILL"); });
  const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()))));
  let state = "";
  let start = 0;
  for (let i = 0; i < 100 && state !== "Z"; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    [state, start] = [fields[0]!, Number(fields[19])];
  }
  assert.equal(state, "Z", "the child is a zombie");
  assert.doesNotThrow(() => process.kill(pid, 0), "a zombie still answers signal 0: that alone would call it alive");
  assert.equal(isPidAlive(pid), false);
  assert.equal(isAlive({ ...thisProcess(), pid, start }), false, "its owner record (same pid and start time) is dead");
  assert.equal(isPidAlive(parent.pid!), true);
});

test("owner locks: refused while the holder lives, taken over once it is dead; 20 contenders for a dead lock get one winner", async () => {
  const lock = join(dir, "job.lock");
  const first = await tryOwnerLock(lock, "run");
  assert.equal(first.acquired, true);
  const second = await tryOwnerLock(lock, "restart");
  assert.equal(second.acquired, false);
  assert.equal(!second.acquired && second.holder.what, "run");
  if (first.acquired) await first.release();
  // A lock left by a dead process.
  writeFileSync(lock, JSON.stringify({ owner: deadOwner(), since: "then", what: "run" }));
  const contenders = await Promise.all(Array.from({ length: 20 }, () => tryOwnerLock(lock, "restart")));
  assert.equal(contenders.filter((c) => c.acquired).length, 1);
  assert.equal(JSON.parse(readFileSync(lock, "utf8")).owner.pid, process.pid);
});

test("no-clobber names: 40 concurrent links of one name take 40 distinct names, name, name.1 ... name.39", async () => {
  const inbox = join(dir, "inbox");
  mkdirSync(inbox);
  const sources = Array.from({ length: 40 }, (_, i) => { const f = join(dir, `src-${i}`); writeFileSync(f, String(i)); return f; });
  const taken = await Promise.all(sources.map((f) => linkNoClobber(f, inbox, "order.edi")));
  assert.equal(new Set(taken).size, 40);
  const expected = ["order.edi", ...Array.from({ length: 39 }, (_, i) => `order.${i + 1}.edi`)].sort();
  assert.deepEqual(readdirSync(inbox).sort(), expected);
  const contents = new Set(readdirSync(inbox).map((n) => readFileSync(join(inbox, n), "utf8")));
  assert.equal(contents.size, 40, "every source kept its own file");
  assert.equal(await linkNoClobber(sources[0]!, inbox, "order.edi", false), undefined, "without numbering an existing name is refused");
});

test("the first free number costs O(log n) probes, not one per earlier file (5,000 earlier files: at most 2 log2 n + 2)", async () => {
  const inbox = join(dir, "many");
  mkdirSync(inbox);
  const n = 5000;
  writeFileSync(join(inbox, "order.edi"), "");
  for (let k = 1; k <= n; k++) writeFileSync(join(inbox, `order.${k}.edi`), "");
  const probes = { n: 0 };
  assert.equal(await firstFreeNumber(inbox, "order.edi", probes), n + 1);
  assert.ok(probes.n <= 2 * Math.ceil(Math.log2(n)) + 2, `${probes.n} probes`);
});
