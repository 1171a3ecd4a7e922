/**
 * Certificate exchange (CEM, draft-meadors-certificate-exchange-14; as2-reference E7, E8;
 * issue 17) between real stations, each `as2 receive` a process with its own configuration
 * file and store: A (the requester), B (policy "manual") and C (policy "accept"). Keys are made
 * by openssl. Runs against the files store, and against PostgreSQL from cem.postgres.test.ts.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import {
  buildCemRequestPayload, buildMessage, certificateIdentifierOf, collect, type CemRequest,
} from "../../src/core/index.js";
import { opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";
import { storeSetting } from "../helpers/store-kind.js";

const dir = tempDir();
opensslIdentity("a", dir);
const A_NEW = opensslIdentity("a-new", dir);
opensslIdentity("a-rejected", dir);
opensslIdentity("b", dir);
opensslIdentity("c", dir);
const PAYLOAD = Buffer.from("UNA:+.? 'UNB+UNOA:2+A+B+261122:1200+1'\n".repeat(50));

let A: As2Server;
let B: As2Server;
let C: As2Server;
const cfgA = join(dir, "a.json");
const cfgB = join(dir, "b.json");
const cfgC = join(dir, "c.json");

interface CemRow { requestId: string; direction: string; partner: string; state: string; respondBy: string; reason?: string; response?: { status: string; reason?: string; delivered?: boolean }; usages: string[] }

async function station(name: string, partners: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return {
    dataDir: `./${name}-data`, ...(await storeSetting(name)),
    station: { as2Id: name.toUpperCase(), key: { pem: `${name}.key`, certificate: `${name}.crt` } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners, ...extra,
  };
}

/** A's configuration; `key` names the identity A signs with (its previous key stays for decryption). */
async function writeA(key: "a" | "a-new" = "a", name = "a", toB: Record<string, unknown> = {}): Promise<string> {
  const c = await station("a", {
    b: { as2Id: "B", url: B?.url ?? "http://127.0.0.1:9/as2", certificate: "b.crt", ...toB },
    c: { as2Id: "C", url: C?.url ?? "http://127.0.0.1:9/as2", certificate: "c.crt" },
  });
  const st = c.station as Record<string, unknown>;
  st.key = { pem: `${key}.key`, certificate: `${key}.crt` };
  if (key !== "a") st.previousKeys = [{ pem: "a.key", certificate: "a.crt" }];
  if (A) st.asyncMdnUrl = A.url;
  return writeJsonConfig(dir, name, c);
}

async function cemRows(config: string): Promise<CemRow[]> {
  const r = await as2(["status", "--config", config, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout).cemRequests ?? []) as CemRow[];
}

