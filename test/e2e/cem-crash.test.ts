/**
 * CEM under SIGKILL (issue 17; AS2KIT_CRASH_AT, src/jobs/crash-point.ts): a receiver killed
 * after registering a request and before the message counted as verified registers it once when
 * the partner resends; `as2 cem accept` killed after editing the configuration, or after
 * recording the decision, finishes on its next run without adding the certificate twice or
 * deciding twice, and the requester records Accepted once.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { buildCemRequestPayload, buildMessage, certificateIdentifierOf, collect } from "../../src/core/index.js";
import { opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir();
const A_OLD = opensslIdentity("a", dir);
const A_NEW = opensslIdentity("a-new", dir);
opensslIdentity("b", dir);
let A: As2Server;
const cfgA = join(dir, "a.json");
const cfgB = join(dir, "b.json");

interface CemRow { requestId: string; direction: string; state: string; response?: { status: string; delivered?: boolean } }

async function cemRows(config: string): Promise<CemRow[]> {
  const r = await as2(["status", "--config", config, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout).cemRequests ?? []) as CemRow[];
}

function bConfig(): string {
  return writeJsonConfig(dir, "b", {
    dataDir: "./b-data", station: { as2Id: "B", key: { pem: "b.key", certificate: "b.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { a: { as2Id: "A", url: A.url, certificate: "a.crt", inbound: { requireSigned: true } } },
  });
}

/** A's configuration: B at bUrl; once A listens, its URL is the ResponseURL of its CEM requests. */
function writeA(bUrl: string): string {
  return writeJsonConfig(dir, "a", {
    dataDir: "./a-data", station: { as2Id: "A", key: { pem: "a.key", certificate: "a.crt" }, ...(A ? { asyncMdnUrl: A.url } : {}) },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { b: { as2Id: "B", url: bUrl, certificate: "b.crt" } },
  });
}

before(async () => {
  writeA("http://127.0.0.1:9/as2");
  A = await startAs2Receive(cfgA);
  // B is started by each test (the first one kills it); A learns B's URL there.
  bConfig();
});

test("killed after registering a request (cem:registered): the resend with the same Message-ID registers it once and is answered positively", async () => {
  const B1 = await startAs2Receive(cfgB, [], { AS2KIT_CRASH_AT: "cem:registered" });
  const p = buildCemRequestPayload({
    requestId: "CRASH-1", as2Name: "A",
    trustRequests: [{ usage: "digitalSignature", responseUrl: A.url, respondBy: new Date(Date.now() + 3_600_000), certificate: certificateIdentifierOf(A_NEW.certificate), contentId: "c@t" }],
  }, new Map([["c@t", A_NEW.certificate]]), "crash-b");
  const m = buildMessage({ from: "A", to: "B", payload: p.body, contentType: p.contentType, messageId: "<crash-1@test>", sign: { digest: "sha256", key: A_OLD.key, certificate: A_OLD.certificate } });
  const body = await collect(m.body, 1e7);
  await assert.rejects(fetch(B1.url, { method: "POST", headers: m.headers.toObject(), body }));
  const { signal } = await B1.exited;
  assert.equal(signal, "SIGKILL", B1.stderr());
  const B2 = await startAs2Receive(cfgB);
  const again = await fetch(B2.url, { method: "POST", headers: m.headers.toObject(), body });
  assert.equal(again.status, 200, await again.text());
  const rows = (await cemRows(cfgB)).filter((r) => r.requestId === "CRASH-1");
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.state, "pending");
  B2.proc.kill("SIGTERM");
  await B2.exited;
});

test("as2 cem accept killed after the configuration edit, then after the decision: the next run finishes; one certificate added, one Accepted at A", async () => {
  const B = await startAs2Receive(cfgB);
  writeA(B.url);
  const sent = await as2(["cem", "send", "--config", cfgA, "--partner", "b", "--cert", join(dir, "a-new.crt"), "--usage", "signing", "--respond-by", new Date(Date.now() + 3_600_000).toISOString(), "--json"]);
  assert.equal(sent.status, 0, sent.stderr + sent.stdout);
  const id = JSON.parse(sent.stdout).requestId as string;
  await B.waitFor((e) => e.event === "cem" && String(e.detail).includes(id));
  const first = await as2(["cem", "accept", id, "--config", cfgB], { env: { AS2KIT_CRASH_AT: "cem:applied" } });
  assert.equal(first.signal, "SIGKILL", first.stderr);
  assert.equal(JSON.parse(readFileSync(cfgB, "utf8")).partners.a.signatureCertificates.length, 2);
  assert.equal((await cemRows(cfgB)).find((r) => r.requestId === id)?.state, "pending");
  const second = await as2(["cem", "accept", id, "--config", cfgB], { env: { AS2KIT_CRASH_AT: "cem:decided" } });
  assert.equal(second.signal, "SIGKILL", second.stderr);
  const decided = (await cemRows(cfgB)).find((r) => r.requestId === id)!;
  assert.equal(decided.state, "accepted");
  assert.equal(decided.response?.delivered, false);
  const third = await as2(["cem", "accept", id, "--config", cfgB]);
  assert.equal(third.status, 0, third.stderr + third.stdout);
  assert.equal(JSON.parse(readFileSync(cfgB, "utf8")).partners.a.signatureCertificates.length, 2, "the certificate is not added twice");
  const onB = (await cemRows(cfgB)).find((r) => r.requestId === id)!;
  assert.equal(onB.response?.delivered, true);
  const onA = (await cemRows(cfgA)).find((r) => r.requestId === id && r.direction === "sent")!;
  assert.equal(onA.state, "accepted");
  // Once more: nothing left to do (exit 0, no second response).
  const fourth = await as2(["cem", "accept", id, "--config", cfgB]);
  assert.equal(fourth.status, 0, fourth.stderr);
  assert.equal(A.events.filter((e) => e.event === "cem" && String(e.detail).includes(id)).length, 1);
  B.proc.kill("SIGTERM");
  await B.exited;
});
