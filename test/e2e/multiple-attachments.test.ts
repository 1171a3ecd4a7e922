/**
 * Multiple attachments (RFC 6362; as2-reference E2; issue 17), end to end with real processes:
 * - `as2 send --multiple-attachments` -> `as2 receive`: 1, 2 and 20 parts, binary and text mixed,
 *   plain / signed / encrypted / compressed: every part stored byte-exact, one MDN whose MIC the
 *   sender checked, every part in the receive job's `files` and `attachments`;
 * - a multipart/related built by hand and wrapped by openssl / Bouncy Castle (no as2kit code) ->
 *   `as2 receive`: every part stored, the MDN's MIC equal to `openssl dgst` over the whole entity;
 * - `as2 send --multiple-attachments` -> the openssl receiver: the parts cut out of what arrived by
 *   plain string handling are the files, and the MIC matches;
 * - all or none: a name conflict (whenExists "error"), a truncated multipart, a part without
 *   headers and too many parts store no part; a SIGKILL between two parts' links
 *   (AS2KIT_CRASH_AT=receive:part-linked) or at the receive steps around it, followed by a
 *   restart and a resend, stores every part once;
 * - the partner gate (partners.<name>.multipleAttachments auto | true | false).
 * With AS2KIT_TEST_STORE=postgres (the twin multiple-attachments.postgres.test.ts) the stations
 * use PostgreSQL stores: the ledger entry with its parts is JSON there.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { before, describe, test } from "node:test";
import type { JobRecord } from "../../src/store/index.js";
import { onCleanup, opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server, type Run } from "../helpers/as2-process.js";
import { BC_CP, header, splitEntity, startOpensslReceiver, type OpensslReceiver } from "../helpers/openssl-receiver.js";
import { checkMdnWithOpenssl, opensslMic, wrapWithOpenssl, type Layer, type OpensslSenderOptions } from "../helpers/openssl-sender.js";
import { readJobRecords, storeSetting } from "../helpers/store-kind.js";

const dir = tempDir("as2kit-attach-");
const out = join(dir, "out");
let acme: As2Server;
let acmeStation = "";
let mycoStore: Record<string, unknown> | undefined;
let sender: OpensslSenderOptions;
let opensslReceiver: OpensslReceiver;

const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function jobOf(r: Run): JobRecord {
  assert.ok(r.stdout.trim(), `no JSON on stdout (exit ${r.status}, signal ${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as JobRecord;
}

/** Entries of a folder that may be absent, without the temp folder. */
function entries(path: string): string[] {
  return existsSync(path) ? readdirSync(path).filter((n) => n !== ".as2kit-tmp").sort() : [];
}
const tmpLeft = (inbox: string) => (existsSync(join(inbox, ".as2kit-tmp")) ? readdirSync(join(inbox, ".as2kit-tmp")) : []);

/**
 * `count` files, alternating binary (random bytes with CR, LF, "--" and a delimiter-like line
 * inside) and text (.txt, .xml, .edi, .csv with CRLF lines), each with its own name and bytes.
 */
function makeFiles(label: string, count: number): Array<{ path: string; name: string; bytes: Buffer }> {
  mkdirSync(out, { recursive: true });
  const textKinds = [".txt", ".xml", ".edi", ".csv"];
  return Array.from({ length: count }, (_, k) => {
    const binary = k % 2 === 1;
    const ext = binary ? ".bin" : textKinds[(k / 2) % textKinds.length | 0]!;
    const name = `${label}-${k + 1}${ext}`;
    const bytes = binary
      ? Buffer.concat([randomBytes(2000 + k * 317), Buffer.from("\r\n----=_as2kit_related_not-the-boundary\r\n--\n\r"), randomBytes(500)])
      : Buffer.from(ext === ".edi" ? `UNB+UNOA:2+MYCO+ACME+261122:1200+${k}'\r\nUNH+1+ORDERS:D:96A:UN'\r\n`.repeat(40 + k) : `line ${k} of ${label}\r\n`.repeat(30 + k));
    const path = join(out, name);
    writeFileSync(path, bytes);
    return { path, name, bytes };
  });
}

