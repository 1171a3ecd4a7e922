/**
 * Key and certificate files that are not what the configuration says they are (issue 16: "OpenSSL
 * decoder errors translated into plain words"), through real `as2 send` and `as2 check`
 * processes. The bad files are made with openssl here: a certificate where the key goes and the
 * other way round, an encrypted key without or with a wrong password, a PKCS#12 file with a wrong
 * or no password, a CSR, an empty file, random bytes, text, a damaged PEM, a missing file; DER
 * where PEM is usual is accepted when it is valid.
 *
 * `as2 send` (and every command that loads the keys: src/config/keys.ts) stops with exit 2 and,
 * with --json, exactly one document `{"error":{"code","message",...,"problems":[{path,message,code}]}}`
 * on stdout; `as2 check` lists the same findings (same key path, file, words and code) and exits
 * 1 (contract §7: 1 = the check failed). No decoder message and no password reaches the output.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { onCleanup, openssl, tempDir } from "../helpers/tools.js";
import { as2, startAs2Receive, type Run } from "../helpers/as2-process.js";

const dir = tempDir();
const f = (name: string) => join(dir, name);
const WRONG = "Wr0ng-Pass-Word";

before(() => {
  for (const name of ["myco", "acme"]) {
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f(`${name}.key`), "-out", f(`${name}.crt`), "-days", "365", "-subj", `/CN=${name}`]);
  }
  openssl(["req", "-new", "-key", f("myco.key"), "-out", f("myco.csr"), "-subj", "/CN=myco"]);
  openssl(["req", "-new", "-key", f("myco.key"), "-outform", "DER", "-out", f("myco-csr.der"), "-subj", "/CN=myco"]);
  openssl(["pkcs8", "-topk8", "-in", f("myco.key"), "-out", f("myco-enc.key"), "-passout", "pass:Key-Secret"]);
  openssl(["pkcs12", "-export", "-inkey", f("myco.key"), "-in", f("myco.crt"), "-out", f("myco.p12"), "-passout", "pass:P12-Secret"]);
  openssl(["x509", "-in", f("myco.crt"), "-outform", "DER", "-out", f("myco-crt.der")]);
  openssl(["pkey", "-in", f("myco.key"), "-outform", "DER", "-out", f("myco-key.der")]);
  openssl(["x509", "-in", f("acme.crt"), "-outform", "DER", "-out", f("acme-crt.der")]);
  writeFileSync(f("empty.key"), "");
  writeFileSync(f("myco-both.pem"), Buffer.concat([readFileSync(f("myco.key")), readFileSync(f("myco.crt"))]));
  writeFileSync(f("acme-both.pem"), Buffer.concat([readFileSync(f("acme.key")), readFileSync(f("acme.crt"))]));
  // Random-looking bytes, the same in every run.
  let block = createHash("sha256").update("as2kit").digest();
  const chunks: Buffer[] = [];
  for (let i = 0; i < 40; i++) chunks.push((block = createHash("sha256").update(block).digest()));
  writeFileSync(f("random.bin"), Buffer.concat(chunks));
  writeFileSync(f("notes.txt"), "hello, I am not a certificate\n");
  writeFileSync(f("damaged.crt"), "-----BEGIN CERTIFICATE-----\nTUlJQmFrZWQgYnV0IG5vdCBhIGNlcnRpZmljYXRl\n-----END CERTIFICATE-----\n");
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("server.key"), "-out", f("server.crt"), "-days", "365", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
  openssl(["x509", "-in", f("server.crt"), "-outform", "DER", "-out", f("server-crt.der")]);
  openssl(["pkcs8", "-topk8", "-in", f("server.key"), "-outform", "DER", "-out", f("server-enc-key.der"), "-passout", "pass:Tls-Secret"]);
  mkdirSync(f("a-folder"));
  writeFileSync(f("order.edi"), "ISA*00*...~\n");
});

interface Case {
  name: string;
  key?: Record<string, string>;
  partnerCertificate?: string;
  /** Key path of the problem, its code and the plain words. */
  path: string;
  code: string;
  words: RegExp;
}

const GOOD_KEY = { pem: "myco.key", certificate: "myco.crt" };

