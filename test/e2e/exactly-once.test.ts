/**
 * Exactly-once on the receive side (issue 11, "Receiver, concurrency and hostile cases"): real
 * `as2 receive` processes on 127.0.0.1 take messages that arrive at the same moment - 16
 * different messages all named order.edi, and 4 identical copies of each of 5 messages - and
 * must store each message once, under distinct names, answering every copy with the same MDN.
 * An md5-signed message (openssl) gets a signed MDN whose MIC says md5. An unsigned negative MDN
 * forged by anyone for a message awaiting its async MDN is not applied (a warning says so), and
 * the genuine MDN arriving later settles the job. (Concurrent restarts of one job: another file.)
 *
 * Requests are posted with node:http, each on its own connection; every body is sent but its
 * last byte, and only when all are in flight do the last bytes go out together, so the
 * receiver really handles them at the same time.
 *
 * The suite runs against both store kinds (issue 15): local files here, PostgreSQL through
 * exactly-once.postgres.test.ts (helpers/store-kind.ts).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { before, test } from "node:test";
import { buildMdn } from "../../src/core/index.js";
import type { JobRecord } from "../../src/store/index.js";
import { onCleanup, opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";
import { STORE_KIND, readJobRecord, storeSetting } from "../helpers/store-kind.js";
import { postTogether, readDryRun, request, type Req, type Res } from "../helpers/post.js";
import { buildWithOpenssl, checkMdnWithOpenssl, opensslMic, type OpensslSenderOptions } from "../helpers/openssl-sender.js";

const dir = tempDir();
const inbox = join(dir, "acme-data", "inbox", "myco");
const POSITIVE = /^automatic-action\/MDN-sent-automatically;\s*processed$/i;
let acme: As2Server;
let sender: OpensslSenderOptions;


const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const inboxNames = (match: RegExp) => (existsSync(inbox) ? readdirSync(inbox) : []).filter((n) => match.test(n)).sort();
const tmpLeft = () => (existsSync(join(inbox, ".as2kit-tmp")) ? readdirSync(join(inbox, ".as2kit-tmp")) : []);

const post = (url: string, r: Req): Promise<Res> => request(url, r);

/** Headers for an openssl-built message from MYCO to ACME asking for a sync MDN. */
function opensslHeaders(messageId: string, contentType: string, extra: Record<string, string>, dno: string): Record<string, string> {
  return {
    "AS2-Version": "1.2", "MIME-Version": "1.0", "AS2-From": "MYCO", "AS2-To": "ACME",
    "Message-ID": messageId, Subject: "exactly-once", Date: new Date().toUTCString(),
    "Content-Type": contentType, ...extra,
    "Disposition-Notification-To": "edi@myco.example",
    "Disposition-Notification-Options": dno,
  };
}
const SHA256_DNO = "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256, sha1";

async function pollJob(dataDir: string, station: string, runId: string, until: (r: JobRecord) => boolean, ms: number): Promise<JobRecord> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await readJobRecord(join(dir, dataDir), station, runId);
    if (until(r) || Date.now() > deadline) return r;
    await sleep(100);
  }
}

before(async () => {
  const myco = opensslIdentity("myco", dir);
  const acmeId = opensslIdentity("acme", dir);
  sender = { dir, keyFile: myco.keyFile, certFile: myco.certFile, recipientCertFile: acmeId.certFile, bcClassDir: dir };
  acme = await startAs2Receive(cfg("acme", {
    dataDir: "./acme-data",
    ...(await storeSetting("acme")),
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    // inbound.whenExists is the default, "rename".
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"] } } },
  }));
});