before(async () => {
  opensslIdentity("myco", dir);
  const acmeId = opensslIdentity("acme", dir);
  const mycoId = { keyFile: join(dir, "myco.key"), certFile: join(dir, "myco.crt") };
  const intruder = opensslIdentity("intruder", dir);
  execFileSync("javac", ["-cp", BC_CP, "-d", dir, join("test", "interop", "bc", "BcCompressed.java")], { stdio: "pipe" });
  sender = { dir, keyFile: mycoId.keyFile, certFile: mycoId.certFile, recipientCertFile: acmeId.certFile, bcClassDir: dir };
  acmeStation = "acme_attach";
  mycoStore = await storeSetting("myco_attach");
  const acmeConfig = cfg("acme", {
    dataDir: "./acme-data",
    ...(await storeSetting(acmeStation)),
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: {
      myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"] } },
      // Same key, another AS2 ID: an inbox where a taken name is an error (all or none).
      strict: { as2Id: "MYCO-STRICT", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { whenExists: "error" } },
      // The other inbound.whenExists modes, part by part.
      ...Object.fromEntries(["skip", "append", "overwrite"].map((mode) => [`when-${mode}`, { as2Id: `MYCO-${mode.toUpperCase()}`, url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { whenExists: mode } }])),
    },
  });
  acme = await startAs2Receive(acmeConfig);
  opensslReceiver = await startOpensslReceiver({ dir, keyFile: acmeId.keyFile, certFile: acmeId.certFile, partnerCertFile: mycoId.certFile, otherKeyFile: intruder.keyFile, otherCertFile: intruder.certFile, bcClassDir: dir, as2Id: "ACME" });
});

const inboxOf = (partner: string) => join(dir, "acme-data", "inbox", partner);

/** MYCO's configuration for sending to ACME's as2 receive (or another URL). */
function mycoConfig(name: string, partner: Record<string, unknown>, as2Id = "MYCO", dataDir = "./myco-data", store = mycoStore): string {
  return cfg(`myco-${name}`, {
    dataDir,
    ...store,
    station: { as2Id, key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url: acme.url, certificate: "acme.crt", retries: 0, mdn: { request: "signed" }, ...partner } },
  });
}

const STRUCTURES: Array<[string, Record<string, unknown>]> = [
  ["plain", { sign: false, encrypt: false }],
  ["signed", { encrypt: false }],
  ["encrypted", { sign: false }],
  ["compressed", { sign: false, encrypt: false, compress: "before-signing" }],
  ["signed+encrypted+compressed", { compress: "before-signing" }],
];

/** The receive job of a message, from ACME's store. */
async function receiveJobOf(messageId: string): Promise<JobRecord> {
  const ev = await acme.waitFor((e) => e.event === "message" && e.messageId === messageId);
  const rec = (await readJobRecords(join(dir, "acme-data"), acmeStation)).find((r) => r.runId === ev.runId);
  assert.ok(rec, `no receive job ${String(ev.runId)}`);
  return rec;
}

describe("as2 send --multiple-attachments -> as2 receive", () => {
  for (const [structure, partner] of STRUCTURES) {
    for (const count of [1, 2, 20]) {
      test(`${structure}, ${count} part${count > 1 ? "s" : ""}: every part stored byte-exact, one MDN, MIC checked`, async () => {
        const label = `${structure.replace(/\W/g, "_")}-${count}`;
        const files = makeFiles(label, count);
        // One case also archives its sources once the MDN confirms the message: every file goes.
        const archive = structure === "signed" && count === 2 ? join(dir, `archive-${label}`) : undefined;
        const r = await as2(["send", "--config", mycoConfig(label, { ...partner, multipleAttachments: true }), "--partner", "acme", "--multiple-attachments", "--json", ...(archive ? ["--archive-dir", archive] : []), ...files.map((f) => f.path)]);
        assert.equal(r.status, 0, r.stderr + r.stdout);
        const job = jobOf(r);
        assert.equal(job.state, "SUCCESS");
        // ONE message: one Message-ID for every file, one detail, its MIC confirmed by the MDN.
        assert.equal(job.messages.length, 1);
        assert.equal(new Set(job.files.map((f) => f.as2MessageId)).size, 1);
        assert.deepEqual(job.files.map((f) => f.status), files.map(() => "SUCCESS"));
        assert.equal(job.sendDetails!.length, 1);
        assert.equal(job.sendDetails![0]!.mdnChecks!.mic.verdict, "pass", JSON.stringify(job.sendDetails![0]!.mdnChecks));
        assert.match(job.sendDetails![0]!.contentType, /^multipart\/related; boundary="[^"]+"; type="text\/plain"$/);
        assert.deepEqual(job.messages[0]!.attachments.map((a) => a.name), files.map((f) => f.name));
        for (const f of files) assert.equal(sha(readFileSync(join(inboxOf("myco"), f.name))), sha(f.bytes), `${f.name} stored byte-exact`);
        const rec = await receiveJobOf(job.files[0]!.as2MessageId!);
        assert.equal(rec.state, "SUCCESS");
        const ev = await acme.waitFor((e) => e.event === "message" && e.messageId === job.files[0]!.as2MessageId);
        assert.deepEqual(ev.files, files.map((f) => join(inboxOf("myco"), f.name)), "the message event names every stored part");
        assert.deepEqual(rec.files.map((f) => [f.name, f.size, f.status]), files.map((f) => [join(inboxOf("myco"), f.name), f.bytes.length, "SUCCESS"]));
        assert.deepEqual(rec.messages[0]!.attachments, files.map((f) => ({ name: join(inboxOf("myco"), f.name), size: f.bytes.length })));
        assert.equal(rec.receiveDetails!.mic, job.sendDetails![0]!.mic, "the receiver's MIC is the sender's");
        assert.deepEqual(tmpLeft(inboxOf("myco")), []);
        if (archive) {
          assert.deepEqual(readdirSync(archive).sort(), files.map((f) => f.name).sort());
          for (const f of files) assert.equal(existsSync(f.path), false, `${f.name} moved to the archive`);
        }
      });
    }
  }
});

