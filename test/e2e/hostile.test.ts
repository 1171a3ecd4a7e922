/**
 * Hostile requests to `as2 receive` (issue 12, the hostile-input spec): several hundred generated
 * requests, each answered exactly as the spec says - an HTTP status, or a signed MDN with the
 * right disposition modifier. The valid seed messages are built once (test/helpers/hostile-cases.ts:
 * MIME, signatures and encryption made byte by byte, so every header and every BER octet is the
 * test's choice) and the mutations derived from them in memory; requests go over raw sockets so
 * that bad framing can be sent too.
 *
 * After each group a known-good message must still get a positive MDN; at the end nothing may
 * have been written outside the data folders (the receivers' dataDirs and inboxes live in one
 * dedicated temp folder, listed before and after), no inbox may hold a file for a refused
 * message, and no job record may be left ONGOING.
 *
 * Three receivers, where the configuration must differ: the main one; one with tiny connection
 * limits (maxConnections 5, headersTimeout 1 s, requestTimeout 4 s, maxHeaderCount 40) for the
 * slow-client group; and one with headersTimeout 1 s beside the default requestTimeout.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { basename, dirname, join, relative, sep } from "node:path";
import { before, test, type TestContext } from "node:test";
import { parseMdn, verifyMdn, type ContentCipher, type ParsedMdn } from "../../src/core/index.js";
import { startAs2Receive, type As2Server } from "../helpers/as2-process.js";
import * as H from "../helpers/hostile-cases.js";
import { onCleanup, opensslIdentity, tempDir, type TestIdentity } from "../helpers/tools.js";

// ------------------------------------------------------------------------------------ setup

/** Where the receivers may write: only under `parent` (listed before and after). */
const parent = tempDir("as2kit-hostile-data-");
const keysDir = tempDir("as2kit-hostile-keys-");
const MAIN_DATA = join(parent, "data");
const SLOW_DATA = join(parent, "data-slow");
const LAZY_DATA = join(parent, "data-lazy");
const inboxOf = (data: string, partner: string) => join(data, "inbox", partner);

const MAX_INFLATED = 1024 * 1024;
const MAX_MESSAGE = 4 * 1024 * 1024;
const MAIN_HEADER_COUNT = 1500; // AS2-From repeated 1000 times must reach the handler (400), not 431
const SLOW = { maxConnections: 5, headersTimeout: 1, maxHeaderCount: 40, requestTimeout: 4 };
const CONCURRENCY = 6;

const PAYLOAD = Buffer.from("UNB+UNOA:2+MYCO+ACME+261122:1200+1'UNH+1+ORDERS:D:96A:UN'BGM+220+HOSTILE+9'\r\n".repeat(900));

let ACME: TestIdentity; // this station
let MYCO: TestIdentity; // the partner
let OTHER: TestIdentity; // a stranger
let TWIN: TestIdentity; // a stranger whose certificate has MYCO's subject

interface Srv { name: string; server: As2Server; port: number; data: string }
let main: Srv;
let slow: Srv;
/** headersTimeout 1 s with the default requestTimeout (600 s): its trickling clients start in before(). */
let lazy: Srv;
let lazyClients: Array<Promise<H.RawResponse>> = [];

/** A small HTTP server on 127.0.0.1 that records what is POSTed to it (async MDN targets). */
interface Recorder { port: number; hits: Array<{ path: string; headers: Record<string, string>; body: Buffer }> }
let allowedMdn: Recorder;
let otherMdn: Recorder;

async function startRecorder(redirectTo?: () => string): Promise<Recorder> {
  const rec: Recorder = { port: 0, hits: [] };
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
      rec.hits.push({ path: req.url ?? "", headers, body: Buffer.concat(chunks) });
      if (redirectTo && req.url?.startsWith("/redirect")) {
        res.writeHead(307, { Location: redirectTo(), "Content-Length": "0" });
        return res.end();
      }
      res.writeHead(200, { "Content-Length": "0" });
      res.end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  rec.port = (srv.address() as AddressInfo).port;
  onCleanup(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  return rec;
}

function partners(allowedPort: number): Record<string, unknown> {
  const url = `http://127.0.0.1:${allowedPort}/as2`;
  const cert = MYCO.certFile;
  return {
    myco: { as2Id: "MYCO", url, certificate: cert },
    strict: { as2Id: "STRICT", url, certificate: cert, inbound: { requireSigned: true } },
    sealed: { as2Id: "SEALED", url, certificate: cert, inbound: { requireEncrypted: true } },
  };
}

async function startServer(name: string, data: string, receive: Record<string, unknown>): Promise<Srv> {
  const config = join(keysDir, `${name}.json`);
  writeFileSync(config, JSON.stringify({
    dataDir: data,
    station: { as2Id: "ACME", key: { pem: ACME.keyFile, certificate: ACME.certFile } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", minFreeBytes: 0, ...receive },
    partners: partners(allowedMdn.port),
  }, null, 2));
  const server = await startAs2Receive(config);
  return { name, server, port: Number(new URL(server.url).port), data };
}

/**
 * Every path under `dir` (relative), folders with a trailing separator, symlinks reported as
 * such; with `stats`, files carry their size and mtime (so a changed file shows too).
 */
function listTree(dir: string, stats = false): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return; // removed meanwhile (the receiver keeps writing while we look)
    }
    for (const name of names) {
      const p = join(d, name);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue; // a temp file renamed or removed meanwhile
      }
      const rel = relative(dir, p);
      if (st.isSymbolicLink()) out.push(`${rel} -> symlink`);
      else if (st.isDirectory()) { out.push(rel + sep); walk(p); }
      else out.push(stats ? `${rel} ${st.size} ${st.mtimeMs}` : rel);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}
let listingBefore: string[] = [];