test("same-name burst: 16 different messages named order.edi posted at once -> 16 positive signed MDNs and 16 distinct files order.edi, order.1.edi ... order.15.edi holding the 16 payloads", { timeout: 60_000 }, async () => {
  const stamp = Date.now();
  const messages = Array.from({ length: 16 }, (_, i) => {
    const payload = Buffer.from(`UNB+UNOA:2+MYCO+ACME+261122:1200+${i + 1}'\r\nUNH+1+ORDERS:D:96A:UN'\r\nBGM+220+PO-${i + 1}-${randomBytes(6).toString("hex")}'\r\n`.repeat(40));
    const msg = buildWithOpenssl(sender, payload, "order.edi", "application/edifact", ["sign", "encrypt"]);
    const messageId = `<burst-${i + 1}-${stamp}@exactly-once.test>`;
    return { payload, messageId, req: { headers: opensslHeaders(messageId, msg.contentType, msg.extraHeaders, SHA256_DNO), body: msg.body } };
  });
  assert.equal(new Set(messages.map((m) => sha256(m.payload))).size, 16, "16 distinct payloads");

  const answers = await postTogether(acme.url, messages.map((m) => m.req));
  answers.forEach((res, i) => {
    assert.equal(res.status, 200, `message ${i + 1}: ${res.body.toString()}`);
    const ct = String(res.headers["content-type"]);
    assert.match(ct, /^multipart\/signed/i, `message ${i + 1}: a signed MDN`);
    const mdn = checkMdnWithOpenssl(dir, ct, res.body, join(dir, "acme.crt"));
    assert.equal(mdn.fields["original-message-id"], messages[i]!.messageId);
    assert.match(mdn.fields.disposition!, POSITIVE, `message ${i + 1}: ${JSON.stringify(mdn.fields)}`);
  });

  const names = inboxNames(/^order(\.\d+)?\.edi$/);
  const expected = ["order.edi", ...Array.from({ length: 15 }, (_, i) => `order.${i + 1}.edi`)].sort();
  assert.deepEqual(names, expected, "16 distinct files, none lost to another with the same name");
  assert.deepEqual(
    names.map((n) => sha256(readFileSync(join(inbox, n)))).sort(),
    messages.map((m) => sha256(m.payload)).sort(),
    "each file holds the bytes of one message, and every message is there",
  );
  assert.deepEqual(tmpLeft(), [], "nothing left in .as2kit-tmp");
});

test("concurrent duplicates: 5 messages x 4 identical copies at once -> each stored once, every copy answered 200 with the same MDN bytes; a later resend gets them again and stores nothing", { timeout: 60_000 }, async () => {
  const M = 5;
  const N = 4;
  const out = join(dir, "dup-out");
  mkdirSync(out, { recursive: true });
  const sources = Array.from({ length: M }, (_, i) => {
    const p = join(out, `dup-${i + 1}.edi`);
    writeFileSync(p, `UNB+UNOA:2+MYCO+ACME+261122:1200+D${i + 1}'\r\nUNH+1+ORDERS:D:96A:UN'\r\nBGM+220+DUP-${i + 1}-${randomBytes(6).toString("hex")}'\r\n`.repeat(60));
    return p;
  });
  const mycoDry = cfg("myco-dry", {
    dataDir: "./myco-dry-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url: acme.url, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", mdn: { request: "signed" } } },
  });
  const built = join(dir, "dup-built");
  const dry = await as2(["send", "--config", mycoDry, "--partner", "acme", "--dry-run", "--out", built, "--json", ...sources]);
  assert.equal(dry.status, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as { messages: Array<{ file: string; out: string; as2MessageId: string }> };
  assert.equal(plan.messages.length, M);
  const messages = plan.messages.map((m) => ({ ...m, req: readDryRun(m.out) }));
  assert.equal(new Set(messages.map((m) => m.as2MessageId)).size, M);

  // Copy-major order: the copies of one message are spread over the burst.
  const burst = Array.from({ length: M * N }, (_, k) => messages[k % M]!.req);
  const answers = await postTogether(acme.url, burst);
  answers.forEach((res, k) => assert.equal(res.status, 200, `message ${(k % M) + 1}, copy ${Math.floor(k / M) + 1}: HTTP ${res.status} ${res.body.toString()}`));
  const expected = sources.map((s) => s.split("/").pop()!).sort();
  const processed = (id: string) => acme.events.filter((e) => e.event === "message" && e.messageId === id).length;
  assert.deepEqual(inboxNames(/^dup-/), expected, `each message stored exactly once (processed as new: ${messages.map((m) => processed(m.as2MessageId)).join(", ")} times)`);
  for (const s of sources) assert.ok(readFileSync(join(inbox, s.split("/").pop()!)).equals(readFileSync(s)), `${s}: bytes identical`);
  assert.deepEqual(tmpLeft(), [], "nothing left in .as2kit-tmp");
  for (let i = 0; i < M; i++) {
    const copies = answers.filter((_, k) => k % M === i);
    const first = copies[0]!;
    const mdn = checkMdnWithOpenssl(dir, String(first.headers["content-type"]), first.body, join(dir, "acme.crt"));
    assert.equal(mdn.fields["original-message-id"], messages[i]!.as2MessageId);
    assert.match(mdn.fields.disposition!, POSITIVE, `message ${i + 1}: ${JSON.stringify(mdn.fields)}`);
    copies.forEach((res, c) => assert.ok(res.body.equals(first.body), `message ${i + 1}: copy ${c + 1} got a different MDN than copy 1`));
  }

  // A later resend, one at a time: the same MDN bytes again, nothing stored.
  for (let i = 0; i < M; i++) {
    const again = await post(acme.url, messages[i]!.req);
    assert.equal(again.status, 200, again.body.toString());
    assert.ok(again.body.equals(answers[i]!.body), `message ${i + 1}: the resend got a different MDN`);
  }
  assert.deepEqual(inboxNames(/^dup-/), expected, "the resends stored nothing");
  // The records are where the store kind says: no job files beside a database.
  const jobFiles = existsSync(join(dir, "acme-data", "jobs")) ? readdirSync(join(dir, "acme-data", "jobs")).filter((f) => f.endsWith(".json")) : [];
  if (STORE_KIND === "postgres") assert.deepEqual(jobFiles, [], "job records in the database, not under dataDir");
  else assert.ok(jobFiles.length >= M, "job records under dataDir");
});