/** A multipart/related entity built by hand (RFC 2387, RFC 6362 §2), headers and body. */
function handBuiltRelated(parts: Array<{ type: string; disposition: string; bytes: Buffer }>, boundary: string, tail = `\r\n--${boundary}--\r\n`): Buffer {
  const chunks: Buffer[] = [Buffer.from(`Content-Type: multipart/related; boundary="${boundary}"; type="${parts[0]!.type.split(";")[0]}"\r\n\r\n`)];
  parts.forEach((p, k) => {
    chunks.push(Buffer.from(`${k ? "\r\n" : ""}--${boundary}\r\nContent-Type: ${p.type}\r\nContent-Disposition: ${p.disposition}\r\n\r\n`), p.bytes);
  });
  chunks.push(Buffer.from(tail));
  return Buffer.concat(chunks);
}

async function postOutside(entity: Buffer, layers: Layer[], from = "MYCO", asyncUrl?: string): Promise<{ status: number; contentType: string; body: Buffer; messageId: string; micInput: Buffer; signDigest?: string }> {
  const msg = wrapWithOpenssl(sender, entity, layers);
  const messageId = `<outside-${randomBytes(6).toString("hex")}@openssl-sender.test>`;
  const res = await fetch(acme.url, {
    method: "POST",
    headers: {
      "AS2-Version": "1.2", "MIME-Version": "1.0", "AS2-From": from, "AS2-To": "ACME", "Message-ID": messageId, Date: new Date().toUTCString(),
      "Content-Type": msg.contentType, "Disposition-Notification-To": "edi@myco.example",
      "Disposition-Notification-Options": "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256",
      ...(asyncUrl ? { "Receipt-Delivery-Option": asyncUrl } : {}),
    },
    body: msg.body,
  });
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", body: Buffer.from(await res.arrayBuffer()), messageId, micInput: msg.micInput, signDigest: msg.signDigest };
}

