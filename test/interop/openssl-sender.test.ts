/**
 * Interop, receive side: messages built by openssl cms and Bouncy Castle (test/helpers/
 * openssl-sender.ts, no as2kit code) are POSTed with Node's fetch to `as2 receive`. Every
 * structure of as2-reference §5 (S) with both compression orders, each with sync and async MDNs,
 * signed and unsigned; each MDN is checked with openssl (signature) and its MIC against
 * `openssl dgst` over the bytes as2-reference §7 (M table) names.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { before, test } from "node:test";
import { onCleanup, opensslIdentity, tempDir } from "../helpers/tools.js";
import { BC_CP } from "../helpers/openssl-receiver.js";
import { buildWithOpenssl, checkMdnWithOpenssl, opensslMic, type Layer, type OpensslSenderOptions } from "../helpers/openssl-sender.js";
import { startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir();
const PAYLOAD = Buffer.from("ISA*00*          *00*          *ZZ*MYCO           *ZZ*ACME           *261122*1200*U*00401*000000001*0*P*>~\r\n".repeat(300));
let server: As2Server;
let sender: OpensslSenderOptions;
let mdnUrl = "";
/** Async MDNs posted to the test's own endpoint, by Original-Message-ID. */
const asyncMdns = new Map<string, { contentType: string; body: Buffer; headers: http.IncomingHttpHeaders }>();
const asyncWaiters = new Map<string, () => void>();

before(async () => {
  const myco = opensslIdentity("myco", dir);
  const acme = opensslIdentity("acme", dir);
  execFileSync("javac", ["-cp", BC_CP, "-d", dir, join("test", "interop", "bc", "BcCompressed.java")], { stdio: "pipe" });
  sender = { dir, keyFile: myco.keyFile, certFile: myco.certFile, recipientCertFile: acme.certFile, bcClassDir: dir };
  const config = join(dir, "acme.json");
  writeFileSync(config, JSON.stringify({
    dataDir: "./acme-data",
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"] } } },
  }));
  server = await startAs2Receive(config);
  // The sender's async MDN endpoint: plain node:http, answering 200 with an empty body (X3).
  const mdnServer = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const body = Buffer.concat(parts);
      const id = /original-message-id:\s*(\S+)/i.exec(body.toString("latin1"))?.[1] ?? "";
      asyncMdns.set(id, { contentType: String(req.headers["content-type"]), body, headers: req.headers });
      asyncWaiters.get(id)?.();
      res.writeHead(200, { "Content-Length": "0" });
      res.end();
    });
  });
  await new Promise<void>((r) => mdnServer.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { mdnServer.closeAllConnections(); mdnServer.close(() => r()); }));
  mdnUrl = `http://127.0.0.1:${(mdnServer.address() as AddressInfo).port}/mdn`;
});