test("md5-signed message (openssl) asking for a signed MDN with micalg md5: 200, signed positive MDN that openssl verifies, Received-Content-MIC = openssl's md5 MIC, one file; a resend gets the same MDN bytes", { timeout: 60_000 }, async () => {
  const payload = Buffer.from(`ISA*00*          *00*          *ZZ*MYCO           *ZZ*ACME           *261122*1200*U*00401*${randomBytes(4).toString("hex")}*0*P*>~\r\n`.repeat(60));
  const msg = buildWithOpenssl(sender, payload, "md5-order.x12", "application/edi-x12", ["sign", "encrypt"], "md5");
  assert.equal(msg.signDigest, "md5");
  const messageId = `<md5-${Date.now()}@exactly-once.test>`;
  const req = { headers: opensslHeaders(messageId, msg.contentType, msg.extraHeaders, "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, md5"), body: msg.body };

  const res = await post(acme.url, req);
  assert.equal(res.status, 200, `HTTP ${res.status}: ${res.body.toString()}`);
  const ct = String(res.headers["content-type"]);
  assert.match(ct, /^multipart\/signed/i, "a signed MDN");
  const mdn = checkMdnWithOpenssl(dir, ct, res.body, join(dir, "acme.crt"));
  assert.equal(mdn.signed, true);
  assert.equal(mdn.fields["original-message-id"], messageId);
  assert.match(mdn.fields.disposition!, POSITIVE, JSON.stringify(mdn.fields));
  assert.equal(mdn.fields["received-content-mic"], `${opensslMic(dir, "md5", msg.micInput)}, md5`);
  assert.deepEqual(inboxNames(/^md5-order/), ["md5-order.x12"]);
  assert.ok(readFileSync(join(inbox, "md5-order.x12")).equals(payload), "the stored bytes are the payload");

  const again = await post(acme.url, req);
  assert.equal(again.status, 200, again.body.toString());
  assert.ok(again.body.equals(res.body), "the resend gets the same MDN bytes");
  assert.deepEqual(inboxNames(/^md5-order/), ["md5-order.x12"], "the resend stored nothing");
});