describe("a multipart/related built outside (openssl, Bouncy Castle) -> as2 receive", () => {
  const OUTSIDE: Array<[string, Layer[]]> = [["plain", []], ["signed", ["sign"]], ["encrypted", ["encrypt"]], ["compressed", ["compress"]], ["signed+encrypted", ["sign", "encrypt"]]];
  for (const [structure, layers] of OUTSIDE) for (const count of [1, 2, 3, 20]) {
    test(`${structure}, ${count} part${count > 1 ? "s" : ""}: every part stored byte-exact, the MDN's MIC over the whole entity (openssl dgst)`, async () => {
      const tag = `out-${structure.replace(/\W/g, "_")}-${count}`;
      // EDI text with bare LF, binary (a PDF-like blob with "--" lines), UTF-8 text under an RFC 2231 name, in turn.
      const kinds = [
        (k: number) => ({ name: `${tag}-order-${k}.edi`, type: "application/edifact", bytes: Buffer.from(`UNB+UNOA:2+MYCO+ACME+261122:1200+${k}'\nUNH+1+ORDERS:D:96A:UN'\n`.repeat(50 + k)) }),
        (k: number) => ({ name: `${tag}-scan-${k}.pdf`, type: "application/pdf", bytes: Buffer.concat([Buffer.from("%PDF-1.4\r\n"), randomBytes(5000 + k), Buffer.from("\r\n--\r\n")]) }),
        (k: number) => ({ name: `${tag}-Prüfbericht € ${k}.txt`, type: "text/plain; charset=utf-8", bytes: Buffer.from(`Prüfung ${k} bestanden\r\n`.repeat(20)) }),
      ];
      const parts = Array.from({ length: count }, (_, k) => kinds[k % kinds.length]!(k));
      const boundary = `outside-${randomBytes(8).toString("hex")}`;
      const entity = handBuiltRelated(parts.map((p) => ({
        type: p.type, bytes: p.bytes,
        // RFC 2231 filename* for the non-ASCII name, a plain quoted one for the others.
        disposition: /^[ -~]*$/.test(p.name) ? `attachment; filename="${p.name}"` : `attachment; filename="fallback.txt"; filename*=UTF-8''${encodeURIComponent(p.name)}`,
      })), boundary);
      const r = await postOutside(entity, layers);
      assert.equal(r.status, 200, r.body.toString());
      const mdn = checkMdnWithOpenssl(dir, r.contentType, r.body, join(dir, "acme.crt"));
      assert.match(mdn.fields.disposition!, /processed$/i, JSON.stringify(mdn.fields));
      const [mic, alg] = mdn.fields["received-content-mic"]!.split(",").map((x) => x.trim());
      assert.equal(mic, opensslMic(dir, r.signDigest ?? "sha256", r.micInput), "the MIC covers the whole multipart/related entity (RFC 6362 §2.3)");
      assert.equal(alg!.toLowerCase(), "sha-256");
      for (const p of parts) assert.equal(sha(readFileSync(join(inboxOf("myco"), p.name))), sha(p.bytes), `${p.name} stored byte-exact`);
    });
  }
});

test("async MDN: the spooled message is split after the 200, every part stored, the MDN posted with the MIC", async () => {
  const mdns: Array<{ contentType: string; body: Buffer }> = [];
  const sink = http.createServer((req, res) => {
    const got: Buffer[] = [];
    req.on("data", (c: Buffer) => got.push(c));
    req.on("end", () => { mdns.push({ contentType: String(req.headers["content-type"]), body: Buffer.concat(got) }); res.writeHead(200, { "Content-Length": "0" }); res.end(); });
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { sink.closeAllConnections(); sink.close(() => r()); }));
  const parts = [0, 1, 2].map((k) => ({ name: `async-${k}.${k === 1 ? "bin" : "txt"}`, type: k === 1 ? "application/octet-stream" : "text/plain", bytes: k === 1 ? randomBytes(4096) : Buffer.from(`async part ${k}\r\n`.repeat(50)) }));
  const entity = handBuiltRelated(parts.map((p) => ({ type: p.type, disposition: `attachment; filename="${p.name}"`, bytes: p.bytes })), `async-${randomBytes(6).toString("hex")}`);
  const r = await postOutside(entity, ["sign", "encrypt"], "MYCO", `http://127.0.0.1:${(sink.address() as AddressInfo).port}/mdn`);
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 0, "async: no MDN in the response (X2)");
  const deadline = Date.now() + 30_000;
  while (!mdns.length && Date.now() < deadline) await sleep(50);
  assert.equal(mdns.length, 1, "one MDN for the whole set");
  const mdn = checkMdnWithOpenssl(dir, mdns[0]!.contentType, mdns[0]!.body, join(dir, "acme.crt"));
  assert.equal(mdn.fields["original-message-id"], r.messageId);
  assert.match(mdn.fields.disposition!, /processed$/i);
  assert.equal(mdn.fields["received-content-mic"]!.split(",")[0]!.trim(), opensslMic(dir, r.signDigest!, r.micInput));
  for (const p of parts) assert.equal(sha(readFileSync(join(inboxOf("myco"), p.name))), sha(p.bytes), `${p.name} stored byte-exact`);
});

/** Cuts a multipart body into its parts by plain string handling (independent of as2kit's parser). */
function cutParts(body: Buffer, boundary: string): Array<{ head: string; body: Buffer }> {
  const delim = Buffer.from(`--${boundary}`);
  const out: Array<{ head: string; body: Buffer }> = [];
  let at = body.indexOf(delim);
  for (;;) {
    const start = at + delim.length;
    if (body.subarray(start, start + 2).toString() === "--") return out;
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), start);
    assert.ok(next > 0, "closing delimiter present");
    out.push(splitEntity(body.subarray(start + 2, next)));
    at = next + 2;
  }
}