function waitForAsyncMdn(id: string, ms = 30_000): Promise<{ contentType: string; body: Buffer; headers: http.IncomingHttpHeaders }> {
  const have = asyncMdns.get(id);
  if (have) return Promise.resolve(have);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no async MDN for ${id} within ${ms} ms; receiver said: ${JSON.stringify(server.events.slice(-3))}`)), ms);
    asyncWaiters.set(id, () => { clearTimeout(t); resolve(asyncMdns.get(id)!); });
  });
}

const STRUCTURES: Array<[string, Layer[]]> = [
  ["plain", []],
  ["signed", ["sign"]],
  ["encrypted", ["encrypt"]],
  ["signed+encrypted", ["sign", "encrypt"]],
  ["compressed", ["compress"]],
  ["compress-before-signing+encrypted", ["compress", "sign", "encrypt"]],
  ["compress-after-signing+encrypted", ["sign", "compress", "encrypt"]],
  ["compressed+encrypted", ["compress", "encrypt"]],
];

const norm = (alg: string) => alg.toLowerCase().replace(/-/g, "");
let n = 0;

for (const [name, layers] of STRUCTURES) {
  for (const mode of ["sync", "async"] as const) {
    for (const mdnKind of ["signed", "unsigned"] as const) {
      test(`openssl-built ${name} -> as2 receive, ${mode} ${mdnKind} MDN`, async () => {
        const i = ++n;
        const filename = `${name}-${mode}-${mdnKind}.x12`;
        // Signed-MDN cases sign with sha256, the others with sha384: the MIC must follow the
        // signature's digest whatever was asked for (M2).
        const signDigest = mdnKind === "signed" ? "sha256" : "sha384";
        const msg = buildWithOpenssl(sender, PAYLOAD, filename, "application/edi-x12", layers, signDigest);
        const messageId = `<osend-${i}-${Date.now()}@openssl-sender.test>`;
        const headers: Record<string, string> = {
          "AS2-Version": "1.2", "MIME-Version": "1.0",
          // Quoted AS2 names (N table) on every other message.
          "AS2-From": i % 2 ? '"MYCO"' : "MYCO", "AS2-To": "ACME",
          "Message-ID": messageId, Subject: `openssl ${name}`, Date: new Date().toUTCString(),
          "Content-Type": msg.contentType, ...msg.extraHeaders,
          "Disposition-Notification-To": "edi@myco.example",
        };
        if (mdnKind === "signed") headers["Disposition-Notification-Options"] = "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256, sha1";
        if (mode === "async") headers["Receipt-Delivery-Option"] = mdnUrl;
        const res = await fetch(server.url, { method: "POST", headers, body: msg.body });
        const resBody = Buffer.from(await res.arrayBuffer());
        assert.equal(res.status, 200, resBody.toString());

        let mdn: { contentType: string; body: Buffer };
        if (mode === "sync") {
          mdn = { contentType: res.headers.get("content-type") ?? "", body: resBody };
          assert.equal(res.headers.get("as2-from"), "ACME");
          assert.equal(res.headers.get("as2-to"), "MYCO");
        } else {
          assert.equal(resBody.length, 0, "async: the transfer-level answer has no MDN (X2)");
          mdn = await waitForAsyncMdn(messageId);
        }
        assert.match(mdn.contentType, mdnKind === "signed" ? /^multipart\/signed/i : /^multipart\/report/i);
        const checked = checkMdnWithOpenssl(dir, mdn.contentType, mdn.body, join(dir, "acme.crt"));
        assert.equal(checked.fields["original-message-id"], messageId);
        assert.match(checked.fields.disposition!, /^automatic-action\/MDN-sent-automatically;\s*processed$/i);
        const [micValue, micToken] = checked.fields["received-content-mic"]!.split(/\s*,\s*/);
        const expectedAlg = msg.signDigest ?? "sha256"; // unsigned: the first micalg asked for (M3)
        assert.equal(norm(micToken!), norm(expectedAlg));
        assert.equal(micValue, opensslMic(dir, expectedAlg, msg.micInput), "Received-Content-MIC = openssl dgst over the M-table bytes");

        const stored = readFileSync(join(dir, "acme-data", "inbox", "myco", filename));
        assert.ok(stored.equals(PAYLOAD), "the inbox file is the payload, byte for byte");
        const ev = await server.waitFor((e) => e.event === "message" && e.messageId === messageId);
        const record = JSON.parse(readFileSync(join(dir, "acme-data", "jobs", `${ev.runId as string}.json`), "utf8"));
        assert.equal(record.state, "SUCCESS");
        assert.equal(record.messages[0].signed, layers.includes("sign"));
        assert.equal(record.messages[0].encrypted, layers.includes("encrypt"));
        assert.equal(record.messages[0].compressed, layers.includes("compress"));
        assert.equal(record.receiveDetails.mdnType, mode);
        if (mode === "async") await server.waitFor((e) => e.event === "mdn-sent" && e.messageId === messageId);
      });
    }
  }
}
