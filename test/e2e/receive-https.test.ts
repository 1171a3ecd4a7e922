/**
 * `as2 send` to `as2 receive` over HTTPS (issue 4): the server's key and certificate from
 * receive.tls (an openssl-made CA), a client certificate required for one partner
 * (inbound.requireClientCertificate) and not for another, and a sender that does not trust the
 * server's CA.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { opensslIdentity, tempDir } from "../helpers/tools.js";
import { makePki, type TestPki } from "../helpers/net.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir();
const PAYLOAD = Buffer.from("ISA*00*          *00*          *ZZ*MYCO           *ZZ*ACME           *261122*1200*U*00401*000000001*0*P*>~\r\n".repeat(100));
let pki: TestPki;
let server: As2Server;

function write(name: string, value: unknown): string {
  const f = join(dir, name);
  writeFileSync(f, typeof value === "string" ? value : JSON.stringify(value, null, 2));
  return f;
}

before(async () => {
  for (const n of ["myco", "beta", "acme"]) opensslIdentity(n, dir);
  pki = makePki(dir);
  server = await startAs2Receive(write("acme.json", {
    dataDir: "./acme-data",
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", tls: { key: pki.serverKey, certificate: pki.serverCert, ca: [pki.caCert] } },
    partners: {
      myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"], requireClientCertificate: true } },
      beta: { as2Id: "BETA", url: "http://127.0.0.1:9/as2", certificate: "beta.crt" },
    },
  }));
});

function sender(station: string, tls: Record<string, unknown>): string {
  return write(`${station}-${Object.keys(tls).join("-")}.json`, {
    dataDir: `./${station}-data`,
    station: { as2Id: station.toUpperCase(), key: { pem: `${station}.key`, certificate: `${station}.crt` } },
    partners: { acme: { as2Id: "ACME", url: server.url, certificate: "acme.crt", compress: "before-signing", mdn: { request: "signed" }, tls } },
  });
}

function file(name: string): string {
  return write(name, PAYLOAD.toString("latin1"));
}

test("the listening URL is https, and a client certificate from the trusted CA gets the file through with a signed MDN", async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+\/as2$/);
  const r = await as2(["send", "--config", sender("myco", { ca: [pki.caCert], clientCertificate: pki.clientCert, clientKey: pki.clientKey }), "--partner", "acme", "--json", file("tls-1.x12")]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const job = JSON.parse(r.stdout);
  assert.equal(job.sendDetails[0].mdnChecks.signature.verdict, "pass");
  assert.equal(job.sendDetails[0].mdnChecks.mic.verdict, "pass");
  assert.deepEqual(readFileSync(join(dir, "acme-data", "inbox", "myco", "tls-1.x12")), PAYLOAD);
});

test("without a client certificate, MYCO (which requires one) is refused with 403 and nothing is stored", async () => {
  const r = await as2(["send", "--config", sender("myco", { ca: [pki.caCert] }), "--partner", "acme", "--json", file("tls-2.x12")]);
  assert.equal(r.status, 1);
  assert.match(JSON.parse(r.stdout).error.message, /HTTP 403/);
  assert.equal(existsSync(join(dir, "acme-data", "inbox", "myco", "tls-2.x12")), false);
  const ev = await server.waitFor((e) => e.event === "rejected" && e.status === 403);
  assert.match(String(ev.detail), /client certificate/);
});

test("BETA needs no client certificate: the same HTTPS endpoint takes its file", async () => {
  const r = await as2(["send", "--config", sender("beta", { ca: [pki.caCert] }), "--partner", "acme", "--json", file("tls-3.x12")]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.deepEqual(readdirSync(join(dir, "acme-data", "inbox", "beta")).filter((n) => !n.startsWith(".")), ["tls-3.x12"]);
});

test("a sender that does not trust the server's CA stops at the handshake with TLS_FAILED", async () => {
  const r = await as2(["send", "--config", sender("beta", { ca: [pki.otherCaCert] }), "--partner", "acme", "--json", file("tls-4.x12")]);
  assert.equal(r.status, 1);
  const job = JSON.parse(r.stdout);
  assert.equal(job.error.code, "AS2_ERR_TLS_FAILED");
  assert.equal(existsSync(join(dir, "acme-data", "inbox", "beta", "tls-4.x12")), false);
});
