/**
 * Onboarding (issue 16) as a new user does it, with real `as2` processes in temp folders:
 * `as2 init` for two stations (MYCO in JSON, ACME in YAML), certificates exchanged with
 * `as2 keys export` and `as2 partner add`, `as2 keys show` checked against openssl, `as2 keys
 * import` of openssl-made PKCS#12 (alias + password), DER and .p7b files, `as2 keys new`, the
 * refusals in plain words, and finally a signed + encrypted send with a signed MDN between the
 * two stations made from nothing.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import yaml from "js-yaml";
import { openssl, tempDir } from "../helpers/tools.js";
import { as2, startAs2Receive, type Run } from "../helpers/as2-process.js";

const root = tempDir("as2kit-onboarding-");
const MYCO = join(root, "myco");
const ACME = join(root, "acme");
const THIRD = join(root, "third");
const INCOMING = join(root, "incoming");
mkdirSync(INCOMING);

function ok(r: Run, what: string): void {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

function json<T = Record<string, unknown>>(r: Run): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`no JSON on stdout (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
}

/** Exit 2, a message naming `needle` on stderr, and with --json nothing but JSON on stdout. */
function refused(r: Run, needle: RegExp, what: string): void {
  assert.equal(r.status, 2, `${what}: exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr + r.stdout, needle, what);
  assert.doesNotMatch(r.stderr + r.stdout, /error:[0-9A-F]{8}:|DECODER routines|at .*\.js:\d+/, `${what}: no OpenSSL codes or stack traces`);
  if (r.stdout.trim()) JSON.parse(r.stdout); // --json: one document, never human text
}

type Refusal = [args: string[], opts: Parameters<typeof as2>[1], needle: RegExp, what: string];

/** Refusals change nothing, so they run side by side. */
async function refusals(cases: Refusal[]): Promise<void> {
  const runs = await Promise.all(cases.map(([args, opts]) => as2(args, opts)));
  runs.forEach((r, i) => {
    const [args, , needle, what] = cases[i]!;
    refused(r, needle, what);
    // contract §7: with --json an error is also one document on stdout.
    if (args.includes("--json")) assert.match(String(json<any>(r).error?.message), needle, `${what}: the --json error document`);
  });
}

function opensslFingerprint(certFile: string): string {
  const out = openssl(["x509", "-in", certFile, "-noout", "-fingerprint", "-sha256"]).toString().trim();
  return out.slice(out.indexOf("=") + 1);
}

const readJson = (f: string) => JSON.parse(readFileSync(f, "utf8")) as Record<string, any>;
const readYaml = (f: string) => yaml.load(readFileSync(f, "utf8")) as Record<string, any>;

test("as2 init: two stations from nothing (MYCO in JSON, ACME in YAML), keys 0600, certificate and fingerprints on stdout", async () => {
  const m = await as2(["init", "--as2-id", "MYCO", "--dir", MYCO]);
  ok(m, "init MYCO");
  const cfg = readJson(join(MYCO, ".as2rc.json"));
  assert.equal(cfg.station.as2Id, "MYCO");
  assert.deepEqual(cfg.station.key, { pem: "myco.key", certificate: "myco.crt" });
  assert.deepEqual(cfg.partners, {});
  assert.equal(cfg.receive.path, "/as2");
  assert.match(String(cfg.$schema), /as2rc\.schema\.json$/);
  assert.ok(existsSync(join(MYCO, cfg.$schema)), "$schema resolves from the config's folder");
  assert.match(readFileSync(join(MYCO, ".as2rc.json"), "utf8"), /^\{\n {2}"\$schema"/, "2-space JSON");
  assert.equal(statSync(join(MYCO, "myco.key")).mode & 0o777, 0o600);
  assert.match(readFileSync(join(MYCO, "myco.key"), "utf8"), /BEGIN PRIVATE KEY/);
  // stdout: the certificate to send, with its fingerprints (openssl's spelling).
  assert.match(m.stdout, /^SHA-256 Fingerprint=([0-9A-F]{2}:){31}[0-9A-F]{2}\nSHA-1 Fingerprint=/);
  assert.ok(m.stdout.includes(readFileSync(join(MYCO, "myco.crt"), "utf8").trim()), "the PEM is the certificate written");
  assert.equal(m.stdout.split("SHA-256 Fingerprint=")[1]!.split("\n")[0], opensslFingerprint(join(MYCO, "myco.crt")));
  assert.match(m.stderr, /wrote myco\.key \(mode 0600\)/);
  assert.match(m.stderr, /as2 partner add/);
  const rsa = openssl(["pkey", "-in", join(MYCO, "myco.key"), "-noout", "-text"]).toString();
  assert.match(rsa, /Private-Key: \(2048 bit/);

  const a = await as2(["init", "--as2-id", "ACME", "--dir", ACME, "--format", "yaml", "--json"]);
  ok(a, "init ACME");
  const doc = json<any>(a);
  assert.equal(doc.station, "ACME");
  assert.equal(doc.config, join(ACME, ".as2rc.yaml"));
  assert.match(doc.certificate.pem, /BEGIN CERTIFICATE/);
  assert.equal(doc.certificate.sha256, opensslFingerprint(join(ACME, "acme.crt")));
  assert.equal(existsSync(join(ACME, ".as2rc.json")), false);
  const y = readYaml(join(ACME, ".as2rc.yaml"));
  assert.equal(y.station.as2Id, "ACME");
  assert.deepEqual(y.station.key, { pem: "acme.key", certificate: "acme.crt" });
});

test("as2 init refuses to overwrite (exit 2, nothing written) unless --force; bad flags name the flag", async () => {
  const keyBefore = readFileSync(join(MYCO, "myco.key"));
  await refusals([
    [["init", "--as2-id", "MYCO", "--dir", MYCO], undefined, /already exist.*--force/s, "init over a station"],
    [["init", "--as2-id", "MYCO", "--dir", MYCO, "--format", "yaml", "--force"], undefined, /\.as2rc\.json already configures/, "a second config format in the same folder"],
    [["init", "--dir", join(root, "x"), "--format", "xml"], undefined, /--format/, "bad --format"],
    [["init", "--dir", join(root, "x"), "--as2-id", "MÜNCHEN"], undefined, /--as2-id.*printable ASCII/, "bad --as2-id"],
    [["init", "--dir", join(root, "x"), "--bogus"], undefined, /--bogus/, "unknown flag"],
    [["init", "--dir", join(root, "x"), "--days", "soon"], undefined, /--days/, "bad --days"],
  ]);
  assert.equal(existsSync(join(root, "x", "x.key")), false);
  assert.deepEqual(readFileSync(join(MYCO, "myco.key")), keyBefore, "the key is untouched");
  assert.equal(existsSync(join(MYCO, ".as2rc.yaml")), false);

  const forced = join(root, "forced");
  // Without --as2-id: the host name, upper-cased, as a valid AS2 ID.
  const host = join(root, "host");
  const [f, h] = await Promise.all([as2(["init", "--as2-id", "F", "--dir", forced]), as2(["init", "--dir", host, "--json"])]);
  ok(f, "init F");
  const first = readFileSync(join(forced, "f.key"));
  ok(await as2(["init", "--as2-id", "F", "--dir", forced, "--force"]), "init F --force");
  assert.notDeepEqual(readFileSync(join(forced, "f.key")), first, "--force made a new key");
  assert.equal(statSync(join(forced, "f.key")).mode & 0o777, 0o600);
  ok(h, "init without --as2-id");
  assert.match(json<any>(h).station, /^[ -~]{1,128}$/);
  assert.equal(json<any>(h).station, json<any>(h).station.toUpperCase());
});

test("as2 keys export from each station; as2 partner add on each side with the other's certificate", async () => {
  const mycoPem = await as2(["keys", "export"], { cwd: MYCO });
  ok(mycoPem, "keys export MYCO");
  assert.equal(mycoPem.stdout, readFileSync(join(MYCO, "myco.crt"), "utf8").replace(/\s*$/, "\n"));
  assert.match(mycoPem.stderr, /SHA-256 Fingerprint=/);
  writeFileSync(join(INCOMING, "myco.pem"), mycoPem.stdout);
  const acmeDer = await as2(["keys", "export", "--out", join(INCOMING, "acme.cer"), "--format", "der"], { cwd: ACME });
  ok(acmeDer, "keys export ACME --format der");
  assert.match(openssl(["x509", "-inform", "DER", "-in", join(INCOMING, "acme.cer"), "-noout", "-subject"]).toString(), /CN ?= ?ACME/);
  const acmeJson = await as2(["keys", "export", "--json"], { cwd: ACME });
  ok(acmeJson, "keys export --json");
  writeFileSync(join(INCOMING, "acme.pem"), json<any>(acmeJson).pem);
  assert.equal(json<any>(acmeJson).sha256, opensslFingerprint(join(ACME, "acme.crt")));
  refused(await as2(["keys", "export", "--format", "der"], { cwd: ACME }), /--out/, "DER to stdout");

  // MYCO adds ACME from the PEM; ACME (YAML, with keys added by hand) adds MYCO.
  const add = await as2(["partner", "add", "acme", "--as2-id", "ACME", "--url", "http://127.0.0.1:9/as2", "--cert", join(INCOMING, "acme.pem")], { cwd: MYCO });
  ok(add, "partner add acme");
  const cfg = readJson(join(MYCO, ".as2rc.json"));
  assert.deepEqual(cfg.partners.acme, { preset: "modern", as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "acme.crt" });
  assert.equal(readFileSync(join(MYCO, "acme.crt"), "utf8"), readFileSync(join(INCOMING, "acme.pem"), "utf8"));
  assert.match(add.stderr, /sign sha256, encrypt aes256-cbc/);

  const yamlFile = join(ACME, ".as2rc.yaml");
  const y = readYaml(yamlFile);
  y.station.email = "edi@acme.example";
  y.receive.maxConnections = 50;
  y.store = { kind: "files" };
  writeFileSync(yamlFile, yaml.dump(y));
  const addY = await as2(["partner", "add", "myco", "--as2-id", "MYCO", "--url", "http://127.0.0.1:9/as2", "--cert", join(INCOMING, "myco.pem"), "--preset", "legacy", "--json"], { cwd: ACME });
  ok(addY, "partner add myco (YAML)");
  assert.equal(json<any>(addY).settings.sign, "sha1");
  const after = readFileSync(yamlFile, "utf8");
  assert.throws(() => JSON.parse(after), "the file stays YAML");
  const y2 = yaml.load(after) as Record<string, any>;
  assert.equal(y2.station.email, "edi@acme.example", "keys the command does not know are kept");
  assert.equal(y2.receive.maxConnections, 50);
  assert.deepEqual(y2.store, { kind: "files" });
  assert.deepEqual(y2.partners.myco, { preset: "legacy", as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt" });
  // The modern preset is what the send between the two stations uses: make ACME's profile modern too.
  ok(await as2(["partner", "add", "myco", "--as2-id", "MYCO", "--url", "http://127.0.0.1:9/as2", "--cert", join(INCOMING, "myco.pem"), "--force"], { cwd: ACME }), "partner add --force");
  assert.equal((readYaml(yamlFile)).partners.myco.preset, "modern");
});

test("partner add refusals: a key as --cert, an existing name, a taken AS2 ID, bad URL and preset, missing flags (exit 2, config unchanged)", async () => {
  const cfgFile = join(MYCO, ".as2rc.json");
  const before = readFileSync(cfgFile, "utf8");
  await refusals([
    [["partner", "add", "beta", "--as2-id", "BETA", "--url", "http://x.example/as2", "--cert", join(MYCO, "myco.key")], { cwd: MYCO }, /--cert: .*myco\.key is a private key \(PEM\), not a certificate/, "a key file as --cert"],
    [["partner", "add", "beta", "--as2-id", "BETA", "--url", "http://x.example/as2", "--cert", join(MYCO, "myco.key"), "--json"], { cwd: MYCO }, /not a certificate/, "a key file as --cert, --json"],
    [["partner", "add", "acme", "--as2-id", "ACME2", "--url", "http://x.example/as2", "--cert", join(INCOMING, "acme.pem")], { cwd: MYCO }, /partner "acme" already exists.*--force/s, "an existing name"],
    [["partner", "add", "acme2", "--as2-id", "ACME", "--url", "http://x.example/as2", "--cert", join(INCOMING, "acme.pem")], { cwd: MYCO }, /--as2-id: partner "acme" already has the AS2 ID ACME/, "a taken AS2 ID"],
    [["partner", "add", "beta", "--as2-id", "BETA", "--url", "ftp://x.example/as2", "--cert", join(INCOMING, "acme.pem")], { cwd: MYCO }, /--url/, "bad URL"],
    [["partner", "add", "beta", "--as2-id", "BETA", "--url", "http://x.example/as2", "--cert", join(INCOMING, "acme.pem"), "--preset", "fancy"], { cwd: MYCO }, /--preset/, "bad preset"],
    [["partner", "add", "beta", "--url", "http://x.example/as2", "--cert", join(INCOMING, "acme.pem")], { cwd: MYCO }, /--as2-id/, "missing --as2-id"],
    [["partner", "add", "b/eta", "--as2-id", "BETA", "--url", "http://x.example/as2", "--cert", join(INCOMING, "acme.pem")], { cwd: MYCO }, /partner name/, "bad name"],
    [["partner", "add", "beta", "--as2-id", "BETA", "--url", "http://x.example/as2", "--cert", join(root, "nope.crt")], { cwd: MYCO }, /--cert: file not found: .*nope\.crt/, "missing file"],
    [["partner", "add", "beta", "--as2-id", "BETA", "--url", "http://x.example/as2", "--cert", join(INCOMING, "acme.pem")], { cwd: root }, /no configuration found.*as2 init/s, "no config"],
  ]);
  assert.equal(readFileSync(cfgFile, "utf8"), before, "the configuration is unchanged");
  assert.equal(existsSync(join(MYCO, "beta.crt")), false);
});

test("as2 keys show: subject, issuer, serial, fingerprints (= openssl's), validity, key usage, key size; station, partner and file", async () => {
  const s = await as2(["keys", "show"], { cwd: MYCO });
  ok(s, "keys show");
  const fp = opensslFingerprint(join(MYCO, "myco.crt"));
  assert.ok(s.stdout.includes(`SHA-256         ${fp}`), s.stdout);
  assert.match(s.stdout, /Subject +C=XX, CN=MYCO/);
  assert.match(s.stdout, /Issuer +C=XX, CN=MYCO \(self-signed\)/);
  assert.match(s.stdout, /Valid +\d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d \(109\d days left\)/);
  assert.match(s.stdout, /Key usage +digitalSignature, nonRepudiation, keyEncipherment/);
  assert.match(s.stdout, /Public key +RSA 2048 bits/);
  const serial = openssl(["x509", "-in", join(MYCO, "myco.crt"), "-noout", "-serial"]).toString().trim().split("=")[1];
  assert.match(s.stdout, new RegExp(`Serial +${serial}`));

  const p = await as2(["keys", "show", "--partner", "acme", "--json"], { cwd: MYCO });
  ok(p, "keys show --partner");
  const pc = json<any>(p).certificates[0];
  assert.equal(pc.sha256, opensslFingerprint(join(ACME, "acme.crt")));
  assert.equal(pc.subject, "C=XX, CN=ACME");
  assert.equal(pc.publicKey.bits, 2048);
  assert.ok(pc.daysLeft > 1000);

  // A file, DER, made by openssl with an extended key usage.
  openssl(["req", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout", join(INCOMING, "eku.key"), "-out", join(INCOMING, "eku.pem"), "-days", "10", "-subj", "/O=Beta Corp/CN=BETA", "-addext", "keyUsage=digitalSignature", "-addext", "extendedKeyUsage=emailProtection,clientAuth"]);
  openssl(["x509", "-in", join(INCOMING, "eku.pem"), "-outform", "DER", "-out", join(INCOMING, "eku.der")]);
  const f = await as2(["keys", "show", join(INCOMING, "eku.der"), "--json"], { cwd: root });
  ok(f, "keys show file");
  const fc = json<any>(f).certificates[0];
  assert.equal(fc.sha256, opensslFingerprint(join(INCOMING, "eku.pem")));
  assert.deepEqual(fc.keyUsage, ["digitalSignature"]);
  assert.deepEqual(fc.extendedKeyUsage, ["emailProtection", "clientAuth"]);
  assert.equal(fc.publicKey.bits, 3072);
  assert.ok(fc.notes.some((n: string) => /expires in/.test(n)), "expiry within 30 days is noted");
  assert.ok(fc.notes.some((n: string) => /keyEncipherment/.test(n)), "a key usage without keyEncipherment is noted");
  await refusals([
    [["keys", "show", "--partner", "nobody"], { cwd: MYCO }, /--partner: no partner "nobody".*acme/, "unknown partner"],
    [["keys", "show", join(root, "missing.crt")], { cwd: MYCO }, /\[file\]: file not found: .*missing\.crt/, "missing file"],
  ]);
});

test("as2 keys import: openssl PKCS#12 (alias + password, current and legacy), DER and .p7b partner certificates, a CA's answer to --csr", async () => {
  const init = await as2(["init", "--as2-id", "THIRD", "--dir", THIRD, "--csr"]);
  ok(init, "init --csr");
  assert.match(init.stderr, /certificate signing request/);
  assert.match(init.stderr, /works now with the self-signed certificate/);
  assert.match(openssl(["req", "-in", join(THIRD, "third.csr"), "-noout", "-verify", "-subject"]).toString(), /subject=CN ?= ?THIRD/);
  // The CA's answer: a certificate for the station's own key becomes the station's certificate.
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(INCOMING, "ca.key"), "-out", join(INCOMING, "ca.crt"), "-days", "30", "-subj", "/CN=Test CA"]);
  openssl(["x509", "-req", "-in", join(THIRD, "third.csr"), "-CA", join(INCOMING, "ca.crt"), "-CAkey", join(INCOMING, "ca.key"), "-set_serial", "7", "-days", "60", "-out", join(INCOMING, "third-ca.crt")]);
  const ca = await as2(["keys", "import", join(INCOMING, "third-ca.crt"), "--json"], { cwd: THIRD });
  ok(ca, "keys import of the CA-signed certificate");
  assert.equal(json<any>(ca).target, "station-certificate");
  assert.equal(readJson(join(THIRD, ".as2rc.json")).station.key.pem, "third.key");
  assert.match((await as2(["keys", "show"], { cwd: THIRD })).stdout, /Issuer +CN=Test CA/);

  // A PKCS#12 made by openssl, with an alias and a password taken from the environment.
  for (const legacy of [false, true]) {
    const name = legacy ? "legacy" : "modern";
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(INCOMING, `${name}.key`), "-out", join(INCOMING, `${name}.crt`), "-days", "365", "-subj", `/CN=THIRD ${name}`]);
    openssl(["pkcs12", "-export", ...(legacy ? ["-legacy"] : []), "-inkey", join(INCOMING, `${name}.key`), "-in", join(INCOMING, `${name}.crt`), "-name", `third-${name}`, "-passout", "pass:p12-Secret", "-out", join(INCOMING, `${name}.p12`)]);
    await refusals([
      [["keys", "import", join(INCOMING, `${name}.p12`), "--alias", `third-${name}`, "--password", "nope"], { cwd: THIRD }, /wrong password for the PKCS#12 file/, `${name} p12, wrong password`],
      [["keys", "import", join(INCOMING, `${name}.p12`), "--alias", "nobody", "--password", "p12-Secret"], { cwd: THIRD }, /no key with alias "nobody".*third-/, `${name} p12, wrong alias`],
    ]);
    const r = await as2(["keys", "import", join(INCOMING, `${name}.p12`), "--alias", `third-${name}`, "--password", "${THIRD_P12}"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } });
    ok(r, `keys import ${name} p12`);
    const cfg = readJson(join(THIRD, ".as2rc.json"));
    assert.deepEqual(cfg.station.key, { pkcs12: `${name}.p12`, password: "${THIRD_P12}", alias: `third-${name}` });
    assert.equal(cfg.station.previousKeys.length, legacy ? 2 : 1, "the replaced key stays for decryption");
    assert.equal(statSync(join(THIRD, `${name}.p12`)).mode & 0o777, 0o600);
    const shown = await as2(["keys", "show", "--json"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } });
    ok(shown, "keys show of the PKCS#12 station key");
    assert.equal(json<any>(shown).certificates[0].sha256, opensslFingerprint(join(INCOMING, `${name}.crt`)));
  }
  assert.deepEqual(readJson(join(THIRD, ".as2rc.json")).station.previousKeys[1], { pem: "third.key", certificate: "third.1.crt" });

  // Partner certificates: DER and certs-only PKCS#7, each copied beside the config as PEM.
  ok(await as2(["partner", "add", "acme", "--as2-id", "ACME", "--url", "http://127.0.0.1:9/as2", "--cert", join(INCOMING, "acme.cer")], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } }), "partner add from DER");
  assert.match(readFileSync(join(THIRD, "acme.crt"), "utf8"), /^-----BEGIN CERTIFICATE-----/);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(INCOMING, "acme2027.key"), "-out", join(INCOMING, "acme2027.pem"), "-days", "400", "-subj", "/CN=ACME 2027"]);
  openssl(["x509", "-in", join(INCOMING, "acme2027.pem"), "-outform", "DER", "-out", join(INCOMING, "acme2027.der")]);
  const der = await as2(["keys", "import", join(INCOMING, "acme2027.der"), "--partner", "acme", "--json"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } });
  ok(der, "keys import DER --partner");
  assert.equal(json<any>(der).target, "partner");
  assert.equal(readJson(join(THIRD, ".as2rc.json")).partners.acme.certificate, "acme.1.crt");
  assert.ok(existsSync(join(THIRD, "acme.crt")), "the older certificate file is kept");
  const p = await as2(["keys", "show", "--partner", "acme", "--json"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } });
  assert.equal(json<any>(p).certificates[0].sha256, opensslFingerprint(join(INCOMING, "acme2027.pem")));
  openssl(["crl2pkcs7", "-nocrl", "-certfile", join(INCOMING, "eku.pem"), "-outform", "DER", "-out", join(INCOMING, "beta.p7b")]);
  ok(await as2(["partner", "add", "beta", "--as2-id", "BETA", "--url", "https://beta.example/as2", "--cert", join(INCOMING, "beta.p7b")], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } }), "partner add from .p7b");
  const b = await as2(["keys", "show", "--partner", "beta", "--json"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } });
  assert.equal(json<any>(b).certificates[0].sha256, opensslFingerprint(join(INCOMING, "eku.pem")));

  // Refusals in plain words.
  writeFileSync(join(INCOMING, "junk.crt"), "hello, I am not a certificate\n");
  await refusals([
    [["keys", "import", join(INCOMING, "acme2027.pem")], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } }, /does not belong to the station's key.*--partner/s, "someone else's certificate without --partner"],
    [["keys", "import", join(INCOMING, "modern.p12"), "--partner", "acme", "--password", "p12-Secret"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } }, /PKCS#12 file.*not a certificate/, "a PKCS#12 as a partner's certificate"],
    [["keys", "import", join(INCOMING, "acme2027.key")], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } }, /private key without its certificate/, "a key alone"],
    [["keys", "import", join(INCOMING, "acme2027.der"), "--partner", "nobody"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } }, /--partner: no partner "nobody".*as2 partner add/s, "unknown partner"],
    [["keys", "import", join(INCOMING, "junk.crt"), "--partner", "acme"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } }, /junk\.crt is not a certificate: it is damaged, or in none of the formats as2kit reads/, "junk"],
  ]);
});

test("as2 keys new: new files under free names; the configuration changes only with --use", async () => {
  const cfgFile = join(MYCO, ".as2rc.json");
  const before = readFileSync(cfgFile, "utf8");
  const n = await as2(["keys", "new", "--json"], { cwd: MYCO });
  ok(n, "keys new");
  const made = json<any>(n);
  assert.equal(made.used, false);
  assert.notEqual(made.keyFile, join(MYCO, "myco.key"), "the station's key is never overwritten");
  assert.equal(statSync(made.keyFile).mode & 0o777, 0o600);
  assert.match(made.certificate.subject, /CN=MYCO/);
  assert.equal(readFileSync(cfgFile, "utf8"), before);
  const out = join(root, "keys-out");
  const u = await as2(["keys", "new", "--as2-id", "THIRD", "--out-dir", out, "--use", "--json"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } });
  ok(u, "keys new --use");
  const cfg = readJson(join(THIRD, ".as2rc.json"));
  assert.deepEqual(cfg.station.key, { pem: join(out, "third.key"), certificate: join(out, "third.crt") });
  assert.equal(cfg.station.previousKeys[0].pkcs12, "legacy.p12");
  const show = await as2(["keys", "show", "--json"], { cwd: THIRD, env: { THIRD_P12: "p12-Secret" } });
  assert.equal(json<any>(show).certificates[0].sha256, opensslFingerprint(join(out, "third.crt")));
});

test("the two stations made by as2 init exchange a signed + encrypted message with a signed MDN", async () => {
  const server = await startAs2Receive(join(ACME, ".as2rc.yaml"), ["--port", "0", "--host", "127.0.0.1"]);
  ok(await as2(["partner", "add", "acme", "--as2-id", "ACME", "--url", server.url, "--cert", join(INCOMING, "acme.pem"), "--force"], { cwd: MYCO }), "partner add with ACME's URL");
  const payload = Buffer.from("ISA*00*          *00*          *ZZ*MYCO           *ZZ*ACME           ~\n".repeat(300));
  writeFileSync(join(root, "order-1.edi"), payload);
  const r = await as2(["send", "--partner", "acme", "--json", join(root, "order-1.edi")], { cwd: MYCO });
  ok(r, "send");
  const job = json<any>(r);
  assert.equal(job.state, "SUCCESS");
  const msg = job.messages[0];
  assert.equal(msg.signed, true);
  assert.equal(msg.encrypted, true);
  assert.equal(msg.mdnStatus, "Received");
  assert.equal(msg.mdnMessage.signed, true);
  assert.equal(msg.mdnMessage.mdnError, false);
  const ev = await server.waitFor((e) => e.event === "message" && e.messageId === msg.as2MessageId);
  assert.deepEqual(readFileSync(String(ev.file)), payload);
});
