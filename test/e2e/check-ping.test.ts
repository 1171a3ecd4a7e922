/**
 * `as2 check` and `as2 ping` (issue 16) as users run them, with real `as2` processes and real
 * peers on 127.0.0.1: `as2 receive` over HTTP, Node HTTPS servers with an openssl-made CA
 * (makePki), one of them requiring a client certificate, a server asking for basic auth, and
 * tinyproxy as an HTTP proxy (forward and CONNECT). Certificates are generated at test time.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type * as net from "node:net";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { createSelfSignedCertificate } from "../../src/core/index.js";
import { loadConfig } from "../../src/config/load.js";
import { expiryWarnings } from "../../src/jobs/cert-expiry.js";
import { onCleanup, openssl, opensslIdentity, tempDir } from "../helpers/tools.js";
import { freePort, makePki, PROXY_USER, startTinyproxy, type TestPki } from "../helpers/net.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";

const dir = tempDir();
const DAY = 86_400_000;

interface Step { name: string; verdict: string; ms: number; detail: string }
interface PingDoc { ok: boolean; partner: string; url: string; steps: Step[] }

function write(name: string, value: unknown): string {
  const f = join(dir, name);
  writeFileSync(f, typeof value === "string" ? value : JSON.stringify(value, null, 2));
  return f;
}

const station = { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } };

/** A configuration with one partner "p" (no certificate needed: unencrypted, unsigned MDNs). */
function pingConfig(name: string, partner: Record<string, unknown>): string {
  return write(`${name}.json`, {
    dataDir: "./myco-data", station,
    partners: { p: { as2Id: "P", encrypt: false, mdn: { request: "unsigned" }, ...partner }, other: { as2Id: "O", url: "http://127.0.0.1:9/as2", encrypt: false, mdn: { request: "none" } } },
  });
}

