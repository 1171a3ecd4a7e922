/**
 * Job control end to end (contract §2): `as2 send` → a relay on 127.0.0.1 → `as2 receive`. The
 * relay is a real HTTP proxy that loses what a network loses: one response after the message had
 * arrived (the MDN never reaches the sender), one request before it arrived, one request held
 * until the sender is interrupted. `--restart` then sends only the files that did not succeed,
 * with their original Message-IDs; where the first attempt had arrived, the receiver answers
 * with the earlier MDN (as2-reference X6, I5) and does not store the file twice.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { before, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { onCleanup, opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server, type Run } from "../helpers/as2-process.js";

const dir = tempDir();
let acme: As2Server;

type Fault = "lose-response" | "drop-request" | "hold";
interface Relay { url: string; faults: Map<number, Fault>; requests: number; lostMdns: Buffer[]; held: number }

/** Forwards to `target`; the n-th request (1-based) suffers faults.get(n). */
async function startRelay(target: string): Promise<Relay> {
  const relay: Relay = { url: "", faults: new Map(), requests: 0, lostMdns: [], held: 0 };
  const server = http.createServer((req, res) => {
    const fault = relay.faults.get(++relay.requests);
    if (fault === "drop-request") { req.socket.destroy(); return; }
    if (fault === "hold") { relay.held++; req.resume(); return; }
    const up = http.request(target, { method: req.method, headers: req.headers }, (upRes) => {
      if (fault === "lose-response") {
        const parts: Buffer[] = [];
        upRes.on("data", (c: Buffer) => parts.push(c));
        upRes.on("end", () => { relay.lostMdns.push(Buffer.concat(parts)); req.socket.destroy(); });
        return;
      }
      res.writeHead(upRes.statusCode!, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", () => req.socket.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/as2`;
  return relay;
}

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

function myco(name: string, url: string): string {
  return cfg(name, {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    // No retries: the lost attempt stays lost, and the restart is what resends it.
    partners: { acme: { as2Id: "ACME", url, certificate: "acme.crt", retries: 0, readTimeout: 30, mdn: { request: "signed" } } },
  });
}

function files(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const p = join(dir, "out", `${prefix}-${i + 1}.edi`);
    writeFileSync(p, `UNB+UNOA:2+MYCO+ACME+261122:1200+${i + 1}'\r\nUNH+1+ORDERS:D:96A:UN'\r\n`.repeat(200));
    return p;
  });
}

function jobOf(r: Run): JobRecord {
  assert.ok(r.stdout, `no JSON on stdout (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as JobRecord;
}

const inbox = () => readdirSync(join(dir, "acme-data", "inbox", "myco")).filter((n) => !n.startsWith(".")).sort();

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  mkdirSync(join(dir, "out"), { recursive: true });
  acme = await startAs2Receive(cfg("acme", {
    dataDir: "./acme-data",
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"] } } },
  }));
});

test("a lost MDN and a lost request make a PARTIAL job; --restart sends only those two, with their Message-IDs; the one that had arrived gets the earlier MDN and is not stored twice", async () => {
  const relay = await startRelay(acme.url);
  relay.faults.set(2, "lose-response").set(3, "drop-request");
  const config = myco("myco-restart", relay.url);
  const [f1, f2, f3] = files("restart", 3);
  const first = await as2(["send", "--config", config, "--partner", "acme", "--json", f1!, f2!, f3!]);
  assert.equal(first.status, 3, first.stderr);
  const job = jobOf(first);
  assert.equal(job.state, "PARTIAL");
  assert.deepEqual(job.files.map((f) => f.status), ["SUCCESS", "FAILED", "FAILED"]);
  // What the sender cannot know: the second message did arrive and was stored.
  assert.deepEqual(inbox(), ["restart-1.edi", "restart-2.edi"]);
  assert.equal(relay.lostMdns.length, 1);

  const again = await as2(["send", "--config", config, "--restart", job.runId, "--json"]);
  assert.equal(again.status, 0, again.stderr);
  const restarted = jobOf(again);
  assert.equal(restarted.restartOf, job.runId);
  assert.equal(restarted.state, "SUCCESS");
  assert.deepEqual(restarted.files.map((f) => [f.name, f.as2MessageId]), [[f2, job.files[1]!.as2MessageId], [f3, job.files[2]!.as2MessageId]]);
  // Each file once in the inbox; the duplicate was recognised by its Message-ID.
  assert.deepEqual(inbox(), ["restart-1.edi", "restart-2.edi", "restart-3.edi"]);
  assert.deepEqual(readFileSync(join(dir, "acme-data", "inbox", "myco", "restart-2.edi")), readFileSync(f2!));
  await acme.waitFor((e) => e.event === "duplicate" && e.messageId === job.files[1]!.as2MessageId);
  // The MDN the sender now has is the one that was lost, byte for byte, and it verifies.
  const mdn = restarted.messages[0]!.mdnMessage!;
  assert.ok(mdn.content.endsWith(relay.lostMdns[0]!.toString("latin1")), "the earlier MDN, not a new one");
  assert.equal(restarted.sendDetails![0]!.mdnChecks!.mic.verdict, "pass");
  assert.equal(restarted.sendDetails![0]!.mdnChecks!.signature.verdict, "pass");
  assert.equal(restarted.messages[1]!.mdnMessage!.disposition, "automatic-action/MDN-sent-automatically; processed");
});

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  test(`${sig} during a three-file send: INTERRUPTED record (per-file states, statusCode -2), exit ${sig === "SIGINT" ? 130 : 143}; --restart then completes the job`, async () => {
    const relay = await startRelay(acme.url);
    relay.faults.set(2, "hold");
    const config = myco(`myco-${sig}`, relay.url);
    const list = files(sig.toLowerCase(), 3);
    let pid = 0;
    const running = as2(["send", "--config", config, "--partner", "acme", "--json", ...list], { onSpawn: (p) => { pid = p; } });
    for (let i = 0; i < 400 && relay.held === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(relay.held, 1, "the second message is in flight");
    process.kill(pid, sig);
    const r = await running;
    assert.equal(r.status, sig === "SIGINT" ? 130 : 143, r.stderr);
    const job = jobOf(r);
    assert.equal(job.state, "INTERRUPTED");
    assert.equal(job.statusCode, -2);
    assert.deepEqual(job.files.map((f) => [f.status, f.statusCode]), [["SUCCESS", 0], ["INTERRUPTED", -2], ["NOT_STARTED", 1]]);
    assert.match(job.error!.message, new RegExp(`interrupted by ${sig}`));
    assert.ok(job.files[1]!.as2MessageId);
    assert.equal(readdirSync(join(dir, "myco-data", "spool")).filter((f) => f.startsWith(job.runId)).length, 0, "no spool file left");
    const onDisk = JSON.parse(readFileSync(join(dir, "myco-data", "jobs", `${job.runId}.json`), "utf8")) as JobRecord;
    assert.equal(onDisk.state, "INTERRUPTED", "the record on disk says so too");

    const again = await as2(["send", "--config", config, "--restart", job.runId, "--json"]);
    assert.equal(again.status, 0, again.stderr);
    const restarted = jobOf(again);
    assert.deepEqual(restarted.files.map((f) => f.name), [list[1], list[2]]);
    assert.equal(restarted.files[0]!.as2MessageId, job.files[1]!.as2MessageId, "the interrupted file keeps its Message-ID");
    assert.deepEqual(inbox().filter((n) => n.startsWith(sig.toLowerCase())), list.map((p) => p.split("/").pop()));
  });
}
