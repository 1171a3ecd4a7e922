/**
 * Exactly-once receive under SIGKILL (issue 11): `as2 receive` started with AS2KIT_CRASH_AT=<point>
 * kills itself at one durable mark of the receive path; a fresh `as2 receive` (same config, no
 * variable) then recovers, and either the sender's `as2 send --restart` (when it got no answer) or
 * the recovered async MDN finishes the transfer. Every point, sync and async, must end with the
 * file in the inbox exactly once with its bytes, the sender's job SUCCESS, no ONGOING receive job,
 * nothing left in .as2kit-tmp, the spool or the MDN queue; and never a positive MDN at the sender
 * before the file was in the inbox.
 *
 * Two stations, MYCO (sender) and ACME (receiver), sharing nothing but the key files; each test has
 * its own data directories (and, with AS2KIT_TEST_STORE=postgres, databases: the twin
 * crash-receive.postgres.test.ts), payload and file name. With an async MDN, MYCO runs its own
 * `as2 receive` (station.asyncMdnUrl) to take it.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { before, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server, type Run } from "../helpers/as2-process.js";
import { queuedMdnIds, readJobRecords, storeSetting } from "../helpers/store-kind.js";

const dir = tempDir("as2kit-crash-receive-");
const PAYLOAD_BYTES = 300 * 1024;

const SYNC_POINTS = ["reserved", "opened", "linked", "committed", "recorded", "answered"] as const;
const ASYNC_POINTS = ["spooled", "accepted", "opened", "linked", "committed", "recorded", "queued", "answered"] as const;

before(() => {
  // One key pair per station for the whole file.
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  mkdirSync(join(dir, "out"), { recursive: true });
});

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

function jobOf(r: Run, what: string): JobRecord {
  assert.ok(r.stdout.trim(), `${what}: no JSON on stdout (exit ${r.status}, signal ${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as JobRecord;
}

/** Resolves with how the process ended, or undefined when it is still alive after ms. */
function endedWithin(s: As2Server, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
  return Promise.race([s.exited, sleep(ms).then(() => undefined)]);
}

/** SIGTERM (finish in-flight work), SIGKILL when that takes more than 5 s; waits for the exit. */
async function stop(s: As2Server | undefined): Promise<void> {
  if (!s || s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  s.proc.kill("SIGTERM");
  if (!(await endedWithin(s, 5_000))) {
    s.proc.kill("SIGKILL");
    await s.exited;
  }
}

/** Retries the check (assertions) until it passes or ms have passed; then throws its last error. */
async function eventually(check: () => void | Promise<void>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(100);
    }
  }
}

/** Entries of a folder that may be absent. */
function entries(path: string): string[] {
  return existsSync(path) ? readdirSync(path) : [];
}

interface Case {
  label: string;
  /** The source file (absolute) and its name in the inbox. */
  file: string;
  name: string;
  bytes: Buffer;
  acmeData: string;
  inbox: string;
  acmeConfig: string;
  mycoData: string;
  /** The stations' names for their stores (store-kind.ts): a database each per test with postgres. */
  acmeStation: string;
  mycoStation: string;
  /** The `store` setting of MYCO's configurations (undefined: files). */
  mycoStore: Record<string, unknown> | undefined;
}

async function newCase(label: string): Promise<Case> {
  const name = `order-${label}.bin`;
  const file = join(dir, "out", name);
  // A distinct payload per test (random), a few hundred KiB.
  const bytes = randomBytes(PAYLOAD_BYTES + Math.floor(Math.random() * 4096));
  writeFileSync(file, bytes);
  const acmeData = join(dir, `acme-${label}`);
  const acmeStation = `acme_${label.replace(/\W/g, "_")}`;
  const mycoStation = `myco_${label.replace(/\W/g, "_")}`;
  const acmeConfig = cfg(`acme-${label}`, {
    dataDir: `./acme-${label}`,
    ...(await storeSetting(acmeStation)),
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"], requireSigned: true, requireEncrypted: true } } },
  });
  const mycoStore = await storeSetting(mycoStation);
  return { label, file, name, bytes, acmeData, inbox: join(acmeData, "inbox", "myco"), acmeConfig, mycoData: join(dir, `myco-${label}`), acmeStation, mycoStation, mycoStore };
}

/** MYCO's sending config: signed + encrypted, signed MDN, no retries (a lost attempt stays lost). */
function mycoSendConfig(c: Case, acmeUrl: string, asyncMdnUrl?: string): string {
  return cfg(`myco-${c.label}`, {
    dataDir: `./myco-${c.label}`,
    ...c.mycoStore,
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" }, ...(asyncMdnUrl ? { asyncMdnUrl } : {}) },
    partners: {
      acme: {
        as2Id: "ACME", url: acmeUrl, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", retries: 0, readTimeout: 30,
        mdn: { request: "signed", mode: asyncMdnUrl ? "async" : "sync" },
      },
    },
  });
}

