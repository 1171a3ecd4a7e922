/**
 * `as2 status` (contract §2, §3, §5): the list with its columns, filters and paging (text and
 * the --json page entity), one job in detail, --wait (exit 0 when the job finishes, 4 when time
 * runs out) and the usage errors. Records are written with JobStore, as send and receive do.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { JobStore, newRunId, type JobRecord } from "../../src/store/index.js";
import { opensslIdentity, tempDir } from "../helpers/tools.js";
import { as2 } from "../helpers/as2-process.js";

const dir = tempDir();
const config = join(dir, "as2.json");
const store = new JobStore(join(dir, "data"));
const ids: string[] = [];

function rec(i: number, over: Partial<JobRecord>): JobRecord {
  const start = new Date(Date.UTC(2026, 10, 20 + (i % 3), 8, i));
  const runId = newRunId(start);
  ids.push(runId);
  return {
    runId, type: "AS2 Send", command: "transfer", partner: "acme", senderId: "MYCO", receiverId: "ACME", startedBy: "cron", host: "h", pid: 42,
    startTime: start.toISOString(), endTime: new Date(start.getTime() + 1500).toISOString(), durationMs: 1500, state: "SUCCESS", statusCode: 0,
    files: [{ name: `/out/order-${i}.edi`, size: 2048, status: "SUCCESS", statusCode: 0, as2MessageId: `<m${i}@myco>` }],
    messages: [{
      as2MessageId: `<m${i}@myco>`, persistedTimestamp: start.getTime(), compressed: true, encrypted: true, signed: true, receiverId: "ACME", senderId: "MYCO",
      transportStatusReceived: 200, deliveryStatus: "Delivered", mdnStatus: "Received", partnerType: "Production",
      mdnMessage: { persistedTimestamp: start.getTime() + 1000, content: "", disposition: "automatic-action/MDN-sent-automatically; processed", mic: "q1w2e3=", micAlgorithm: "sha-256", signed: true, mdnError: false },
      attachments: [{ name: `order-${i}.edi`, size: 2048 }],
    }],
    sendDetails: [{
      as2MessageId: `<m${i}@myco>`, file: `/out/order-${i}.edi`, contentType: "application/edifact", url: "http://127.0.0.1/as2", mic: "q1w2e3=", micAlgorithm: "sha-256",
      bodyBytes: 3000, attempts: 1, httpStatus: 200, mdnRequest: "signed", mdnMode: "sync", mdnDestination: "joblog",
      mdnChecks: {
        signature: { verdict: "pass", detail: "signed by CN=acme" }, signerCertificate: { verdict: "pass", detail: "valid" },
        originalMessageId: { verdict: "pass", detail: "matches" }, disposition: { verdict: "pass", detail: "processed" }, mic: { verdict: "pass", detail: "matches" },
      },
    }],
    ...over,
  };
}

before(async () => {
  opensslIdentity("myco", dir);
  writeFileSync(config, JSON.stringify({ dataDir: "./data", station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } }, partners: {} }));
  for (let i = 0; i < 12; i++) {
    const failed = i % 4 === 3;
    await store.save(rec(i, {
      ...(i % 3 === 2 ? { type: "AS2 Receive", partner: "beta", senderId: "BETA", receiverId: "MYCO" } : {}),
      ...(failed ? { state: "FAILED", statusCode: -1, error: { code: "AS2_ERR_MDN_NEGATIVE", message: "the partner answered processed/error: decryption-failed" } } : {}),
    }));
  }
});

const newestFirst = () => [...ids].sort().reverse();

test("the list: the contract's columns, newest first, and a footer that says how to page on", async () => {
  const r = await as2(["status", "--config", config, "--page-length", "5"]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^Instance\s+Type\s+Command\s+End Time\s+Files\s+Sender ID\s+Receiver ID\s+MDN\s+Status$/);
  assert.deepEqual(lines.slice(1, 6).map((l) => l.split(/\s+/)[0]), newestFirst().slice(0, 5));
  assert.equal(lines[6], "1-5 of 12; --page-offset 5 for the next page");
  const second = await as2(["status", "--config", config, "--page-length", "5", "--page-offset", "10"]);
  assert.deepEqual(second.stdout.trimEnd().split("\n").slice(1, -1).map((l) => l.split(/\s+/)[0]), newestFirst().slice(10));
  assert.match(second.stdout, /11-12 of 12\n$/);
});

test("filters: --partner, --direction, --state, --since, and the --json page entity", async () => {
  const page = async (...args: string[]) => {
    const r = await as2(["status", "--config", config, "--json", ...args]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { totalRecords: number; records: JobRecord[] };
  };
  const all = await page();
  assert.equal(all.totalRecords, 12);
  assert.deepEqual(all.records.map((r) => r.runId), newestFirst());
  assert.ok(all.records[0]!.messages.length === 1 && all.records[0]!.files.length === 1, "the page holds full job records");
  const beta = await page("--partner", "beta");
  assert.equal(beta.totalRecords, 4);
  assert.ok(beta.records.every((r) => r.partner === "beta" && r.type === "AS2 Receive"));
  assert.equal((await page("--direction", "receive")).totalRecords, 4);
  assert.equal((await page("--direction", "send")).totalRecords, 8);
  const failed = await page("--state", "FAILED");
  assert.deepEqual(failed.records.map((r) => r.state), ["FAILED", "FAILED", "FAILED"]);
  const since = await page("--since", "2026-11-22T00:00:00Z");
  assert.ok(since.records.every((r) => r.startTime >= "2026-11-22"));
  assert.equal(since.totalRecords, 4);
  const paged = await page("--state", "SUCCESS", "--page-offset", "2", "--page-length", "3");
  assert.equal(paged.totalRecords, 9);
  assert.equal(paged.records.length, 3);
});

test("one job: properties, results, files, messages and the MDN with its MIC check; --json puts jobStatus on top", async () => {
  const failedId = newestFirst().find((id) => ids.indexOf(id) % 4 === 3 && ids.indexOf(id) % 3 !== 2)!;
  const r = await as2(["status", "--config", config, failedId]);
  assert.equal(r.status, 0, r.stderr);
  for (const re of [/^Properties$/m, /Name\s+AS2 Send to acme/, /Sender ID\s+MYCO/, /Receiver ID\s+ACME/, /Started by\s+cron/, /Duration\s+1\.50 s/,
    /^Results$/m, /State\s+FAILED \(-1\)/, /Files sent\s+1 of 1/, /Error\s+AS2_ERR_MDN_NEGATIVE: the partner answered/,
    /^Files$/m, /order-\d+\.edi\s+2\.0 KB\s+SUCCESS\s+<m\d+@myco>/, /^Message <m\d+@myco>$/m, /Security\s+signed, encrypted, compressed/,
    /Disposition\s+automatic-action\/MDN-sent-automatically; processed/, /MIC\s+q1w2e3=, sha-256 \(matched\)/, /signature\s+PASS/]) assert.match(r.stdout, re);
  const j = await as2(["status", "--config", config, "--json", failedId]);
  const job = JSON.parse(j.stdout) as Record<string, unknown>;
  assert.equal(Object.keys(job)[0], "jobStatus");
  assert.equal(job.jobStatus, "FAILED");
  assert.equal(job.runId, failedId);
});

test("--wait: returns 0 when the job finishes meanwhile, 4 when it is still going when time runs out", async () => {
  const ongoing = rec(99, { state: "AWAITING_MDN", statusCode: 2, endTime: undefined });
  await store.save(ongoing);
  const timedOut = await as2(["status", "--config", config, "--wait", "0.5", "--json", ongoing.runId]);
  assert.equal(timedOut.status, 4);
  assert.equal(JSON.parse(timedOut.stdout).jobStatus, "AWAITING_MDN");
  assert.match(timedOut.stderr, /still AWAITING_MDN after 0\.5 s/);
  const waiting = as2(["status", "--config", config, "--wait", "20", "--json", ongoing.runId]);
  // Another process finishes the job a moment later (as `as2 receive` does when the MDN comes).
  const finisher = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `
    import { JobStore } from "${join(process.cwd(), "src/store/index.ts")}";
    await new Promise((r) => setTimeout(r, 800));
    await new JobStore(process.argv[1]).update(process.argv[2], (r) => { r.state = "SUCCESS"; });`, join(dir, "data"), ongoing.runId], { stdio: "inherit" });
  const finished = new Promise((r) => finisher.once("exit", r));
  const done = await waiting;
  await finished;
  assert.equal(done.status, 0, done.stderr);
  assert.equal(JSON.parse(done.stdout).jobStatus, "SUCCESS");
});

test("usage errors exit 2 naming the flag; an unknown job exits 1", async () => {
  for (const [args, re] of [
    [["--state", "DONE"], /--state takes one of NOT_STARTED, .*INTERRUPTED, not "DONE"/],
    [["--direction", "up"], /--direction takes send or receive/],
    [["--since", "yesterday"], /--since takes an ISO date/],
    [["--page-length", "0"], /--page-length takes a whole number of at least 1/],
    [["--wait", "5"], /--wait needs the runId/],
    [["../../etc/passwd"], /is not a run ID/],
  ] as Array<[string[], RegExp]>) {
    const r = await as2(["status", "--config", config, ...args]);
    assert.equal(r.status, 2, args.join(" "));
    assert.match(r.stderr, re);
  }
  const unknown = await as2(["status", "--config", config, newRunId(new Date())]);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /no job \S+ in /);
});