before(async () => {
  ACME = opensslIdentity("acme", keysDir);
  MYCO = opensslIdentity("myco", keysDir);
  OTHER = opensslIdentity("other", keysDir);
  TWIN = opensslIdentity("myco", tempDir("as2kit-hostile-twin-"));
  // Decoys beside the data folders: a traversal that got out would create or change files here.
  mkdirSync(join(parent, "etc"));
  writeFileSync(join(parent, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n");
  writeFileSync(join(parent, "canary.edi"), "canary\n");
  listingBefore = listTree(parent, true);
  otherMdn = await startRecorder();
  allowedMdn = await startRecorder(() => `http://127.0.0.1:${otherMdn.port}/redirected`);
  [main, slow, lazy] = await Promise.all([
    startServer("main", MAIN_DATA, { maxMessageBytes: MAX_MESSAGE, maxInflatedBytes: MAX_INFLATED, maxHeaderCount: MAIN_HEADER_COUNT, requestTimeout: 30 }),
    startServer("slow", SLOW_DATA, { maxMessageBytes: MAX_MESSAGE, maxInflatedBytes: MAX_INFLATED, ...SLOW }),
    startServer("lazy", LAZY_DATA, { headersTimeout: SLOW.headersTimeout }),
  ]);
  // Started now, judged in the slow-clients group (so their wait overlaps the other groups).
  lazyClients = [
    H.rawRequest({ port: lazy.port, head: Buffer.from("POST /as2 HTTP/1.1\r\nHost: x\r\n"), body: [{ delayMs: 45_000 }], timeoutMs: 45_000 }),
    H.rawRequest({ port: lazy.port, head: Buffer.alloc(0), body: [{ delayMs: 45_000 }], timeoutMs: 45_000 }),
  ];
  await buildSeeds();
});

// ------------------------------------------------------------------------------------ messages

const signer = (id: TestIdentity): H.Signer => ({ key: id.key, certificate: id.certificate });

function payloadEntity(filename = "seed.edi", body: Buffer = PAYLOAD, extra: Array<string | Buffer> = []): Buffer {
  return H.entity(["Content-Type: application/edifact", `Content-Disposition: attachment; filename="${filename}"`, ...extra], body);
}

interface Msg { contentType: string; body: Buffer; extra?: H.HeaderList }

function signedMsg(part1: Buffer, by: TestIdentity = MYCO, o: H.SignOptions = {}): Msg {
  const s = H.signEntity(part1, signer(by), o);
  return { contentType: s.contentType, body: s.body };
}

async function encryptedMsg(inner: Buffer, recipients = [ACME.certificate], cipher: ContentCipher = "aes256-cbc"): Promise<Msg> {
  return { contentType: cipher.endsWith("gcm") ? H.AUTH_ENVELOPED_TYPE : H.ENVELOPED_TYPE, body: await H.encryptBytes(inner, recipients, cipher) };
}

/** payload -> multipart/signed (MYCO) -> EnvelopedData (for ACME). */
async function signedEncrypted(part1: Buffer, o: { by?: TestIdentity; recipients?: TestIdentity["certificate"][]; cipher?: ContentCipher; sign?: H.SignOptions } = {}): Promise<Msg> {
  const s = H.signEntity(part1, signer(o.by ?? MYCO), o.sign ?? {});
  return encryptedMsg(H.signedAsEntity(s), o.recipients ?? [ACME.certificate], o.cipher ?? "aes256-cbc");
}

/** The DER SignedData of a signed message whose signature part is binary. */
function signatureDer(m: Msg): Buffer {
  const start = m.body.indexOf("\r\n\r\n", m.body.indexOf("application/pkcs7-signature")) + 4;
  const der = m.body.subarray(start);
  return Buffer.from(der.subarray(0, H.parseBer(der).end));
}

/** The seeds every mutation starts from. */
let seedCbc: Msg; // signed + aes256-cbc
let seedGcm: Msg; // signed + aes256-gcm
let seedSigned: Msg; // signed only, signature part in base64
let seedSignedDer: Msg; // signed only, signature part as raw DER (binary)
let seedSignedPart1: Buffer;
let cbcTree: H.BerNode;

async function buildSeeds(): Promise<void> {
  seedSignedPart1 = payloadEntity("seed.edi");
  seedCbc = await signedEncrypted(seedSignedPart1);
  seedGcm = await signedEncrypted(seedSignedPart1, { cipher: "aes256-gcm" });
  seedSigned = signedMsg(seedSignedPart1);
  seedSignedDer = signedMsg(seedSignedPart1, MYCO, { signatureCte: "binary" });
  cbcTree = H.parseBer(seedCbc.body);
}

// ------------------------------------------------------------------------------------ requests

const DNO_SIGNED = "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256";

function as2Headers(srv: Srv, id: string, contentType: string, length: number | "chunked" | undefined, extra: H.HeaderList = []): H.HeaderList {
  const list: H.HeaderList = [
    ["Host", `127.0.0.1:${srv.port}`], ["Connection", "close"], ["AS2-Version", "1.2"], ["MIME-Version", "1.0"],
    ["AS2-From", "MYCO"], ["AS2-To", "ACME"], ["Message-ID", id], ["Content-Type", contentType],
    ["Disposition-Notification-To", "edi@myco.example"], ["Disposition-Notification-Options", DNO_SIGNED],
  ];
  if (length === "chunked") list.push(["Transfer-Encoding", "chunked"]);
  else if (length !== undefined) list.push(["Content-Length", String(length)]);
  let out = list;
  for (const [n, v] of extra) out = H.setHeader(out, n, v);
  return out;
}

interface Req {
  headers: H.HeaderList;
  body?: Buffer;
  /** Instead of body: pieces with pauses. */
  pieces?: H.Piece[];
  /** Replaces the whole head (request line included). */
  head?: Buffer;
  method?: string;
  path?: string;
  after?: "wait" | "end" | "destroy";
  destroyDelayMs?: number;
  timeoutMs?: number;
}

/** The message as a request: headers (with overrides) and body. */
function req(srv: Srv, id: string, m: Msg, extra: H.HeaderList = []): Req {
  return { headers: as2Headers(srv, id, m.contentType, m.body.length, [...(m.extra ?? []), ...extra]), body: m.body };
}

function send(srv: Srv, r: Req): Promise<H.RawResponse> {
  return H.rawRequest({
    port: srv.port,
    head: r.head ?? H.requestHead(r.method ?? "POST", r.path ?? "/as2", r.headers),
    body: r.pieces ?? (r.body ? [r.body] : []),
    after: r.after, destroyDelayMs: r.destroyDelayMs, timeoutMs: r.timeoutMs ?? 30_000,
  });
}

// ------------------------------------------------------------------------------------ expectations

type Disp = "processed" | "decryption-failed" | "authentication-failed" | "integrity-check-failed" | "decompression-failed" | "insufficient-message-security" | "unexpected-processing-error";
const UPE: Disp = "unexpected-processing-error";
/**
 * Any failure inside CBC-encrypted content (a bad signature, a foreign signer, broken MIME, a
 * missing signature, a bomb) is answered decryption-failed: answering them apart from a padding
 * failure would be a CBC padding oracle (core/message/open.ts openDecrypted). The job record keeps
 * the real cause; AES-GCM content keeps its own answers.
 */
const INSIDE_CBC: Disp = "decryption-failed";

type Expect =
  /** A plain HTTP answer; `text` must be in the body; `header` must be present and match. */
  | { status: number; text?: RegExp; header?: [string, RegExp]; emptyBody?: boolean }
  /** 200 with an MDN (signed unless `unsigned`) whose disposition is one of these. */
  | { mdn: Disp | Disp[]; unsigned?: boolean; human?: RegExp }
  /** Either this status (Node's parser) or the connection closed without an answer. */
  | { statusOrClosed: number }
  /** The client cut the upload: no answer (the test closed first). */
  | { cut: true };

interface Result { id: string; res: H.RawResponse; mdn?: ParsedMdn }

interface Case {
  name: string;
  build: (id: string) => Req | Promise<Req>;
  expect: Expect;
  srv?: Srv;
  /** A Message-ID of its own (default: a fresh one per case). */
  id?: string;
  /** Reaches the receive pipeline (a job record is made); default: MDN answers except unknown partners. */
  job?: boolean;
  /** The message is stored (default: a "processed" MDN, or a 200 without MDN when none was asked for). */
  stores?: boolean;
  check?: (r: Result) => Promise<string[]> | string[];
}

let caseNo = 0;
const newId = (group: string) => `<hostile-${group}-${++caseNo}-${crypto.randomBytes(3).toString("hex")}@hostile.test>`;
const normId = (s: string) => s.trim().replace(/^<\s*/, "").replace(/\s*>$/, "").trim();

function describeAnswer(r: Result): string {
  if (r.res.status === undefined) return `no answer (closed after ${r.res.closedAfterMs} ms${r.res.timedOut ? ", timed out" : ""}${r.res.writeError ? `, ${r.res.writeError}` : ""})`;
  if (r.mdn) {
    const d = r.mdn.disposition;
    return `HTTP ${r.res.status} MDN ${d ? `${d.type}${d.modifier ? `/${d.modifier}: ${d.description ?? ""}` : ""}` : "(no disposition)"}${r.mdn.signed ? " signed" : " unsigned"}`;
  }
  return `HTTP ${r.res.status} ${r.res.body.toString("latin1").slice(0, 160).trim()}`;
}

function dispositionOf(mdn: ParsedMdn): Disp | string {
  const d = mdn.disposition;
  if (!d) return "(none)";
  if (d.type === "processed" && !d.modifier) return "processed";
  return `${d.type}/${d.modifier}: ${d.description ?? ""}`.replace(/^processed\/error: /, "");
}

function checkAnswer(r: Result, e: Expect): string[] {
  const p: string[] = [];
  const { res } = r;
  if ("cut" in e) {
    if (res.raw.length) p.push(`expected no answer to a cut upload, got ${describeAnswer(r)}`);
    return p;
  }
  if ("statusOrClosed" in e) {
    if (res.status !== undefined && res.status !== e.statusOrClosed) p.push(`expected ${e.statusOrClosed} or a close, got ${describeAnswer(r)}`);
    if (res.timedOut) p.push("the server neither answered nor closed");
    return p;
  }
  if ("status" in e) {
    if (res.status !== e.status) p.push(`expected HTTP ${e.status}, got ${describeAnswer(r)}`);
    else {
      if (e.text && !e.text.test(res.body.toString("latin1"))) p.push(`the ${e.status} text ${JSON.stringify(res.body.toString("latin1").slice(0, 200))} does not match ${e.text}`);
      if (e.header && !e.header[1].test(res.headers[e.header[0].toLowerCase()] ?? "")) p.push(`header ${e.header[0]} is ${JSON.stringify(res.headers[e.header[0].toLowerCase()])}, expected ${e.header[1]}`);
      if (e.emptyBody && res.body.length) p.push(`expected an empty body, got ${JSON.stringify(res.body.toString("latin1").slice(0, 200))}`);
    }
    return p;
  }
  if (res.status !== 200 || !r.mdn) {
    p.push(`expected 200 with an MDN ${[e.mdn].flat().join(" | ")}, got ${describeAnswer(r)}`);
    return p;
  }
  const want = [e.mdn].flat();
  const got = dispositionOf(r.mdn);
  if (!want.includes(got as Disp)) p.push(`expected MDN ${want.join(" | ")}, got ${got} (${[...r.mdn.errors, r.mdn.humanText ?? ""].join(" ").replace(/\s+/g, " ").slice(0, 300)})`);
  if (!e.unsigned) {
    if (!r.mdn.signed) p.push("the MDN is not signed although a signed receipt was requested");
    else {
      const v = verifyMdn(r.mdn, { partnerCertificates: [ACME.certificate], requireSigned: true });
      if (v.checks.signature.verdict !== "pass") p.push(`the MDN signature does not verify: ${v.checks.signature.detail}`);
    }
  }
  if (r.mdn.originalMessageId !== undefined && /^[ -~]+$/.test(r.id) && normId(r.mdn.originalMessageId) !== normId(r.id)) {
    p.push(`the MDN answers ${r.mdn.originalMessageId}, not ${r.id}`);
  }
  if (got === "processed" && !r.mdn.mic) p.push("a positive MDN without Received-Content-MIC");
  if (e.human && !e.human.test(`${r.mdn.humanText ?? ""} ${r.mdn.errors.join(" ")}`)) p.push(`the MDN text does not match ${e.human}: ${r.mdn.humanText?.slice(0, 300)}`);
  return p;
}

/** What every case of every group ended with: message ID -> expected kind (for the final checks). */
const ledger: Array<{ group: string; name: string; id: string; srv: Srv; positive: boolean }> = [];
const groupCounts: Record<string, number> = {};

async function runCase(group: string, c: Case): Promise<string[]> {
  const srv = c.srv ?? main;
  const id = c.id ?? newId(group);
  let r: Result;
  try {
    const request = await c.build(id);
    const res = await send(srv, request);
    r = { id, res };
    const ct = res.headers["content-type"] ?? "";
    if (res.status === 200 && /multipart\/(report|signed)/i.test(ct)) {
      try {
        r.mdn = parseMdn(res.headers, res.body);
      } catch (err) {
        return [`${c.name}: an unreadable MDN: ${(err as Error).message}`];
      }
    }
  } catch (err) {
    return [`${c.name}: ${(err as Error).stack ?? String(err)}`];
  }
  const positive = c.stores ?? ("mdn" in c.expect ? [c.expect.mdn].flat().every((d) => d === "processed")
    : "status" in c.expect && c.expect.status === 200 && !!c.expect.emptyBody);
  ledger.push({ group, name: c.name, id, srv, positive });
  if (process.env.HOSTILE_VERBOSE) console.log(`[${group}] ${c.name} -> ${describeAnswer(r)}`);
  const problems = checkAnswer(r, c.expect);
  if (!problems.length && c.check) {
    try {
      problems.push(...(await c.check(r)));
    } catch (err) {
      problems.push(`check failed: ${(err as Error).stack ?? String(err)}`);
    }
  }
  return problems.map((x) => `${c.name}: ${x}`);
}

/** Mismatches of the running group: reported together by closeGroup, after the known-good check. */
const pending: string[] = [];
const expectTrue = (ok: boolean, what: string) => { if (!ok) pending.push(what); };

/** Runs the cases (bounded concurrency) and keeps every mismatch for closeGroup. */
async function runGroup(t: TestContext, group: string, cases: Case[], limit = CONCURRENCY): Promise<void> {
  groupCounts[group] = (groupCounts[group] ?? 0) + cases.length;
  const started = Date.now();
  const results = await H.pool(limit, cases.map((c) => () => runCase(group, c)));
  const failures = results.flat();
  t.diagnostic(`${group}: ${cases.length} cases in ${Date.now() - started} ms, ${failures.length} mismatches`);
  for (const f of failures) t.diagnostic(`MISMATCH ${f}`);
  pending.push(...failures);
}

/** After a group: the receivers still take a known-good message; then every mismatch at once. */
async function closeGroup(t: TestContext, label: string, ...servers: Srv[]): Promise<void> {
  let failures: string[];
  try {
    for (const srv of servers.length ? servers : [main]) await stillServes(srv, label);
  } finally {
    failures = pending.splice(0);
  }
  t.diagnostic(`${label}: the receivers still take a good message; ${failures.length} mismatches`);
  assert.deepEqual(failures, [], `${label}: ${failures.length} case(s) answered other than the spec says`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The run ID of the job for this message, from the receiver's events (undefined when none was made). */
async function runIdOf(srv: Srv, id: string, timeoutMs = 15_000): Promise<string | undefined> {
  const n = normId(id);
  try {
    const e = await srv.server.waitFor((x) => typeof x.messageId === "string" && normId(x.messageId) === n && typeof x.runId === "string" && (x.event === "message" || x.event === "rejected"), timeoutMs);
    return e.runId as string;
  } catch {
    return undefined;
  }
}

function jobRecord(srv: Srv, runId: string): Record<string, any> {
  return JSON.parse(readFileSync(join(srv.data, "jobs", `${runId}.json`), "utf8"));
}

function jobFiles(srv: Srv): string[] {
  const d = join(srv.data, "jobs");
  return existsSync(d) ? readdirSync(d).filter((f) => f.endsWith(".json")) : [];
}

/** A known-good message (fresh bytes) must get a positive, signed MDN with the right MIC, and be stored. */
async function stillServes(srv: Srv, label: string): Promise<void> {
  const body = Buffer.from(`${label}: ${crypto.randomBytes(8).toString("hex")}\r\n`.repeat(50));
  const part1 = payloadEntity(`alive-${label}.edi`, body);
  const m = await signedEncrypted(part1);
  const id = newId(`alive-${label}`);
  const res = await send(srv, req(srv, id, m));
  const r: Result = { id, res };
  if (res.status === 200) r.mdn = parseMdn(res.headers, res.body);
  assert.deepEqual(checkAnswer(r, { mdn: "processed" }), [], `${srv.name} after ${label}: a good message is not processed`);
  assert.equal(r.mdn!.mic!.base64, crypto.createHash("sha256").update(part1).digest("base64"), "the MIC is the digest of the signed part");
  const ev = await srv.server.waitFor((e) => e.event === "message" && e.messageId === id);
  assert.ok(ev.file, "the message was stored");
  assert.ok(readFileSync(ev.file as string).equals(body), "stored as sent");
  ledger.push({ group: `alive-${label}`, name: "known-good", id, srv, positive: true });
}

// ------------------------------------------------------------------------------------ 1. AS2 IDs

test("AS2-From / AS2-To: empty, blank, too long, controls, non-ASCII, repeated, quoted", async (t) => {
  const seed = seedCbc;
  const cases: Case[] = [];
  const jobsBefore = jobFiles(main).length;
  for (const [header, valid] of [["AS2-From", "MYCO"], ["AS2-To", "ACME"]] as const) {
    const bad = (name: string, value: H.HeaderValue | undefined, text = true): Case => ({
      name: `${header} ${name}`, job: false,
      build: (id) => ({ ...req(main, id, seed), headers: H.setHeader(as2Headers(main, id, seed.contentType, seed.body.length), header, value) }),
      expect: { status: 400, ...(text ? { text: new RegExp(header) } : {}) },
    });
    const repeated = (n: number, name = `repeated on ${n} lines`): Case => ({
      name: `${header} ${name}`, job: false,
      build: (id) => {
        const hs = as2Headers(main, id, seed.contentType, seed.body.length);
        const at = hs.findIndex(([k]) => k === header);
        hs.splice(at, 1, ...Array.from({ length: n }, () => [header, valid] as [string, string]));
        return { headers: hs, body: seed.body };
      },
      expect: { status: 400, text: new RegExp(header) },
    });
    const unknown = (name: string, value: H.HeaderValue, mdn = true): Case => ({
      name: `${header} ${name}`, job: false,
      build: (id) => {
        let hs = H.setHeader(as2Headers(main, id, seed.contentType, seed.body.length), header, value);
        if (!mdn) hs = H.setHeader(H.setHeader(hs, "Disposition-Notification-To", undefined), "Disposition-Notification-Options", undefined);
        return { headers: hs, body: seed.body };
      },
      expect: mdn ? { mdn: UPE } : { status: 403 },
    });
    const ok = (name: string, value: H.HeaderValue): Case => ({
      name: `${header} ${name}`,
      build: (id) => ({ headers: H.setHeader(as2Headers(main, id, seed.contentType, seed.body.length), header, value), body: seed.body }),
      expect: { mdn: "processed" },
    });
    cases.push(
      bad("missing", undefined),
      bad("empty", ""),
      bad("blank", "   "),
      bad("a lone tab", "\t"),
      bad("129 characters", "A".repeat(129)),
      bad("5000 characters", "B".repeat(5000)),
      bad("with a tab inside", `${valid.slice(0, 2)}\t${valid.slice(2)}`),
      bad("with a latin1 byte", Buffer.concat([Buffer.from(valid), Buffer.from([0xd6])])),
      bad("with UTF-8 (euro sign)", Buffer.from(`${valid}\u20ac`, "utf8")),
      bad("only non-ASCII", Buffer.from("\u00c4\u00d6\u00dc", "utf8")),
      bad("with a C1 byte (0x85)", Buffer.concat([Buffer.from(valid), Buffer.from([0x85])])),
      bad("with NUL", Buffer.concat([Buffer.from(valid), Buffer.from([0x00])]), false),
      bad("with 0x01", Buffer.concat([Buffer.from(valid), Buffer.from([0x01])]), false),
      bad("with an ANSI escape", Buffer.from(`\x1b[31m${valid}`, "latin1"), false),
      bad("with DEL", Buffer.concat([Buffer.from(valid), Buffer.from([0x7f])]), false),
      bad("quoted empty", '""'),
      bad("quoted blanks", '"   "'),
      bad("quoted with a tab", `"${valid.slice(0, 2)}\t${valid.slice(2)}"`),
      bad("quoted 129 characters", `"${"Q".repeat(129)}"`),
      bad(`the name repeated 1000 times on one line`, valid.repeat(1000)),
      repeated(2),
      repeated(3),
      repeated(50),
      repeated(1000),
      unknown("128 characters (valid, unknown)", "U".repeat(128)),
      unknown("128 characters, no MDN requested", "U".repeat(128), false),
      unknown("in lower case (IDs compare exactly)", valid.toLowerCase()),
      unknown("quoted with a blank", `"${valid.slice(0, 2)} ${valid.slice(2)}"`),
      unknown("with an unbalanced quote", `"${valid}`),
      unknown("with an escaped quote", `${valid.slice(0, 2)}\\"${valid.slice(2)}`),
      unknown("unknown, no MDN requested", "NOBODY", false),
      ok("quoted", `"${valid}"`),
      ok("with blanks around (HTTP strips them)", `   ${valid}   `),
    );
  }
  await runGroup(t, "as2-ids", cases);
  const expectedJobs = cases.filter((c) => c.job !== false).length;
  expectTrue(jobFiles(main).length - jobsBefore === expectedJobs, `${jobFiles(main).length - jobsBefore} job records made; only the ${expectedJobs} messages with good AS2 IDs should make one`);
  await closeGroup(t, "as2-ids");
});

// ------------------------------------------------------------------------------------ 2. other headers

test("Message-ID, Disposition-Notification-Options and other headers", async (t) => {
  const seed = seedCbc;
  const cases: Case[] = [];
  const withHeaders = (name: string, extra: H.HeaderList, expect: Expect, o: Partial<Case> = {}): Case => ({
    name, expect, ...o,
    build: (id) => {
      let hs = as2Headers(main, id, seed.contentType, seed.body.length);
      for (const [n, v] of extra) hs = H.setHeader(hs, n, v === "\u0000remove" ? undefined : v);
      return { headers: hs, body: seed.body };
    },
  });
  const REMOVE = "\u0000remove";
  const mid = (name: string, value: H.HeaderValue | undefined, expect: Expect, text = true): Case => ({
    name: `Message-ID ${name}`, expect: "status" in expect && text ? { ...expect, text: /Message-ID/ } : expect, job: "status" in expect ? false : undefined,
    id: typeof value === "string" ? value : undefined,
    build: (id) => ({ headers: H.setHeader(as2Headers(main, id, seed.contentType, seed.body.length), "Message-ID", value), body: seed.body }),
  });
  cases.push(
    mid("missing", undefined, { status: 400 }),
    mid("empty", "", { status: 400 }),
    mid("blank", "    ", { status: 400 }),
    mid("999 characters", `<${"m".repeat(990)}@host.x>`, { status: 400 }),
    mid("20000 characters", `<${"m".repeat(19990)}@host.x>`, { status: 400 }),
    mid("with a latin1 byte", Buffer.from("<caf\xe9@hostile.test>", "latin1"), { status: 400 }),
    mid("with UTF-8", Buffer.from(`<\u20ac-${crypto.randomBytes(3).toString("hex")}@hostile.test>`, "utf8"), { status: 400 }),
    mid("with a tab inside", `<tab\there-${crypto.randomBytes(3).toString("hex")}@hostile.test>`, { status: 400 }),
    mid("with NUL", Buffer.from(`<nul\x00-${crypto.randomBytes(3).toString("hex")}@hostile.test>`, "latin1"), { status: 400 }, false),
    mid("998 characters (the longest taken)", `<${crypto.randomBytes(3).toString("hex")}${"m".repeat(983)}@host.x>`, { mdn: "processed" }),
    mid("without angle brackets", `bare-${crypto.randomBytes(4).toString("hex")}@hostile.test`, { mdn: "processed" }),
    mid("that looks like a path", `<../../../../../tmp/hostile-${crypto.randomBytes(4).toString("hex")}/..\\..\\x@hostile.test>`, { mdn: "processed" }),
    mid("with blanks and specials", `<a b;c,d "e" ${crypto.randomBytes(4).toString("hex")}@hostile.test>`, { mdn: "processed" }),
  );
  const dno = (name: string, value: string | undefined, expect: Expect) =>
    withHeaders(`Disposition-Notification-Options ${name}`, [["Disposition-Notification-Options", value ?? REMOVE]], expect);
  cases.push(
    dno("micalg md5 (verification only)", "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, md5", { mdn: "processed" }),
    dno("micalg unknown", "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-999", { mdn: "processed" }),
    dno("micalg required and unknown", "signed-receipt-protocol=required, pkcs7-signature; signed-receipt-micalg=required, sha-999", { mdn: "processed" }),
    dno("micalg required: md5 then unknown", "signed-receipt-protocol=required, pkcs7-signature; signed-receipt-micalg=required, md5, x-unknown", { mdn: "processed" }),
    dno("micalg list of 500 entries", `signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, ${Array.from({ length: 500 }, (_, i) => `x-alg-${i}`).join(", ")}, sha-256`, { mdn: "processed" }),
    dno("protocol unknown (unsigned receipt)", "signed-receipt-protocol=optional, pkcs7-foo; signed-receipt-micalg=optional, sha-256", { mdn: "processed", unsigned: true }),
    dno("protocol required and unknown", "signed-receipt-protocol=required, x-pgp; signed-receipt-micalg=required, sha-256", { mdn: "processed", unsigned: true }),
    dno("unknown required parameter", `${DNO_SIGNED}; x-frobnicate=required, yes`, { mdn: "processed" }),
    dno("empty", "", { mdn: "processed", unsigned: true }),
    dno("garbage", ";;;==,,,;=;\"\";", { mdn: "processed", unsigned: true }),
    dno("10 KB long", `${DNO_SIGNED}; ${"x-pad=optional, y; ".repeat(500)}`, { mdn: "processed" }),
    dno("with latin1 bytes", `signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256\xe9`, { mdn: "processed" }),
    dno("absent (an unsigned receipt)", undefined, { mdn: "processed", unsigned: true }),
    withHeaders("Disposition-Notification-To absent (no MDN)", [["Disposition-Notification-To", REMOVE], ["Disposition-Notification-Options", REMOVE]], { status: 200, emptyBody: true }),
    withHeaders("Disposition-Notification-To empty", [["Disposition-Notification-To", ""]], { mdn: "processed" }),
    withHeaders("Subject with latin1 bytes", [["Subject", "Bestellung f\xfcr M\xfcller \x85 ok"]], { mdn: "processed" }),
    withHeaders("Subject 8 KB long", [["Subject", "s".repeat(8000)]], { mdn: "processed" }),
    withHeaders("Date garbage", [["Date", "yesterday at noon, maybe"]], { mdn: "processed" }),
    withHeaders("AS2-Version 99.9", [["AS2-Version", "99.9"]], { mdn: "processed" }),
    withHeaders("AS2-Version missing", [["AS2-Version", REMOVE]], { mdn: "processed" }),
    withHeaders("EDIINT-Features garbage", [["EDIINT-Features", "\xff\xfe, multiple-attachments, ???"]], { mdn: "processed" }),
  );
  await runGroup(t, "headers", cases);
  await closeGroup(t, "headers");
});

// ------------------------------------------------------------------------------------ 3. content types

test("content types: lies, odd spellings, garbage bodies", async (t) => {
  const seed = seedCbc;
  const ct = (name: string, contentType: string | undefined, expect: Expect, body = seed.body): Case => ({
    name: `Content-Type ${name}`, expect,
    build: (id) => ({ headers: H.setHeader(as2Headers(main, id, "x", body.length), "Content-Type", contentType), body }),
  });
  const garbage = (name: string, body: Buffer, expect: Expect = { mdn: UPE }) => ct(`pkcs7-mime with ${name}`, H.ENVELOPED_TYPE, expect, body);
  const signedDataBody = signatureDer(seedSignedDer);
  const cases: Case[] = [
    ct("application/pkcs7-mime without smime-type", "application/pkcs7-mime", { mdn: "processed" }),
    ct("application/x-pkcs7-mime", "application/x-pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", { mdn: "processed" }),
    ct("claiming compressed-data", H.COMPRESSED_TYPE, { mdn: "processed" }),
    ct("claiming signed-data", "application/pkcs7-mime; smime-type=signed-data", { mdn: "processed" }),
    ct("in upper case", "APPLICATION/PKCS7-MIME; SMIME-TYPE=ENVELOPED-DATA; NAME=SMIME.P7M", { mdn: "processed" }),
    ct("with blanks and quotes", ' application/pkcs7-mime ; smime-type = "enveloped-data" ; name = "smime.p7m" ', { mdn: "processed" }),
    ct("with an unterminated quote", 'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m', { mdn: "processed" }),
    ct("with 2000 parameters", `application/pkcs7-mime; ${Array.from({ length: 2000 }, (_, i) => `p${i}=v`).join("; ")}`, { mdn: "processed" }),
    ct("application/octet-stream (taken as a plain payload)", "application/octet-stream", { mdn: "processed" }),
    ct("empty (text/plain, a plain payload)", "", { mdn: "processed" }),
    ct("missing (text/plain, a plain payload)", undefined, { mdn: "processed" }),
    ct("application/pkcs7-signature (a plain payload)", "application/pkcs7-signature", { mdn: "processed" }),
    ct("multipart/signed without boundary", "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256", { mdn: UPE }),
    ct("multipart/signed with a boundary not in the body", "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=nowhere", { mdn: UPE }),
    ct("multipart/report (taken for an MDN, which it is not)", "multipart/report; report-type=disposition-notification; boundary=x", { status: 400 }),
    ct("with NUL (Node refuses)", "application/pkcs7-mime\u0000", { statusOrClosed: 400 }),
    garbage("1000 random bytes", crypto.randomBytes(1000)),
    garbage("ASCII text", Buffer.from("hello, this is not CMS at all\r\n".repeat(30))),
    garbage("an empty body", Buffer.alloc(0)),
    garbage("a lone SEQUENCE tag", Buffer.from([0x30])),
    garbage("an empty SEQUENCE", Buffer.from([0x30, 0x00])),
    garbage("an indefinite SEQUENCE that never ends", Buffer.from([0x30, 0x80])),
    garbage("the CMS in base64 without a CTE", Buffer.from(H.base64Lines(seed.body), "latin1")),
    garbage("PEM armour", Buffer.from(`-----BEGIN PKCS7-----\r\n${H.base64Lines(seed.body, 64)}\r\n-----END PKCS7-----\r\n`, "latin1")),
    garbage("a detached SignedData (not supported as a layer)", signedDataBody),
    garbage("a MIME entity, not CMS", payloadEntity("not-cms.edi", Buffer.from("x"))),
    ct("text/plain with text", "text/plain; charset=utf-8", { mdn: "processed" }, Buffer.from("just text\r\n")),
  ];
  await runGroup(t, "content-types", cases);
  await closeGroup(t, "content-types");
});

// ------------------------------------------------------------------------------------ 4. MIME boundaries

test("MIME boundaries: missing, too long, quoted oddly, mismatched", async (t) => {
  const part1 = payloadEntity("boundary.edi", Buffer.from("boundary test\r\n".repeat(40)));
  const PROTO = 'protocol="application/pkcs7-signature"; micalg=sha-256';
  const b = (name: string, o: H.SignOptions, expect: Expect, p1 = part1): Case => ({
    name: `boundary ${name}`, expect,
    build: (id) => req(main, id, signedMsg(p1, MYCO, o)),
  });
  const long70 = "7".repeat(70);
  const long71 = "7".repeat(71);
  const inPayload = `----=_inside_${crypto.randomBytes(4).toString("hex")}`;
  const cases: Case[] = [
    b("missing from Content-Type", { boundary: "bnd1", contentType: `multipart/signed; ${PROTO}` }, { mdn: UPE }),
    b("empty", { boundary: "bnd2", contentType: `multipart/signed; ${PROTO}; boundary=""` }, { mdn: UPE }),
    b("71 characters (too long)", { boundary: long71 }, { mdn: UPE }),
    b("1000 characters", { boundary: "L".repeat(1000) }, { mdn: UPE }),
    b("70 characters (the longest allowed)", { boundary: long70 }, { mdn: "processed" }),
    b("with an unterminated quote", { boundary: "bnd3", contentType: `multipart/signed; ${PROTO}; boundary="bnd3` }, { mdn: UPE }),
    b("in single quotes, body without them", { boundary: "bnd4", contentType: `multipart/signed; ${PROTO}; boundary='bnd4'` }, { mdn: UPE }),
    b("in single quotes, body with them (they are part of it)", { boundary: "'bnd5'", contentType: `multipart/signed; ${PROTO}; boundary='bnd5'` }, { mdn: "processed" }),
    b("with an escaped quote", { boundary: 'bn"d6', contentType: `multipart/signed; ${PROTO}; boundary="bn\\"d6"` }, { mdn: "processed" }),
    b("with blanks (quoted)", { boundary: "b n d 7" }, { mdn: "processed" }),
    b("with regex characters", { boundary: "(.*)+?[^$]{2}|\\" .replace(/\\/g, "") }, { mdn: "processed" }),
    b("mismatched", { boundary: "bnd8", contentType: `multipart/signed; ${PROTO}; boundary="other8"` }, { mdn: UPE }),
    b("differing in case", { boundary: "bnd9", contentType: `multipart/signed; ${PROTO}; boundary="BND9"` }, { mdn: UPE }),
    b("given twice, right one first", { boundary: "bnd10", contentType: `multipart/signed; ${PROTO}; boundary="bnd10"; boundary="fake10"` }, { mdn: "processed" }),
    b("given twice, wrong one first", { boundary: "bnd11", contentType: `multipart/signed; ${PROTO}; boundary="fake11"; boundary="bnd11"` }, { mdn: UPE }),
    b("with preamble and epilogue", { preamble: "This is a preamble.\r\n--not-the-boundary\r\n\r\n", epilogue: "epilogue junk\r\n--bnd--\r\n" }, { mdn: "processed" }),
    b("without the close delimiter", { noClose: true }, { mdn: UPE }),
    b("occurring inside the signed payload", { boundary: inPayload }, { mdn: UPE }, payloadEntity("inner.edi", Buffer.from(`line\r\n--${inPayload}\r\nContent-Type: text/plain\r\n\r\nsmuggled\r\n`))),
    b("with an unknown protocol", { contentType: 'multipart/signed; protocol="application/x-foo"; micalg=sha-256; boundary="bnd12"', boundary: "bnd12" }, { mdn: UPE }),
    b("without micalg", { contentType: 'multipart/signed; protocol="application/pkcs7-signature"; boundary="bnd13"', boundary: "bnd13" }, { mdn: "processed" }),
    b("with micalg naming another digest than the signature's", { contentType: 'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-1; boundary="bnd14"', boundary: "bnd14" }, { mdn: "integrity-check-failed" }),
    {
      name: "boundary: only the signed part, no signature part", expect: { mdn: UPE },
      build: (id) => req(main, id, { contentType: `multipart/signed; ${PROTO}; boundary="solo"`, body: Buffer.concat([Buffer.from("--solo\r\n"), part1, Buffer.from("\r\n--solo--\r\n")]) }),
    },
    {
      name: "boundary: delimiters but no parts at all", expect: { mdn: UPE },
      build: (id) => req(main, id, { contentType: `multipart/signed; ${PROTO}; boundary="empty"`, body: Buffer.from("--empty--\r\n") }),
    },
    {
      name: "boundary: inside encryption, missing", expect: { mdn: INSIDE_CBC },
      build: async (id) => req(main, id, await encryptedMsg(H.signedAsEntity({ ...H.signEntity(part1, signer(MYCO), { boundary: "enc1" }), contentType: `multipart/signed; ${PROTO}` }))),
    },
    {
      name: "boundary: inside encryption, mismatched", expect: { mdn: INSIDE_CBC },
      build: async (id) => req(main, id, await encryptedMsg(H.signedAsEntity(H.signEntity(part1, signer(MYCO), { boundary: "enc2", contentType: `multipart/signed; ${PROTO}; boundary="enc2x"` })))),
    },
    {
      name: "boundary: inside encryption, 71 characters", expect: { mdn: INSIDE_CBC },
      build: async (id) => req(main, id, await encryptedMsg(H.signedAsEntity(H.signEntity(part1, signer(MYCO), { boundary: long71 })))),
    },
  ];
  await runGroup(t, "boundaries", cases);
  await closeGroup(t, "boundaries");
});

// ------------------------------------------------------------------------------------ 5. transfer encodings

test("Content-Transfer-Encoding: base64, quoted-printable, bogus, on every layer", async (t) => {
  const body = Buffer.concat([PAYLOAD.subarray(0, 3000), Buffer.from([0x00, 0xff, 0x3d, 0x0d, 0x0a, 0x80])]);
  const withCte = (cte: string, encoded: Buffer | string, name = "cte.edi") =>
    H.entity(["Content-Type: application/edifact", `Content-Disposition: attachment; filename="${name}"`, `Content-Transfer-Encoding: ${cte}`], Buffer.isBuffer(encoded) ? encoded : Buffer.from(encoded, "latin1"));
  const storedAs = (expected: Buffer) => async (r: Result): Promise<string[]> => {
    const ev = await main.server.waitFor((e) => e.event === "message" && e.messageId === r.id);
    return ev.file && readFileSync(ev.file as string).equals(expected) ? [] : [`stored ${ev.file ? `${readFileSync(ev.file as string).length} other bytes` : "nothing"}`];
  };
  const part = (name: string, p1: Buffer, expect: Expect, check?: Case["check"]): Case => ({
    name: `payload part ${name}`, expect, check, build: (id) => req(main, id, signedMsg(p1)),
  });
  const outer = (name: string, cte: string, encode: (b: Buffer) => Buffer, expect: Expect): Case => ({
    name: `HTTP Content-Transfer-Encoding ${name}`, expect,
    build: (id) => req(main, id, { contentType: seedCbc.contentType, body: encode(seedCbc.body), extra: [["Content-Transfer-Encoding", cte]] }),
  });
  const sig = (name: string, o: H.SignOptions, expect: Expect): Case => ({
    name: `signature part ${name}`, expect, build: (id) => req(main, id, signedMsg(payloadEntity("sig.edi", Buffer.from("sig\r\n")), MYCO, o)),
  });
  const b64 = H.base64Lines(body);
  const cases: Case[] = [
    part("base64", withCte("base64", b64), { mdn: "processed" }, storedAs(body)),
    part("base64 in upper case", withCte("BASE64", b64), { mdn: "processed" }, storedAs(body)),
    part("base64 without line breaks", withCte("base64", body.toString("base64")), { mdn: "processed" }, storedAs(body)),
    part("base64 with junk between the groups", withCte("base64", b64.replace(/\r\n/g, "!!\r\n~~")), { mdn: "processed" }, storedAs(body)),
    part("base64 ending mid-group", withCte("base64", `${body.toString("base64").replace(/=+$/, "")}A`.slice(0, 4001)), { mdn: UPE }),
    part("quoted-printable", withCte("quoted-printable", H.quotedPrintable(body)), { mdn: "processed" }, storedAs(body)),
    part("quoted-printable with a bad escape", withCte("quoted-printable", "abc=ZZdef=\r\nghi"), { mdn: "processed" }),
    part("binary", withCte("binary", body), { mdn: "processed" }, storedAs(body)),
    part("8bit", withCte("8bit", body), { mdn: "processed" }, storedAs(body)),
    part("x-uuencode (unknown)", withCte("x-uuencode", "begin 644 x\r\n`\r\nend\r\n"), { mdn: UPE }),
    part("with a parameter (unknown)", withCte("base64; charset=x", b64), { mdn: UPE }),
    part("empty value (unknown)", withCte("", body), { mdn: UPE }),
    outer("base64", "base64", (x) => Buffer.from(H.base64Lines(x), "latin1"), { mdn: "processed" }),
    outer("quoted-printable", "quoted-printable", (x) => Buffer.from(H.quotedPrintable(x), "latin1"), { mdn: "processed" }),
    outer("binary", "binary", (x) => x, { mdn: "processed" }),
    outer("7bit (not enforced)", "7bit", (x) => x, { mdn: "processed" }),
    outer("gzip (unknown)", "gzip", (x) => x, { mdn: UPE }),
    outer("base64 with the body left binary", "base64", (x) => x, { mdn: UPE }),
    sig("binary (raw DER)", { signatureCte: "binary" }, { mdn: "processed" }),
    sig("without a CTE header (raw DER)", { signatureCte: "" }, { mdn: "processed" }),
    sig("x-bogus", { signatureCte: "x-bogus" }, { mdn: UPE }),
    {
      name: "signed entity base64-encoded inside the encryption (a multipart may not be encoded)", expect: { mdn: INSIDE_CBC },
      build: async (id) => {
        const s = H.signEntity(payloadEntity("enc-b64.edi", Buffer.from("x\r\n")), signer(MYCO));
        return req(main, id, await encryptedMsg(H.entity([`Content-Type: ${s.contentType}`, "Content-Transfer-Encoding: base64"], Buffer.from(H.base64Lines(s.body), "latin1"))));
      },
    },
  ];
  await runGroup(t, "transfer-encodings", cases);
  await closeGroup(t, "transfer-encodings");
});

// ------------------------------------------------------------------------------------ 6. chunking

test("chunked bodies: odd chunk sizes are fine, bad chunk syntax is refused", async (t) => {
  const seed = seedCbc;
  const chunked = (name: string, body: Buffer | H.Piece[], expect: Expect, o: { extra?: H.HeaderList; after?: Req["after"] } = {}): Case => ({
    name: `chunked ${name}`, expect,
    build: (id) => {
      const hs = as2Headers(main, id, seed.contentType, "chunked", o.extra ?? []);
      return Array.isArray(body) ? { headers: hs, pieces: body, after: o.after } : { headers: hs, body, after: o.after };
    },
  });
  const good = (name: string, sizes: number[], opts: Parameters<typeof H.chunkedBody>[2] = {}) => chunked(name, H.chunkedBody(seed.body, sizes, opts), { mdn: "processed" });
  const prefix = seed.body.subarray(0, 1000);
  const rest = seed.body.subarray(1000);
  const bad = (name: string, raw: Buffer, o: { after?: Req["after"]; extra?: H.HeaderList } = {}) => chunked(name, raw, { statusOrClosed: 400 }, { after: o.after ?? "end", extra: o.extra });
  const chunk = (b: Buffer, sizeText = b.length.toString(16)) => Buffer.concat([Buffer.from(`${sizeText}\r\n`, "latin1"), b, Buffer.from("\r\n")]);
  const whole = H.chunkedBody(seed.body, [4096]);
  const cases: Case[] = [
    good("1-byte chunks", [1]),
    good("7-byte chunks", [7]),
    good("alternating 1 and 8191 bytes", [1, 8191]),
    good("one chunk", [seed.body.length]),
    good("65536-byte chunks", [65536]),
    good("sizes in upper-case hex", [255, 4095], { hexCase: "upper" }),
    good("sizes zero-padded to 16 digits", [3000], { pad: 16 }),
    good("with chunk extensions", [5000], { extension: ';name=value;flag;q="quoted ext"' }),
    good("with a trailer", [5000], { trailer: "X-Trailer: yes\r\nX-Other: 1\r\n" }),
    chunked("split across slow pieces", (() => {
      const out: H.Piece[] = [];
      for (let i = 0; i < whole.length; i += 17_777) out.push(whole.subarray(i, i + 17_777), { delayMs: 5 });
      return out;
    })(), { mdn: "processed" }),
    chunked("with Transfer-Encoding in upper case", H.chunkedBody(seed.body, [9000]), { mdn: "processed" }, { extra: [["Transfer-Encoding", "CHUNKED"]] }),
    bad("size not hex", Buffer.concat([chunk(prefix, "zz"), Buffer.from("0\r\n\r\n")])),
    bad("negative size", Buffer.concat([chunk(prefix, "-3e8"), Buffer.from("0\r\n\r\n")])),
    bad("size with 0x prefix", Buffer.concat([chunk(prefix, "0x3e8"), Buffer.from("0\r\n\r\n")])),
    bad("size overflowing 64 bits", Buffer.concat([chunk(prefix, "1ffffffffffffffffffff"), Buffer.from("0\r\n\r\n")])),
    bad("size followed by a blank", Buffer.concat([chunk(prefix, "3e8 "), Buffer.from("0\r\n\r\n")])),
    bad("no CRLF after the chunk data", Buffer.concat([Buffer.from("3e8\r\n"), prefix, Buffer.from("XX3e8\r\n"), prefix, Buffer.from("\r\n0\r\n\r\n")])),
    bad("bare LF line ends", Buffer.concat([Buffer.from("3e8\n"), prefix, Buffer.from("\n0\n\n")])),
    bad("a control character in an extension", Buffer.concat([chunk(prefix, "3e8;\x01"), Buffer.from("0\r\n\r\n")])),
    bad("a size larger than the data, then EOF", Buffer.concat([chunk(prefix, "ffff"), Buffer.from("0\r\n\r\n")])),
    bad("no last chunk, then EOF", Buffer.concat([chunk(prefix), chunk(rest.subarray(0, 5000))])),
    bad("with Content-Length too (smuggling)", whole, { extra: [["Content-Length", String(seed.body.length)]] }),
    // Framing is valid (chunked last); the unknown gzip coding is ignored by Node and the body taken
    // as it is (RFC 9112 §6.1 suggests 501). Not in the spec: pinned as observed.
    chunked("Transfer-Encoding gzip, chunked (the gzip coding is ignored)", whole, { mdn: "processed" }, { extra: [["Transfer-Encoding", "gzip, chunked"]] }),
    bad("Transfer-Encoding chunked, gzip (chunked not last)", whole, { extra: [["Transfer-Encoding", "chunked, gzip"]] }),
    bad("Transfer-Encoding identity", seed.body, { extra: [["Transfer-Encoding", "identity"]] }),
    bad("Transfer-Encoding x-bogus", seed.body, { extra: [["Transfer-Encoding", "x-bogus"]] }),
  ];
  await runGroup(t, "chunking", cases);
  await closeGroup(t, "chunking");
});

// ------------------------------------------------------------------------------------ 7. truncation

/** Node hands the handler the first 16 KiB before it knows the AS2 headers (the MDN check peeks). */
const PEEK = 16 * 1024;

test("truncation: a signed+encrypted message cut at 40 offsets in transit, and at 20 with honest framing", async (t) => {
  const seed = seedCbc;
  const offsets = H.spread(1, seed.body.length - 1, 40);
  const inTransit: Case[] = offsets.map((at) => ({
    name: `cut in transit after ${at} of ${seed.body.length} bytes`,
    expect: { cut: true },
    build: (id) => ({ headers: as2Headers(main, id, seed.contentType, seed.body.length), body: seed.body.subarray(0, at), after: "destroy", destroyDelayMs: 150 }),
    check: async (r) => {
      if (at < PEEK) {
        // Cut inside the peek window: refused before the message is identified; no job record.
        const ev = await main.server.waitFor((e) => e.event === "rejected" && e.messageId === r.id, 10_000).catch(() => undefined);
        if (!ev) return ["no rejected event"];
        return new RegExp(`closed the connection after ${at} of ${seed.body.length} bytes`).test(String(ev.detail)) ? [] : [`the rejected event says ${String(ev.detail)}`];
      }
      const runId = await runIdOf(main, r.id);
      if (!runId) return ["no job record"];
      const rec = jobRecord(main, runId);
      const p: string[] = [];
      if (rec.state !== "FAILED") p.push(`job ${runId} is ${rec.state}`);
      if (rec.error?.code !== "AS2_ERR_TRUNCATED") p.push(`job error ${rec.error?.code}: ${rec.error?.message}`);
      return p;
    },
  }));
  const halfClosed: Case[] = H.spread(PEEK + 1000, seed.body.length - 1, 5).map((at) => ({
    name: `cut after ${at} bytes, then the client half-closes`,
    expect: { statusOrClosed: 400 },
    build: (id) => ({ headers: as2Headers(main, id, seed.contentType, seed.body.length), body: seed.body.subarray(0, at), after: "end" }),
    check: async (r) => {
      const runId = await runIdOf(main, r.id);
      if (!runId) return ["no job record"];
      const rec = jobRecord(main, runId);
      return rec.state === "FAILED" && rec.error?.code === "AS2_ERR_TRUNCATED" ? [] : [`job ${rec.state} ${rec.error?.code}`];
    },
  }));
  // Honest framing (Content-Length = what is sent): a CMS structure that stops short.
  // The spec allows unexpected-processing-error or decryption-failed; the receiver is consistent: the former.
  const honest: Case[] = H.spread(1, seed.body.length - 1, 20).map((at) => ({
    name: `CMS cut at ${at} with a matching Content-Length`,
    expect: { mdn: UPE },
    build: (id) => req(main, id, { contentType: seed.contentType, body: seed.body.subarray(0, at) }),
  }));
  await runGroup(t, "truncation", [...inTransit, ...halfClosed, ...honest]);
  await closeGroup(t, "truncation");
});

// ------------------------------------------------------------------------------------ 8. byte flips

interface Region { from: number; to: number; kind: string }

/** The regions of an (Auth)EnvelopedData ContentInfo made by encryptStream. */
function envelopedRegions(root: H.BerNode): Region[] {
  const ed = H.berAt(root, 1, 0);
  const ris = ed.children[1]!;
  const out: Region[] = [];
  const leaves = (n: H.BerNode): H.BerNode[] => (n.constructed ? n.children.flatMap(leaves) : [n]);
  for (const ktri of ris.children) {
    // The identifier's values (name strings, serial number): flipping them keeps the structure valid.
    for (const leaf of leaves(ktri.children[1]!)) if (leaf.tag !== 0x06 && leaf.end > leaf.contentOff) out.push({ from: leaf.contentOff, to: leaf.end, kind: "rid" });
    const ek = ktri.children[3]!;
    out.push({ from: ek.contentOff, to: ek.end, kind: "encryptedKey" });
  }
  const eci = ed.children[2]!;
  const alg = eci.children[1]!;
  out.push({ from: eci.children[0]!.off, to: eci.children[0]!.end, kind: "eci-content-type" });
  out.push({ from: alg.off, to: alg.end, kind: "cipher-algorithm" });
  for (const c of eci.children[2]!.children) out.push({ from: c.contentOff, to: c.end, kind: "ciphertext" });
  if (ed.children[3] && ed.children[3].tag === 0x04) out.push({ from: ed.children[3].contentOff, to: ed.children[3].end, kind: "mac" });
  return out;
}

/** The buffer offset of the k-th byte of the regions taken together (negative k: from the end). */
function regionByte(regions: Region[], k: number): number {
  const total = regions.reduce((n, r) => n + (r.to - r.from), 0);
  if (k < 0) k += total;
  for (const r of regions) {
    if (k < r.to - r.from) return r.from + k;
    k -= r.to - r.from;
  }
  throw new Error("offset out of range");
}

function offsetsIn(regions: Region[], count: number): number[] {
  const total = regions.reduce((n, r) => n + (r.to - r.from), 0);
  return H.spread(0, total, count).map((k) => regionByte(regions, k));
}

test("byte flips: ciphertext (CBC and GCM), key block, structure, signed content", async (t) => {
  const cbcRegions = envelopedRegions(cbcTree);
  const gcmRegions = envelopedRegions(H.parseBer(seedGcm.body));
  const flipCase = (seed: Msg, label: string, at: number, expect: Expect): Case => ({
    name: `${label}: byte ${at} flipped`, expect,
    build: (id) => req(main, id, { contentType: seed.contentType, body: H.flip(seed.body, at) }),
  });
  const cases: Case[] = [];
  // Spec: ciphertext tampered -> decryption-failed.
  const cbcCipher = cbcRegions.filter((r) => r.kind === "ciphertext");
  for (const at of offsetsIn(cbcCipher, 40)) cases.push(flipCase(seedCbc, "aes256-cbc ciphertext", at, { mdn: "decryption-failed" }));
  // The padding block: the last ciphertext byte, and one in the block before it.
  cases.push(flipCase(seedCbc, "aes256-cbc last block (padding)", regionByte(cbcCipher, -1), { mdn: "decryption-failed" }));
  cases.push(flipCase(seedCbc, "aes256-cbc second-last block (padding via CBC)", regionByte(cbcCipher, -17), { mdn: "decryption-failed" }));
  for (const at of offsetsIn(gcmRegions.filter((r) => r.kind === "ciphertext" || r.kind === "mac"), 20)) cases.push(flipCase(seedGcm, "aes256-gcm ciphertext/tag", at, { mdn: "decryption-failed" }));
  // The key block: our RecipientInfo with a corrupted encryptedKey, or naming another certificate.
  for (const at of offsetsIn(cbcRegions.filter((r) => r.kind === "encryptedKey"), 8)) cases.push(flipCase(seedCbc, "encryptedKey", at, { mdn: "decryption-failed" }));
  for (const at of offsetsIn(cbcRegions.filter((r) => r.kind === "rid"), 6)) cases.push(flipCase(seedCbc, "recipient identifier", at, { mdn: "decryption-failed" }));
  // The structure before the ciphertext (tags, lengths, OIDs, version): garbage that may or may not parse as EnvelopedData.
  const firstCipher = cbcRegions.find((r) => r.kind === "ciphertext")!.from;
  const skip = cbcRegions.filter((r) => r.kind !== "ciphertext");
  const structural = H.spread(0, firstCipher, 60).filter((o) => !skip.some((r) => o >= r.from && o < r.to)).slice(0, 12);
  for (const at of structural) cases.push(flipCase(seedCbc, "EnvelopedData structure", at, { mdn: [UPE, "decryption-failed"] }));
  // Signed only: the signed payload changed -> integrity-check-failed.
  const payloadStart = seedSigned.body.indexOf(PAYLOAD.subarray(0, 40));
  for (const at of H.spread(payloadStart, payloadStart + PAYLOAD.length, 20)) cases.push(flipCase(seedSigned, "signed payload", at, { mdn: "integrity-check-failed" }));
  // Signed only: the signature value itself (raw DER signature part).
  const sigDer = seedSignedDer.body.subarray(seedSignedDer.body.indexOf("\r\n\r\n", seedSignedDer.body.indexOf("application/pkcs7-signature")) + 4);
  const sigTree = H.parseBer(sigDer);
  const sigOff = seedSignedDer.body.length - sigDer.length;
  const signerInfos = H.berAt(sigTree, 1, 0).children.at(-1)!;
  const sigValue = signerInfos.children[0]!.children.at(-1)!;
  for (const at of H.spread(sigValue.contentOff, sigValue.end, 8)) cases.push(flipCase(seedSignedDer, "RSA signature value", sigOff + at, { mdn: "authentication-failed" }));
  await runGroup(t, "byte-flips", cases);
  await closeGroup(t, "byte-flips");
});

// ------------------------------------------------------------------------------------ 9. BER

test("BER: tampered length octets, indefinite lengths without end-of-contents, deep nesting", async (t) => {
  const seed = seedCbc;
  const root = cbcTree;
  const ed = H.berAt(root, 1, 0);
  const ktri = H.berAt(ed, 1, 0);
  const nodes: Array<[string, H.BerNode]> = [
    ["RecipientInfos", ed.children[1]!],
    ["KeyTransRecipientInfo", ktri],
    ["issuerAndSerialNumber", ktri.children[1]!],
    ["serialNumber", ktri.children[1]!.children[1]!],
    ["encryptedKey", ktri.children[3]!],
    ["EnvelopedData version", ed.children[0]!],
    ["contentEncryptionAlgorithm", ed.children[2]!.children[1]!],
    ["IV", ed.children[2]!.children[1]!.children[1]!],
    ["first ciphertext chunk", ed.children[2]!.children[2]!.children[0]!],
  ];
  const lengthMutations: Array<[string, (n: H.BerNode) => Buffer]> = [
    ["+1", (n) => H.encodeLength(n.len! + 1)],
    ["-1", (n) => H.encodeLength(Math.max(0, n.len! - 1))],
    ["0", () => Buffer.from([0])],
    ["4 GiB", () => Buffer.from([0x84, 0xff, 0xff, 0xff, 0xff])],
    ["9 length octets", () => Buffer.from([0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0])],
  ];
  const body = (b: Buffer) => (id: string) => req(main, id, { contentType: seed.contentType, body: b });
  const ANY: Expect = { mdn: [UPE, "decryption-failed"] };
  const cases: Case[] = [];
  for (const [nodeName, node] of nodes) {
    for (const [mutName, mut] of lengthMutations) {
      cases.push({ name: `length of ${nodeName} ${mutName}`, expect: ANY, build: body(H.withLengthOctets(seed.body, node, mut(node))) });
    }
  }
  cases.push(
    { name: "indefinite length on a primitive (encryptedKey)", expect: ANY, build: body(H.withLengthOctets(seed.body, ktri.children[3]!, Buffer.from([0x80]))) },
    { name: "reserved length octet 0xff (serialNumber)", expect: ANY, build: body(H.withLengthOctets(seed.body, ktri.children[1]!.children[1]!, Buffer.from([0xff]))) },
    {
      // Lengths in more octets than needed are BER (X.690 8.1.3.5 note 2); the parents' lengths fixed up.
      name: "non-minimal length octets on encryptedKey (valid BER)", expect: { mdn: "processed" },
      build: body(H.replaceNode(seed.body, root, ktri.children[3]!, Buffer.concat([Buffer.from([0x04, 0x84, 0, 0]), H.encodeLength(ktri.children[3]!.len!).subarray(1), seed.body.subarray(ktri.children[3]!.contentOff, ktri.children[3]!.end)]))),
    },
  );
  // Indefinite lengths without their end-of-contents.
  const allIndefinite = H.reencode(seed.body, root, new Set(H.constructedDownTo(root, 99)));
  for (const drop of [2, 4, 6, 8, 10]) {
    cases.push({ name: `every length indefinite, last ${drop / 2} end-of-contents missing`, expect: ANY, build: body(allIndefinite.subarray(0, allIndefinite.length - drop)) });
  }
  {
    // The RecipientInfos' SEQUENCE made indefinite with its end-of-contents left out.
    const indefRi = H.reencode(seed.body, root, new Set([root, H.berAt(root, 1), ed, ktri, ed.children[2]!, ed.children[2]!.children[2]!]));
    const t2 = H.parseBer(indefRi);
    const k2 = H.berAt(t2, 1, 0, 1, 0);
    const noEoc = Buffer.concat([indefRi.subarray(0, k2.end - 2), indefRi.subarray(k2.end)]);
    cases.push({ name: "an indefinite KeyTransRecipientInfo without its end-of-contents", expect: ANY, build: body(noEoc) });
  }
  // Deep nesting.
  const deepIndef = (depth: number, tag = 0x30) => Buffer.alloc(depth * 2, Buffer.from([tag, 0x80]));
  const deepDefinite = (depth: number): Buffer => {
    let b = Buffer.from([0x05, 0x00]);
    for (let i = 0; i < depth; i++) b = Buffer.concat([Buffer.from([0x30]), H.encodeLength(b.length), b]);
    return b;
  };
  const ciHead = Buffer.concat([Buffer.from([0x30, 0x80, 0x06, 0x09]), H.oidContent("1.2.840.113549.1.7.3"), Buffer.from([0xa0, 0x80])]);
  cases.push(
    { name: "100000 nested indefinite SEQUENCEs", expect: { mdn: UPE }, build: body(deepIndef(100_000)) },
    { name: "100000 nested indefinite SEQUENCEs, all closed", expect: { mdn: UPE }, build: body(Buffer.concat([deepIndef(100_000), Buffer.alloc(200_000)])) },
    { name: "5000 nested definite SEQUENCEs", expect: { mdn: UPE }, build: body(deepDefinite(5000)) },
    { name: "EnvelopedData content nested 100000 deep", expect: ANY, build: body(Buffer.concat([ciHead, deepIndef(100_000)])) },
    {
      name: "RecipientInfos holding 50000 nested SEQUENCEs", expect: ANY,
      build: body(H.replaceNode(seed.body, root, ed.children[1]!, Buffer.concat([Buffer.from([0x31]), H.encodeLength(100_000 + 100_000), deepIndef(50_000), Buffer.alloc(100_000)]))),
    },
    {
      name: "ciphertext as 100000 nested constructed OCTET STRINGs", expect: ANY,
      build: body(H.replaceNode(seed.body, root, ed.children[2]!.children[2]!, Buffer.concat([Buffer.from([0xa0, 0x80]), deepIndef(100_000, 0x24), Buffer.alloc(200_002)]))),
    },
    {
      name: "a signature part of 50000 nested SEQUENCEs", expect: { mdn: UPE },
      build: (id) => req(main, id, signedMsg(payloadEntity("deep.edi", Buffer.from("x\r\n")), MYCO, { signatureCte: "binary", mutateSignature: () => deepIndef(50_000) })),
    },
    {
      name: "a high tag number in place of the version", expect: ANY,
      build: body(H.replaceNode(seed.body, root, ed.children[0]!, Buffer.from([0x1f, 0x81, 0x80, 0x00, 0x01, 0x00]))),
    },
  );
  await runGroup(t, "ber", cases);
  await closeGroup(t, "ber");
});

// ------------------------------------------------------------------------------------ 10. OIDs

const OIDS = {
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  envelopedData: "1.2.840.113549.1.7.3",
  aes256cbc: "2.16.840.1.101.3.4.1.42",
  rsaEncryption: "1.2.840.113549.1.1.1",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  zlib: "1.2.840.113549.1.9.16.3.8",
  unknown: "1.3.6.1.4.1.99999.42.7",
};

test("unknown OIDs: content type, cipher, key encryption, digest, signature, compression", async (t) => {
  const seed = seedCbc;
  const root = cbcTree;
  const swapOid = (buf: Buffer, tree: H.BerNode, from: string, to: string | Buffer, nth = 0): Buffer => {
    const found = H.findOids(buf, tree, H.oidContent(from))[nth];
    assert.ok(found, `OID ${from} #${nth} not found`);
    return H.replaceOid(buf, tree, found, Buffer.isBuffer(to) ? to : H.oidContent(to));
  };
  const enc = (name: string, from: string, to: string | Buffer, expect: Expect, nth = 0): Case => ({
    name, expect, build: (id) => req(main, id, { contentType: seed.contentType, body: swapOid(seed.body, root, from, to, nth) }),
  });
  /** An OID inside the SignedData, found by where it is: (SignedData, SignerInfo) -> the OID node. */
  const sig = (name: string, at: (sd: H.BerNode, si: H.BerNode) => H.BerNode, expect: Expect): Case => ({
    name, expect,
    build: (id) => req(main, id, signedMsg(payloadEntity("oid.edi", Buffer.from("oid\r\n")), MYCO, {
      mutateSignature: (cms) => {
        const tree = H.parseBer(cms);
        const sd = H.berAt(tree, 1, 0);
        const si = sd.children.at(-1)!.children[0]!;
        const node = at(sd, si);
        assert.equal(node.tag, 0x06, `${name}: not an OID`);
        return H.replaceOid(cms, tree, node, H.oidContent(OIDS.unknown));
      },
    })),
  });
  const afterAttrs = (si: H.BerNode) => si.children[si.children.findIndex((c) => c.tag === 0xa0) + 1]!;
  const cases: Case[] = [
    enc("ContentInfo content type unknown", OIDS.envelopedData, OIDS.unknown, { mdn: UPE }),
    enc("ContentInfo says SignedData around EnvelopedData", OIDS.envelopedData, OIDS.signedData, { mdn: UPE }),
    enc("ContentInfo content type: a 400-arc OID", OIDS.envelopedData, H.oidContent(`1.3.${Array.from({ length: 400 }, (_, i) => i + 1).join(".")}`), { mdn: UPE }),
    enc("ContentInfo content type: a non-minimal OID encoding", OIDS.envelopedData, Buffer.concat([Buffer.from([0x80]), H.oidContent(OIDS.envelopedData)]), { mdn: UPE }),
    enc("content-encryption algorithm unknown", OIDS.aes256cbc, OIDS.unknown, { mdn: UPE }),
    enc("key-encryption algorithm unknown", OIDS.rsaEncryption, OIDS.unknown, { mdn: UPE }),
    enc("encrypted content type unknown (only id-data is meaningful)", OIDS.data, OIDS.unknown, { mdn: "processed" }),
    sig("SignedData digestAlgorithms: unknown digest", (sd) => H.berAt(sd, 1, 0, 0), { mdn: "processed" }),
    sig("SignerInfo digestAlgorithm: unknown digest", (_sd, si) => H.berAt(si, 2, 0), { mdn: UPE }),
    sig("SignerInfo signatureAlgorithm unknown", (_sd, si) => H.berAt(afterAttrs(si), 0), { mdn: UPE }),
    // Not covered by the signature, and not compared with the signed content-type attribute
    // (RFC 5652 §11.1 wants them equal): taken. Pinned as observed; see the suite's report.
    sig("encapsulated content type unknown", (sd) => H.berAt(sd, 2, 0), { mdn: "processed" }),
    {
      name: "CompressedData compression algorithm unknown", expect: { mdn: "decompression-failed" },
      build: async (id) => {
        const cms = await H.compressBytes(payloadEntity("zlib-oid.edi", Buffer.from("z\r\n")));
        return req(main, id, { contentType: H.COMPRESSED_TYPE, body: swapOid(cms, H.parseBer(cms), OIDS.zlib, OIDS.unknown) });
      },
    },
    {
      name: "multipart/signed micalg unknown (the signature's own digest decides)", expect: { mdn: "processed" },
      build: (id) => req(main, id, signedMsg(payloadEntity("micalg.edi", Buffer.from("m\r\n")), MYCO, { boundary: "micalg1", contentType: 'multipart/signed; protocol="application/pkcs7-signature"; micalg=x-whirlpool-9000; boundary="micalg1"' })),
    },
  ];
  await runGroup(t, "oids", cases);
  await closeGroup(t, "oids");
});

// ------------------------------------------------------------------------------------ 11. counts

test("too many RecipientInfos (65+), certificates (65+), signers (17+)", async (t) => {
  const part1 = payloadEntity("limits.edi", Buffer.from("limits\r\n".repeat(20)));
  const ris = (n: number, expect: Expect): Case => ({
    name: `${n} RecipientInfos (ours last)`, expect,
    build: async (id) => req(main, id, await signedEncrypted(part1, { recipients: [...Array.from({ length: n - 1 }, () => OTHER.certificate), ACME.certificate] })),
  });
  const certs = (n: number, expect: Expect): Case => ({
    name: `${n} certificates in the SignedData`, expect,
    build: (id) => req(main, id, signedMsg(part1, MYCO, { chain: Array.from({ length: n - 1 }, (_, i) => (i % 2 ? OTHER : ACME).certificate) })),
  });
  const signers = (n: number, expect: Expect): Case => ({
    name: `${n} SignerInfos (copies of the good one)`, expect,
    build: (id) => req(main, id, signedMsg(part1, MYCO, {
      mutateSignature: (cms) => {
        const tree = H.parseBer(cms);
        const infos = H.berAt(tree, 1, 0).children.at(-1)!;
        const one = cms.subarray(infos.children[0]!.off, infos.children[0]!.end);
        const content = Buffer.concat(Array.from({ length: n }, () => one));
        return H.replaceNode(cms, tree, infos, Buffer.concat([Buffer.from([0x31]), H.encodeLength(content.length), content]));
      },
    })),
  });
  const cases: Case[] = [
    ris(64, { mdn: "processed" }),
    ris(65, { mdn: UPE, human: /RecipientInfos[^]*64|64[^]*RecipientInfos/ }),
    ris(200, { mdn: UPE, human: /RecipientInfos/ }),
    ris(1100, { mdn: UPE, human: /RecipientInfos/ }),
    certs(64, { mdn: "processed" }),
    certs(65, { mdn: UPE, human: /certificates[^]*64|64[^]*certificates/ }),
    certs(300, { mdn: UPE, human: /certificates/ }),
    signers(16, { mdn: "processed" }),
    signers(17, { mdn: UPE, human: /16/ }),
    signers(500, { mdn: UPE, human: /16/ }),
  ];
  await runGroup(t, "counts", cases, 4);
  await closeGroup(t, "counts");
});

// ------------------------------------------------------------------------------------ 12. bombs

/** Bytes under a folder (files only). */
function folderBytes(dir: string): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    try {
      const st = statSync(join(dir, name));
      n += st.isDirectory() ? folderBytes(join(dir, name)) : st.size;
    } catch { /* gone meanwhile */ }
  }
  return n;
}

test("bombs: CompressedData inflating past maxInflatedBytes (1 MiB); compress-before-signing by a stranger", async (t) => {
  const zerosEntity = (n: number, name: string) => H.zeros(n, Buffer.from(`Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="${name}"\r\n\r\n`));
  const MiB = 1024 * 1024;
  const outer = (n: number, expect: Expect): Case => ({
    name: `compressed ${n / MiB} MiB of zeros (unsigned)`, expect,
    build: async (id) => req(main, id, { contentType: H.COMPRESSED_TYPE, body: await H.compressBytes(zerosEntity(n, "bomb.bin")) }),
  });
  const beforeSigning = (n: number, by: TestIdentity, expect: Expect, encrypt = false): Case => ({
    name: `compress-before-signing, ${n / MiB} MiB, signed by ${by === MYCO ? "the partner" : "a stranger"}${encrypt ? ", encrypted" : ""}`, expect,
    build: async (id) => {
      const part1 = await H.compressedEntity(zerosEntity(n, "cbs.bin"));
      const s = H.signEntity(part1, signer(by));
      return req(main, id, encrypt ? await encryptedMsg(H.signedAsEntity(s)) : { contentType: s.contentType, body: s.body });
    },
  });
  const afterSigning = (n: number): Case => ({
    name: `sign-then-compress, ${n / MiB} MiB, encrypted`, expect: { mdn: INSIDE_CBC },
    build: async (id) => {
      const part1 = Buffer.concat([Buffer.from('Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="sc.bin"\r\n\r\n'), Buffer.alloc(n)]);
      const s = H.signEntity(part1, signer(MYCO));
      return req(main, id, await encryptedMsg(await H.compressedEntity(H.signedAsEntity(s))));
    },
  });
  const cases: Case[] = [
    outer(512 * 1024, { mdn: "processed" }),
    outer(2 * MiB, { mdn: "decompression-failed" }),
    outer(64 * MiB, { mdn: "decompression-failed" }),
    beforeSigning(2 * MiB, MYCO, { mdn: "decompression-failed" }),
    beforeSigning(64 * MiB, MYCO, { mdn: INSIDE_CBC }, true),
    beforeSigning(2 * MiB, OTHER, { mdn: "authentication-failed" }),
    beforeSigning(2 * MiB, TWIN, { mdn: INSIDE_CBC }, true),
    afterSigning(2 * MiB),
    {
      name: "two compression layers", expect: { mdn: "decompression-failed" },
      build: async (id) => req(main, id, { contentType: H.COMPRESSED_TYPE, body: await H.compressBytes(await H.compressedEntity(payloadEntity("twice.edi", Buffer.from("2\r\n")))) }),
    },
    {
      name: "a corrupted zlib stream", expect: { mdn: "decompression-failed" },
      build: async (id) => {
        const c = Buffer.from(await H.compressBytes(payloadEntity("corrupt.edi", PAYLOAD)));
        for (let i = Math.floor(c.length / 2); i < c.length / 2 + 40; i++) c[i] = c[i]! ^ 0x5a;
        return req(main, id, { contentType: H.COMPRESSED_TYPE, body: c });
      },
    },
  ];
  await runGroup(t, "bombs", cases, 3);

  // A stranger's compress-before-signing bomb: the signature is checked before inflating, so the
  // inbox temp folder and the spool never hold more than the compressed part.
  const part1 = await H.compressedEntity(zerosEntity(128 * MiB, "stranger-bomb.bin"));
  const s = H.signEntity(part1, signer(OTHER));
  const watched = [join(inboxOf(MAIN_DATA, "myco"), ".as2kit-tmp"), join(MAIN_DATA, "spool")];
  let peak = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      peak = Math.max(peak, watched.reduce((n, d) => n + folderBytes(d), 0));
      await sleep(5);
    }
  })();
  const problems = await runCase("bombs", { name: "stranger's 128 MiB compress-before-signing bomb", expect: { mdn: "authentication-failed" }, build: (id) => req(main, id, { contentType: s.contentType, body: s.body }) });
  watching = false;
  await watcher;
  groupCounts.bombs! += 1;
  pending.push(...problems);
  expectTrue(peak <= part1.length, `the temp folders grew to ${peak} bytes; the compressed part is ${part1.length}`);
  t.diagnostic(`stranger bomb: compressed part ${part1.length} bytes, temp folders peaked at ${peak} bytes`);
  await closeGroup(t, "bombs");
});