describe("as2 send --multiple-attachments -> the openssl receiver", () => {
  const TO_OPENSSL: Array<[string, Record<string, unknown>, string[]]> = [
    ["plain", { sign: false, encrypt: false }, []],
    ["signed", { encrypt: false }, ["signed"]],
    ["encrypted", { sign: false }, ["encrypted"]],
    ["compressed", { sign: false, encrypt: false, compress: "before-signing" }, ["compressed"]],
  ];
  for (const [structure, partner, layers] of TO_OPENSSL) for (const count of [1, 2, 3, 20]) {
    test(`${structure}, ${count} part${count > 1 ? "s" : ""}: openssl opens it, the parts are the files byte for byte, the MIC matches`, async () => {
      const files = makeFiles(`ossl-${structure}-${count}`, count);
      const config = cfg(`myco-ossl-${structure}-${count}`, {
        dataDir: "./myco-ossl", ...mycoStore,
        station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
        partners: { acme: { as2Id: "ACME", url: opensslReceiver.url, certificate: "acme.crt", mdn: { request: "signed", micAlgorithm: "sha256" }, multipleAttachments: true, contentType: "application/edifact", ...partner } },
      });
      const before = opensslReceiver.received.length;
      const r = await as2(["send", "--config", config, "--partner", "acme", "--multiple-attachments", "--json", ...files.map((f) => f.path)]);
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const job = jobOf(r);
      assert.equal(job.state, "SUCCESS");
      assert.equal(opensslReceiver.received.length, before + 1, "one message for all the files");
      const got = opensslReceiver.received[before]!;
      assert.deepEqual(got.layers, layers);
      if (layers.includes("signed")) assert.ok(got.signatureVerified);
      assert.equal(got.mic, job.sendDetails![0]!.mic, "openssl's MIC over the whole entity is the one as2 send recorded");
      assert.equal(job.sendDetails![0]!.mdnChecks!.mic.verdict, "pass");
      // Plain: the multipart/related travels in HTTP (T2); otherwise inside the innermost layer.
      const type = layers.length ? header(got.payloadHeaders, "Content-Type")! : String(got.headers["content-type"]);
      assert.match(type, /^multipart\/related; boundary="[^"]+"; type="application\/edifact"$/, "RFC 2387: type is the first part's type");
      const parts = cutParts(got.payload, /boundary="([^"]+)"/.exec(type)![1]!);
      assert.equal(parts.length, files.length);
      parts.forEach((p, k) => {
        assert.equal(sha(p.body), sha(files[k]!.bytes), `part ${k + 1} is ${files[k]!.name}`);
        assert.equal(header(p.head, "Content-Disposition"), `attachment; filename=${files[k]!.name}`);
        // The first part: the profile's type; the others by extension (.edi by its first bytes, UNB: EDIFACT).
        const byExtension: Record<string, string> = { bin: "application/octet-stream", xml: "application/xml", txt: "text/plain", csv: "text/csv", edi: "application/edifact" };
        assert.equal(header(p.head, "Content-Type"), k === 0 ? "application/edifact" : byExtension[files[k]!.name.split(".").pop()!]);
      });
    });
  }
});

