// Configuration (contract.md §4; issue 3): one schema, every problem at once with its dotted path,
// the value found and the allowed values; cosmiconfig forms; ${ENV}; relative paths; keys up front.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { validateConfig, loadConfig, loadKeyMaterial, configJsonSchema, ConfigError, type ConfigProblem } from "../../src/config/index.js";
import { createSelfSignedCertificate } from "../../src/core/index.js";
import { openssl, opensslIdentity, tempDir } from "../helpers/tools.js";

const MINIMAL = {
  station: { as2Id: "MYCO", key: { pem: "k.pem", certificate: "c.pem" } },
  partners: { acme: { as2Id: "ACME", url: "https://as2.acme.example/as2", certificate: "acme.crt" } },
};

function withPartner(patch: Record<string, unknown>): unknown {
  return { ...MINIMAL, partners: { acme: { ...MINIMAL.partners.acme, ...patch } } };
}

test("as2rc.example.json is complete and validates", () => {
  const raw = JSON.parse(readFileSync("as2rc.example.json", "utf8"));
  const r = validateConfig(raw, { MYCO_KEY_PASS: "x" });
  assert.deepEqual(r.problems, []);
  assert.equal(r.config!.partners.acme!.mdn.request, "signed");
  assert.equal(r.config!.station.key && "password" in r.config!.station.key ? r.config!.station.key.password : "", "x");
});

test("defaults are filled in as the contract documents them", () => {
  const c = validateConfig(MINIMAL).config!;
  assert.equal(c.dataDir, "./as2-data");
  assert.deepEqual({ host: c.receive.host, port: c.receive.port, path: c.receive.path }, { host: "0.0.0.0", port: 4080, path: "/as2" });
  const p = c.partners.acme!;
  assert.deepEqual([p.type, p.sign, p.encrypt, p.keyEncryption, p.compress, p.connectTimeout, p.readTimeout, p.retries, p.followRedirects, p.chunked],
    ["production", "sha256", "aes256-cbc", "rsa", false, 60, 0, 0, false, false]);
  assert.deepEqual([p.mdn.request, p.mdn.mode, p.mdn.destination, p.mdn.whenExists, p.mdn.micAlgorithm], ["signed", "sync", "joblog", "rename", "sha256"]);
});