// ------------------------------------------------------------------------------------ 13. wrong keys

test("wrong keys: encrypted for another certificate, corrupted key blocks, strangers' signatures", async (t) => {
  const part1 = payloadEntity("wrongkey.edi", Buffer.from("wrong key\r\n".repeat(30)));
  const as = (as2From: string) => [["AS2-From", as2From]] as H.HeaderList;
  const cases: Case[] = [];
  for (const from of ["MYCO", "STRICT"]) {
    for (const cipher of ["aes128-cbc", "aes256-cbc", "3des", "aes128-gcm", "aes256-gcm"] as ContentCipher[]) {
      cases.push({
        name: `${from}: ${cipher} for another certificate`, expect: { mdn: "decryption-failed" },
        build: async (id) => req(main, id, await signedEncrypted(part1, { recipients: [OTHER.certificate], cipher }), as(from)),
      });
    }
    cases.push(
      {
        name: `${from}: unsigned, for another certificate`, expect: { mdn: "decryption-failed" },
        build: async (id) => req(main, id, await encryptedMsg(part1, [OTHER.certificate]), as(from)),
      },
      {
        name: `${from}: for a twin certificate (MYCO's subject, another key)`, expect: { mdn: "decryption-failed" },
        build: async (id) => req(main, id, await signedEncrypted(part1, { recipients: [TWIN.certificate] }), as(from)),
      },
    );
    const ek = H.berAt(cbcTree, 1, 0, 1, 0, 3);
    for (const [name, replacement] of [
      ["all zeros", Buffer.alloc(ek.len!)],
      ["all 0xff", Buffer.alloc(ek.len!, 0xff)],
      ["255 bytes", seedCbc.body.subarray(ek.contentOff, ek.contentOff + 255)],
      ["the stranger's key block", null],
      ["reversed", Buffer.from(seedCbc.body.subarray(ek.contentOff, ek.end)).reverse()],
    ] as Array<[string, Buffer | null]>) {
      cases.push({
        name: `${from}: our RecipientInfo with an encryptedKey ${name}`, expect: { mdn: "decryption-failed" },
        build: async (id) => {
          if (replacement) return req(main, id, { contentType: seedCbc.contentType, body: H.replaceNode(seedCbc.body, cbcTree, ek, Buffer.concat([Buffer.from([0x04]), H.encodeLength(replacement.length), replacement])) }, as(from));
          // Encrypted for [ACME, OTHER]; ACME's key block replaced by OTHER's.
          const m = await signedEncrypted(part1, { recipients: [ACME.certificate, OTHER.certificate] });
          const tree = H.parseBer(m.body);
          const mine = H.berAt(tree, 1, 0, 1, 0, 3);
          const theirs = H.berAt(tree, 1, 0, 1, 1, 3);
          return req(main, id, { contentType: m.contentType, body: H.replaceNode(m.body, tree, mine, Buffer.from(m.body.subarray(theirs.off, theirs.end))) }, as(from));
        },
      });
    }
    cases.push(
      {
        name: `${from}: signed by a stranger (inside CBC)`, expect: { mdn: INSIDE_CBC },
        build: async (id) => req(main, id, await signedEncrypted(part1, { by: OTHER }), as(from)),
      },
      {
        name: `${from}: signed by a twin (MYCO's subject, another key; inside CBC)`, expect: { mdn: INSIDE_CBC },
        build: async (id) => req(main, id, await signedEncrypted(part1, { by: TWIN }), as(from)),
      },
      {
        name: `${from}: MYCO's certificate attached, a stranger's key signing (inside CBC)`, expect: { mdn: INSIDE_CBC },
        build: async (id) => req(main, id, await signedEncrypted(part1, { by: { ...OTHER, certificate: MYCO.certificate } }), as(from)),
      },
      {
        name: `${from}: two RecipientInfos, ours second`, expect: { mdn: "processed" },
        build: async (id) => req(main, id, await signedEncrypted(part1, { recipients: [OTHER.certificate, ACME.certificate] }), as(from)),
      },
    );
  }
  cases.push(
    { name: "STRICT: encrypted (CBC) but unsigned", expect: { mdn: INSIDE_CBC }, build: async (id) => req(main, id, await encryptedMsg(part1), as("STRICT")) },
    { name: "STRICT: plain", expect: { mdn: "insufficient-message-security" }, build: (id) => req(main, id, { contentType: "application/edifact", body: PAYLOAD }, as("STRICT")) },
    { name: "SEALED: signed but unencrypted", expect: { mdn: "insufficient-message-security" }, build: (id) => req(main, id, signedMsg(part1), as("SEALED")) },
    { name: "SEALED: plain", expect: { mdn: "insufficient-message-security" }, build: (id) => req(main, id, { contentType: "application/edifact", body: PAYLOAD }, as("SEALED")) },
    { name: "SEALED: encrypted for another certificate", expect: { mdn: "decryption-failed" }, build: async (id) => req(main, id, await signedEncrypted(part1, { recipients: [OTHER.certificate] }), as("SEALED")) },
  );
  await runGroup(t, "wrong-keys", cases);
  await closeGroup(t, "wrong-keys");
});

