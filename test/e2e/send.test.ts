/**
 * `as2 send` end to end, as a user runs it (the built binary, a config file), against the
 * openssl-based receiver in test/helpers (no shared code): every structure with signed and
 * unsigned sync MDNs; negative MDN, MIC mismatch, bad MDN signature, HTML error page; partial
 * jobs; source deletion/archiving; dry-run; async MDNs with --wait-mdn; restart and rerun;
 * notifications; MDN file destinations (interruption: restart.test.ts).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { Headers } from "../../src/core/index.js";
import { loadConfig } from "../../src/config/load.js";
import { loadKeyMaterial } from "../../src/config/keys.js";
import { recordAsyncMdn } from "../../src/jobs/async-mdn.js";
import type { JobRecord } from "../../src/store/index.js";
import { onCleanup, opensslIdentity, tempDir } from "../helpers/tools.js";
import { as2, type Run } from "../helpers/as2-process.js";
import { BC_CP, startOpensslReceiver, type OpensslReceiver } from "../helpers/openssl-receiver.js";

const dir = tempDir();
let receiver: OpensslReceiver;
const PAYLOAD = Buffer.from("ISA*00*          *00*          *ZZ*MYCO           *ZZ*ACME           *261122*1200*U*00401*000000001*0*P*>~\r\nGS*PO*MYCO*ACME*20261122*1200*1*X*004010~\r\n".repeat(200));

function writeConfig(name: string, partner: Record<string, unknown> = {}, top: Record<string, unknown> = {}): string {
  const cfg = {
    dataDir: "./data",
    station: { as2Id: "MYCO", email: "edi@myco.example", key: { pem: "myco.key", certificate: "myco.crt" }, asyncMdnUrl: "http://127.0.0.1:9/as2" },
    partners: { acme: { as2Id: "ACME", url: receiver.url, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", mdn: { request: "signed", micAlgorithm: "sha256" }, ...partner } },
    ...top,
  };
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

function payloadFile(name: string, data: Buffer = PAYLOAD): string {
  const p = join(dir, "out", name);
  mkdirSync(join(dir, "out"), { recursive: true });
  writeFileSync(p, data);
  return p;
}

function jobOf(r: Run): JobRecord {
  try {
    return JSON.parse(r.stdout) as JobRecord;
  } catch {
    throw new Error(`no JSON on stdout (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
}

before(async () => {
  const myco = opensslIdentity("myco", dir);
  const acme = opensslIdentity("acme", dir);
  const other = opensslIdentity("intruder", dir);
  execFileSync("javac", ["-cp", BC_CP, "-d", dir, join("test", "interop", "bc", "BcCompressed.java")], { stdio: "pipe" });
  receiver = await startOpensslReceiver({ dir, keyFile: acme.keyFile, certFile: acme.certFile, partnerCertFile: myco.certFile, otherKeyFile: other.keyFile, otherCertFile: other.certFile, bcClassDir: dir, as2Id: "ACME" });
});

describe("as2 send against an openssl receiver", () => {
  const structures: Array<[string, string[], string[]]> = [
    ["plain", ["--no-sign", "--no-encrypt"], []],
    ["signed", ["--no-encrypt"], ["signed"]],
    ["encrypted", ["--no-sign"], ["encrypted"]],
    ["signed+encrypted", [], ["encrypted", "signed"]],
    ["compressed", ["--no-sign", "--no-encrypt", "--compress"], ["compressed"]],
    ["compressed+signed+encrypted", ["--compress", "before-signing"], ["encrypted", "signed", "compressed"]],
    ["signed+compressed+encrypted", ["--compress", "after-signing"], ["encrypted", "compressed", "signed"]],
    ["compressed+encrypted", ["--no-sign", "--compress"], ["encrypted", "compressed"]],
  ];
  for (const [name, flags, layers] of structures) {
    for (const mdn of ["signed", "unsigned"]) {
      test(`${name}, ${mdn} sync MDN: delivered, verified, recorded`, async () => {
        const cfg = writeConfig(`s-${name}-${mdn}`);
        const file = payloadFile(`order-${name}-${mdn}.edi`);
        const r = await as2(["send", "--config", cfg, "--partner", "acme", "--mdn", mdn, "--json", ...flags, file]);
        assert.equal(r.status, 0, r.stderr + r.stdout);
        const job = jobOf(r);
        assert.equal(job.state, "SUCCESS");
        assert.equal(job.statusCode, 0);
        const got = receiver.received.at(-1)!;
        assert.deepEqual(got.layers, layers);
        assert.deepEqual(got.payload, PAYLOAD);
        assert.equal(got.signatureVerified, layers.includes("signed"));
        // With no MIME layer, the payload's headers travel as HTTP headers (RFC 4130 §5.2).
        if (layers.length) {
          assert.match(got.payloadHeaders, /Content-Type: application\/edi-x12/);
          assert.equal(got.filename, `order-${name}-${mdn}.edi`);
        } else {
          assert.equal(got.headers["content-type"], "application/edi-x12");
        }
        const m = job.messages[0]!;
        assert.equal(m.as2MessageId, got.messageId);
        assert.equal(m.deliveryStatus, "Delivered");
        assert.equal(m.mdnStatus, "Received");
        assert.equal(m.transportStatusReceived, 200);
        assert.equal(m.signed, layers.includes("signed"));
        assert.equal(m.encrypted, layers.includes("encrypted"));
        assert.equal(m.compressed, layers.includes("compressed"));
        assert.equal(m.mdnMessage!.signed, mdn === "signed");
        assert.equal(m.mdnMessage!.mic, got.mic);
        assert.match(m.mdnMessage!.content, /Original-Message-ID/);
        assert.equal(job.sendDetails![0]!.mic, got.mic);
        assert.equal(job.sendDetails![0]!.mdnChecks!.mic.verdict, "pass");
        assert.equal(job.files[0]!.status, "SUCCESS");
        // The record on disk says the same.
        const onDisk = JSON.parse(readFileSync(join(dir, "data", "jobs", `${job.runId}.json`), "utf8")) as JobRecord;
        assert.equal(onDisk.state, "SUCCESS");
      });
    }
  }

  const failures: Array<[string, string, RegExp]> = [
    ["negative", "AS2_ERR_MDN_NEGATIVE", /negative MDN: .*processed\/error: decryption-failed/],
    ["badmic", "AS2_ERR_MDN_VERIFICATION_FAILED", /mic: MIC mismatch/],
    ["badsig", "AS2_ERR_MDN_VERIFICATION_FAILED", /signature: /],
    ["unsigned-mdn", "AS2_ERR_MDN_VERIFICATION_FAILED", /a signed MDN was requested, but this one is not signed/],
    ["html", "AS2_ERR_HTTP_STATUS", /HTTP 500 Internal Server Error: 500 Internal Server Error java\.lang\.NullPointerException/],
  ];
  for (const [path, code, reason] of failures) {
    test(`${path}: the file fails with a clear reason, exit 1, the source is kept`, async () => {
      const cfg = writeConfig(`f-${path}`, { url: `${receiver.url}/${path}` });
      const file = payloadFile(`fail-${path}.edi`);
      const r = await as2(["send", "--config", cfg, "--partner", "acme", "--delete-source", "--json", file]);
      assert.equal(r.status, 1, r.stderr);
      const job = jobOf(r);
      assert.equal(job.state, "FAILED");
      assert.equal(job.statusCode, -1);
      assert.equal(job.error!.code, code);
      assert.match(job.error!.message, reason);
      assert.equal(job.files[0]!.status, "FAILED");
      assert.ok(existsSync(file), "a failed file is never deleted");
      // Without --json the reason is on stdout's result table.
      const plain = await as2(["send", "--config", cfg, "--partner", "acme", file]);
      assert.equal(plain.status, 1);
      assert.match(plain.stdout, new RegExp(code));
    });
  }

  test("no MDN requested: HTTP 2xx confirms; the source is deleted only then", async () => {
    const cfg = writeConfig("none");
    const file = payloadFile("no-mdn.edi");
    const r = await as2(["send", "--config", cfg, "--partner", "acme", "--mdn", "none", "--delete-source", "--json", file]);
    assert.equal(r.status, 0, r.stderr);
    const job = jobOf(r);
    assert.equal(job.messages[0]!.mdnStatus, "Not Requested");
    assert.equal(job.messages[0]!.deliveryStatus, "Delivered");
    assert.equal(existsSync(file), false);
    assert.equal(job.sendDetails![0]!.sourceDeleted, true);
  });

  test("--dir/--pattern, a partial job (exit 3), --archive-dir only for confirmed files, then --restart sends only the failed file with its Message-ID", async () => {
    const cfg = writeConfig("partial");
    const folder = join(dir, "outbox");
    mkdirSync(folder, { recursive: true });
    for (const n of ["file_1.edi", "file_2.edi", "file_3.edi", "other.edi"]) writeFileSync(join(folder, n), PAYLOAD);
    receiver.reject.add("file_2.edi");
    const archive = join(dir, "archive");
    const r = await as2(["send", "--config", cfg, "--partner", "acme", "--dir", folder, "--pattern", "file_?.edi", "--archive-dir", archive, "--json"]);
    assert.equal(r.status, 3, r.stderr);
    const job = jobOf(r);
    assert.equal(job.state, "PARTIAL");
    assert.deepEqual(job.files.map((f) => [f.name.split("/").pop(), f.status]), [["file_1.edi", "SUCCESS"], ["file_2.edi", "FAILED"], ["file_3.edi", "SUCCESS"]]);
    assert.deepEqual(readdirSync(archive).sort(), ["file_1.edi", "file_3.edi"]);
    assert.deepEqual(readdirSync(folder).sort(), ["file_2.edi", "other.edi"]);
    const failedId = job.files[1]!.as2MessageId!;

    receiver.reject.delete("file_2.edi");
    const before = receiver.received.length;
    const again = await as2(["send", "--config", cfg, "--restart", job.runId, "--json"]);
    assert.equal(again.status, 0, again.stderr);
    const restarted = jobOf(again);
    assert.equal(restarted.restartOf, job.runId);
    assert.equal(restarted.files.length, 1);
    assert.equal(restarted.files[0]!.as2MessageId, failedId);
    assert.equal(receiver.received.length, before + 1);
    assert.equal(receiver.received.at(-1)!.messageId, failedId);

    const rerun = await as2(["send", "--config", cfg, "--rerun", restarted.runId, "--json"]);
    assert.equal(rerun.status, 0, rerun.stderr);
    assert.notEqual(jobOf(rerun).files[0]!.as2MessageId, failedId);
  });

  test("--dry-run writes the exact request and sends nothing", async () => {
    const cfg = writeConfig("dry", { username: "myco", password: "s3cret-Pass", userAgent: "as2kit-test" });
    const file = payloadFile("dry.edi");
    const before = receiver.received.length;
    const out = join(dir, "dry.http");
    const r = await as2(["send", "--config", cfg, "--partner", "acme", "--dry-run", "--out", out, "--json", file]);
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { messages: Array<{ as2MessageId: string; bodyBytes: number }> };
    const bytes = readFileSync(out);
    const headEnd = bytes.indexOf("\r\n\r\n");
    const head = bytes.subarray(0, headEnd).toString("latin1");
    assert.match(head, /^POST \/as2 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
    assert.match(head, new RegExp(`Message-ID: ${res.messages[0]!.as2MessageId.replace(/[.$]/g, "\\$&")}`));
    assert.match(head, /User-Agent: as2kit-test/);
    assert.match(head, new RegExp(`Content-Length: ${res.messages[0]!.bodyBytes}\r?$`, "m"));
    assert.equal(bytes.length - headEnd - 4, res.messages[0]!.bodyBytes);
    assert.doesNotMatch(bytes.toString("latin1"), /s3cret-Pass|Authorization/);
    assert.equal(receiver.received.length, before);
  });

  test("async MDN: AWAITING_MDN and exit 0; --wait-mdn sees the MDN recorded by the receive side; a timeout exits 1", async () => {
    const cfg = writeConfig("async", { mdn: { request: "signed", mode: "async", url: "http://127.0.0.1:9/as2/mdn" } });
    const first = await as2(["send", "--config", cfg, "--partner", "acme", "--json", payloadFile("async-1.edi")]);
    assert.equal(first.status, 0, first.stderr);
    const job = jobOf(first);
    assert.equal(job.state, "AWAITING_MDN");
    assert.equal(job.statusCode, 2);
    assert.equal(job.messages[0]!.mdnStatus, "Pending");
    assert.equal(receiver.received.at(-1)!.headers["receipt-delivery-option"], "http://127.0.0.1:9/as2/mdn");

    const timedOut = await as2(["send", "--config", cfg, "--partner", "acme", "--wait-mdn", "1", "--json", payloadFile("async-2.edi")]);
    assert.equal(timedOut.status, 1);
    assert.equal(jobOf(timedOut).state, "AWAITING_MDN");
    assert.match(timedOut.stderr, /no MDN within 1 s/);

    // The receive server's part, done here with the same data directory: record the async MDN.
    const { config } = await loadConfig({ configPath: cfg, env: {} });
    const keys = loadKeyMaterial(config, new Date());
    const n = receiver.received.length;
    const waiting = as2(["send", "--config", cfg, "--partner", "acme", "--wait-mdn", "30", "--json", payloadFile("async-3.edi")]);
    for (let i = 0; i < 400 && !(receiver.received.length > n && receiver.received.at(-1)!.asyncMdn); i++) await new Promise((r) => setTimeout(r, 50));
    const mdn = receiver.received.at(-1)!.asyncMdn!;
    const recorded = await recordAsyncMdn({ config, keys, headers: Headers.from(mdn.headers), body: mdn.body });
    assert.ok(recorded, "the MDN's Original-Message-ID is found");
    assert.equal(recorded.outcome.status, "SUCCESS");
    const done = await waiting;
    assert.equal(done.status, 0, done.stderr);
    const final = jobOf(done);
    assert.equal(final.state, "SUCCESS");
    assert.equal(final.messages[0]!.mdnStatus, "Received");
    assert.equal(final.sendDetails![0]!.mdnChecks!.mic.verdict, "pass");
  });

  test("MDN file destination: written; whenExists rename keeps both; error fails the file", async () => {
    const mdnFile = join(dir, "mdns", "acme.mdn");
    const cfg = writeConfig("mdnfile", { mdn: { request: "signed", destination: "file", file: mdnFile, whenExists: "rename" } });
    const a = jobOf(await as2(["send", "--config", cfg, "--partner", "acme", "--json", payloadFile("mdnfile-1.edi")]));
    const b = jobOf(await as2(["send", "--config", cfg, "--partner", "acme", "--json", payloadFile("mdnfile-2.edi")]));
    assert.equal(a.state, "SUCCESS");
    assert.equal(b.state, "SUCCESS");
    assert.deepEqual(readdirSync(join(dir, "mdns")).sort(), ["acme.1.mdn", "acme.mdn"]);
    assert.match(readFileSync(mdnFile, "latin1"), new RegExp(`Original-Message-ID: ${a.files[0]!.as2MessageId!.replace(/[.$]/g, "\\$&")}`));
    assert.equal(a.messages[0]!.mdnMessage!.content, "");
    assert.equal(a.sendDetails![0]!.mdnFile, mdnFile);
    const cfgErr = writeConfig("mdnfile-err", { mdn: { request: "signed", destination: "file", file: mdnFile, whenExists: "error" } });
    const c = await as2(["send", "--config", cfgErr, "--partner", "acme", "--json", payloadFile("mdnfile-3.edi")]);
    assert.equal(c.status, 1);
    assert.match(jobOf(c).error!.message, /exists/);
  });

  test("notifications: Started and Completed, Failed with the reason; an endpoint that is down is a warning only", async () => {
    const got: Array<{ method: string; body: { jobId: string; status: string; message: string } }> = [];
    const hook = http.createServer((req, res) => {
      let b = "";
      req.on("data", (c: Buffer) => { b += c.toString(); });
      req.on("end", () => { got.push({ method: req.method!, body: JSON.parse(b) }); res.end(); });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    onCleanup(() => new Promise<void>((r) => hook.close(() => r())));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    const ok = jobOf(await as2(["send", "--config", writeConfig("notify-ok", {}, { notify: { url, method: "PUT" } }), "--partner", "acme", "--json", payloadFile("notify-1.edi")]));
    assert.deepEqual(got.map((g) => [g.method, g.body.jobId, g.body.status]), [["PUT", ok.runId, "Started"], ["PUT", ok.runId, "Completed"]]);
    got.length = 0;
    const bad = await as2(["send", "--config", writeConfig("notify-bad", { url: `${receiver.url}/negative`, notify: { url } }), "--partner", "acme", "--json", payloadFile("notify-2.edi")]);
    assert.equal(bad.status, 1);
    assert.deepEqual(got.map((g) => g.body.status), ["Started", "Failed"]);
    assert.match(got[1]!.body.message, /decryption-failed/);
    const down = await as2(["send", "--config", writeConfig("notify-down", {}, { notify: { url: "http://127.0.0.1:9/hook" } }), "--partner", "acme", "--json", payloadFile("notify-3.edi")]);
    assert.equal(down.status, 0, down.stderr);
    const rec = jobOf(down);
    assert.equal(rec.state, "SUCCESS");
    assert.ok(rec.warnings!.some((w) => /notification "Started" .* failed/.test(w)), JSON.stringify(rec.warnings));
    assert.ok(rec.warnings!.some((w) => /notification "Completed" .* failed/.test(w)));
  });
});

describe("as2 send: usage, configuration and interruption", () => {
  test("bad flags and configuration exit 2 with the key path or flag, and nothing is sent", async () => {
    const cfg = writeConfig("usage");
    const file = payloadFile("usage.edi");
    const n = receiver.received.length;
    const cases: Array<[string[], RegExp]> = [
      [["--partner", "nobody", file], /--partner: no partner "nobody" in the configuration; configured: acme/],
      [["--partner", "acme", "--sign", "md5", file], /--sign \(partners\.acme\.sign\): "md5": md5 signatures are accepted for verification only/],
      [["--partner", "acme", "--encrypt", "rot13", file], /--encrypt \(partners\.acme\.encrypt\): "rot13": not allowed; allowed: false, 3des/],
      [["--partner", "acme", "--mdn", "maybe", file], /--mdn \(partners\.acme\.mdn\.request\): "maybe": not allowed; allowed: none, signed, unsigned/],
      [["--partner", "acme", join(dir, "missing.edi")], /missing\.edi: no such file/],
      [["--partner", "acme"], /name the files to send/],
      [["--partner", "acme", "--wait-mdn", "soon", file], /--wait-mdn takes a number of seconds/],
      [["--partner", "acme", "--rerun", "20260101T000000000Z-abcdef", file], /do not name files/],
      [["--partner", "acme", "--bogus", file], /unknown option '--bogus'/],
      [["--partner", "acme", "--mic-alg", "sha512", file], /--mic-alg sha512: a signed message's MIC uses its signing digest \(sha256\)/],
    ];
    for (const [args, message] of cases) {
      const r = await as2(["send", "--config", cfg, ...args]);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "");
    }
    writeFileSync(join(dir, "broken.json"), JSON.stringify({ station: { as2Id: "MYCO", key: { pem: "nope.key", certificate: "myco.crt" } }, partners: { acme: { as2Id: "ACME", url: "ftp://x", encrypt: "aes256-cbc" } } }));
    const broken = await as2(["send", "--config", join(dir, "broken.json"), "--partner", "acme", file]);
    assert.equal(broken.status, 2);
    assert.match(broken.stderr, /partners\.acme\.url: "ftp:\/\/x": must be an http:\/\/ or https:\/\/ URL/);
    assert.match(broken.stderr, /partners\.acme\.encrypt: encrypting with aes256-cbc needs the partner's certificate/);
    assert.equal(receiver.received.length, n);
  });
});