test("a forged unsigned negative async MDN is not applied (the file stays AWAITING_MDN, a warning says why); the genuine signed MDN arriving later makes the job SUCCESS", { timeout: 60_000 }, async () => {
  // The relay takes ACME's genuine MDN and keeps it (answering 200) until the test forwards it.
  const held: Array<{ headers: http.IncomingHttpHeaders; body: Buffer }> = [];
  const relay = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      held.push({ headers: req.headers, body: Buffer.concat(parts) });
      res.writeHead(200, { "Content-Length": "0" });
      res.end();
    });
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { relay.closeAllConnections(); relay.close(() => r()); }));
  const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}/mdn`;

  // MYCO: one config for its `as2 send` and its own `as2 receive` (same dataDir), which takes MDNs.
  const myco = cfg("myco-async", {
    dataDir: "./myco-data",
    ...(await storeSetting("myco")),
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/mdn" },
    partners: { acme: { as2Id: "ACME", url: acme.url, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", retries: 0, mdn: { request: "signed", mode: "async", url: relayUrl } } },
  });
  const mycoServer = await startAs2Receive(myco);
  const source = join(dir, "async-order.edi");
  writeFileSync(source, "UNB+UNOA:2+MYCO+ACME+261122:1200+A1'\r\nUNH+1+ORDERS:D:96A:UN'\r\n".repeat(100));

  const sent = await as2(["send", "--config", myco, "--partner", "acme", "--json", source]);
  assert.equal(sent.status, 0, sent.stderr + sent.stdout);
  const job = JSON.parse(sent.stdout) as JobRecord;
  assert.equal(job.state, "AWAITING_MDN");
  assert.equal(job.files[0]!.status, "AWAITING_MDN");
  const messageId = job.files[0]!.as2MessageId!;
  for (let i = 0; i < 150 && held.length === 0; i++) await sleep(100);
  assert.equal(held.length, 1, `the relay holds the genuine MDN; ACME said: ${JSON.stringify(acme.events.filter((e) => e.messageId === messageId))}`);
  const genuine = held[0]!;
  assert.match(String(genuine.headers["content-type"]), /^multipart\/signed/i);

  // Anyone can POST an MDN: unsigned, negative, the real Original-Message-ID, ACME -> MYCO.
  const forged = buildMdn({
    original: { messageId, from: "MYCO", to: "ACME" },
    disposition: { type: "processed", modifier: "error", description: "decryption-failed" },
    detail: "the message could not be decrypted",
    sign: false,
  });
  assert.equal(forged.headers.get("AS2-From"), "ACME");
  const forgedRes = await post(mycoServer.url, { headers: forged.headers.toObject(), body: forged.body });
  const afterForged = await pollJob("myco-data", "myco", job.runId, (r) => (r.warnings ?? []).some((w) => /MDN/.test(w)) || r.files[0]!.status !== "AWAITING_MDN", 5_000);
  const context = `forged MDN answered HTTP ${forgedRes.status} ${forgedRes.body.toString()}; job: ${JSON.stringify({ state: afterForged.state, files: afterForged.files, warnings: afterForged.warnings, error: afterForged.error })}`;
  assert.equal(afterForged.files[0]!.status, "AWAITING_MDN", `the file must stay AWAITING_MDN; ${context}`);
  assert.equal(afterForged.state, "AWAITING_MDN", context);
  assert.ok((afterForged.warnings ?? []).some((w) => /MDN/.test(w) && /signature|unsigned|not applied/i.test(w)), `a warning says the MDN was not applied and why; ${context}`);

  // The genuine MDN, forwarded as ACME sent it.
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(genuine.headers)) if (typeof v === "string") headers[k] = v;
  const genuineRes = await post(mycoServer.url, { headers, body: genuine.body });
  assert.equal(genuineRes.status, 200, genuineRes.body.toString());
  const settled = await pollJob("myco-data", "myco", job.runId, (r) => r.state !== "AWAITING_MDN", 15_000);
  assert.equal(settled.state, "SUCCESS", `job: ${JSON.stringify({ files: settled.files, warnings: settled.warnings, error: settled.error })}`);
  assert.equal(settled.files[0]!.status, "SUCCESS");
  assert.equal(settled.messages[0]!.mdnStatus, "Received");
  assert.equal(settled.sendDetails![0]!.mdnChecks!.signature.verdict, "pass");
  assert.equal(settled.sendDetails![0]!.mdnChecks!.mic.verdict, "pass");
  const status = await as2(["status", "--config", myco, job.runId, "--json"]);
  assert.equal(status.status, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as { jobStatus: string }).jobStatus, "SUCCESS");
  assert.deepEqual(inboxNames(/^async-order/), ["async-order.edi"]);
});