// ------------------------------------------------------------------------------------ 14. file names

test("file names: traversal, controls, C1, bidi, reserved characters, RFC 2231", async (t) => {
  const inbox = inboxOf(MAIN_DATA, "myco");
  const body = Buffer.from("file name test\r\n");
  const fromId = (id: string) => `${id.replace(/^<|>$/g, "").replace(/[^A-Za-z0-9._@-]/g, "_").replace(/^\.+/, "")}.dat`;
  const fn = (name: string, disposition: string | Buffer, expected: string | ((id: string) => string)): Case => ({
    name: `file name ${name}`, expect: { mdn: "processed" },
    build: async (id) => {
      const part1 = H.entity(["Content-Type: application/edifact", Buffer.concat([Buffer.from("Content-Disposition: "), Buffer.isBuffer(disposition) ? disposition : Buffer.from(disposition, "latin1")])], body);
      return req(main, id, await signedEncrypted(part1));
    },
    check: async (r) => {
      const ev = await main.server.waitFor((e) => e.event === "message" && e.messageId === r.id);
      const file = ev.file as string | undefined;
      if (!file) return ["nothing stored"];
      const want = typeof expected === "string" ? expected : expected(r.id);
      const p: string[] = [];
      if (dirname(file) !== inbox) p.push(`stored in ${dirname(file)}, not in the inbox ${inbox}`);
      if (basename(file) !== want) p.push(`stored as ${JSON.stringify(basename(file))}, expected ${JSON.stringify(want)}`);
      if (H.UNSAFE_NAME.test(basename(file)) || /^[.\s]/.test(basename(file))) p.push(`unsafe stored name ${JSON.stringify(basename(file))}`);
      if (!existsSync(file) || !readFileSync(file).equals(body)) p.push("the stored bytes differ");
      return p;
    },
  });
  const u = (s: string) => Buffer.from(s, "utf8");
  const long = `F26${"a".repeat(300)}.edi`;
  const cases: Case[] = [
    fn("../ traversal", 'attachment; filename="../../../../etc/F01passwd"', "F01passwd"),
    fn("..\\ traversal (quoted)", 'attachment; filename="..\\..\\F02win.ini"', "F02win.ini"),
    fn("..\\ traversal (unquoted)", "attachment; filename=..\\..\\F03win.ini", "F03win.ini"),
    fn("absolute path", 'attachment; filename="/etc/F04abs.edi"', "F04abs.edi"),
    fn("drive letter path", "attachment; filename=C:\\Windows\\F05sys.ini", "F05sys.ini"),
    fn("dot segments in the middle", 'attachment; filename="a/../../F06b.edi"', "F06b.edi"),
    fn("NUL", Buffer.from('attachment; filename="F07nul\x00.edi"', "latin1"), "F07nul_.edi"),
    fn("C0 controls", Buffer.from('attachment; filename="F08\x01\x1f.edi"', "latin1"), "F08__.edi"),
    fn("DEL", Buffer.from('attachment; filename="F09\x7f.edi"', "latin1"), "F09_.edi"),
    fn("a raw C1 byte", Buffer.from('attachment; filename="F10\x85.edi"', "latin1"), "F10_.edi"),
    fn("a tab", Buffer.from('attachment; filename="F11\tname.edi"', "latin1"), "F11_name.edi"),
    fn("C1 via RFC 2231", "attachment; filename*=UTF-8''F12%C2%85%C2%9B.edi", "F12__.edi"),
    fn("right-to-left override", "attachment; filename*=UTF-8''F13%E2%80%AEtxt.exe", "F13_txt.exe"),
    fn("bidi isolate", "attachment; filename*=UTF-8''F14%E2%81%A6x%E2%81%A9.edi", "F14_x_.edi"),
    fn("right-to-left mark", "attachment; filename*=UTF-8''F15%E2%80%8F.edi", "F15_.edi"),
    fn("Arabic letter mark", "attachment; filename*=UTF-8''F16%D8%9C.edi", "F16_.edi"),
    fn("byte-order mark", "attachment; filename*=UTF-8''F17%EF%BB%BF.edi", "F17_.edi"),
    fn("line separator", "attachment; filename*=UTF-8''F18%E2%80%A8.edi", "F18_.edi"),
    fn("Windows-reserved characters", 'attachment; filename="F19<>:\\"|?*.edi"', "F19_______.edi"),
    fn("leading dots", 'attachment; filename="...F20hidden"', "F20hidden"),
    fn("a dot file", 'attachment; filename=".F21bashrc"', "F21bashrc"),
    fn("trailing dots and blanks", 'attachment; filename="F22name. . ."', "F22name"),
    fn("only dots", 'attachment; filename=".."', fromId),
    fn("only a slash", 'attachment; filename="/"', fromId),
    fn("empty", 'attachment; filename=""', fromId),
    fn("300 characters", `attachment; filename="${long}"`, `F26${"a".repeat(193)}.edi`),
    fn("300 bytes of euro signs via RFC 2231", `attachment; filename*=UTF-8''F27${"%E2%82%AC".repeat(100)}.edi`, `F27${"\u20ac".repeat(64)}.edi`),
    fn("RFC 2231 UTF-8", "attachment; filename*=UTF-8''F28%E2%82%AC.edi", "F28\u20ac.edi"),
    fn("RFC 2231 beside a plain fallback", "attachment; filename=\"F29fallback.edi\"; filename*=UTF-8''F29%E2%82%AC.edi", "F29\u20ac.edi"),
    fn("RFC 2231 with encoded ../", "attachment; filename*=UTF-8''..%2F..%2FF30x.edi", "F30x.edi"),
    fn("RFC 2231 with encoded ..\\", "attachment; filename*=UTF-8''..%5C..%5CF31x.edi", "F31x.edi"),
    fn("RFC 2231 with an encoded NUL", "attachment; filename*=UTF-8''F32%00.edi", "F32_.edi"),
    fn("RFC 2231 continuations", "attachment; filename*0*=UTF-8''F33%E2%82; filename*1*=%AC.edi", "F33\u20ac.edi"),
    fn("RFC 2231 plain continuations", 'attachment; filename*0="F34part"; filename*1="two.edi"', "F34parttwo.edi"),
    fn("RFC 2231 ISO-8859-1", "attachment; filename*=ISO-8859-1''F35%E9t%E9.edi", "F35\u00e9t\u00e9.edi"),
    fn("RFC 2231 invalid UTF-8 (the fallback wins)", "attachment; filename*=UTF-8''F36%FF.edi; filename=\"F36fallback.edi\"", "F36fallback.edi"),
    fn("RFC 2231 unknown charset (the fallback wins)", "attachment; filename*=x-unknown''F37abc.edi; filename=\"F37fallback.edi\"", "F37fallback.edi"),
    fn("RFC 2231 with a bad escape", "attachment; filename*=UTF-8''F38%ZZ.edi", "F38%ZZ.edi"),
    fn("raw UTF-8 in a quoted name (read as latin1)", u('attachment; filename="F39\u20ac.edi"'), "F39\u00e2_\u00ac.edi"),
    fn("only reserved characters", 'attachment; filename="<>"', "__"),
    fn("RFC 2231 traversal to an absolute path", "attachment; filename*=UTF-8''%2Fetc%2FF41cron.d", "F41cron.d"),
    fn("a folded header line", Buffer.from('attachment;\r\n filename="F42folded.edi"', "latin1"), "F42folded.edi"),
  ];
  await runGroup(t, "file-names", cases);
  // Nothing with these names anywhere but the inbox.
  const stray = listTree(parent).filter((p) => /F\d\d/.test(basename(p)) && !p.endsWith(sep) && dirname(join(parent, p)) !== inbox);
  expectTrue(stray.length === 0, `files named by the sender outside the inbox: ${JSON.stringify(stray)}`);
  await closeGroup(t, "file-names");
});