/** MYCO's own `as2 receive` for async MDNs: same data directory as its sends. */
function mycoMdnConfig(c: Case): string {
  return cfg(`myco-mdn-${c.label}`, {
    dataDir: `./myco-${c.label}`,
    ...c.mycoStore,
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/mdn" },
    partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "acme.crt" } },
  });
}

/** The sender holds a positive MDN (job SUCCESS): the file must be in the inbox, whole, now. */
function assertFileThereFor(c: Case, job: JobRecord, when: string): void {
  if (job.state !== "SUCCESS") return;
  const stored = join(c.inbox, c.name);
  assert.ok(existsSync(stored), `${when}: the sender has a positive MDN (job ${job.runId} SUCCESS) but ${c.name} is not in the inbox`);
  assert.equal(sha256(readFileSync(stored)), sha256(c.bytes), `${when}: the inbox file differs from the source`);
}

/**
 * Records, for every async MDN MYCO's receiver takes, whether the file was in ACME's inbox when
 * MYCO's receiver reported it (it reports after recording the MDN in the send job).
 */
function watchMdns(server: As2Server, c: Case): Array<{ messageId: string; disposition: string; fileThere: boolean }> {
  const seen: Array<{ messageId: string; disposition: string; fileThere: boolean }> = [];
  let buf = "";
  server.proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (e.event === "mdn") seen.push({ messageId: String(e.messageId), disposition: String(e.disposition ?? ""), fileThere: existsSync(join(c.inbox, c.name)) });
    }
  });
  return seen;
}

/** "...; processed" with no /error or /warning modifier. */
const positive = (disposition: string) => /processed\s*$/i.test(disposition);

/** Every receiver guarantee of the spec, once the transfer is over. */
async function assertReceiverSettled(c: Case): Promise<void> {
  await eventually(async () => {
    const names = entries(c.inbox).filter((n) => n !== ".as2kit-tmp");
    assert.deepEqual(names, [c.name], `exactly one file in ${c.inbox}`);
    assert.equal(sha256(readFileSync(join(c.inbox, c.name))), sha256(c.bytes), "the inbox file has the source's bytes");
    const records = await readJobRecords(c.acmeData, c.acmeStation);
    assert.ok(records.length >= 1, "the receiver recorded a job");
    assert.deepEqual(records.filter((r) => r.state === "ONGOING").map((r) => `${r.runId} (pid ${r.pid})`), [], "no receive job left ONGOING");
    assert.deepEqual(entries(join(c.inbox, ".as2kit-tmp")), [], "nothing left in .as2kit-tmp");
    assert.deepEqual(entries(join(c.acmeData, "spool")), [], "nothing left in the receiver's spool");
    assert.deepEqual(await queuedMdnIds(c.acmeData, c.acmeStation), [], "the outbound MDN queue is empty");
  });
}

/** Waits for the crash; fails with a clear message when the process is still alive. */
async function assertKilled(s: As2Server, point: string, graceMs: number): Promise<void> {
  const ended = await endedWithin(s, graceMs);
  assert.ok(ended, `as2 receive did not kill itself at ${point} (AS2KIT_CRASH_AT): still running ${graceMs} ms later; stderr: ${s.stderr()}`);
  assert.equal(ended.signal, "SIGKILL", `as2 receive ended with code ${ended.code}, signal ${ended.signal}, not SIGKILL at ${point}; stderr: ${s.stderr()}`);
}

for (const point of SYNC_POINTS) {
  test(`receive:${point}, sync MDN: SIGKILL, restart, ${point === "answered" ? "the sender already has its MDN" : "as2 send --restart"}; the file once, the sender SUCCESS, nothing left over`, async () => {
    const c = await newCase(`sync-${point}`);
    const crashAt = `receive:${point}`;
    let acme1: As2Server | undefined;
    let acme2: As2Server | undefined;
    try {
      acme1 = await startAs2Receive(c.acmeConfig, [], { AS2KIT_CRASH_AT: crashAt });
      const mycoConfig = mycoSendConfig(c, acme1.url);
      const sent = await as2(["send", "--config", mycoConfig, "--partner", "acme", "--json", c.file]);
      const job = jobOf(sent, "as2 send");
      assertFileThereFor(c, job, `as2 send (crash at ${crashAt})`);
      await assertKilled(acme1, crashAt, 3_000);
      if (point === "answered") {
        // The response was written before the crash: the sender has its positive MDN.
        assert.equal(sent.status, 0, sent.stderr);
        assert.equal(job.state, "SUCCESS", `the MDN was written before ${crashAt}`);
      } else {
        // The receiver died before answering: the sender saw the connection go, no MDN.
        assert.equal(sent.status, 1, `exit code of the send that lost its receiver: ${sent.stderr}`);
        assert.equal(job.state, "FAILED");
      }

      acme2 = await startAs2Receive(c.acmeConfig);
      let finalJob = job;
      if (job.state !== "SUCCESS") {
        const again = await as2(["send", "--config", mycoSendConfig(c, acme2.url), "--restart", job.runId, "--json"]);
        const restarted = jobOf(again, "as2 send --restart");
        assertFileThereFor(c, restarted, "as2 send --restart");
        assert.equal(again.status, 0, `${again.stderr}${again.stdout}; ACME events: ${JSON.stringify(acme2.events)} ${acme2.stderr()}`);
        assert.equal(restarted.restartOf, job.runId);
        assert.equal(restarted.files[0]!.as2MessageId, job.files[0]!.as2MessageId, "the restart resends under the original Message-ID");
        finalJob = restarted;
      }
      assert.equal(finalJob.state, "SUCCESS", "the sender's job ends SUCCESS");
      assert.match(finalJob.messages[0]!.mdnMessage?.disposition ?? "", /processed$/, "a positive MDN");
      await assertReceiverSettled(c);
    } finally {
      await stop(acme1);
      await stop(acme2);
    }
  });
}