describe("all parts or none", () => {
  test("a taken name with whenExists \"error\": negative MDN, no part stored, the user's file untouched", async () => {
    const files = makeFiles("conflict", 3);
    mkdirSync(inboxOf("strict"), { recursive: true });
    const mine = Buffer.from("the user's own file\n");
    writeFileSync(join(inboxOf("strict"), files[1]!.name), mine);
    const r = await as2(["send", "--config", mycoConfig("conflict", { multipleAttachments: true }, "MYCO-STRICT"), "--partner", "acme", "--multiple-attachments", "--json", ...files.map((f) => f.path)]);
    assert.equal(r.status, 1, r.stderr + r.stdout);
    const job = jobOf(r);
    assert.equal(job.state, "FAILED");
    assert.equal(job.messages[0]!.mdnMessage?.mdnError, true);
    assert.match(job.files[0]!.error!.message, /exists in the inbox/);
    assert.deepEqual(entries(inboxOf("strict")), [files[1]!.name], "only the user's file");
    assert.deepEqual(readFileSync(join(inboxOf("strict"), files[1]!.name)), mine);
    assert.deepEqual(tmpLeft(inboxOf("strict")), []);
    const rec = await receiveJobOf(job.files[0]!.as2MessageId!);
    assert.equal(rec.state, "FAILED");
    assert.deepEqual(rec.messages[0]!.attachments, []);
  });

  // The modes that take a taken name without failing apply to each part on its own: the other
  // parts are stored as usual, and the taken one is kept, appended to or replaced.
  for (const [mode, expected] of [
    ["skip", (mine: Buffer) => mine],
    ["append", (mine: Buffer, part: Buffer) => Buffer.concat([mine, part])],
    ["overwrite", (_mine: Buffer, part: Buffer) => part],
  ] as Array<[string, (mine: Buffer, part: Buffer) => Buffer]>) {
    test(`a taken name with whenExists "${mode}": the other parts stored, the taken one ${mode === "skip" ? "kept" : mode === "append" ? "appended to" : "replaced"}`, async () => {
      const inbox = inboxOf(`when-${mode}`);
      const files = makeFiles(`when-${mode}`, 3);
      mkdirSync(inbox, { recursive: true });
      const mine = Buffer.from(`the user's own file (${mode})\n`);
      writeFileSync(join(inbox, files[1]!.name), mine);
      const r = await as2(["send", "--config", mycoConfig(`when-${mode}`, { multipleAttachments: true }, `MYCO-${mode.toUpperCase()}`), "--partner", "acme", "--multiple-attachments", "--json", ...files.map((f) => f.path)]);
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const job = jobOf(r);
      assert.equal(job.state, "SUCCESS");
      assert.deepEqual(entries(inbox), files.map((f) => f.name).sort(), "one file per part, no numbered copy");
      assert.deepEqual(readFileSync(join(inbox, files[0]!.name)), files[0]!.bytes);
      assert.deepEqual(readFileSync(join(inbox, files[1]!.name)), expected(mine, files[1]!.bytes));
      assert.deepEqual(readFileSync(join(inbox, files[2]!.name)), files[2]!.bytes);
      assert.deepEqual(tmpLeft(inbox), []);
      const rec = await receiveJobOf(job.files[0]!.as2MessageId!);
      assert.notEqual(rec.state, "FAILED");
    });
  }

  const MALFORMED: Array<[string, (tag: string) => Buffer, RegExp]> = [
    ["no closing delimiter", (tag) => handBuiltRelated([
      { type: "text/plain", disposition: `attachment; filename="${tag}-a.txt"`, bytes: Buffer.from("a\r\n".repeat(100)) },
      { type: "text/plain", disposition: `attachment; filename="${tag}-b.txt"`, bytes: Buffer.from("b\r\n".repeat(100)) },
    ], "cut-boundary", ""), /closing boundary/],
    ["a part without headers", (tag) => Buffer.concat([
      handBuiltRelated([{ type: "text/plain", disposition: `attachment; filename="${tag}-a.txt"`, bytes: Buffer.from("a\r\n") }], "nohead", ""),
      Buffer.from("\r\n--nohead\r\n\r\njust bytes, no headers\r\n--nohead--\r\n"),
    ]), /no Content-Type/],
    ["101 parts (receive.maxAttachments 100)", (tag) => handBuiltRelated(Array.from({ length: 101 }, (_, k) => ({ type: "text/plain", disposition: `attachment; filename="${tag}-${k}.txt"`, bytes: Buffer.from(`part ${k}\r\n`) })), "many"), /more than 100 attachments/],
  ];
  for (const [what, build, why] of MALFORMED) {
    for (const layers of [[], ["sign"]] as Layer[][]) {
      test(`${what} (${layers.length ? "signed" : "plain"}): a negative MDN that says so, no part stored, no temp file`, async () => {
        const tag = `bad-${what.replace(/\W/g, "_")}-${layers.length}`;
        const r = await postOutside(build(tag), layers);
        assert.equal(r.status, 200, r.body.toString());
        const mdn = checkMdnWithOpenssl(dir, r.contentType, r.body, join(dir, "acme.crt"));
        assert.match(mdn.fields.disposition!, /processed\/error/i);
        assert.match(r.body.toString("latin1"), why);
        assert.deepEqual(entries(inboxOf("myco")).filter((n) => n.startsWith(tag)), []);
        assert.deepEqual(tmpLeft(inboxOf("myco")), []);
        const ev = await acme.waitFor((e) => e.event === "message" && e.messageId === r.messageId);
        assert.match(String(ev.detail), why);
      });
    }
  }
});

