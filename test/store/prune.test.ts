// Retention (src/store/prune.ts, `as2 prune`): each kind of thing that goes, each that never does,
// the dry run that counts the same and removes nothing. Against both store kinds (issue 15: `as2
// prune` works on the database too): local files, and a throwaway PostgreSQL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { newRunId, openStore, PgStore, pruneFiles, thisProcess, type As2Store, type JobRecord, type JobState, type LedgerEntry } from "../../src/store/index.js";
import { parseDuration } from "../../src/config/duration.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { onCleanup, tempDir } from "../helpers/tools.js";

const KINDS = ["files", "postgres"] as const;
type Kind = (typeof KINDS)[number];
let pg: Promise<TestPostgres> | undefined;
let databases = 0;

/** A store of the kind: files under dataDir, or a database of its own on this file's PostgreSQL. */
async function storeOf(kind: Kind, dataDir: string): Promise<As2Store> {
  if (kind === "files") return openStore({ dataDir });
  const db = await (pg ??= startPostgres());
  const name = `prune_${++databases}`;
  db.psql(`CREATE DATABASE "${name}" OWNER as2`, "postgres");
  const store = new PgStore(db.url.replace(/\/as2$/, `/${name}`));
  onCleanup(() => store.close());
  return store;
}

const DAY = 86_400_000;
const now = Date.now();
const ago = (days: number) => new Date(now - days * DAY);

function job(state: JobState, startDaysAgo: number, over: Partial<JobRecord> = {}, endDaysAgo = startDaysAgo): JobRecord {
  const start = ago(startDaysAgo);
  const runId = newRunId(start);
  const id = `<${runId}@MYCO>`;
  return {
    runId, type: "AS2 Send", command: "transfer", partner: "acme", senderId: "MYCO", receiverId: "ACME", startedBy: "t", host: "h", pid: 1,
    startTime: start.toISOString(), ...(state === "ONGOING" || state === "AWAITING_MDN" || state === "NOT_STARTED" ? {} : { endTime: ago(endDaysAgo).toISOString() }),
    state, statusCode: 0, files: [{ name: "/out/a.edi", size: 10, status: state, statusCode: 0, as2MessageId: id }],
    messages: [{ as2MessageId: id, persistedTimestamp: start.getTime(), compressed: false, encrypted: true, signed: true, receiverId: "ACME", senderId: "MYCO", mdnStatus: "Received", partnerType: "Production", attachments: [] }],
    ...over,
  };
}

function entry(messageId: string, step: LedgerEntry["step"], daysAgo: number, over: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    from: "ACME", messageId, runId: newRunId(ago(daysAgo)), partner: "acme", owner: thisProcess(), step, at: ago(daysAgo).toISOString(),
    mdnRequest: { wanted: true, signed: true, to: "ACME" }, ...over,
  };
}

function touch(path: string, daysAgo: number, content = "x".repeat(100)): void {
  writeFileSync(path, content);
  const t = ago(daysAgo).getTime() / 1000;
  utimesSync(path, t, t);
}

/** Every file under the folder with its size, to show that a dry run changed nothing. */
function tree(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    return d.isDirectory() ? tree(root, p) : [`${relative(root, p)} ${statSync(p).size}`];
  }).sort();
}

async function station(kind: Kind) {
  const dataDir = tempDir();
  mkdirSync(join(dataDir, "jobs"), { recursive: true });
  const store = await storeOf(kind, dataDir);
  const jobs = {
    oldSent: job("SUCCESS", 100), oldReceived: job("FAILED", 100, { type: "AS2 Receive" }), oldPartial: job("PARTIAL", 95), oldInterrupted: job("INTERRUPTED", 90),
    oldAwaiting: job("AWAITING_MDN", 100), oldOngoing: job("ONGOING", 100), oldNotStarted: job("NOT_STARTED", 100),
    recent: job("SUCCESS", 10), endedRecently: job("SUCCESS", 40, {}, 20),
  };
  for (const r of Object.values(jobs)) {
    await store.jobs.save(r);
    if (r.type === "AS2 Send") await store.sent.add(r.messages[0]!.as2MessageId, r.runId);
  }
  const ledger = store.received;
  const spool = join(dataDir, "spool");
  mkdirSync(spool, { recursive: true });
  const heldSpool = join(spool, `in-${newRunId(ago(100))}.body`);
  const ledgerEntries = {
    old: entry("<old@ACME>", "answered", 100), week: entry("<week@ACME>", "answered", 8), twoDays: entry("<two@ACME>", "answered", 2),
    oldInProgress: entry("<busy@ACME>", "recorded", 100), oldSpooled: entry("<spooled@ACME>", "spooled", 100, { spool: heldSpool }),
  };
  for (const e of Object.values(ledgerEntries)) {
    assert.ok((await ledger.reserve({ ...e, step: "reserved" })).reserved);
    await ledger.advance(e);
  }
  touch(heldSpool, 100); // an async body waiting for recovery
  touch(join(spool, `${jobs.oldSent.runId}.0.body`), 100); // a pruned job's send body
  touch(join(spool, `${jobs.oldOngoing.runId}.0.body`), 100); // an unfinished job's
  const goneRun = newRunId(ago(60));
  touch(join(spool, `${goneRun}.0.body`), 60); // a job whose record is gone
  touch(join(spool, `${newRunId(ago(0))}.0.body`), 0); // a send running now
  touch(join(dataDir, "jobs", ".x.1.tmp"), 100);
  touch(join(dataDir, "jobs", ".y.2.tmp"), 0);
  const inbox = join(dataDir, "inbox", "acme");
  mkdirSync(inbox, { recursive: true });
  touch(join(inbox, "old.edi"), 100);
  touch(join(inbox, "new.edi"), 0);
  return { dataDir, store, jobs, inbox };
}