for (const point of ASYNC_POINTS) {
  const before200 = point === "spooled";
  test(`receive:${point}, async MDN: SIGKILL, restart, ${before200 ? "as2 send --restart" : "the restarted receiver finishes the spooled message and delivers the MDN"}; the file once, the sender SUCCESS, nothing left over`, async () => {
    const c = await newCase(`async-${point}`);
    const crashAt = `receive:${point}`;
    let acme1: As2Server | undefined;
    let acme2: As2Server | undefined;
    let myco: As2Server | undefined;
    try {
      myco = await startAs2Receive(mycoMdnConfig(c));
      const mdns = watchMdns(myco, c);
      acme1 = await startAs2Receive(c.acmeConfig, [], { AS2KIT_CRASH_AT: crashAt });
      const mycoConfig = mycoSendConfig(c, acme1.url, myco.url);
      const sent = await as2(["send", "--config", mycoConfig, "--partner", "acme", "--json", c.file]);
      const job = jobOf(sent, "as2 send");
      assertFileThereFor(c, job, `as2 send (crash at ${crashAt})`);
      await assertKilled(acme1, crashAt, 10_000);
      if (before200) {
        assert.equal(sent.status, 1, `exit code of the send that lost its receiver before the 200: ${sent.stderr}`);
        assert.equal(job.state, "FAILED");
      } else {
        // The 200 came before the crash: the message was accepted, the MDN is owed.
        assert.equal(sent.status, 0, sent.stderr + sent.stdout);
        assert.ok(job.state === "AWAITING_MDN" || job.state === "SUCCESS", `state ${job.state} after the 200`);
      }
      const messageId = job.files[0]!.as2MessageId!;

      acme2 = await startAs2Receive(c.acmeConfig);
      let waitFor = job.runId;
      if (before200) {
        const again = await as2(["send", "--config", mycoSendConfig(c, acme2.url, myco.url), "--restart", job.runId, "--json"]);
        const restarted = jobOf(again, "as2 send --restart");
        assertFileThereFor(c, restarted, "as2 send --restart");
        assert.equal(again.status, 0, again.stderr + again.stdout);
        assert.equal(restarted.restartOf, job.runId);
        assert.equal(restarted.files[0]!.as2MessageId, messageId, "the restart resends under the original Message-ID");
        waitFor = restarted.runId;
      }
      // No resend after the 200: the recovered receiver delivers the MDN by itself.
      const status = await as2(["status", waitFor, "--wait", "30", "--json", "--config", mycoConfig]);
      const finalJob = jobOf(status, "as2 status --wait");
      assertFileThereFor(c, finalJob, "as2 status --wait");
      assert.equal(status.status, 0, `as2 status --wait: ${status.stderr}; ACME: ${acme2.stderr()}; MYCO: ${myco.stderr()}`);
      assert.equal(finalJob.state, "SUCCESS", "the sender's job ends SUCCESS");
      assert.equal(finalJob.messages[0]!.mdnStatus, "Received");
      assert.match(finalJob.messages[0]!.mdnMessage?.disposition ?? "", /processed$/, "a positive MDN");

      const ours = mdns.filter((m) => m.messageId === messageId);
      assert.ok(ours.some((m) => positive(m.disposition)), `MYCO's receiver took a positive MDN for ${messageId}: ${JSON.stringify(mdns)}`);
      assert.deepEqual(mdns.filter((m) => positive(m.disposition) && !m.fileThere), [], "no positive MDN reached the sender before the file was in the inbox");
      await assertReceiverSettled(c);
    } finally {
      await stop(acme1);
      await stop(acme2);
      await stop(myco);
    }
  });
}