describe("SIGKILL while storing a set", () => {
  // part-linked: between two parts' links (part 1 of 3 in the inbox); opened: all parts verified
  // in temp files, none linked; linked: all linked, not recorded; recorded: the outcome written,
  // the temp files not yet removed, no MDN sent.
  for (const point of ["part-linked", "opened", "linked", "recorded"]) {
    test(`at receive:${point}: a restart and the sender's resend store every part exactly once`, async () => {
      const files = makeFiles(`crash-${point}`, 3);
      const config = cfg(`acme-crash-${point}`, {
        dataDir: `./acme-crash-${point}`, ...(await storeSetting(`acme_crash_${point.replace(/\W/g, "_")}`)),
        station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
        receive: { host: "127.0.0.1", port: 0, path: "/as2" },
        partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt" } },
      });
      const inbox = join(dir, `acme-crash-${point}`, "inbox", "myco");
      const crashing = await startAs2Receive(config, [], { AS2KIT_CRASH_AT: `receive:${point}` });
      const mycoCfg = (url: string) => cfg(`myco-crash-${point}`, {
        dataDir: `./myco-crash-${point}`, ...mycoStore,
        station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
        partners: { acme: { as2Id: "ACME", url, certificate: "acme.crt", retries: 0, readTimeout: 30, mdn: { request: "signed" }, multipleAttachments: true } },
      });
      const first = await as2(["send", "--config", mycoCfg(crashing.url), "--partner", "acme", "--multiple-attachments", "--json", ...files.map((f) => f.path)]);
      assert.notEqual(first.status, 0, "no MDN came back: the receiver died");
      const ended = await Promise.race([crashing.exited, sleep(10_000).then(() => undefined)]);
      assert.equal(ended?.signal, "SIGKILL", `as2 receive did not die at receive:${point}: ${crashing.stderr()}`);
      const halfway: Record<string, string[]> = { "part-linked": [files[0]!.name], opened: [], linked: files.map((f) => f.name).sort(), recorded: files.map((f) => f.name).sort() };
      assert.deepEqual(entries(inbox), halfway[point], "what the crash left in the inbox");
      const job1 = jobOf(first);
      assert.notEqual(job1.state, "SUCCESS");

      const restarted = await startAs2Receive(config);
      const again = await as2(["send", "--config", mycoCfg(restarted.url), "--restart", job1.runId, "--json"]);
      assert.equal(again.status, 0, again.stderr + again.stdout);
      const job2 = jobOf(again);
      assert.equal(job2.state, "SUCCESS");
      assert.equal(job2.files[0]!.as2MessageId, job1.files[0]!.as2MessageId, "resent under the same Message-ID");
      assert.equal(job2.sendDetails![0]!.mdnChecks!.mic.verdict, "pass", "the same bytes: the recorded MIC matches the resend");
      assert.deepEqual(entries(inbox), files.map((f) => f.name).sort(), "every part once, no numbered copy");
      for (const f of files) assert.equal(sha(readFileSync(join(inbox, f.name))), sha(f.bytes));
      assert.deepEqual(tmpLeft(inbox), [], "no temp file left");
      const recs = await readJobRecords(join(dir, `acme-crash-${point}`), `acme_crash_${point.replace(/\W/g, "_")}`);
      assert.deepEqual(recs.filter((r) => r.state !== "SUCCESS").map((r) => `${r.runId} ${r.state}`), [], "every receive job settled");
      restarted.proc.kill("SIGTERM");
      await restarted.exited;
    });
  }
});

/** The process's peak resident memory so far (VmHWM), in MiB; undefined once it is gone. */
function peakMiB(pid: number): number | undefined {
  try {
    // A process that has exited (a zombie) has no VmHWM line any more.
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    return Number.isFinite(kb) ? kb / 1024 : undefined;
  } catch {
    return undefined;
  }
}