test("durations: 30m, 12h, 90d, 2w; anything else is not one", () => {
  assert.deepEqual(["30m", "12h", "90d", "2w"].map(parseDuration), [30 * 60_000, 12 * 3_600_000, 90 * DAY, 14 * DAY]);
  for (const bad of ["", "90", "d", "1.5d", "-1d", "0d", "90 days", "1y", "90D", "1e3d"]) assert.equal(parseDuration(bad), undefined, bad);
});

for (const kind of KINDS) test(`${kind}: prune --older-than 30d: finished old jobs with their index and sent entries and spool bodies; old answered duplicates; leftovers. Never unfinished jobs, in-progress entries, held spool, inbox files`, async () => {
  const { dataDir, store, jobs, inbox } = await station(kind);
  await store.jobs.query({ offset: 0, length: 1 }); // the index is built (a cache: not what a dry run may not change)
  const before = tree(dataDir);
  const jobsBefore = (await store.jobs.query({ offset: 0, length: 1 })).totalRecords;
  const dry = await pruneFiles(dataDir, store, { olderThanMs: 30 * DAY, dryRun: true });
  assert.deepEqual(tree(dataDir), before, "a dry run removes nothing");
  assert.equal((await store.jobs.query({ offset: 0, length: 1 })).totalRecords, jobsBefore, "a dry run removes no job");
  assert.ok(await store.received.get("ACME", "<old@ACME>"), "a dry run removes no duplicate entry");
  const real = await pruneFiles(dataDir, store, { olderThanMs: 30 * DAY });
  const counts = (r: typeof real) => ({ ...r, dryRun: undefined, cutoff: undefined, duplicates: { ...r.duplicates, keptUntil: undefined } });
  assert.deepEqual(counts(dry), counts(real), "the dry run counted exactly what the real run removed");
  assert.equal(dry.dryRun, true);

  assert.equal(real.jobs.count, 4, "SUCCESS, FAILED, PARTIAL and INTERRUPTED jobs older than 30 days");
  assert.ok(real.jobs.bytes > 4 * 300);
  assert.equal(real.sentIndex.count, 3, "those of the three send jobs among them");
  assert.equal(real.duplicates.count, 1, "only the 100-day-old answered entry: in-progress ones stay, and the 8-day one is within 30 days");
  assert.equal(real.spool.count, 2, "the pruned job's body and the body of a job that is gone");
  assert.equal(real.temp.count, 1);
  assert.equal(real.inbox, undefined);

  const left = (await store.jobs.query({ offset: 0, length: 50 })).records.map((s) => s.runId).sort();
  const kept = [jobs.oldAwaiting, jobs.oldOngoing, jobs.oldNotStarted, jobs.recent, jobs.endedRecently].map((r) => r.runId).sort();
  assert.deepEqual(left, kept);
  assert.equal((await store.jobs.query({ offset: 0, length: 1 })).totalRecords, 5);
  for (const r of [jobs.oldSent, jobs.oldReceived, jobs.oldPartial, jobs.oldInterrupted]) {
    assert.equal(await store.jobs.load(r.runId), undefined);
    assert.equal(await store.sent.runIdOf(r.messages[0]!.as2MessageId), undefined);
  }
  assert.equal(await store.sent.runIdOf(jobs.oldAwaiting.messages[0]!.as2MessageId), jobs.oldAwaiting.runId, "an async MDN may still come for it");
  const ledger = store.received;
  assert.equal(await ledger.get("ACME", "<old@ACME>"), undefined);
  for (const id of ["<week@ACME>", "<two@ACME>", "<busy@ACME>", "<spooled@ACME>"]) assert.ok(await ledger.get("ACME", id), id);
  const spool = readdirSync(join(dataDir, "spool")).sort();
  assert.equal(spool.length, 3, spool.join());
  assert.ok(spool.some((n) => n.startsWith("in-")), "held by an unfinished ledger entry");
  assert.ok(spool.includes(`${jobs.oldOngoing.runId}.0.body`));
  assert.deepEqual(readdirSync(inbox).sort(), ["new.edi", "old.edi"], "inbox files are the user's");
  assert.deepEqual(readdirSync(join(dataDir, "jobs")).filter((n) => n.endsWith(".tmp")), [".y.2.tmp"]);
});

for (const kind of KINDS) test(`${kind}: prune --older-than 1d: duplicate entries are still kept for the resend window (7 days); --inbox removes old inbox files`, async () => {
  const { dataDir, store, inbox } = await station(kind);
  const r = await pruneFiles(dataDir, store, { olderThanMs: DAY, inboxDirs: [inbox] });
  assert.equal(r.duplicates.count, 2, "the 100- and 8-day-old entries; the 2-day-old one is within the resend window");
  assert.ok(Date.parse(r.duplicates.keptUntil) <= now - 7 * DAY + 60_000);
  assert.ok(await store.received.get("ACME", "<two@ACME>"));
  assert.equal(r.jobs.count, 6, "every finished job ended more than a day ago");
  assert.deepEqual(r.inbox, { count: 1, bytes: 100 });
  assert.deepEqual(readdirSync(inbox), ["new.edi"]);
  assert.equal((await store.jobs.query({ offset: 0, length: 50 })).totalRecords, 3, "the three unfinished jobs");
});