// ------------------------------------------------------------------------------------ 15. async MDN URLs

test("async MDN URLs: the partner's origin gets the MDN; other hosts and schemes do not", async (t) => {
  const part1 = payloadEntity("async.edi", Buffer.from("async\r\n".repeat(10)));
  const A = allowedMdn.port;
  const O = otherMdn.port;
  const hitFor = (rec: Recorder, id: string) => rec.hits.find((h) => {
    try {
      const m = parseMdn(h.headers, h.body);
      return m.originalMessageId !== undefined && normId(m.originalMessageId) === normId(id);
    } catch {
      return false;
    }
  });
  const delivered = (disp: Disp) => async (r: Result): Promise<string[]> => {
    for (let i = 0; i < 200 && !hitFor(allowedMdn, r.id); i++) await sleep(50);
    const hit = hitFor(allowedMdn, r.id);
    if (!hit) return ["the allowed URL never received the MDN"];
    const mdn = parseMdn(hit.headers, hit.body);
    const got = dispositionOf(mdn);
    const v = verifyMdn(mdn, { partnerCertificates: [ACME.certificate], requireSigned: true, expectedMessageId: r.id });
    return [
      ...(got === disp ? [] : [`the async MDN says ${got}, expected ${disp}`]),
      ...(v.checks.signature.verdict === "pass" ? [] : [`the async MDN signature: ${v.checks.signature.detail}`]),
    ];
  };
  const refused = async (r: Result): Promise<string[]> => {
    const p: string[] = [];
    const ev = await main.server.waitFor((e) => e.event === "mdn-failed" && typeof e.messageId === "string" && normId(e.messageId) === normId(r.id), 15_000).catch(() => undefined);
    if (!ev) p.push("no mdn-failed event");
    else if (!/not allowed/.test(String(ev.detail))) p.push(`the mdn-failed event says ${JSON.stringify(ev.detail)}, not "not allowed"`);
    const runId = await runIdOf(main, r.id);
    if (!runId) return [...p, "no job record"];
    for (let i = 0; i < 40; i++) {
      if ((jobRecord(main, runId).warnings ?? []).some((w: string) => /not allowed/.test(w))) break;
      await sleep(50);
    }
    const rec = jobRecord(main, runId);
    if (!(rec.warnings ?? []).some((w: string) => /not allowed/.test(w))) p.push(`job warnings ${JSON.stringify(rec.warnings)} do not say "not allowed"`);
    if (rec.state !== "SUCCESS") p.push(`the message itself should be processed; job is ${rec.state}`);
    return p;
  };
  const asyncCase = (name: string, url: string, check: Case["check"], m?: () => Promise<Msg>): Case => ({
    name: `Receipt-Delivery-Option ${name}`, expect: { status: 200, emptyBody: true }, check, stores: !m,
    build: async (id) => req(main, id, m ? await m() : await signedEncrypted(part1), [["Receipt-Delivery-Option", url]]),
  });
  const cases: Case[] = [
    asyncCase("the partner's origin", `http://127.0.0.1:${A}/mdn`, delivered("processed")),
    asyncCase("the partner's origin, deeper path and query", `http://127.0.0.1:${A}/a/b/c?x=1&y=2`, delivered("processed")),
    asyncCase("the partner's origin, for a message not encrypted for us", `http://127.0.0.1:${A}/mdn-fail`, delivered("decryption-failed"), () => signedEncrypted(part1, { recipients: [OTHER.certificate] })),
    asyncCase("the partner's origin, for a message signed by a stranger (inside CBC)", `http://127.0.0.1:${A}/mdn-fail2`, delivered(INSIDE_CBC), () => signedEncrypted(part1, { by: OTHER })),
    asyncCase("the partner's origin, for a bomb", `http://127.0.0.1:${A}/mdn-fail3`, delivered("decompression-failed"), async () => ({ contentType: H.COMPRESSED_TYPE, body: await H.compressBytes(H.zeros(4 * 1024 * 1024, Buffer.from("Content-Type: application/octet-stream\r\n\r\n"))) })),
    asyncCase("another port", `http://127.0.0.1:${O}/mdn`, refused),
    asyncCase("another host name for the same server", `http://localhost:${A}/mdn`, refused),
    asyncCase("https on the partner's port", `https://127.0.0.1:${A}/mdn`, refused),
    asyncCase("IPv6 loopback", `http://[::1]:${A}/mdn`, refused),
    asyncCase("a cloud metadata address", "http://169.254.169.254/latest/meta-data/", refused),
    asyncCase("user info posing as the host", `http://127.0.0.1:${A}@127.0.0.2:${O}/mdn`, refused),
    asyncCase("a look-alike host", `http://127.0.0.1.nip.io:${A}/mdn`, refused),
    asyncCase("mailto:", "mailto:edi@myco.example", refused),
    asyncCase("ftp:", `ftp://127.0.0.1:${A}/mdn`, refused),
    asyncCase("file:", "file:///etc/passwd", refused),
    asyncCase("javascript:", "javascript:alert(1)", refused),
    asyncCase("not a URL", "over there, please", refused),
    asyncCase("the partner's origin, redirecting elsewhere", `http://127.0.0.1:${A}/redirect`, async (r) => {
      for (let i = 0; i < 100 && !allowedMdn.hits.some((h) => h.path === "/redirect" && hitFor({ port: 0, hits: [h] }, r.id)); i++) await sleep(50);
      return allowedMdn.hits.some((h) => h.path === "/redirect") ? [] : ["the allowed URL was not tried"];
    }),
  ];
  await runGroup(t, "async-mdn", cases);
  await sleep(1500);
  expectTrue(otherMdn.hits.length === 0, `MDNs reached a URL outside the partner's origin (redirects included): ${JSON.stringify(otherMdn.hits.map((h) => h.path))}`);
  for (const l of ledger.filter((x) => x.group === "async-mdn")) {
    const c = cases.find((x) => x.name === l.name)!;
    if (c.check === refused) expectTrue(hitFor(allowedMdn, l.id) === undefined, `${l.name}: the MDN reached the partner's server anyway`);
  }
  await closeGroup(t, "async-mdn");
});