test("streams: two 96 MiB parts, signed and encrypted, with flat memory in as2 send and as2 receive", async () => {
  mkdirSync(out, { recursive: true });
  const big = [0, 1].map((k) => {
    const path = join(out, `big-${k}.bin`);
    // Random, so that nothing compresses or dedupes; a distinct tail per file.
    const block = randomBytes(1024 * 1024);
    writeFileSync(path, Buffer.alloc(0));
    for (let i = 0; i < 96; i++) writeFileSync(path, block, { flag: "a" });
    writeFileSync(path, Buffer.from(`end of ${k}`), { flag: "a" });
    return { path, name: `big-${k}.bin`, hash: sha(readFileSync(path)) };
  });
  const config = cfg("acme-big", {
    dataDir: "./acme-big", ...(await storeSetting("acme_big")),
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt" } },
  });
  const receiver = await startAs2Receive(config);
  let senderPeak = 0;
  let poll: NodeJS.Timeout | undefined;
  const r = await as2(["send", "--config", mycoConfig("big", { url: receiver.url, multipleAttachments: true, readTimeout: 300 }), "--partner", "acme", "--multiple-attachments", "--json", ...big.map((b) => b.path)], {
    onSpawn: (pid) => { poll = setInterval(() => { senderPeak = Math.max(senderPeak, peakMiB(pid) ?? 0); }, 20); },
  });
  clearInterval(poll);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.equal(jobOf(r).state, "SUCCESS");
  const receiverPeak = peakMiB(receiver.proc.pid!)!;
  for (const b of big) assert.equal(sha(readFileSync(join(dir, "acme-big", "inbox", "myco", b.name))), b.hash);
  // 192 MiB went through each process; holding either part whole would pass 96 MiB over the
  // runtime's own ~60-100 MiB.
  assert.ok(senderPeak > 0 && senderPeak < 170, `as2 send peaked at ${senderPeak.toFixed(0)} MiB`);
  assert.ok(receiverPeak < 170, `as2 receive peaked at ${receiverPeak.toFixed(0)} MiB`);
  receiver.proc.kill("SIGTERM");
  await receiver.exited;
});

describe("the partner gate", () => {
  test("auto refuses until the partner advertised multiple-attachments; false refuses; true sends; exit 2 names the key", async () => {
    const files = makeFiles("gate", 2);
    // A station with no history of its own (its own store): nothing advertised yet.
    const store = await storeSetting("myco_gate");
    const send = (mode: unknown) => as2(["send", "--config", mycoConfig(`gate-${String(mode)}`, { multipleAttachments: mode }, "MYCO", "./myco-gate", store), "--partner", "acme", "--multiple-attachments", "--json", ...files.map((f) => f.path)]);
    const auto = await send("auto");
    assert.equal(auto.status, 2, auto.stderr + auto.stdout);
    assert.match(JSON.parse(auto.stdout).error.message, /partners\.acme\.multipleAttachments is "auto" and no recorded message or MDN of acme advertised/);
    const off = await send(false);
    assert.equal(off.status, 2);
    assert.match(JSON.parse(off.stdout).error.message, /partners\.acme\.multipleAttachments is false/);
    const on = await send(true);
    assert.equal(on.status, 0, on.stderr + on.stdout);
    assert.deepEqual(jobOf(on).sendDetails![0]!.partnerFeatures, ["multiple-attachments", "CEM", "AS2-Reliability"], "as2 receive's MDN advertised it (E1)");
    // Now the partner's most recent MDN says it takes them: auto sends.
    const later = await send("auto");
    assert.equal(later.status, 0, later.stderr + later.stdout);
    assert.equal(jobOf(later).state, "SUCCESS");
    // false still refuses, whatever the partner advertised.
    assert.equal((await send(false)).status, 2);
    // A job whose files went as separate messages cannot be restarted as one (each keeps its Message-ID).
    const nowhere = mycoConfig("gate-nowhere", { url: "http://127.0.0.1:9/as2", multipleAttachments: true, connectTimeout: 5 }, "MYCO", "./myco-gate", store);
    const failed = await as2(["send", "--config", nowhere, "--partner", "acme", "--json", ...files.map((f) => f.path)]);
    assert.equal(failed.status, 1, failed.stderr + failed.stdout);
    const regroup = await as2(["send", "--config", nowhere, "--restart", jobOf(failed).runId, "--multiple-attachments", "--json"]);
    assert.equal(regroup.status, 2, regroup.stderr + regroup.stdout);
    assert.match(JSON.parse(regroup.stdout).error.message, /cannot group them \(use --rerun/);
    // --dry-run builds the one message it would send.
    const target = join(dir, "gate-dry.http");
    const dry = await as2(["send", "--config", mycoConfig("gate-dry", { multipleAttachments: true, sign: false, encrypt: false }, "MYCO", "./myco-gate", store), "--partner", "acme", "--multiple-attachments", "--dry-run", "--out", target, ...files.map((f) => f.path)]);
    assert.equal(dry.status, 0, dry.stderr + dry.stdout);
    const written = readFileSync(target);
    assert.match(written.toString("latin1"), /\r\nContent-Type: multipart\/related; boundary="[^"]+"; type="text\/plain"\r\n/);
    for (const f of files) assert.ok(written.includes(f.bytes), `${f.name} is in the dry-run message`);
  });
});