async function waitForRow(config: string, requestId: string, direction: string, ok: (r: CemRow) => boolean, timeoutMs = 20_000): Promise<CemRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = (await cemRows(config)).find((r) => r.requestId === requestId && r.direction === direction);
    if (row && ok(row)) return row;
    if (Date.now() > deadline) throw new Error(`CEM request ${requestId} (${direction}) in ${config}: ${JSON.stringify(row)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function payloadFile(name: string): string {
  const p = join(dir, name);
  writeFileSync(p, PAYLOAD);
  return p;
}

async function cemSend(partner: string, cert: string, usage: string, respondBy: Date, config = cfgA): Promise<string> {
  const r = await as2(["cem", "send", "--config", config, "--partner", partner, "--cert", join(dir, cert), "--usage", usage, "--respond-by", respondBy.toISOString(), "--json"]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const doc = JSON.parse(r.stdout) as { requestId: string; state: string; job: { state: string } };
  assert.equal(doc.state, "pending");
  assert.equal(doc.job.state, "SUCCESS");
  return doc.requestId;
}

async function send(config: string, partner: string, name: string): Promise<{ status: number | null; job: { state: string; files: Array<{ error?: { message: string } }> } }> {
  const r = await as2(["send", "--config", config, "--partner", partner, "--json", payloadFile(name)]);
  return { status: r.status, job: JSON.parse(r.stdout) };
}

before(async () => {
  // A first (B and C need its URL), then B and C, then A's configuration with their URLs.
  writeJsonConfig(dir, "a", await station("a", {
    b: { as2Id: "B", url: "http://127.0.0.1:9/as2", certificate: "b.crt" },
    c: { as2Id: "C", url: "http://127.0.0.1:9/as2", certificate: "c.crt" },
  }));
  A = await startAs2Receive(cfgA);
  writeJsonConfig(dir, "b", await station("b", { a: { as2Id: "A", url: A.url, certificate: "a.crt", inbound: { requireSigned: true } } }));
  writeJsonConfig(dir, "c", await station("c", { a: { as2Id: "A", url: A.url, certificate: "a.crt", cem: { policy: "accept" } } }));
  B = await startAs2Receive(cfgB);
  C = await startAs2Receive(cfgC);
  await writeA();
});

test("a rejected request changes nothing: B's configuration stays byte for byte, the old key is still accepted, A records Rejected with the reason", async () => {
  const before = readFileSync(cfgB);
  const id = await cemSend("b", "a-rejected.crt", "signing", new Date(Date.now() + 3_600_000));
  await B.waitFor((e) => e.event === "cem" && String(e.detail).includes(id));
  await waitForRow(cfgB, id, "received", (r) => r.state === "pending");
  const r = await as2(["cem", "reject", id, "--config", cfgB, "--reason", "key too short & not agreed"]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const row = await waitForRow(cfgA, id, "sent", (x) => x.state === "rejected");
  assert.equal(row.response?.status, "Rejected");
  assert.equal(row.reason, "key too short & not agreed");
  assert.ok(readFileSync(cfgB).equals(before), "B's configuration is unchanged");
  const sent = await send(cfgA, "b", "after-reject.edi");
  assert.equal(sent.status, 0, JSON.stringify(sent.job));
  // Rejecting again is refused (it was decided); accepting it now is too.
  const again = await as2(["cem", "accept", id, "--config", cfgB]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /rejected already/);
});

test("request -> pending on B -> as2 cem accept -> B's configuration has the new certificate with its window, A records Accepted; the new key is accepted at once, the old one until RespondByDate and refused after it", async () => {
  // Long enough for request, accept, response and two sends on a loaded CI machine (the full
  // run took 17 s for all of this test); the test waits for it to pass before the last send.
  const respondBy = new Date(Date.now() + 30_000);
  const id = await cemSend("b", "a-new.crt", "signing", respondBy);
  await B.waitFor((e) => e.event === "cem" && String(e.detail).includes(id));
  const pending = await waitForRow(cfgB, id, "received", (r) => r.state === "pending");
  assert.deepEqual(pending.usages, ["digitalSignature"]);
  const text = await as2(["status", "--config", cfgB]);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`${id}\\s+received\\s+a\\s+digitalSignature\\s+\\S+ \\S+\\s+pending`));
  // The raw request is kept under dataDir, not in A's inbox at B.
  assert.ok(readdirSync(join(dir, "b-data", "cem", "files", "received", "a")).some((n) => n.startsWith("request-")));
  assert.deepEqual(readdirSync(join(dir, "b-data", "inbox", "a")).filter((n) => n.endsWith(".mime")), []);

  const acceptedAt = Date.now();
  const r = await as2(["cem", "accept", id, "--config", cfgB]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const conf = JSON.parse(readFileSync(cfgB, "utf8"));
  const sigs = conf.partners.a.signatureCertificates as Array<{ file: string; from?: string; until?: string }>;
  assert.equal(sigs.length, 2);
  assert.deepEqual(sigs[0], { file: "a.crt", until: respondBy.toISOString() });
  assert.ok(Math.abs(Date.parse(sigs[1]!.from!) - acceptedAt) < 10_000, sigs[1]!.from);
  assert.equal(sigs[1]!.until, undefined);
  assert.ok(readFileSync(join(dir, sigs[1]!.file), "utf8").includes(A_NEW.certificate.toPem().trim().split("\n")[1]!), "the new certificate is written beside the configuration");
  assert.equal(conf.partners.a.certificate, "a.crt", "the rest of the profile is kept");

  const row = await waitForRow(cfgA, id, "sent", (x) => x.state === "accepted");
  assert.equal(row.response?.status, "Accepted");
  const textA = await as2(["status", "--config", cfgA]);
  assert.match(textA.stdout, new RegExp(`${id}\\s+sent\\s+b.*accepted\\s+Accepted`));

  // Overlap: B's running receiver (not restarted; the file was changed by another process)
  // takes the new key at once, and still the old one.
  const cfgANew = await writeA("a-new", "a-new");
  const withNew = await send(cfgANew, "b", "new-key.edi");
  assert.equal(withNew.status, 0, JSON.stringify(withNew.job));
  const withOld = await send(cfgA, "b", "old-key-in-overlap.edi");
  assert.equal(withOld.status, 0, JSON.stringify(withOld.job));
  assert.ok(Date.now() < respondBy.getTime(), "the overlap checks ran before RespondByDate (slow machine?)");

  await new Promise((res) => setTimeout(res, respondBy.getTime() - Date.now() + 500));
  // Unencrypted, so that B's answer names the cause: after a CBC decryption every failure is
  // answered decryption-failed (no padding oracle, src/core/message/open.ts).
  const late = await send(await writeA("a", "a-plain", { encrypt: false }), "b", "old-key-after.edi");
  assert.equal(late.status, 1, JSON.stringify(late.job));
  assert.match(late.job.files[0]!.error!.message, /authentication-failed/);
  const lateEncrypted = await send(cfgA, "b", "old-key-after-encrypted.edi");
  assert.equal(lateEncrypted.status, 1, JSON.stringify(lateEncrypted.job));
  const stillNew = await send(cfgANew, "b", "new-key-after.edi");
  assert.equal(stillNew.status, 0, JSON.stringify(stillNew.job));
  const inbox = readdirSync(join(dir, "b-data", "inbox", "a"));
  for (const f of ["new-key.edi", "old-key-in-overlap.edi", "new-key-after.edi"]) assert.ok(inbox.includes(f), `${f} in ${inbox.join(", ")}`);
  assert.ok(!inbox.includes("old-key-after.edi") && !inbox.includes("old-key-after-encrypted.edi"));
});

test("policy \"accept\": C answers at once; both usages go into its configuration (encryption from RespondByDate on)", async () => {
  const respondBy = new Date(Date.now() + 3_600_000);
  const id = await cemSend("c", "a-new.crt", "signing,encryption", respondBy);
  const row = await waitForRow(cfgA, id, "sent", (x) => x.state === "accepted");
  assert.equal(row.response?.status, "Accepted");
  const onC = await waitForRow(cfgC, id, "received", (x) => x.state === "accepted" && !!x.response?.delivered);
  assert.deepEqual(onC.usages, ["digitalSignature", "keyEncipherment"]);
  const p = JSON.parse(readFileSync(cfgC, "utf8")).partners.a;
  assert.equal(p.signatureCertificates.length, 2);
  assert.deepEqual(p.encryptionCertificate[0], { file: "a.crt", until: respondBy.toISOString() });
  assert.equal(p.encryptionCertificate[1].from, respondBy.toISOString());
  // Until RespondByDate C still encrypts to the old certificate: A with its old key alone decrypts C's message.
  const cfgCtoA = writeJsonConfig(dir, "c-to-a", { ...JSON.parse(readFileSync(cfgC, "utf8")) });
  const toA = await as2(["send", "--config", cfgCtoA, "--partner", "a", "--json", payloadFile("c-to-a.edi")]);
  assert.equal(toA.status, 0, toA.stderr + toA.stdout);
});

/** A CEM request built here (not by as2 cem send), signed with A's new key (B accepted it above). */
async function handMade(requestId: string, messageId: string, xmlEdit: (s: string) => string = (s) => s, sign = true): Promise<{ status: number; text: string }> {
  const rq: CemRequest = {
    requestId, as2Name: "A",
    trustRequests: [{ usage: "digitalSignature", responseUrl: A.url, respondBy: new Date(Date.now() + 3_600_000), certificate: certificateIdentifierOf(A_NEW.certificate), contentId: "c1@test" }],
  };
  const p = buildCemRequestPayload(rq, new Map([["c1@test", A_NEW.certificate]]), "hand-made-1");
  const m = buildMessage({
    from: "A", to: "B", payload: Buffer.from(xmlEdit(p.body.toString("utf8"))), contentType: p.contentType, messageId,
    sign: sign ? { digest: "sha256", key: A_NEW.key, certificate: A_NEW.certificate } : false,
  });
  const res = await fetch(B.url, { method: "POST", headers: m.headers.toObject(), body: await collect(m.body, 1e7) });
  return { status: res.status, text: await res.text() };
}

test("a resend of the same request registers once (same Message-ID: the ledger's duplicate; a new Message-ID: the same requestId)", async () => {
  const id = `HAND-${Date.now()}`;
  const mid = `<${id}@test>`;
  for (const messageId of [mid, mid, `<${id}-again@test>`]) {
    const r = await handMade(id, messageId);
    assert.equal(r.status, 200, r.text);
  }
  const rows = (await cemRows(cfgB)).filter((r) => r.requestId === id);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.state, "pending");
});

test("malformed or unsigned CEM requests are refused cleanly (negative answer, nothing registered, the receiver runs on)", async () => {
  const cases: Array<[string, (s: string) => string, boolean, RegExp]> = [
    ["broken XML", (s) => s.replace("</TrustRequest>", ""), true, /not well-formed/],
    ["entity expansion", (s) => s.replace('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'), true, /DOCTYPE/],
    ["missing RespondByDate", (s) => s.replace(/<RespondByDate>[^<]*<\/RespondByDate>/, ""), true, /no RespondByDate/],
    ["wrong AS2 name", (s) => s.replace('<Name qualifier="AS2">A</Name>', '<Name qualifier="AS2">MALLORY</Name>'), true, /MALLORY/],
    ["unsigned", (s) => s, false, /insufficient-message-security/],
    ["huge (2 MiB)", (s) => s.replace("</EDIINTCertificateExchangeRequest>", `<!--${"x".repeat(2 * 1024 * 1024)}--></EDIINTCertificateExchangeRequest>`), true, /CEM payload/],
  ];
  for (const [name, edit, sign, why] of cases) {
    const id = `BAD-${name.replace(/\W/g, "")}-${Date.now()}`;
    const r = await handMade(id, `<${id}@test>`, edit, sign);
    assert.equal(r.status, 400, `${name}: ${r.status} ${r.text}`);
    assert.match(r.text, why, name);
    assert.equal((await cemRows(cfgB)).filter((x) => x.requestId === id).length, 0, name);
  }
  assert.equal(B.proc.exitCode, null, "B still runs");
  const ok = await send(join(dir, "a-new.json"), "b", "after-bad.edi");
  assert.equal(ok.status, 0, JSON.stringify(ok.job));
});