// ------------------------------------------------------------------------------------ 16. slow clients

test("slow clients: trickled headers, too many connections, too many header lines", async (t) => {
  const seed = seedCbc;
  const good = (id: string) => req(slow, id, seed);
  const trickle = (head: Buffer, everyMs: number, bytes: number): H.Piece[] => {
    const out: H.Piece[] = [];
    for (let i = 0; i < head.length; i += bytes) out.push(head.subarray(i, i + bytes), { delayMs: everyMs });
    return out;
  };
  const cutOff = (r: Result): string[] => {
    const p: string[] = [];
    if (r.res.status !== undefined && r.res.status !== 408) p.push(`expected 408 or a close, got ${describeAnswer(r)}`);
    if (r.res.timedOut) p.push("never cut off");
    else if (r.res.closedAfterMs < SLOW.headersTimeout * 1000 - 100 || r.res.closedAfterMs > SLOW.headersTimeout * 1000 + 2500) p.push(`cut off after ${r.res.closedAfterMs} ms (headersTimeout is ${SLOW.headersTimeout} s)`);
    return p;
  };
  const slowCase = (name: string, pieces: (id: string) => H.Piece[]): Case => ({
    name: `headers trickled: ${name}`, srv: slow, expect: { statusOrClosed: 408 }, check: cutOff,
    build: (id) => ({ headers: [], head: Buffer.alloc(0), pieces: pieces(id), timeoutMs: 12_000 }),
  });
  const headOf = (id: string) => H.requestHead("POST", "/as2", as2Headers(slow, id, seed.contentType, seed.body.length));
  const trickled: Case[] = [
    slowCase("one byte every 100 ms", (id) => trickle(headOf(id), 100, 1)),
    slowCase("ten bytes every 300 ms", (id) => trickle(headOf(id), 300, 10)),
    slowCase("the request line, then nothing", () => [Buffer.from("POST /as2 HTTP/1.1\r\n"), { delayMs: 6000 }]),
    slowCase("all but the blank line, then nothing", (id) => [headOf(id).subarray(0, -2), { delayMs: 6000 }]),
    slowCase("a header line every 700 ms", (id) => trickle(headOf(id), 700, 40)),
    slowCase("nothing at all", () => [{ delayMs: 6000 }]),
    {
      name: "headers complete within the timeout, body afterwards (taken)", srv: slow, expect: { mdn: "processed" },
      build: (id) => ({ headers: [], head: Buffer.alloc(0), pieces: [...trickle(headOf(id), 50, 200), seed.body] }),
    },
  ];
  // At most 4 at once: the fifth connection would be one too many for the control case.
  await runGroup(t, "slow-clients", trickled, 4);

  // Header lines: maxHeaderCount 40 on this receiver.
  const padded = (total: number): Case => ({
    name: `${total} header lines (maxHeaderCount ${SLOW.maxHeaderCount})`, srv: slow,
    expect: total > SLOW.maxHeaderCount ? { status: 431 } : { mdn: "processed" },
    build: (id) => {
      const r = good(id);
      const pad = total - r.headers.length;
      return { ...r, headers: [...r.headers, ...Array.from({ length: pad }, (_, i) => [`X-Pad-${i}`, "p"] as [string, string])], pieces: total > SLOW.maxHeaderCount ? [{ delayMs: 200 }, r.body!] : undefined };
    },
  });
  await runGroup(t, "slow-clients", [padded(39), padded(40), padded(41), padded(60), padded(200), padded(1000)], 3);

  // Connections: hold maxConnections (5) open mid-body; the next ones get 503 with Retry-After.
  // With receive.workers > 1 the supervisor counts a connection until its worker reports it
  // closed (an IPC message after the socket's close): the previous group's last connections can
  // still be counted for a moment after our side saw them close (CI found one held connection
  // answered 503 for that). Give those reports time to arrive before filling the limit.
  await sleep(1500);
  const heldIds = Array.from({ length: SLOW.maxConnections }, () => newId("held"));
  const held = heldIds.map((id) => send(slow, { ...good(id), body: undefined, pieces: [seed.body.subarray(0, 100), { delayMs: 2500 }, seed.body.subarray(100)] }));
  await sleep(400);
  const surplus: Case[] = [1, 2, 3].map((k) => ({
    name: `connection ${SLOW.maxConnections + k} while ${SLOW.maxConnections} are held`, srv: slow,
    expect: { status: 503, header: ["Retry-After", /^\d+$/] },
    build: (id) => ({ ...good(id), body: undefined, pieces: [{ delayMs: 300 }, seed.body] }),
  }));
  await runGroup(t, "slow-clients", surplus, 1);
  const heldResults = await Promise.all(held);
  const heldProblems = heldResults.flatMap((res, i) => {
    const r: Result = { id: heldIds[i]!, res };
    if (res.status === 200) r.mdn = parseMdn(res.headers, res.body);
    ledger.push({ group: "slow-clients", name: `held ${i}`, id: heldIds[i]!, srv: slow, positive: true });
    return checkAnswer(r, { mdn: "processed" }).map((x) => `held connection ${i}: ${x}`);
  });
  groupCounts["slow-clients"]! += held.length;
  pending.push(...heldProblems);

  // headersTimeout must hold with the default requestTimeout too (the clients started in before()).
  const lazyResults = await Promise.all(lazyClients);
  groupCounts["slow-clients"]! += lazyResults.length;
  const lazyProblems = lazyResults.flatMap((res, i) => cutOff({ id: "", res }).map((x) => `${["request line only", "nothing sent"][i]}, headersTimeout ${SLOW.headersTimeout} s, requestTimeout default: ${x}`));
  for (const x of lazyProblems) t.diagnostic(`MISMATCH ${x}`);
  pending.push(...lazyProblems);
  await closeGroup(t, "slow-clients", slow, main, lazy);
});