const CASES: Case[] = [
  { name: "a certificate as the private key", key: { pem: "myco.crt", certificate: "myco.crt" }, path: "station.key.pem", code: "AS2_ERR_BAD_KEY", words: /myco\.crt is a certificate \(PEM\), not a private key/ },
  { name: "a DER certificate as the private key", key: { pem: "myco-crt.der", certificate: "myco.crt" }, path: "station.key.pem", code: "AS2_ERR_BAD_KEY", words: /myco-crt\.der is a certificate \(DER\), not a private key/ },
  { name: "the private key as the station's certificate", key: { pem: "myco.key", certificate: "myco.key" }, path: "station.key.certificate", code: "AS2_ERR_BAD_CERTIFICATE", words: /myco\.key is a private key \(PEM\), not a certificate/ },
  { name: "a private key as the partner's certificate", partnerCertificate: "acme.key", path: "partners.acme.certificate", code: "AS2_ERR_BAD_CERTIFICATE", words: /acme\.key is a private key \(PEM\), not a certificate/ },
  { name: "the partner's key and certificate in one file as its certificate", partnerCertificate: "acme-both.pem", path: "partners.acme.certificate", code: "AS2_ERR_BAD_CERTIFICATE", words: /acme-both\.pem is a private key with its certificate \(PEM\), not a certificate alone: a partner's file must hold only its certificate/ },
  { name: "a PKCS#12 file as the partner's certificate", partnerCertificate: "myco.p12", path: "partners.acme.certificate", code: "AS2_ERR_BAD_CERTIFICATE", words: /myco\.p12 is a PKCS#12 file .*, not a certificate/ },
  { name: "an encrypted key without a password", key: { pem: "myco-enc.key", certificate: "myco.crt" }, path: "station.key.pem", code: "AS2_ERR_BAD_PASSWORD", words: /myco-enc\.key: the private key is password-protected: give its password in station\.key\.password/ },
  { name: "an encrypted key with a wrong password", key: { pem: "myco-enc.key", certificate: "myco.crt", password: WRONG }, path: "station.key.password", code: "AS2_ERR_BAD_PASSWORD", words: /myco-enc\.key: wrong password for the private key \(station\.key\.password\)/ },
  { name: "a PKCS#12 file with a wrong password", key: { pkcs12: "myco.p12", password: WRONG }, path: "station.key.password", code: "AS2_ERR_BAD_PASSWORD", words: /myco\.p12: wrong password for the PKCS#12 file \(station\.key\.password\)/ },
  { name: "a PKCS#12 file without its password", key: { pkcs12: "myco.p12" }, path: "station.key.pkcs12", code: "AS2_ERR_BAD_PASSWORD", words: /myco\.p12: the PKCS#12 file is password-protected: give its password in station\.key\.password/ },
  { name: "a PEM key where the PKCS#12 file goes", key: { pkcs12: "myco.key", password: "x" }, path: "station.key.pkcs12", code: "AS2_ERR_BAD_KEY", words: /myco\.key is a private key \(PEM\), not a PKCS#12 file: configure a PEM or DER key as \{ pem, certificate \}/ },
  { name: "an empty key file", key: { pem: "empty.key", certificate: "myco.crt" }, path: "station.key.pem", code: "AS2_ERR_BAD_KEY", words: /empty\.key is an empty file, not a private key/ },
  { name: "a CSR as the private key", key: { pem: "myco.csr", certificate: "myco.crt" }, path: "station.key.pem", code: "AS2_ERR_BAD_KEY", words: /myco\.csr is a certificate signing request \(CSR, PEM\), not a private key/ },
  { name: "a DER CSR as the partner's certificate", partnerCertificate: "myco-csr.der", path: "partners.acme.certificate", code: "AS2_ERR_BAD_CERTIFICATE", words: /myco-csr\.der is a certificate signing request \(CSR, DER\), not a certificate: a CSR goes to a certificate authority/ },
  { name: "random bytes as the private key", key: { pem: "random.bin", certificate: "myco.crt" }, path: "station.key.pem", code: "AS2_ERR_BAD_KEY", words: /random\.bin is not a private key: it is damaged, or in none of the formats as2kit reads/ },
  { name: "a text file as the partner's certificate", partnerCertificate: "notes.txt", path: "partners.acme.certificate", code: "AS2_ERR_BAD_CERTIFICATE", words: /notes\.txt is not a certificate: it is damaged, or in none of the formats/ },
  { name: "a damaged PEM certificate", partnerCertificate: "damaged.crt", path: "partners.acme.certificate", code: "AS2_ERR_BAD_CERTIFICATE", words: /damaged\.crt looks like a certificate but cannot be read: the data is damaged/ },
  { name: "a missing key file", key: { pem: "missing.key", certificate: "myco.crt" }, path: "station.key.pem", code: "AS2_ERR_FILE_UNREADABLE", words: /file not found: .*missing\.key/ },
  { name: "a folder as the partner's certificate", partnerCertificate: "a-folder", path: "partners.acme.certificate", code: "AS2_ERR_FILE_UNREADABLE", words: /a-folder is a folder, not a file/ },
];

function configFor(name: string, key: Record<string, string> = GOOD_KEY, partnerCertificate = "acme.crt"): string {
  const file = f(`${name.replace(/[^a-z0-9]+/gi, "-")}.json`);
  writeFileSync(file, JSON.stringify({
    dataDir: "./data",
    station: { as2Id: "MYCO", key },
    partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: partnerCertificate } },
  }, null, 2));
  return file;
}

/** Nothing of OpenSSL's or Node's own wording, and no password, reaches the user. */
function assertPlain(r: Run, label: string): void {
  const out = r.stdout + r.stderr;
  assert.doesNotMatch(out, /routines|DECODER|error:[0-9A-F]{6,}|ENOENT|EISDIR|asn1|wrong tag|header too long|Invalid PEM|Cannot read|\bat [A-Za-z.]+ \(/i, `${label}: raw library text in the output:\n${out}`);
  for (const secret of [WRONG, "Key-Secret", "P12-Secret", "Tls-Secret"]) assert.ok(!out.includes(secret), `${label}: a password in the output`);
}

/** stdout must be exactly one JSON document. */
function onlyDocument(r: Run, label: string): Record<string, any> {
  try {
    return JSON.parse(r.stdout) as Record<string, any>;
  } catch {
    assert.fail(`${label}: stdout is not one JSON document (exit ${r.status}):\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
}

/** An unsigned MDN (as2-reference E-5), enough for mdn-verify to get as far as the configuration. */
function writeUnsignedMdn(): void {
  writeFileSync(f("unsigned.mdn"), [
    'Content-Type: multipart/report; report-type=disposition-notification; boundary="r1"', "", "--r1",
    "Content-Type: text/plain", "", "The message was received.", "--r1",
    "Content-Type: message/disposition-notification", "",
    "Final-Recipient: rfc822; ACME", "Original-Message-ID: <unsigned-42@myco.example>",
    "Disposition: automatic-action/MDN-sent-automatically; processed", "Received-Content-MIC: AAAA, sha256", "", "--r1--", "",
  ].join("\r\n"));
}

describe("key and certificate files in plain words: as2 send, as2 check and as2 mdn-verify", () => {
  before(writeUnsignedMdn);
  for (const c of CASES) {
    test(c.name, async () => {
      const config = configFor(c.name, c.key, c.partnerCertificate);
      const send = ["send", "--config", config, "--partner", "acme", "--dry-run", f("order.edi")];
      const [sendJson, sendText, check, verify] = await Promise.all([
        as2([...send, "--json"], { cwd: dir }),
        as2(send, { cwd: dir }),
        as2(["check", "--config", config, "--json"], { cwd: dir }),
        // mdn-verify loads the configuration the same way; the MDN file is never reached.
        as2(["mdn-verify", f("unsigned.mdn"), "--config", config, "--partner", "acme", "--mic", "AAAA", "--mic-alg", "sha256", "--json"], { cwd: dir }),
      ]);

      // as2 send --json: exit 2, one error document naming the key path, the file and the problem.
      assert.equal(sendJson.status, 2, `send --json: ${sendJson.stdout}${sendJson.stderr}`);
      const doc = onlyDocument(sendJson, "send --json");
      assert.deepEqual(Object.keys(doc), ["error"]);
      assert.equal(doc.error.code, "AS2_ERR_CONFIG");
      assert.equal(typeof doc.error.message, "string");
      assert.match(doc.error.message, new RegExp(`${c.path.replace(/[.[\]]/g, "\\$&")}: .*${c.words.source}`));
      const problem = (doc.error.problems as Array<{ path: string; code: string; message: string }>).find((p) => p.path === c.path);
      assert.ok(problem, `no problem at ${c.path}: ${JSON.stringify(doc.error.problems)}`);
      assert.equal(problem.code, c.code);
      assert.match(problem.message, c.words);
      assertPlain(sendJson, "send --json");

      // Without --json: the same words on stderr, nothing on stdout, exit 2.
      assert.equal(sendText.status, 2);
      assert.equal(sendText.stdout, "");
      assert.match(sendText.stderr, new RegExp(`as2: invalid configuration[^]*${c.path.replace(/[.[\]]/g, "\\$&")}: .*${c.words.source}`));
      assertPlain(sendText, "send");

      // as2 check --json: the check failed (exit 1), the finding with the same path, words and code.
      assert.equal(check.status, 1, `check: ${check.stdout}${check.stderr}`);
      const report = onlyDocument(check, "check --json");
      assert.equal(report.ok, false);
      const finding = (report.problems as Array<{ path: string; code: string; message: string }>).find((p) => p.path === c.path);
      assert.ok(finding, `check: no problem at ${c.path}: ${JSON.stringify(report.problems)}`);
      assert.equal(finding.code, c.code);
      assert.match(finding.message, c.words);
      assertPlain(check, "check --json");

      // as2 mdn-verify --json: the same configuration error as send, exit 2.
      assert.equal(verify.status, 2, `mdn-verify: ${verify.stdout}${verify.stderr}`);
      const verifyDoc = onlyDocument(verify, "mdn-verify --json");
      assert.equal(verifyDoc.error.code, "AS2_ERR_CONFIG");
      const verifyProblem = (verifyDoc.error.problems as Array<{ path: string; code: string; message: string }>).find((p) => p.path === c.path);
      assert.ok(verifyProblem, `mdn-verify: no problem at ${c.path}: ${JSON.stringify(verifyDoc.error.problems)}`);
      assert.equal(verifyProblem.code, c.code);
      assert.match(verifyProblem.message, c.words);
      assertPlain(verify, "mdn-verify --json");
    });
  }

  test("valid DER files are accepted where PEM is usual (station key and certificate, partner certificate); a PEM file named .der; our key and certificate in one file", async () => {
    writeFileSync(f("pem-named.der"), openssl(["x509", "-in", f("acme.crt")]));
    for (const [label, key, partner] of [
      ["DER station key and certificate", { pem: "myco-key.der", certificate: "myco-crt.der" }, "acme-crt.der"],
      ["PEM in a file named .der", GOOD_KEY, "pem-named.der"],
      ["the station's key and certificate in one PEM file, named twice", { pem: "myco-both.pem", certificate: "myco-both.pem" }, "acme.crt"],
    ] as const) {
      const config = configFor(label, key, partner);
      const [check, send] = await Promise.all([
        as2(["check", "--config", config, "--json"], { cwd: dir }),
        as2(["send", "--config", config, "--partner", "acme", "--dry-run", f("order.edi"), "--json"], { cwd: dir }),
      ]);
      const report = onlyDocument(check, `${label}: check`);
      assert.equal(check.status, 0, `${label}: ${check.stdout}${check.stderr}`);
      assert.deepEqual(report.problems, []);
      assert.equal(report.keys, 1);
      assert.equal(send.status, 0, `${label}: ${send.stdout}${send.stderr}`);
      assert.equal(onlyDocument(send, `${label}: send`).dryRun, true);
    }
  });

  test("several bad files are all reported at once, each with its own path and code", async () => {
    const config = configFor("several", { pem: "myco.crt", certificate: "myco.key" }, "missing.crt");
    const r = await as2(["send", "--config", config, "--partner", "acme", "--dry-run", f("order.edi"), "--json"], { cwd: dir });
    assert.equal(r.status, 2);
    const doc = onlyDocument(r, "send --json");
    const byPath = Object.fromEntries((doc.error.problems as Array<{ path: string; code: string }>).map((p) => [p.path, p.code]));
    assert.deepEqual(byPath, {
      "station.key.pem": "AS2_ERR_BAD_KEY",
      "station.key.certificate": "AS2_ERR_BAD_CERTIFICATE",
      "partners.acme.certificate": "AS2_ERR_FILE_UNREADABLE",
    });
  });
});

describe("TLS files (Node's TLS reads PEM only): as2 ping and as2 send", () => {
  function tlsConfig(name: string, tls: Record<string, unknown>, url = "https://127.0.0.1:9/as2"): string {
    const file = f(`tls-${name}.json`);
    writeFileSync(file, JSON.stringify({
      dataDir: "./data", station: { as2Id: "MYCO", key: GOOD_KEY },
      partners: { acme: { as2Id: "ACME", url, certificate: "acme.crt", tls } },
    }, null, 2));
    return file;
  }

  test("a DER client certificate and key, and a DER CA, work against a server that requires the client certificate", async () => {
    const server = https.createServer({
      key: readFileSync(f("server.key")), cert: readFileSync(f("server.crt")),
      ca: readFileSync(f("myco.crt")), requestCert: true, rejectUnauthorized: true,
    }, (req, res) => { req.resume(); res.writeHead(200, { "Content-Length": "0" }); res.end(); });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    onCleanup(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    const port = (server.address() as AddressInfo).port;
    const config = tlsConfig("der", { clientCertificate: "myco-crt.der", clientKey: "myco-key.der", ca: ["server-crt.der"] }, `https://127.0.0.1:${port}/as2`);
    const r = await as2(["ping", "--config", config, "--partner", "acme", "--json", "--timeout", "5"], { cwd: dir });
    const doc = onlyDocument(r, "ping --json");
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.equal(doc.ok, true);
    const check = await as2(["check", "--config", config, "--json"], { cwd: dir });
    assert.equal(check.status, 0, check.stdout);
  });

  for (const c of [
    { name: "a certificate as the client key", tls: { clientCertificate: "myco.crt", clientKey: "myco.crt" }, path: "partners.acme.tls.clientKey", code: "AS2_ERR_BAD_KEY", words: /myco\.crt is a certificate \(PEM\), not a private key/ },
    { name: "an encrypted client key without its password", tls: { clientCertificate: "myco.crt", clientKey: "myco-enc.key" }, path: "partners.acme.tls.clientKey", code: "AS2_ERR_BAD_PASSWORD", words: /myco-enc\.key: the private key is password-protected: give its password in partners\.acme\.tls\.clientKeyPassword/ },
    { name: "a key as the CA", tls: { ca: ["acme.key"] }, path: "partners.acme.tls.ca[0]", code: "AS2_ERR_BAD_CERTIFICATE", words: /acme\.key is a private key \(PEM\), not a certificate/ },
    { name: "a missing client certificate", tls: { clientCertificate: "gone.crt", clientKey: "myco.key" }, path: "partners.acme.tls.clientCertificate", code: "AS2_ERR_FILE_UNREADABLE", words: /file not found: .*gone\.crt/ },
  ]) {
    test(`${c.name}: ping and send stop with exit 2 and one error document; check names it`, async () => {
      const config = tlsConfig(c.name.replace(/\W+/g, "-"), c.tls);
      const [ping, send, check] = await Promise.all([
        as2(["ping", "--config", config, "--partner", "acme", "--json", "--timeout", "2"], { cwd: dir }),
        as2(["send", "--config", config, "--partner", "acme", f("order.edi"), "--json"], { cwd: dir }),
        as2(["check", "--config", config, "--json"], { cwd: dir }),
      ]);
      for (const [label, r] of [["ping", ping], ["send", send]] as const) {
        assert.equal(r.status, 2, `${label}: ${r.stdout}${r.stderr}`);
        const doc = onlyDocument(r, label);
        assert.deepEqual(Object.keys(doc), ["error"]);
        const problem = (doc.error.problems as Array<{ path: string; code: string; message: string }>).find((p) => p.path === c.path);
        assert.ok(problem, `${label}: no problem at ${c.path}: ${r.stdout}`);
        assert.equal(problem.code, c.code);
        assert.match(problem.message, c.words);
        assertPlain(r, label);
      }
      assert.equal(check.status, 1, check.stdout);
      const finding = (onlyDocument(check, "check").problems as Array<{ path: string; code: string; message: string }>).find((p) => p.path === c.path);
      assert.ok(finding, check.stdout);
      assert.equal(finding.code, c.code);
      assert.match(finding.message, c.words);
    });
  }
});

describe("the key commands read files through the same module: same words, same codes, exit 2", () => {
  for (const [args, code, words] of [
    [["keys", "show", "myco.csr"], "AS2_ERR_BAD_KEY", /myco\.csr is a certificate signing request \(CSR, PEM\), not a key or certificate/],
    [["keys", "show", "empty.key"], "AS2_ERR_BAD_KEY", /empty\.key is an empty file/],
    [["keys", "show", "gone.crt"], "AS2_ERR_FILE_UNREADABLE", /\[file\]: file not found: gone\.crt/],
    [["keys", "show", "myco.p12", "--password", WRONG], "AS2_ERR_BAD_PASSWORD", /myco\.p12: wrong password for the PKCS#12 file \(--password\)/],
    [["keys", "show", "myco-enc.key"], "AS2_ERR_BAD_PASSWORD", /myco-enc\.key: the private key is password-protected: give its password with --password/],
    [["keys", "import", "random.bin", "--config", "keys-cmd.json"], "AS2_ERR_BAD_KEY", /random\.bin is not a key or certificate: it is damaged/],
    [["partner", "add", "beta", "--as2-id", "BETA", "--url", "http://127.0.0.1:9/as2", "--cert", "acme.key", "--config", "keys-cmd.json"], "AS2_ERR_BAD_CERTIFICATE", /acme\.key is a private key \(PEM\), not a certificate/],
  ] as Array<[string[], string, RegExp]>) {
    test(`as2 ${args.slice(0, 3).join(" ")}: ${code}`, async () => {
      writeFileSync(f("keys-cmd.json"), JSON.stringify({ station: { as2Id: "MYCO", key: GOOD_KEY }, partners: {} }));
      const r = await as2([...args, "--json"], { cwd: dir });
      assert.equal(r.status, 2, r.stdout + r.stderr);
      const doc = onlyDocument(r, args.join(" "));
      assert.deepEqual(Object.keys(doc), ["error"]);
      assert.equal(doc.error.code, code);
      assert.match(doc.error.message, words);
      assertPlain(r, args.join(" "));
    });
  }
});

describe("as2 receive's TLS files", () => {
  function receiveConfig(name: string, tls: Record<string, unknown>): string {
    const file = f(`receive-${name}.json`);
    writeFileSync(file, JSON.stringify({
      dataDir: "./data", station: { as2Id: "MYCO", key: GOOD_KEY },
      receive: { host: "127.0.0.1", port: 0, tls },
      partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "acme.crt" } },
    }, null, 2));
    return file;
  }

  test("an encrypted DER key and a DER certificate: as2 receive serves HTTPS with them", async () => {
    const server = await startAs2Receive(receiveConfig("der", { key: "server-enc-key.der", certificate: "server-crt.der", password: "Tls-Secret" }));
    const url = new URL(String((await server.waitFor((e) => e.event === "listening")).url));
    assert.equal(url.protocol, "https:");
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(url, { method: "HEAD", ca: readFileSync(f("server.crt")) }, (res) => { res.resume(); resolve(res.statusCode!); });
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 200);
    assert.doesNotMatch(server.stderr(), /Tls-Secret/);
  });

  for (const c of [
    { name: "a certificate as the server key", tls: { key: "server.crt", certificate: "server.crt" }, path: "receive.tls.key", code: "AS2_ERR_BAD_KEY", words: /server\.crt is a certificate \(PEM\), not a private key/ },
    { name: "the encrypted key with a wrong password", tls: { key: "server-enc-key.der", certificate: "server.crt", password: WRONG }, path: "receive.tls.password", code: "AS2_ERR_BAD_PASSWORD", words: /server-enc-key\.der: wrong password for the private key \(receive\.tls\.password\)/ },
    { name: "random bytes as the server certificate", tls: { key: "server.key", certificate: "random.bin" }, path: "receive.tls.certificate", code: "AS2_ERR_BAD_CERTIFICATE", words: /random\.bin is not a certificate/ },
  ]) {
    test(`${c.name}: exit 2 and one error document before listening; check names it too`, async () => {
      const config = receiveConfig(c.name.replace(/\W+/g, "-"), c.tls);
      const [r, check] = await Promise.all([
        as2(["receive", "--config", config, "--json"], { cwd: dir }),
        as2(["check", "--config", config, "--json"], { cwd: dir }),
      ]);
      assert.equal(r.status, 2, r.stdout + r.stderr);
      const doc = onlyDocument(r, "receive --json");
      assert.deepEqual(Object.keys(doc), ["error"]);
      const problem = (doc.error.problems as Array<{ path: string; code: string; message: string }>).find((p) => p.path === c.path);
      assert.ok(problem, r.stdout);
      assert.equal(problem.code, c.code);
      assert.match(problem.message, c.words);
      assertPlain(r, "receive");
      assert.equal(check.status, 1, check.stdout);
      const finding = (onlyDocument(check, "check").problems as Array<{ path: string; code: string; message: string }>).find((p) => p.path === c.path);
      assert.ok(finding, check.stdout);
      assert.equal(finding.code, c.code);
      assert.match(finding.message, c.words);
    });
  }
});
