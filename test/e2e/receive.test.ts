/**
 * `as2 send` to `as2 receive`, two stations on 127.0.0.1, each with its own config and data
 * directory: sync signed MDN, async MDN recorded in the sender's job (--wait-mdn), duplicates,
 * unknown partner, basic auth, hostile file names, policy, HEAD.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { buildMessage, collect, loadCertificates, loadPrivateKey } from "../../src/core/index.js";
import { opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir();
const PAYLOAD = Buffer.from("UNB+UNOA:2+MYCO+ACME+261122:1200+1'UNH+1+ORDERS:D:96A:UN'\n".repeat(500));

let server: As2Server;
let myUrl = "";

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  // ACME's station: receives from MYCO.
  const acme = cfg("acme", {
    dataDir: "./acme-data",
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"], requireSigned: true, users: [{ username: "myco", password: "in-Pass" }] } } },
  });
  server = await startAs2Receive(acme);
  myUrl = server.url;
});

function myco(partner: Record<string, unknown> = {}): string {
  return cfg(`myco-${Object.keys(partner).join("-") || "base"}`, {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url: myUrl, certificate: "acme.crt", username: "myco", password: "in-Pass", compress: "before-signing", ...partner } },
  });
}

function file(name: string): string {
  const p = join(dir, name);
  writeFileSync(p, PAYLOAD);
  return p;
}

test("as2 send -> as2 receive: signed + encrypted + compressed, signed sync MDN; the file is in the inbox before the MDN", async () => {
  const r = await as2(["send", "--config", myco(), "--partner", "acme", "--json", file("orders-1.edi")]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const job = JSON.parse(r.stdout);
  assert.equal(job.state, "SUCCESS");
  assert.equal(job.sendDetails[0].mdnChecks.mic.verdict, "pass");
  assert.equal(job.sendDetails[0].mdnChecks.signature.verdict, "pass");
  assert.deepEqual(readFileSync(join(dir, "acme-data", "inbox", "myco", "orders-1.edi")), PAYLOAD);
  const ev = server.events.find((e) => e.event === "message" && e.messageId === job.files[0].as2MessageId)!;
  assert.equal(ev.disposition, "processed");
  const rec = JSON.parse(readFileSync(join(dir, "acme-data", "jobs", `${ev.runId}.json`), "utf8"));
  assert.equal(rec.type, "AS2 Receive");
  assert.equal(rec.state, "SUCCESS");
  assert.equal(rec.receiveDetails.mdnSent, true);
  assert.equal(rec.receiveDetails.encryptionAlgorithm, "aes256-cbc");
  assert.equal(rec.messages[0].signed, true);
  // Issue 13: what the partner advertised is recorded; our sync MDN carried ours back.
  assert.equal(rec.receiveDetails.as2Version, "1.2");
  assert.deepEqual(rec.receiveDetails.ediintFeatures, ["multiple-attachments", "CEM", "AS2-Reliability"]);
  assert.equal(job.sendDetails[0].partnerAs2Version, "1.2");
  assert.deepEqual(job.sendDetails[0].partnerFeatures, ["multiple-attachments", "CEM", "AS2-Reliability"]);
});

test("a resend with the same Message-ID gets the earlier MDN and no second file (restart)", async () => {
  const first = JSON.parse((await as2(["send", "--config", myco(), "--partner", "acme", "--json", file("orders-dup.edi")])).stdout);
  const again = await as2(["send", "--config", myco(), "--restart", first.runId, "--json"]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr + again.stdout, /nothing to restart/);
  // Force a resend of the same Message-ID by hand-editing the old job's file status.
  const jobFile = join(dir, "myco-data", "jobs", `${first.runId}.json`);
  const rec = JSON.parse(readFileSync(jobFile, "utf8"));
  rec.files[0].status = "FAILED";
  writeFileSync(jobFile, JSON.stringify(rec));
  const resent = await as2(["send", "--config", myco(), "--restart", first.runId, "--json"]);
  assert.equal(resent.status, 0, resent.stderr);
  assert.equal(JSON.parse(resent.stdout).files[0].as2MessageId, first.files[0].as2MessageId);
  assert.deepEqual(readdirSync(join(dir, "acme-data", "inbox", "myco")).filter((n) => n.startsWith("orders-dup")), ["orders-dup.edi"]);
  assert.ok(server.events.some((e) => e.event === "duplicate" && e.messageId === first.files[0].as2MessageId));
});

test("async MDN: the receiver answers 200, posts the MDN to the sender's own receive server, and --wait-mdn sees it", async () => {
  // MYCO's station needs a receive endpoint for the MDN: ACME's server plays it here, since both
  // stations' configs name the same messages index only on their own side; so run MYCO's receiver.
  const mycoRecv = cfg("myco-recv", {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/mdn" },
    partners: { acme: { as2Id: "ACME", url: myUrl, certificate: "acme.crt", username: "myco", password: "in-Pass" } },
  });
  const mycoServer = await startAs2Receive(mycoRecv, ["--once"]);
  const mdnUrl = mycoServer.url;
  const r = await as2(["send", "--config", myco({ mdn: { request: "signed", mode: "async", url: mdnUrl } }), "--partner", "acme", "--wait-mdn", "30", "--json", file("orders-async.edi")]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const job = JSON.parse(r.stdout);
  assert.equal(job.state, "SUCCESS");
  assert.equal(job.messages[0].mdnStatus, "Received");
  assert.equal(job.sendDetails[0].mdnChecks.mic.verdict, "pass");
  const code = await Promise.race([mycoServer.exited.then((x) => x.code), new Promise<number>((resolve) => setTimeout(() => resolve(-1), 15_000).unref())]);
  assert.notEqual(code, -1, `as2 receive --once did not exit: ${mycoServer.stderr()}`);
  assert.equal(code, 0, "--once exits 0 after the MDN");
});

test("refusals: no auth 401 with a challenge, wrong partner, unsigned when signed is required, hostile names; nothing left in the inbox", async () => {
  const inbox = join(dir, "acme-data", "inbox", "myco");
  const before = readdirSync(inbox).sort();
  const noAuth = await as2(["send", "--config", myco({ username: "myco", password: "wrong" }), "--partner", "acme", "--json", file("x.edi")]);
  assert.equal(noAuth.status, 1);
  assert.match(JSON.parse(noAuth.stdout).error.message, /HTTP 401/);
  // Encrypted (CBC) but unsigned for a partner that must sign: the partner hears only
  // decryption-failed (anything else inside CBC would be a padding oracle, issue 12); the
  // receiver's own record keeps the real cause.
  const unsigned = await as2(["send", "--config", myco(), "--partner", "acme", "--no-sign", "--mdn", "unsigned", "--json", file("unsigned.edi")]);
  assert.equal(unsigned.status, 1);
  assert.match(JSON.parse(unsigned.stdout).error.message, /decryption-failed/);
  const refused = await server.waitFor((e) => e.event === "message" && e.messageId === JSON.parse(unsigned.stdout).files[0].as2MessageId);
  const refusedRecord = JSON.parse(readFileSync(join(dir, "acme-data", "jobs", `${refused.runId}.json`), "utf8"));
  assert.match(refusedRecord.error.message, /inside: the partner's messages must be signed/);
  const plain = await as2(["send", "--config", myco(), "--partner", "acme", "--no-sign", "--no-encrypt", "--mdn", "unsigned", "--json", file("unsigned-plain.edi")]);
  assert.equal(plain.status, 1);
  assert.match(JSON.parse(plain.stdout).error.message, /insufficient-message-security/);
  // Hostile file names, built with the library and posted by hand.
  const key = loadPrivateKey(readFileSync(join(dir, "myco.key")));
  const certificate = loadCertificates(readFileSync(join(dir, "myco.crt")))[0]!;
  for (const name of ["../../escape.edi", "/etc/passwd", "a\u0000b.edi", "x".repeat(400) + ".edi"]) {
    const m = buildMessage({ from: "MYCO", to: "ACME", payload: PAYLOAD, contentType: "application/edifact", filename: name, sign: { digest: "sha256", key, certificate } });
    const body = await collect(m.body, 1e8);
    const res = await fetch(myUrl, { method: "POST", headers: { ...m.headers.toObject(), Authorization: `Basic ${Buffer.from("myco:in-Pass").toString("base64")}` }, body });
    assert.equal(res.status, 200, name);
  }
  const after = readdirSync(inbox).filter((n) => !before.includes(n)).sort();
  assert.deepEqual(after.map((n) => n.length <= 200 && !n.includes("/") && !n.includes("\u0000")), after.map(() => true));
  assert.ok(after.includes("escape.edi") && after.includes("passwd") && after.includes("a_b.edi"), after.join(", "));
  assert.equal(existsSync(join(dir, "escape.edi")), false);
  assert.deepEqual(readdirSync(join(inbox, ".as2kit-tmp")), [], "no temp file left");
  const wrong = cfg("stranger", { dataDir: "./stranger", station: { as2Id: "STRANGER", key: { pem: "myco.key", certificate: "myco.crt" } }, partners: { acme: { as2Id: "ACME", url: myUrl, certificate: "acme.crt" } } });
  const w = await as2(["send", "--config", wrong, "--partner", "acme", "--json", file("stranger.edi")]);
  assert.equal(w.status, 1);
  assert.match(JSON.parse(w.stdout).error.message, /unknown trading relationship/);
  const head = await fetch(myUrl, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), "0");
});