// ------------------------------------------------------------------------------------ 17. HTTP framing

test("HTTP: methods, paths, sizes, framing", async (t) => {
  const seed = seedCbc;
  const bare = (method: string, path: string, expect: Expect, extra: H.HeaderList = []): Case => ({
    name: `${method} ${path}`, expect, job: false,
    build: () => ({ method, path, headers: [["Host", `127.0.0.1:${main.port}`], ["Connection", "close"], ...extra] }),
  });
  const cases: Case[] = [
    bare("GET", "/as2", { status: 405, header: ["Allow", /POST/] }),
    bare("PUT", "/as2", { status: 405 }, [["Content-Length", "0"]]),
    bare("DELETE", "/as2", { status: 405 }),
    bare("OPTIONS", "/as2", { status: 405 }),
    bare("PATCH", "/as2", { status: 405 }, [["Content-Length", "0"]]),
    bare("HEAD", "/as2", { status: 200 }),
    bare("GET", "/", { status: 404 }),
    bare("POST", "/as2/", { status: 404 }, [["Content-Length", "0"]]),
    bare("POST", "/AS2", { status: 404 }, [["Content-Length", "0"]]),
    bare("POST", "/as2/../as2x", { status: 404 }, [["Content-Length", "0"]]),
    bare("FROBNICATE", "/as2", { statusOrClosed: 400 }),
    { name: "POST /as2?query (the query is ignored)", expect: { mdn: "processed" }, build: (id) => ({ ...req(main, id, seed), path: "/as2?x=1&y=../../etc" }) },
    { name: "HTTP/1.0 POST", expect: { mdn: "processed" }, build: (id) => ({ ...req(main, id, seed), head: Buffer.from(H.requestHead("POST", "/as2", req(main, id, seed).headers).toString("latin1").replace("HTTP/1.1", "HTTP/1.0"), "latin1") }) },
    { name: "Expect: 100-continue", expect: { mdn: "processed" }, build: (id) => req(main, id, seed, [["Expect", "100-continue"]]) },
    { name: "Content-Length over maxMessageBytes", expect: { status: 413 }, build: (id) => ({ headers: as2Headers(main, id, seed.contentType, MAX_MESSAGE + 1), pieces: [{ delayMs: 300 }, seed.body] }) },
    {
      name: "chunked past maxMessageBytes", expect: { status: 413 },
      build: (id) => {
        const piece = Buffer.concat([Buffer.from(`${(256 * 1024).toString(16)}\r\n`), Buffer.alloc(256 * 1024, 0x41), Buffer.from("\r\n")]);
        return { headers: as2Headers(main, id, "application/edifact", "chunked"), pieces: Array.from({ length: MAX_MESSAGE / (256 * 1024) + 4 }, () => piece) };
      },
    },
    { name: "a header over maxHeaderBytes", expect: { statusOrClosed: 431 }, build: (id) => ({ ...req(main, id, seed, [["X-Big", "b".repeat(70 * 1024)]]), body: undefined }) },
    { name: "Content-Length not a number", expect: { statusOrClosed: 400 }, build: (id) => ({ ...req(main, id, seed, [["Content-Length", "12abc"]]) }) },
    { name: "two different Content-Lengths", expect: { statusOrClosed: 400 }, build: (id) => ({ headers: [...as2Headers(main, id, seed.contentType, seed.body.length), ["Content-Length", "5"]], body: seed.body }) },
    // The 100 bytes after the declared end are a second request to Node's parser: 400, connection closed.
    { name: "Content-Length shorter than the body", expect: { statusOrClosed: 400 }, build: (id) => ({ headers: as2Headers(main, id, seed.contentType, seed.body.length - 100), body: seed.body }) },
    { name: "a request line that is not HTTP", expect: { statusOrClosed: 400 }, build: () => ({ headers: [], head: Buffer.from("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", "latin1") }) },
    { name: "a header line without a colon", expect: { statusOrClosed: 400 }, build: (id) => ({ headers: [], head: Buffer.concat([H.requestHead("POST", "/as2", as2Headers(main, id, seed.contentType, 0)).subarray(0, -2), Buffer.from("no colon here\r\n\r\n")]) }) },
    { name: "a header name with a space", expect: { statusOrClosed: 400 }, build: (id) => ({ headers: [...as2Headers(main, id, seed.contentType, 0), ["Bad Name", "x"]] }) },
  ];
  await runGroup(t, "http", cases);
  await closeGroup(t, "http");
});

