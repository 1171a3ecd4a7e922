/**
 * The send journal (src/jobs/send-journal.ts): a send job fsyncs only its journal per file and
 * the record when the job ends. A SIGKILL leaves the record current (test/e2e/crash-send.test.ts);
 * a power loss can leave it older than the journal, which is what these tests build by hand: the
 * record as the last durable save left it, the journal as the job wrote it. The dead-job sweep
 * must then give every file the Message-ID it may have reached the partner under (so a restart
 * resends under it, RFC 6017) and the outcomes the journal holds.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { newRunId, openStore, statusCodeOf, type JobRecord } from "../../src/store/index.js";
import { SendJournal, journalPath, replayJournal } from "../../src/jobs/send-journal.js";
import { settleDeadSendJobs } from "../../src/jobs/send-recovery.js";
import { tempDir } from "../helpers/tools.js";

function record(runId: string, n: number): JobRecord {
  return {
    runId, type: "AS2 Send", command: "transfer", partner: "acme", senderId: "MYCO", receiverId: "ACME", startedBy: "test", host: "h", pid: 1,
    startTime: new Date().toISOString(), state: "ONGOING", statusCode: statusCodeOf("ONGOING"),
    files: Array.from({ length: n }, (_, i) => ({ name: `/out/f${i}.edi`, size: 10, status: "NOT_STARTED" as const, statusCode: statusCodeOf("NOT_STARTED") })),
    messages: [],
  };
}

test("replay fills in what the record lacks and leaves what it already has; a torn last line is ignored", async () => {
  const dataDir = tempDir();
  const runId = newRunId(new Date());
  const journal = await SendJournal.open(dataDir, runId);
  await journal.mark({ i: 0, as2MessageId: "<m0@MYCO>", status: "ONGOING" });
  await journal.mark({ i: 0, status: "SUCCESS" });
  await journal.mark({ i: 1, as2MessageId: "<m1@MYCO>", status: "ONGOING" });
  await journal.mark({ i: 1, status: "FAILED", error: { code: "AS2_ERR_HTTP_STATUS", message: "HTTP 500" } });
  await journal.mark({ i: 2, as2MessageId: "<m2@MYCO>", status: "ONGOING" });
  appendFileSync(journalPath(dataDir, runId), '{"i":3,"as2Mess');
  const r = record(runId, 4);
  // File 1 reached the record as SUCCESS (a later, async MDN): the record's word stands.
  Object.assign(r.files[1]!, { as2MessageId: "<m1@MYCO>", status: "SUCCESS", statusCode: 0 });
  assert.equal(await replayJournal(dataDir, r), true);
  assert.deepEqual(r.files.map((f) => [f.status, f.as2MessageId]), [["SUCCESS", "<m0@MYCO>"], ["SUCCESS", "<m1@MYCO>"], ["ONGOING", "<m2@MYCO>"], ["NOT_STARTED", undefined]]);
  assert.equal(r.files[0]!.statusCode, 0);
  assert.equal(r.files[1]!.error, undefined);
  assert.ok(r.warnings?.some((w) => /journal/.test(w)));
  // Nothing more to say the second time.
  assert.equal(await replayJournal(dataDir, r), false);
  await journal.finish();
  assert.equal(existsSync(journalPath(dataDir, runId)), false);
});

test("power loss after the POST of file 2: the sweep gives file 2 its Message-ID from the journal and records it INTERRUPTED; file 1 SUCCESS; the journal is gone", async () => {
  const dataDir = tempDir();
  const { jobs } = openStore({ dataDir });
  const runId = newRunId(new Date());
  // The record as the job's first (durable) save left it: nothing started.
  await jobs.save(record(runId, 3));
  const journal = await SendJournal.open(dataDir, runId);
  await journal.mark({ i: 0, as2MessageId: "<a@MYCO>", status: "ONGOING" });
  await journal.mark({ i: 0, status: "SUCCESS" });
  await journal.mark({ i: 1, as2MessageId: "<b@MYCO>", status: "ONGOING" });
  // The process is gone without releasing its run lock (pid 0: no such owner).
  mkdirSync(join(dataDir, "jobs", ".running"), { recursive: true });
  writeFileSync(join(dataDir, "jobs", ".running", `${runId}.lock`), JSON.stringify({ owner: { host: "", pid: 0, start: 0, boot: "" }, since: "" }));

  assert.deepEqual(await settleDeadSendJobs(openStore({ dataDir }), dataDir), [runId]);
  const settled = (await jobs.load(runId))!;
  assert.deepEqual(settled.files.map((f) => [f.status, f.as2MessageId]), [["SUCCESS", "<a@MYCO>"], ["INTERRUPTED", "<b@MYCO>"], ["NOT_STARTED", undefined]]);
  assert.equal(settled.state, "INTERRUPTED");
  assert.equal(existsSync(journalPath(dataDir, runId)), false, "the journal was removed with the spool");
});