const BAD: Array<[string, unknown, Array<[string, RegExp]>]> = [
  ["unknown cipher", withPartner({ encrypt: "aes512" }), [["partners.acme.encrypt", /"aes512": not allowed; allowed: false, 3des, aes128-cbc, .*aes256-gcm/]]],
  ["md5 signing", withPartner({ sign: "md5" }), [["partners.acme.sign", /md5 signatures are accepted for verification only.*allowed: false, sha1, sha224, sha256, sha384, sha512/]]],
  ["bad AS2 ID", { ...MINIMAL, station: { ...MINIMAL.station, as2Id: "" } }, [["station.as2Id", /1-128 printable ASCII/]]],
  ["AS2 ID too long", withPartner({ as2Id: "x".repeat(129) }), [["partners.acme.as2Id", /1-128 printable ASCII/]]],
  ["non-ASCII AS2 ID", withPartner({ as2Id: "Müller" }), [["partners.acme.as2Id", /1-128 printable ASCII/]]],
  ["typo in a key", withPartner({ retrys: 3 }), [["partners.acme", /unknown key "retrys"/]]],
  ["wrong type", withPartner({ retries: "3" }), [["partners.acme.retries", /"3": expected number/]]],
  ["negative timeout", withPartner({ connectTimeout: -1 }), [["partners.acme.connectTimeout", />=0/]]],
  ["bad URL", withPartner({ url: "ftp://x" }), [["partners.acme.url", /http:\/\/ or https:\/\//]]],
  ["missing url", { ...MINIMAL, partners: { acme: { as2Id: "ACME", certificate: "c" } } }, [["partners.acme.url", /is required/]]],
  ["missing station", { partners: {} }, [["station", /is required/]]],
  ["bad MDN mode", withPartner({ mdn: { mode: "later" } }), [["partners.acme.mdn.mode", /allowed: sync, async/]]],
  ["file destination without file", withPartner({ mdn: { destination: "file" } }), [["partners.acme.mdn.file", /required when mdn.destination is "file"/]]],
  ["async without a URL", withPartner({ mdn: { mode: "async" } }), [["partners.acme.mdn.url", /needs mdn.url, mdn.email or station.asyncMdnUrl/]]],
  ["encrypt without certificate", { ...MINIMAL, partners: { acme: { as2Id: "ACME", url: "http://x/", mdn: { request: "none" } } } }, [["partners.acme.encrypt", /needs the partner's certificate/]]],
  ["proxy type", withPartner({ proxy: { type: "socks6", host: "p", port: 1080 } }), [["partners.acme.proxy.type", /allowed: http, https, socks4, socks5/]]],
  ["port out of range", withPartner({ proxy: { type: "http", host: "p", port: 70000 } }), [["partners.acme.proxy.port", /<=65535/]]],
  ["TLS version", withPartner({ tls: { minVersion: "SSLv3" } }), [["partners.acme.tls.minVersion", /allowed: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3/]]],
  ["half a client certificate", withPartner({ tls: { clientCertificate: "c.pem" } }), [["partners.acme.tls.clientKey", /go together/]]],
  ["half of basic auth", withPartner({ username: "u" }), [["partners.acme.password", /go together/]]],
  ["compress order", withPartner({ compress: "sometimes" }), [["partners.acme.compress", /allowed: false, before-signing, after-signing/]]],
  ["receive path", { ...MINIMAL, receive: { path: "as2" } }, [["receive.path", /must start with \//]]],
  ["partner name", { ...MINIMAL, partners: { "a/b": MINIMAL.partners.acme } }, [["partners.a/b", /letters, digits/]]],
  ["several at once", withPartner({ sign: "sha3", encrypt: "des", mdn: { request: "always" } }), [
    ["partners.acme.encrypt", /"des": not allowed/], ["partners.acme.mdn.request", /allowed: none, signed, unsigned/], ["partners.acme.sign", /"sha3": not allowed/],
  ]],
];

for (const [name, raw, expected] of BAD) {
  test(`bad config: ${name}`, () => {
    const r = validateConfig(raw);
    assert.equal(r.config, undefined);
    for (const [path, message] of expected) {
      const hit = r.problems.find((p: ConfigProblem) => p.path === path && message.test(p.message));
      assert.ok(hit, `expected ${path} ~ ${message}; got:\n${r.problems.map((p) => `${p.path}: ${p.message}`).join("\n")}`);
    }
  });
}

test("${ENV} expansion: set variables are used, an unset one names the variable and the key path; secrets are never shown", () => {
  const raw = withPartner({ password: "${ACME_PASS}", username: "${ACME_USER}" });
  const ok = validateConfig(raw, { ACME_PASS: "s3cret", ACME_USER: "myco" });
  assert.equal(ok.config!.partners.acme!.password, "s3cret");
  const bad = validateConfig(raw, { ACME_USER: "myco" });
  assert.deepEqual(bad.problems, [{ path: "partners.acme.password", message: "environment variable ACME_PASS is not set" }]);
  const typed = validateConfig(withPartner({ password: 1234, username: "u" }));
  assert.ok(typed.problems.every((p) => !p.message.includes("1234")), JSON.stringify(typed.problems));
  assert.match(typed.problems[0]!.message, /\(hidden\)/);
});

test("cosmiconfig forms are found upwards from the working directory; paths resolve against the config file", async () => {
  const forms: Array<[string, string]> = [
    [".as2rc", JSON.stringify(MINIMAL)],
    [".as2rc.json", JSON.stringify(MINIMAL)],
    [".as2rc.yaml", "station:\n  as2Id: MYCO\n  key: { pem: k.pem, certificate: c.pem }\npartners:\n  acme: { as2Id: ACME, url: 'https://as2.acme.example/as2', certificate: acme.crt }\n"],
    [".as2rc.yml", "station: { as2Id: MYCO, key: { pem: k.pem, certificate: c.pem } }\npartners: { acme: { as2Id: ACME, url: 'http://x/', certificate: acme.crt } }\n"],
    ["as2.config.mjs", `export default ${JSON.stringify(MINIMAL)};`],
    ["as2.config.cjs", `module.exports = ${JSON.stringify(MINIMAL)};`],
    ["package.json", JSON.stringify({ name: "x", as2: MINIMAL })],
  ];
  for (const [file, text] of forms) {
    const dir = tempDir();
    writeFileSync(join(dir, file), text);
    mkdirSync(join(dir, "sub", "deeper"), { recursive: true });
    const { config, filepath } = await loadConfig({ cwd: join(dir, "sub", "deeper") });
    assert.equal(filepath, join(dir, file), file);
    assert.equal(config.station.as2Id, "MYCO");
    assert.equal("pem" in config.station.key && config.station.key.pem, join(dir, "k.pem"), file);
    assert.equal(config.partners.acme!.certificate, join(dir, "acme.crt"));
    assert.equal(config.dataDir, join(dir, "as2-data"));
  }
});

test("--config names a file; a missing or invalid one is a ConfigError listing every problem", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "mine.json"), JSON.stringify(withPartner({ encrypt: "nope", retries: -1 })));
  await assert.rejects(loadConfig({ cwd: dir, configPath: "mine.json" }), (e: unknown) => e instanceof ConfigError && e.problems.length === 2 && /mine\.json \(2 problems\)/.test(e.message) && /partners\.acme\.retries/.test(e.message));
  await assert.rejects(loadConfig({ cwd: dir, configPath: "absent.json" }), (e: unknown) => e instanceof ConfigError && /file not found: .*absent\.json/.test(e.message));
  const empty = tempDir();
  await assert.rejects(loadConfig({ cwd: empty }), (e: unknown) => e instanceof ConfigError && /no configuration found: searched package.json, .as2rc/.test(e.message));
});

test("keys and certificates are checked up front: wrong password, mismatched key, missing file at once; validity gives warnings with the date", async () => {
  const dir = tempDir();
  const me = opensslIdentity("me", dir);
  const other = opensslIdentity("other", dir);
  openssl(["pkcs8", "-topk8", "-in", me.keyFile, "-v2", "aes-256-cbc", "-passout", "pass:right", "-out", join(dir, "me-enc.pem")]);
  const old = await createSelfSignedCertificate({ commonName: "old", notBefore: new Date("2020-01-01T00:00:00Z"), notAfter: new Date("2020-01-02T00:00:00Z"), keyBits: 1024 });
  writeFileSync(join(dir, "old.crt"), old.certificatePem);
  const base = {
    station: { as2Id: "ME", key: { pem: join(dir, "me-enc.pem"), certificate: me.certFile, password: "wrong" }, previousKeys: [{ pem: me.keyFile, certificate: other.certFile }] },
    partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:1/as2", certificate: join(dir, "missing.crt") } },
  };
  const bad = validateConfig(base).config!;
  assert.throws(() => loadKeyMaterial(bad, new Date()), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    const text = e.message;
    assert.match(text, /station\.key\.password: .*me-enc\.pem: wrong password/);
    assert.match(text, /station\.previousKeys\[0\]\.certificate: .*other\.crt does not belong to the key in .*me\.key/);
    assert.match(text, /partners\.acme\.certificate: file not found: .*missing\.crt/);
    return true;
  });
  const good = validateConfig({ ...base, station: { ...base.station, key: { ...base.station.key, password: "right" }, previousKeys: [] }, partners: { acme: { ...base.partners.acme, certificate: join(dir, "old.crt") } } }).config!;
  const km = loadKeyMaterial(good, new Date("2026-01-01T00:00:00Z"));
  assert.equal(km.decryptionKeys.length, 1);
  assert.equal(km.partners.acme!.signatureCertificates.length, 1);
  assert.ok(km.warnings.some((w) => /old\.crt: certificate .*CN=old expired on 2020-01-02T00:00:00\.000Z/.test(w)), km.warnings.join("\n"));
});

test("as2rc.schema.json is generated from the schema and up to date (npm run schema)", () => {
  const committed = JSON.parse(readFileSync("as2rc.schema.json", "utf8"));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(configJsonSchema())));
  assert.ok((committed.properties.partners.additionalProperties.properties.encrypt.anyOf as unknown[]).length >= 2);
});

test("issue 16: common spellings are read with a note; unknown keys and values get 'did you mean'", () => {
  const r = validateConfig(withPartner({ sign: "SHA-256", encrypt: "AES256_CBC", mdn: { micAlgorithm: "Sha1" } }));
  assert.deepEqual(r.problems, []);
  const p = r.config!.partners.acme!;
  assert.deepEqual([p.sign, p.encrypt, p.mdn.micAlgorithm], ["sha256", "aes256-cbc", "sha1"]);
  assert.deepEqual(r.notes, [
    'partners.acme.sign: "SHA-256" read as "sha256"',
    'partners.acme.encrypt: "AES256_CBC" read as "aes256-cbc"',
    'partners.acme.mdn.micAlgorithm: "Sha1" read as "sha1"',
  ]);
  const typo = validateConfig(withPartner({ certficate: "x.crt", mdn: { reqest: "signed" } }));
  assert.ok(typo.problems.some((q) => q.path === "partners.acme" && /"certficate" \(did you mean "certificate"\?\)/.test(q.message)), JSON.stringify(typo.problems));
  assert.ok(typo.problems.some((q) => q.path === "partners.acme.mdn" && /"reqest" \(did you mean "request"\?\)/.test(q.message)), JSON.stringify(typo.problems));
  const value = validateConfig(withPartner({ mdn: { request: "singed" } }));
  assert.match(value.problems[0]!.message, /did you mean signed\?/);
  const top = validateConfig({ ...MINIMAL, recieve: {} });
  assert.match(top.problems[0]!.message, /did you mean "receive"/);
});

test("presets fill what the profile leaves unset, and the profile wins", () => {
  const legacy = validateConfig(withPartner({ preset: "legacy" })).config!.partners.acme!;
  assert.deepEqual([legacy.sign, legacy.encrypt, legacy.mdn.micAlgorithm, legacy.quirks.micalgSpelling], ["sha1", "3des", "sha1", "rfc3851"]);
  const own = validateConfig(withPartner({ preset: "modern", encrypt: "aes128-cbc", quirks: { unsignedMdnMic: "optional" } })).config!.partners.acme!;
  assert.deepEqual([own.sign, own.encrypt, own.quirks.unsignedMdnMic, own.inbound.signerCertificateValidity], ["sha256", "aes128-cbc", "optional", "enforce"]);
  assert.match(validateConfig(withPartner({ preset: "ancient" })).problems[0]!.message, /allowed: legacy, modern/);
});

test("store: files by default; postgres with a url from ${ENV}; a missing url, a wrong scheme or an unset variable are named by key path, and a password never shows in a problem", () => {
  assert.deepEqual(validateConfig(MINIMAL).config!.store, { kind: "files" });
  const pg = (store: unknown, env: Record<string, string> = {}) => validateConfig({ ...MINIMAL, store }, env);
  assert.deepEqual(pg({ kind: "postgres", url: "${AS2_DATABASE_URL}" }, { AS2_DATABASE_URL: "postgres://as2:pw@db:5432/as2" }).config!.store, { kind: "postgres", url: "postgres://as2:pw@db:5432/as2" });
  assert.deepEqual(pg({ kind: "postgres", url: "${AS2_DATABASE_URL}" }).problems.map((p) => [p.path, p.message])[0], ["store.url", "environment variable AS2_DATABASE_URL is not set"]);
  assert.match(pg({ kind: "postgres" }).problems.map((p) => `${p.path}: ${p.message}`).join("\n"), /^store\.url: is required with kind "postgres"/);
  assert.match(pg({ kind: "mysql" }).problems.map((p) => `${p.path}: ${p.message}`).join("\n"), /^store: .*allowed: files, postgres/);
  const wrong = pg({ kind: "postgres", url: "mysql://as2:Secr3t-99@db/as2" }).problems;
  assert.equal(wrong[0]!.path, "store.url");
  assert.match(wrong[0]!.message, /postgres:\/\/ or postgresql:\/\//);
  assert.ok(!JSON.stringify(wrong).includes("Secr3t-99"), JSON.stringify(wrong));
});

test("certificate windows (CEM, issue 17): a signature certificate verifies only inside { from, until }; the encryption entry in use is the one with the latest from", async () => {
  const { validateConfig } = await import("../../src/config/validate.js");
  const { encryptionCertificateAt, loadKeyMaterial, signersAt } = await import("../../src/config/keys.js");
  const { opensslIdentity, tempDir: tmp } = await import("../helpers/tools.js");
  const d = tmp();
  const me = opensslIdentity("me", d);
  const oldC = opensslIdentity("old", d);
  const newC = opensslIdentity("new", d);
  const switchAt = "2030-01-01T00:00:00Z";
  const { config, problems } = validateConfig({
    station: { as2Id: "ME", key: { pem: me.keyFile, certificate: me.certFile } },
    partners: { p: {
      as2Id: "P", url: "http://127.0.0.1:1/as2",
      signatureCertificates: [{ file: oldC.certFile, until: switchAt }, { file: newC.certFile, from: "2029-06-01T00:00:00Z" }],
      encryptionCertificate: [{ file: oldC.certFile, until: switchAt }, { file: newC.certFile, from: switchAt }],
    } },
  });
  assert.ok(config, JSON.stringify(problems));
  const before = loadKeyMaterial(config, new Date("2029-12-31T00:00:00Z"));
  const after = loadKeyMaterial(config, new Date("2030-01-02T00:00:00Z"));
  assert.ok(before.partners.p!.encryptionCertificate!.der.equals(oldC.certificate.der));
  assert.ok(after.partners.p!.encryptionCertificate!.der.equals(newC.certificate.der));
  // Loaded before the switch, used after it (a long-running process): the entry in use when it sends.
  assert.ok(encryptionCertificateAt(before.partners.p, new Date("2030-01-02T00:00:00Z"))!.der.equals(newC.certificate.der));
  assert.ok(encryptionCertificateAt(after.partners.p, new Date("2029-12-31T00:00:00Z"))!.der.equals(oldC.certificate.der));
  const signers = (at: string) => signersAt(before.partners.p, new Date(at)).map((c) => c.subject);
  assert.deepEqual(signers("2029-01-01T00:00:00Z"), [oldC.certificate.subject]);
  assert.deepEqual(signers("2029-12-31T00:00:00Z"), [oldC.certificate.subject, newC.certificate.subject]);
  assert.deepEqual(signers("2030-01-01T00:00:00Z"), [newC.certificate.subject]);
  const bad = validateConfig({ station: { as2Id: "ME", key: { pem: "k", certificate: "c" } }, partners: { p: { as2Id: "P", url: "http://x/", encrypt: false, signatureCertificates: [{ file: "a.crt", until: "soon" }] } } });
  assert.equal(bad.config, undefined);
  assert.match(JSON.stringify(bad.problems), /signatureCertificates.*until|ISO 8601/);
});