// ------------------------------------------------------------------------------------ final checks

test("afterwards: nothing outside the data folders, no inbox file for a refused message, no job left ONGOING", async (t) => {
  const total = Object.values(groupCounts).reduce((a, b) => a + b, 0);
  t.diagnostic(`cases per group: ${JSON.stringify(groupCounts)}; total ${total}`);
  assert.ok(total >= 300, `${total} cases`);
  // Async MDNs and failed-delivery bookkeeping settle within a moment.
  await sleep(1000);
  const problems: string[] = [];
  const expectNone = (what: string, list: string[]) => { if (list.length) problems.push(`${what}: ${JSON.stringify(list)}`); };

  const after = listTree(parent, true);
  const dataDirs = [MAIN_DATA, SLOW_DATA, LAZY_DATA].map((d) => relative(parent, d) + sep);
  expectNone("paths created or changed outside the data folders", after.filter((p) => !listingBefore.includes(p) && !dataDirs.some((d) => p.startsWith(d))));
  expectNone("paths gone outside the data folders", listingBefore.filter((p) => !after.includes(p)));
  expectNone("symlinks", after.filter((p) => p.endsWith("-> symlink")));

  for (const srv of [main, slow, lazy]) {
    // Stored files: exactly those the receiver reported, and only for messages answered "processed".
    const reported = new Map<string, string>();
    for (const e of srv.server.events) if (e.event === "message" && e.file) reported.set(e.file as string, e.messageId as string);
    const inboxRoot = join(srv.data, "inbox");
    const inboxFiles = listTree(inboxRoot).filter((p) => !p.endsWith(sep)).map((p) => join(inboxRoot, p));
    expectNone(`${srv.name}: temp files left in the inboxes`, inboxFiles.filter((f) => f.split(sep).includes(".as2kit-tmp")));
    const stored = inboxFiles.filter((f) => !f.split(sep).includes(".as2kit-tmp")).sort();
    expectNone(`${srv.name}: inbox files nobody reported`, stored.filter((f) => !reported.has(f)));
    expectNone(`${srv.name}: reported files missing from the inbox`, [...reported.keys()].filter((f) => !stored.includes(f)));
    const positive = new Set(ledger.filter((l) => l.srv === srv && l.positive).map((l) => normId(l.id)));
    expectNone(`${srv.name}: files stored for messages the spec says must be refused`, [...reported.values()].filter((id) => !positive.has(normId(id)))
      .map((id) => ledger.find((l) => normId(l.id) === normId(id))?.name ?? id));
    const storedIds = new Set([...reported.values()].map(normId));
    expectNone(`${srv.name}: messages that should have been stored, but were not`, ledger.filter((l) => l.srv === srv && l.positive && !storedIds.has(normId(l.id))).map((l) => `${l.group} / ${l.name}`));

    // Job records: none ONGOING.
    const states: Record<string, number> = {};
    const ongoing: string[] = [];
    for (const f of jobFiles(srv)) {
      const rec = JSON.parse(readFileSync(join(srv.data, "jobs", f), "utf8"));
      states[rec.state] = (states[rec.state] ?? 0) + 1;
      if (rec.state === "ONGOING") ongoing.push(`${f}: ${rec.files?.[0]?.as2MessageId ?? ""}`);
    }
    t.diagnostic(`${srv.name}: ${stored.length} stored files, job records ${JSON.stringify(states)}`);
    expectNone(`${srv.name}: job records left ONGOING`, ongoing);
    const spool = join(srv.data, "spool");
    expectNone(`${srv.name}: files left in the spool`, existsSync(spool) ? readdirSync(spool) : []);
    if (srv.server.proc.exitCode !== null) problems.push(`${srv.name} exited with ${srv.server.proc.exitCode}`);
    expectNone(`${srv.name}: error events`, srv.server.events.filter((e) => e.event === "error").map((e) => String(e.detail)));
  }
  for (const p of problems) t.diagnostic(`FINAL ${p}`);
  assert.deepEqual(problems, []);
});