async function ping(config: string, extra: string[] = [], env: Record<string, string> = {}): Promise<{ status: number | null; doc: PingDoc; stderr: string; step: (n: string) => Step }> {
  const r = await as2(["ping", "--config", config, "--partner", "p", "--json", "--timeout", "5", ...extra], { env });
  let doc: PingDoc;
  try {
    doc = JSON.parse(r.stdout) as PingDoc;
  } catch {
    throw new Error(`not JSON (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
  return { status: r.status, doc, stderr: r.stderr, step: (n) => doc.steps.find((s) => s.name === n)! };
}

const verdicts = (doc: PingDoc) => Object.fromEntries(doc.steps.map((s) => [s.name, s.verdict]));

async function listen(server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  server.on("secureConnection", (s: net.Socket) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  return (server.address() as net.AddressInfo).port;
}

/** Answers HEAD (and anything else) with 200, or 401 without the right basic credentials. */
function handler(auth?: string) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume();
    if (auth && req.headers.authorization !== `Basic ${Buffer.from(auth).toString("base64")}`) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="as2"' });
      res.end();
      return;
    }
    res.writeHead(200, { "Content-Length": "0", Server: "test-as2" });
    res.end();
  };
}

let pki: TestPki;
let receiver: As2Server;
let tlsPort = 0;
let mtlsPort = 0;
let authPort = 0;
let tiny = 0;

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  opensslIdentity("beta", dir);
  pki = makePki(dir);
  // A server certificate from the same CA, valid for a year (makePki's are valid for two days,
  // which the TLS step rightly warns about; the client-certificate server keeps that one).
  const p = (n: string) => join(dir, n);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("server-long.key"), "-out", p("server-long.csr"), "-subj", "/CN=server-long"]);
  writeFileSync(p("server-long.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  openssl(["x509", "-req", "-in", p("server-long.csr"), "-CA", pki.caCert, "-CAkey", p("test-ca.key"), "-CAcreateserial", "-out", p("server-long.crt"), "-days", "365", "-extfile", p("server-long.ext")]);
  const [srv, tp] = await Promise.all([
    startAs2Receive(write("acme.json", {
      dataDir: "./acme-data",
      station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
      receive: { host: "127.0.0.1", port: 0, path: "/as2" },
      partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt" } },
    })),
    startTinyproxy(dir),
  ]);
  receiver = srv;
  tiny = tp;
  tlsPort = await listen(https.createServer({ key: readFileSync(p("server-long.key")), cert: readFileSync(p("server-long.crt")) }, handler()));
  mtlsPort = await listen(https.createServer({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: [readFileSync(pki.caCert)], requestCert: true, rejectUnauthorized: true }, handler()));
  authPort = await listen(http.createServer(handler("myco:s3cret")));
});

describe("as2 ping", { concurrency: true }, () => {
  test("against a real `as2 receive` over HTTP (by host name): every step passes, HEAD answers 200", async () => {
    const url = receiver.url.replace("127.0.0.1", "localhost");
    const r = await ping(pingConfig("recv", { url }));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.doc.ok, true);
    assert.equal(r.doc.url, url);
    assert.deepEqual(verdicts(r.doc), { dns: "pass", tcp: "pass", proxy: "skip", tls: "skip", http: "pass" });
    assert.match(r.step("dns").detail, /^localhost -> .*127\.0\.0\.1/);
    assert.match(r.step("http").detail, /^HEAD \/as2 -> 200 OK/);
    assert.ok(r.doc.steps.every((s) => Number.isInteger(s.ms) && s.ms >= 0));
    // Each step is printed on stderr with its verdict, time and detail.
    assert.match(r.stderr, /^PASS  tcp\s+\d+ ms  connected to localhost:\d+/m);
    assert.match(r.stderr, /^SKIP  tls\s+0 ms  http:\/\/ URL: no TLS/m);
  });

  test("without --json: the steps on stderr, one result line on stdout", async () => {
    const r = await as2(["ping", "--config", pingConfig("recv-text", { url: receiver.url }), "--partner", "p"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ping p: OK in \d+ ms\n$/);
    assert.match(r.stderr, /^PASS  http\s+\d+ ms  HEAD \/as2 -> 200 OK$/m);
  });

  test("a closed port: TCP fails (exit 1), the later steps are not reached", async () => {
    const port = await freePort();
    const r = await ping(pingConfig("closed", { url: `http://127.0.0.1:${port}/as2` }));
    assert.equal(r.status, 1);
    assert.equal(r.doc.ok, false);
    assert.deepEqual(verdicts(r.doc), { dns: "skip", tcp: "fail", proxy: "skip", tls: "skip", http: "skip" });
    assert.match(r.step("tcp").detail, new RegExp(`127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
    for (const n of ["proxy", "tls", "http"]) assert.equal(r.step(n).detail, "not reached");
  });

  test("HTTPS, the server's CA trusted through tls.ca: the chain is verified and every step passes", async () => {
    const r = await ping(pingConfig("tls-ok", { url: `https://localhost:${tlsPort}/as2`, tls: { ca: [pki.caCert] } }));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(verdicts(r.doc), { dns: "pass", tcp: "pass", proxy: "skip", tls: "pass", http: "pass" });
    const tls = r.step("tls").detail;
    assert.match(tls, /^TLSv1\.[23] /);
    assert.match(tls, /server CN=server-long <- CN=test-ca/);
    assert.match(tls, /chain verified against partners\.p\.tls\.ca \(1 file\)/);
    assert.match(tls, /no client certificate asked for/);
  });

  test("HTTPS with a CA that did not sign the server's certificate: TLS fails, HTTP is not reached", async () => {
    const r = await ping(pingConfig("tls-untrusted", { url: `https://127.0.0.1:${tlsPort}/as2`, tls: { ca: [pki.otherCaCert] } }));
    assert.equal(r.status, 1);
    assert.deepEqual(verdicts(r.doc), { dns: "skip", tcp: "pass", proxy: "skip", tls: "fail", http: "skip" });
    assert.match(r.step("tls").detail, /certificate|issuer/i);
    assert.match(r.step("tls").detail, /tls\.ca/);
  });

  test("a server requiring a client certificate: with ours it is sent and accepted (and the server certificate's near expiry is a warning)", async () => {
    const r = await ping(pingConfig("mtls-ok", { url: `https://127.0.0.1:${mtlsPort}/as2`, tls: { ca: [pki.caCert], clientCertificate: pki.clientCert, clientKey: pki.clientKey } }));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.doc.ok, true);
    assert.equal(r.step("tls").verdict, "warn");
    assert.match(r.step("tls").detail, /the server's certificate expires in [01] days?/);
    assert.match(r.step("tls").detail, /client certificate CN=client sent and accepted/);
    assert.equal(r.step("http").verdict, "pass");
  });

  test("a server requiring a client certificate, none configured or one it does not trust: TLS fails and says why", async () => {
    const url = `https://127.0.0.1:${mtlsPort}/as2`;
    const [none, untrusted] = await Promise.all([
      ping(pingConfig("mtls-none", { url, tls: { ca: [pki.caCert] } })),
      ping(pingConfig("mtls-untrusted", { url, tls: { ca: [pki.caCert], clientCertificate: "beta.crt", clientKey: "beta.key" } })),
    ]);
    assert.equal(none.status, 1);
    assert.equal(none.step("tls").verdict, "fail");
    assert.match(none.step("tls").detail, /requires a client certificate .*none is configured: set partners\.p\.tls\.clientCertificate/);
    assert.equal(none.step("http").detail, "not reached");
    assert.equal(untrusted.status, 1);
    assert.equal(untrusted.step("tls").verdict, "fail");
    assert.match(untrusted.step("tls").detail, /refused our client certificate .*CN=beta/);
    assert.equal(untrusted.step("http").detail, "not reached");
  });

  test("basic auth: 401 without credentials or with wrong ones is an HTTP failure with the status; the right ones pass", async () => {
    const url = `http://127.0.0.1:${authPort}/as2`;
    const [none, wrong, right] = await Promise.all([
      ping(pingConfig("auth-none", { url })),
      ping(pingConfig("auth-wrong", { url, username: "myco", password: "nope" })),
      ping(pingConfig("auth-right", { url, username: "myco", password: "s3cret" })),
    ]);
    assert.equal(none.status, 1);
    assert.equal(none.step("http").verdict, "fail");
    assert.match(none.step("http").detail, /HEAD \/as2 -> 401 Unauthorized: the partner asks for credentials \(Basic realm="as2"\); none are configured \(partners\.p\.username\/password\)/);
    assert.equal(wrong.status, 1);
    assert.match(wrong.step("http").detail, /401 Unauthorized: the partner refused our credentials/);
    assert.doesNotMatch(wrong.stderr + JSON.stringify(wrong.doc), /nope/);
    assert.equal(right.status, 0, right.stderr);
    assert.equal(right.step("http").verdict, "pass");
  });

  test("through tinyproxy: plain HTTP to `as2 receive` as a forward proxy, HTTPS with CONNECT; wrong proxy credentials fail at the proxy step", async () => {
    const proxy = { type: "http", host: "127.0.0.1", port: tiny, ...PROXY_USER };
    const [plain, tls, bad] = await Promise.all([
      ping(pingConfig("proxy-http", { url: receiver.url, proxy })),
      ping(pingConfig("proxy-https", { url: `https://localhost:${tlsPort}/as2`, tls: { ca: [pki.caCert] }, proxy })),
      ping(pingConfig("proxy-bad", { url: `https://localhost:${tlsPort}/as2`, tls: { ca: [pki.caCert] }, proxy: { ...proxy, password: "wrong" } })),
    ]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.deepEqual(verdicts(plain.doc), { dns: "skip", tcp: "pass", proxy: "pass", tls: "skip", http: "pass" });
    assert.match(plain.step("tcp").detail, new RegExp(`connected to the http proxy 127\\.0\\.0\\.1:${tiny}`));
    assert.match(plain.step("proxy").detail, /absolute-URI/);
    assert.match(plain.step("http").detail, /HEAD \/as2 -> 200/);
    assert.equal(tls.status, 0, tls.stderr);
    assert.deepEqual(verdicts(tls.doc), { dns: "skip", tcp: "pass", proxy: "pass", tls: "pass", http: "pass" });
    assert.match(tls.step("proxy").detail, new RegExp(`accepted CONNECT localhost:${tlsPort} as proxyuser`));
    assert.match(tls.step("dns").detail, /the proxy resolves the partner's host localhost/);
    assert.equal(bad.status, 1);
    assert.equal(bad.step("proxy").verdict, "fail");
    assert.match(bad.step("proxy").detail, /40[17]/);
    assert.match(bad.step("proxy").detail, /proxy\.password/);
    assert.equal(bad.step("tls").detail, "not reached");
  });

  test("HTTP_PROXY in the environment, no proxy configured: used as `as2 send` uses it (not for loopback), its password never shown", async () => {
    const port = new URL(receiver.url).port;
    const env = { HTTP_PROXY: `http://${PROXY_USER.username}:${PROXY_USER.password}@127.0.0.1:${tiny}`, NO_PROXY: "" };
    const [viaEnv, loopback] = await Promise.all([
      // 0.0.0.0 reaches this host without being a loopback name, which env-proxy.ts never proxies.
      ping(pingConfig("env-proxy", { url: `http://0.0.0.0:${port}/as2` }), [], env),
      ping(pingConfig("env-proxy-loopback", { url: receiver.url }), [], env),
    ]);
    assert.equal(viaEnv.status, 0, viaEnv.stderr);
    assert.deepEqual(verdicts(viaEnv.doc), { dns: "skip", tcp: "pass", proxy: "pass", tls: "skip", http: "pass" });
    assert.match(viaEnv.step("tcp").detail, new RegExp(`connected to the http proxy 127\\.0\\.0\\.1:${tiny} \\(from HTTP_PROXY\\)`));
    assert.match(viaEnv.step("http").detail, /HEAD \/as2 -> 200/);
    assert.equal(loopback.status, 0, loopback.stderr);
    assert.equal(loopback.step("proxy").verdict, "skip");
    assert.match(loopback.step("proxy").detail, /no proxy: direct connection; HTTP_PROXY is set, but loopback addresses never go through an environment proxy/);
    for (const r of [viaEnv, loopback]) assert.doesNotMatch(r.stderr + JSON.stringify(r.doc), new RegExp(PROXY_USER.password));
  });

  test("usage: an unknown partner names the configured ones (exit 2); a bad --timeout (exit 2)", async () => {
    const config = pingConfig("usage", { url: receiver.url });
    const unknown = await as2(["ping", "--config", config, "--partner", "nope"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no partner "nope".*configured: p, other/);
    const timeout = await as2(["ping", "--config", config, "--partner", "p", "--timeout", "soon"]);
    assert.equal(timeout.status, 2);
    assert.match(timeout.stderr, /--timeout/);
  });
});

describe("as2 check", { concurrency: true }, () => {
  function checkConfig(name: string, over: { station?: unknown; partners?: Record<string, unknown>; receive?: unknown }): string {
    return write(`check-${name}.json`, {
      dataDir: "./check-data",
      station: over.station ?? station,
      ...(over.receive ? { receive: over.receive } : {}),
      partners: over.partners ?? { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "acme.crt" } },
    });
  }

  async function check(config: string): Promise<{ status: number | null; doc: { ok: boolean; problems: Array<{ path: string; message: string }>; warnings: Array<{ path: string; message: string }>; certificates: Array<{ path: string; subject: string; notAfter: string; daysLeft: number }> }; stderr: string }> {
    const r = await as2(["check", "--config", config, "--json"]);
    try {
      return { status: r.status, doc: JSON.parse(r.stdout), stderr: r.stderr };
    } catch {
      throw new Error(`not JSON (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
    }
  }

  test("a good configuration: exit 0, every key and certificate listed (station, partner, TLS files)", async () => {
    const config = checkConfig("good", {
      receive: { host: "127.0.0.1", port: 0, tls: { key: pki.serverKey, certificate: pki.serverCert, ca: [pki.caCert] } },
      partners: { acme: { as2Id: "ACME", url: "https://127.0.0.1:9/as2", certificate: "acme.crt", tls: { ca: [pki.caCert], clientCertificate: pki.clientCert, clientKey: pki.clientKey } } },
    });
    const r = await check(config);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.doc.ok, true);
    assert.deepEqual(r.doc.problems, []);
    assert.deepEqual(r.doc.certificates.map((c) => c.path).sort(), [
      "partners.acme.certificate", "partners.acme.tls.ca[0]", "partners.acme.tls.clientCertificate", "receive.tls.ca[0]", "receive.tls.certificate", "station.key.certificate",
    ]);
    const mine = r.doc.certificates.find((c) => c.path === "station.key.certificate")!;
    assert.match(mine.subject, /CN=myco/);
    assert.ok(mine.daysLeft >= 363 && mine.daysLeft <= 365, String(mine.daysLeft)); // opensslIdentity: 365 days
    // Without --json: a summary line on stdout.
    const text = await as2(["check", "--config", config]);
    assert.equal(text.status, 0);
    assert.match(text.stdout, /^check: OK: 0 problems, \d+ warnings? \(3 keys and 6 certificates loaded; .*check-good\.json\)\n$/);
  });

  test("a key that does not belong to its certificate: exit 1, the key path named", async () => {
    const r = await check(checkConfig("mismatch", { station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "beta.crt" } } }));
    assert.equal(r.status, 1);
    assert.equal(r.doc.ok, false);
    assert.equal(r.doc.problems.length, 1);
    assert.equal(r.doc.problems[0]!.path, "station.key.certificate");
    assert.match(r.doc.problems[0]!.message, /beta\.crt does not belong to the key in .*myco\.key/);
    assert.match(r.stderr, /^problem: station\.key\.certificate: .*beta\.crt does not belong/m);
  });

  test("a partner certificate expiring in 10 days: a warning with its path, exit 0", async () => {
    const now = new Date();
    const soon = await createSelfSignedCertificate({ commonName: "soon", notBefore: new Date(now.getTime() - DAY), notAfter: new Date(now.getTime() + 10 * DAY) });
    write("soon.crt", soon.certificatePem);
    const config = checkConfig("soon", { partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "soon.crt" } } });
    const r = await check(config);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.doc.ok, true);
    const w = r.doc.warnings.find((x) => x.path === "partners.acme.certificate");
    assert.ok(w, JSON.stringify(r.doc.warnings));
    assert.match(w.message, /CN=soon expires in (9|10) days/);
    assert.match(r.stderr, /^warning: partners\.acme\.certificate: certificate .*CN=soon expires in (9|10) days/m);
    const c = r.doc.certificates.find((x) => x.path === "partners.acme.certificate")!;
    assert.ok(c.daysLeft === 9 || c.daysLeft === 10, String(c.daysLeft));
    assert.equal(c.notAfter.slice(0, 10), new Date(now.getTime() + 10 * DAY).toISOString().slice(0, 10));

    // The same warning for `as2 send` and `as2 status` (expiryWarnings), once each.
    const { config: loaded } = await loadConfig({ configPath: config });
    const all = await expiryWarnings(loaded, now);
    assert.equal(all.filter((x) => x.startsWith("partners.acme.certificate:")).length, 1);
    assert.deepEqual(await expiryWarnings(loaded, now, { withinDays: 5 }), []);
    // Expired: reported unless the caller already says so (send: includeInvalid false).
    const later = new Date(now.getTime() + 11 * DAY);
    assert.match((await expiryWarnings(loaded, later, { partners: ["acme"] })).join("\n"), /partners\.acme\.certificate: certificate .*CN=soon expired on/);
    assert.deepEqual((await expiryWarnings(loaded, later, { partners: ["acme"], includeInvalid: false })).filter((x) => x.includes("CN=soon")), []);
  });

  test("missing files and a key given as the certificate: every problem at once, exit 1", async () => {
    const r = await check(checkConfig("missing", {
      station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.key" } },
      partners: {
        acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "no-such.crt" },
        beta: { as2Id: "BETA", url: "https://127.0.0.1:9/as2", certificate: "beta.crt", tls: { ca: ["no-such-ca.crt"] } },
      },
    }));
    assert.equal(r.status, 1);
    const byPath = Object.fromEntries(r.doc.problems.map((p) => [p.path, p.message]));
    assert.match(byPath["partners.acme.certificate"]!, /file not found: .*no-such\.crt/);
    assert.match(byPath["partners.beta.tls.ca[0]"]!, /file not found: .*no-such-ca\.crt/);
    assert.match(byPath["station.key.certificate"]!, /myco\.key is a private key \(PEM\), not a certificate/);
    assert.match(r.stderr, /^problem: partners\.acme\.certificate: file not found/m);
  });

  test("a configuration the schema refuses is a configuration error (exit 2), with its key paths", async () => {
    const r = await as2(["check", "--config", write("check-invalid.json", { station: { as2Id: "MYCO", key: { pem: "myco.key" } }, partners: {} })]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /station\.key/);
    const flag = await as2(["check", "--bogus"]);
    assert.equal(flag.status, 2);
  });
});
