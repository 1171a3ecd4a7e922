/**
 * Notifications of receive jobs (contract §6) against a real HTTP endpoint on 127.0.0.1:
 * Started then Completed, Failed with the reason, in order even when Started has to be retried;
 * an endpoint that is down leaves the job's outcome alone and a warning in its record.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { before, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { freePort } from "../helpers/net.js";
import { onCleanup, opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive } from "../helpers/as2-process.js";

const dir = tempDir();
const PAYLOAD = Buffer.from("UNB+UNOA:2+MYCO+ACME+261122:1200+1'UNH+1+ORDERS:D:96A:UN'\n".repeat(100));

interface Hook { method: string; token?: string; answered: number; body: { jobId: string; status: string; message: string } }
const hooks: Hook[] = [];
let hookUrl = "";
let downUrl = "";

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);

function acmeConfig(name: string, notify: Record<string, unknown>): string {
  return cfg(name, {
    dataDir: `./${name}-data`,
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"], requireSigned: true }, notify } },
  });
}

function mycoConfig(url: string): string {
  return cfg(`myco-${url.split(":").at(-1)!.replace(/\D/g, "")}`, {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url, certificate: "acme.crt" } },
  });
}

function payload(name: string): string {
  const p = join(dir, name);
  writeFileSync(p, PAYLOAD);
  return p;
}

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  // A flaky hook: the first notification of each job gets a 503, so Started is retried (after
  // 500 ms); a Completed sent beside it rather than after it would arrive first.
  const server = http.createServer((req, res) => {
    let data = "";
    req.on("data", (c: Buffer) => { data += c.toString(); });
    req.on("end", () => {
      const body = JSON.parse(data) as Hook["body"];
      const answered = hooks.some((h) => h.body.jobId === body.jobId) ? 204 : 503;
      hooks.push({ method: req.method!, token: req.headers["x-token"] as string | undefined, answered, body });
      res.writeHead(answered);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/as2`;
  downUrl = `http://127.0.0.1:${await freePort()}/hooks/as2`; // nothing listens there
});

function receiveJob(dataDir: string, runId: string): JobRecord {
  return JSON.parse(readFileSync(join(dir, dataDir, "jobs", `${runId}.json`), "utf8")) as JobRecord;
}

test("Started, then Completed with the stored file, in order although Started was retried, with the configured method and headers", async () => {
  const server = await startAs2Receive(acmeConfig("acme-ok", { url: hookUrl, method: "PUT", headers: { "X-Token": "t0k" } }), ["--once"]);
  const sent = await as2(["send", "--config", mycoConfig(server.url), "--partner", "acme", payload("orders-ok.edi")]);
  assert.equal(sent.status, 0, sent.stderr);
  assert.equal((await server.exited).code, 0);
  const ev = server.events.find((e) => e.event === "message")!;
  const mine = hooks.filter((h) => h.body.jobId === ev.runId && h.answered === 204);
  assert.deepEqual(hooks.filter((h) => h.body.jobId === ev.runId).map((h) => `${h.body.status} ${h.answered}`), ["Started 503", "Started 204", "Completed 204"], "in order, Started retried first");
  assert.ok(mine.every((h) => h.method === "PUT" && h.token === "t0k"));
  assert.match(mine[0]!.body.message, /^receiving <[^>]+> from myco \(MYCO\)$/);
  assert.match(mine[1]!.body.message, /stored .*orders-ok\.edi/);
  assert.equal(receiveJob("acme-ok-data", ev.runId as string).warnings, undefined);
});

test("a message that fails (unsigned, the partner requires signing): Failed with the reason", async () => {
  const server = await startAs2Receive(acmeConfig("acme-fail", { url: hookUrl }), ["--once"]);
  const sent = await as2(["send", "--config", mycoConfig(server.url), "--partner", "acme", "--no-sign", payload("orders-unsigned.edi")]);
  assert.equal(sent.status, 1);
  assert.equal((await server.exited).code, 0);
  const ev = server.events.find((e) => e.event === "message")!;
  const mine = hooks.filter((h) => h.body.jobId === ev.runId && h.answered === 204);
  assert.deepEqual(mine.map((h) => [h.method, h.body.status]), [["POST", "Started"], ["POST", "Failed"]]);
  assert.match(mine[1]!.body.message, /not signed|signed/i);
  assert.equal(receiveJob("acme-fail-data", ev.runId as string).state, "FAILED");
});

test("an endpoint that is down: the message is stored and confirmed as usual; the record keeps a warning per notification", async () => {
  const server = await startAs2Receive(acmeConfig("acme-down", { url: downUrl }), ["--once"]);
  const sent = await as2(["send", "--config", mycoConfig(server.url), "--partner", "acme", "--json", payload("orders-down.edi")]);
  assert.equal(sent.status, 0, sent.stderr);
  assert.equal((JSON.parse(sent.stdout) as JobRecord).state, "SUCCESS");
  assert.equal((await server.exited).code, 0);
  const ev = server.events.find((e) => e.event === "message")!;
  const rec = receiveJob("acme-down-data", ev.runId as string);
  assert.equal(rec.state, "SUCCESS");
  assert.deepEqual(readFileSync(join(dir, "acme-down-data", "inbox", "myco", "orders-down.edi")), PAYLOAD);
  assert.ok(rec.warnings?.some((w) => w.startsWith(`notification "Started" to ${downUrl} failed`)), JSON.stringify(rec.warnings));
  assert.ok(rec.warnings?.some((w) => w.startsWith(`notification "Completed" to ${downUrl} failed`)), JSON.stringify(rec.warnings));
});
