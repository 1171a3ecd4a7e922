/**
 * E-mail receipts (issue 17): `as2 send` asks for an async MDN by mail (mdn.destination "email":
 * Receipt-Delivery-Option mailto:, RFC 4130 §7.3; as2-reference X2 and the Receipt-Delivery-Option
 * row), and a real `as2 receive` with `smtp` configured mails it through a real SMTP server
 * (smtp-server, started here on 127.0.0.1 with AUTH and STARTTLS on a certificate of a CA made
 * by openssl; a second one with implicit TLS). Checked: the envelope, the authentication, TLS,
 * the mail body is the MDN and its signature and MIC verify (core parser and `as2 mdn-verify`),
 * a 4xx answered first is retried by the MDN queue, a 5xx is final, addresses the partner's
 * inbound.asyncMdnUrls does not allow and a receiver without smtp refuse clearly, and the
 * relay's password is in no record, log or output.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { before, test } from "node:test";
import { SMTPServer, type SMTPServerSession } from "smtp-server";
import { parseEntityBytes, parseMdn, verifyMdn } from "../../src/core/index.js";
import type { JobRecord } from "../../src/store/index.js";
import { as2, startAs2Receive, type As2Server, type Run } from "../helpers/as2-process.js";
import { makePki, type TestPki } from "../helpers/net.js";
import { STORE_KIND, readJobRecord, readJobRecords, storeSetting } from "../helpers/store-kind.js";
import { onCleanup, openssl, opensslIdentity, tempDir, writeJsonConfig, type TestIdentity } from "../helpers/tools.js";

const dir = tempDir("as2kit-mdn-email-");
const PAYLOAD = Buffer.from("UNB+UNOA:2+MYCO+ACME+261202:1500+1'UNH+1+ORDERS:D:96A:UN'\n".repeat(300));
const SMTP_USER = "acme-relay";
/** Made up per run, so that finding it anywhere can only mean it leaked. */
const SMTP_PASS = `Relay-${Math.random().toString(36).slice(2)}-Secret`;
/** A wrong one, for the refused-login case: must not leak either. */
const WRONG_PASS = `Wrong-${Math.random().toString(36).slice(2)}-Secret`;
const ENV = { AS2KIT_TEST_SMTP_PASS: SMTP_PASS, AS2KIT_TEST_WRONG_PASS: WRONG_PASS };

interface Mail { from: string; to: string[]; user?: string; secure: boolean; raw: Buffer; port: number }
interface Relay { port: number; mails: Mail[]; rcpts: Array<{ to: string; code: number }>; logins: number }

let pki: TestPki;
let acmeId: TestIdentity;
let relay: Relay;
let tlsRelay: Relay;
let acme: As2Server;
let acmeTls: As2Server;
let acmeNoSmtp: As2Server;
/** What the `as2` runs printed, and every receiver started (their events and stderr). */
const outputs: string[] = [];
const servers: As2Server[] = [];

/**
 * A real SMTP server: AUTH PLAIN/LOGIN only after TLS, STARTTLS (or implicit TLS) with the test
 * CA's server certificate. Recipients whose local part starts with "busy" get 451 the first time,
 * "gone" always 550.
 */
async function startRelay(secure: boolean, port = 0, plainOnly = false): Promise<Relay> {
  const r: Relay = { port: 0, mails: [], rcpts: [], logins: 0 };
  const seen = new Set<string>();
  const server = new SMTPServer({
    secure, key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert),
    authMethods: ["PLAIN", "LOGIN"], allowInsecureAuth: plainOnly, logger: false, banner: "as2kit test relay",
    ...(plainOnly ? { disabledCommands: ["STARTTLS"] } : {}),
    onAuth(auth, _session, cb) {
      r.logins++;
      if (auth.username === SMTP_USER && auth.password === SMTP_PASS) cb(null, { user: auth.username });
      else cb(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }));
    },
    onMailFrom(_address, session, cb) {
      if (!session.user) return cb(Object.assign(new Error("Authentication required"), { responseCode: 530 }));
      cb();
    },
    onRcptTo(address, _session, cb) {
      const to = address.address;
      const code = /^gone/.test(to) ? 550 : /^busy/.test(to) && !seen.has(to) ? 451 : 250;
      seen.add(to);
      r.rcpts.push({ to, code });
      if (code === 550) return cb(Object.assign(new Error("No such mailbox here"), { responseCode: 550 }));
      if (code === 451) return cb(Object.assign(new Error("Try again later"), { responseCode: 451 }));
      cb();
    },
    onData(stream, session: SMTPServerSession, cb) {
      const parts: Buffer[] = [];
      stream.on("data", (d: Buffer) => parts.push(d));
      stream.on("end", () => {
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
        r.mails.push({ from, to: session.envelope.rcptTo.map((a) => a.address), user: session.user as string | undefined, secure: session.secure, raw: Buffer.concat(parts), port: r.port });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  r.port = (server.server.address() as { port: number }).port;
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return r;
}

const smtpConfig = (port: number, secure: boolean) => ({
  host: "127.0.0.1", port, secure, username: SMTP_USER, password: "${AS2KIT_TEST_SMTP_PASS}", from: "ACME AS2 <as2@acme.example>", ca: [pki.caCert],
});

async function receiver(name: string, smtp?: Record<string, unknown>, env: Record<string, string> = {}): Promise<As2Server> {
  const cfg = writeJsonConfig(dir, name, {
    dataDir: `./${name}-data`,
    ...(await storeSetting(name)),
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    ...(smtp ? { smtp } : {}),
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { requireSigned: true, asyncMdnUrls: ["mailto:*@myco.example", "mailto:partner.edi@myco-partner.example"] } } },
  });
  const s = await startAs2Receive(cfg, [], { ...ENV, ...env });
  servers.push(s);
  return s;
}

before(async () => {
  opensslIdentity("myco", dir);
  acmeId = opensslIdentity("acme", dir);
  pki = makePki(dir);
  relay = await startRelay(false);
  tlsRelay = await startRelay(true);
  acme = await receiver("acme", smtpConfig(relay.port, false));
  acmeTls = await receiver("acmetls", smtpConfig(tlsRelay.port, true));
  acmeNoSmtp = await receiver("acmenosmtp");
});

function mycoConfig(server: As2Server, email: string): string {
  return writeJsonConfig(dir, `myco-${email.replace(/[^a-z0-9]/gi, "_")}-${server.url.replace(/\D/g, "")}`, {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url: server.url, certificate: "acme.crt", mdn: { request: "signed", mode: "async", destination: "email", email } } },
  });
}

interface Sent { runId: string; messageId: string; config: string; run: Run }

async function send(server: As2Server, email: string, name: string): Promise<Sent> {
  const config = mycoConfig(server, email);
  const file = join(dir, name);
  writeFileSync(file, PAYLOAD);
  const run = await as2(["send", "--config", config, "--partner", "acme", "--json", file]);
  outputs.push(run.stdout, run.stderr);
  assert.equal(run.status, 0, run.stderr + run.stdout);
  const job = JSON.parse(run.stdout) as JobRecord;
  assert.equal(job.state, "AWAITING_MDN", "the sender waits for the mailed MDN");
  return { runId: job.runId, messageId: job.files[0]!.as2MessageId!, config, run };
}

const norm = (id: string) => id.replace(/^<|>$/g, "");

/** The mail whose MDN answers messageId, once it has arrived. */
async function mailFor(r: Relay, messageId: string, timeoutMs = 20_000): Promise<Mail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = r.mails.find((x) => {
      const e = parseEntityBytes(x.raw);
      return norm(parseMdn(e.headers, e.body).originalMessageId ?? "") === norm(messageId);
    });
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no mail for ${messageId}; the relay got ${r.mails.length} mail(s), RCPTs ${JSON.stringify(r.rcpts)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function receiverRunId(server: As2Server, messageId: string, event: "mdn-sent" | "mdn-failed", match: RegExp = /./): Promise<string> {
  const e = await server.waitFor((x) => x.event === event && norm(String(x.messageId)) === norm(messageId) && match.test(String(x.detail)), 30_000);
  return String(e.runId);
}

async function receiverRecord(station: string, runId: string, until: (r: JobRecord) => boolean): Promise<JobRecord> {
  const dataDir = join(dir, `${station}-data`);
  for (let i = 0; ; i++) {
    const rec = await readJobRecord(dataDir, station, runId);
    if (until(rec) || i >= 100) return rec;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Checks the mail is the MDN: signed by ACME, for our message, with our MIC, 7-bit, with mail headers. */
async function checkMailedMdn(mail: Mail, sent: Sent): Promise<void> {
  const e = parseEntityBytes(mail.raw);
  assert.equal(e.headers.get("from"), "\"ACME AS2\" <as2@acme.example>");
  assert.equal(e.headers.get("to"), mail.to[0]);
  assert.equal(e.headers.get("mime-version"), "1.0");
  assert.match(e.headers.get("message-id") ?? "", /^<[^<>@\s]+@[^<>\s]+>$/);
  assert.match(e.headers.get("date") ?? "", /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000$/);
  assert.ok(e.headers.get("subject"));
  assert.match(e.headers.get("content-type") ?? "", /^multipart\/signed/);
  for (const b of mail.raw) assert.ok(b > 0 && b < 0x80, "the mail is 7-bit");
  const mdn = parseMdn(e.headers, e.body);
  const v = verifyMdn(mdn, { partnerCertificates: [acmeId.certificate], requireSigned: true, expectedMessageId: sent.messageId });
  assert.equal(v.checks.signature.verdict, "pass", v.checks.signature.detail);
  assert.equal(v.checks.originalMessageId.verdict, "pass", v.checks.originalMessageId.detail);
  assert.equal(mdn.dispositionClass, "ok");
  // The independent check: the CLI reads the mail as a saved MIME entity and compares the MIC
  // with the one the sender recorded.
  const eml = join(dir, `${sent.runId}.eml`);
  writeFileSync(eml, mail.raw);
  // And openssl, which shares no code with as2kit, reads the mail as S/MIME and checks the signature.
  const content = openssl(["cms", "-verify", "-inform", "SMIME", "-in", eml, "-CAfile", acmeId.certFile, "-purpose", "any"]);
  assert.match(content.toString("latin1"), /multipart\/report/);
  assert.match(content.toString("latin1"), new RegExp(`Original-Message-ID: <?${norm(sent.messageId).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}>?`));
  const verified = await as2(["mdn-verify", "--config", sent.config, "--run", sent.runId, eml]);
  outputs.push(verified.stdout, verified.stderr);
  assert.equal(verified.status, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /PASS\s+Signature/i);
  assert.match(verified.stdout, /PASS\s+MIC/i);
}

test("mailto: receipt: as2 send -> as2 receive -> SMTP (STARTTLS, AUTH): the mail is the signed MDN, and the record says delivered", async () => {
  const sent = await send(acme, "edi@myco.example", "orders-mail.edi");
  const mail = await mailFor(relay, sent.messageId);
  assert.equal(mail.from, "as2@acme.example");
  assert.deepEqual(mail.to, ["edi@myco.example"]);
  assert.equal(mail.user, SMTP_USER, "the relay authenticated the receiver");
  assert.equal(mail.secure, true, "STARTTLS was used: the relay offered it");
  await checkMailedMdn(mail, sent);
  const runId = await receiverRunId(acme, sent.messageId, "mdn-sent");
  const rec = await receiverRecord("acme", runId, (r) => r.receiveDetails?.mdnDelivery?.delivered === true);
  assert.equal(rec.state, "SUCCESS");
  assert.deepEqual(readFileSync(join(dir, "acme-data", "inbox", "myco", "orders-mail.edi")), PAYLOAD);
  const d = rec.receiveDetails!.mdnDelivery!;
  assert.equal(d.via, "smtp");
  assert.equal(d.to, "edi@myco.example");
  assert.equal(d.relay, `127.0.0.1:${relay.port}`);
  assert.equal(d.delivered, true);
  assert.equal(d.attempts, 1);
  assert.match(d.response ?? "", /^250/);
  assert.equal(rec.receiveDetails!.mdnSent, true);
  assert.equal(rec.receiveDetails!.mdnType, "async");
  const status = await as2(["status", "--config", join(dir, "acme.json"), runId], { env: ENV });
  outputs.push(status.stdout, status.stderr);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`MDN delivery\\s+mail to edi@myco\\.example via 127\\.0\\.0\\.1:${relay.port}: delivered after 1 attempt \\(250`));
});

test("mailto: receipt over implicit TLS (smtp.secure true)", async () => {
  const sent = await send(acmeTls, "partner.edi@myco-partner.example", "orders-tls.edi");
  const mail = await mailFor(tlsRelay, sent.messageId);
  assert.equal(mail.secure, true);
  assert.equal(mail.user, SMTP_USER);
  assert.deepEqual(mail.to, ["partner.edi@myco-partner.example"]);
  await checkMailedMdn(mail, sent);
  const runId = await receiverRunId(acmeTls, sent.messageId, "mdn-sent");
  const rec = await receiverRecord("acmetls", runId, (r) => r.receiveDetails?.mdnDelivery?.delivered === true);
  assert.equal(rec.receiveDetails!.mdnDelivery!.relay, `127.0.0.1:${tlsRelay.port}`);
  assert.equal(rec.receiveDetails!.mdnDelivery!.delivered, true);
});

test("a 451 from the relay is retried by the MDN queue, and the retry is delivered and recorded", async () => {
  const sent = await send(acme, "busy.edi@myco.example", "orders-busy.edi");
  const failed = await acme.waitFor((x) => x.event === "mdn-failed" && norm(String(x.messageId)) === norm(sent.messageId), 20_000);
  assert.match(String(failed.detail), /451/);
  assert.match(String(failed.detail), /attempt 1 of \d+; next in 2 s/);
  const runId = String(failed.runId);
  // Between the attempts the record says what happened and that another attempt is due.
  const between = await receiverRecord("acme", runId, (r) => r.receiveDetails?.mdnDelivery?.attempts === 1 || r.receiveDetails?.mdnDelivery?.delivered === true);
  if (!between.receiveDetails!.mdnDelivery!.delivered) {
    assert.match(between.receiveDetails!.mdnDelivery!.error ?? "", /451/);
    assert.ok(between.receiveDetails!.mdnDelivery!.nextAttemptAt, "the next attempt is recorded");
  }
  const mail = await mailFor(relay, sent.messageId);
  await checkMailedMdn(mail, sent);
  assert.deepEqual(relay.rcpts.filter((r) => r.to === "busy.edi@myco.example").map((r) => r.code), [451, 250]);
  await receiverRunId(acme, sent.messageId, "mdn-sent");
  const rec = await receiverRecord("acme", runId, (r) => r.receiveDetails?.mdnDelivery?.delivered === true);
  const d = rec.receiveDetails!.mdnDelivery!;
  assert.equal(d.delivered, true);
  assert.equal(d.attempts, 2);
  assert.equal(d.nextAttemptAt, undefined);
  assert.match(d.response ?? "", /^250/);
});

test("a 550 from the relay is final: not retried, the record says failed, the receiver goes on", async () => {
  const sent = await send(acme, "gone@myco.example", "orders-gone.edi");
  const runId = await receiverRunId(acme, sent.messageId, "mdn-failed", /for good/);
  const rec = await receiverRecord("acme", runId, (r) => r.receiveDetails?.mdnDelivery?.gaveUp === true);
  assert.equal(rec.state, "SUCCESS", "the message itself was stored");
  const d = rec.receiveDetails!.mdnDelivery!;
  assert.equal(d.via, "smtp");
  assert.equal(d.delivered, false);
  assert.equal(d.gaveUp, true);
  assert.equal(d.attempts, 1);
  assert.match(d.error ?? "", /550/);
  assert.ok((rec.warnings ?? []).some((w) => /gone@myco\.example/.test(w) && /550/.test(w)), JSON.stringify(rec.warnings));
  assert.equal(rec.receiveDetails!.mdnSent, false);
  await new Promise((res) => setTimeout(res, 2500));
  assert.equal(relay.rcpts.filter((r) => r.to === "gone@myco.example").length, 1, "no second attempt after a 5xx");
  assert.equal(acme.proc.exitCode, null, "as2 receive still runs");
  // It still takes messages and mails receipts.
  const next = await send(acme, "edi@myco.example", "orders-after-gone.edi");
  await mailFor(relay, next.messageId);
});

test("refused as before: a mailto: address inbound.asyncMdnUrls does not allow, and any mailto: without smtp", async () => {
  const stranger = await send(acme, "someone@elsewhere.example", "orders-stranger.edi");
  const ev = await acme.waitFor((x) => x.event === "mdn-failed" && norm(String(x.messageId)) === norm(stranger.messageId), 20_000);
  assert.match(String(ev.detail), /not allowed for this partner/);
  assert.match(String(ev.detail), /inbound\.asyncMdnUrls/);
  const rec = await receiverRecord("acme", String(ev.runId), (r) => (r.warnings ?? []).some((w) => /not allowed/.test(w)));
  assert.ok((rec.warnings ?? []).some((w) => /not allowed/.test(w) && /inbound\.asyncMdnUrls/.test(w)), JSON.stringify(rec.warnings));
  assert.equal(rec.receiveDetails!.mdnDelivery!.delivered, false);
  assert.equal(rec.receiveDetails!.mdnDelivery!.attempts, 0);
  assert.equal(relay.rcpts.some((r) => r.to === "someone@elsewhere.example"), false, "the relay never heard of the address");

  const noSmtp = await send(acmeNoSmtp, "edi@myco.example", "orders-nosmtp.edi");
  const ev2 = await acmeNoSmtp.waitFor((x) => x.event === "mdn-failed" && norm(String(x.messageId)) === norm(noSmtp.messageId), 20_000);
  assert.match(String(ev2.detail), /not allowed/);
  assert.match(String(ev2.detail), /no smtp is configured/);
  const rec2 = await receiverRecord("acmenosmtp", String(ev2.runId), (r) => (r.warnings ?? []).some((w) => /smtp/.test(w)));
  assert.equal(rec2.state, "SUCCESS");
  assert.ok((rec2.warnings ?? []).some((w) => /no smtp is configured/.test(w)), JSON.stringify(rec2.warnings));
});

/** A port nothing listens on now (the kernel's pick, closed again), for a relay that starts late. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test("the relay down at first (connection refused), then up: the queue's next attempt delivers", async () => {
  const port = await freePort();
  const late = await receiver("acmelate", smtpConfig(port, false));
  const sent = await send(late, "edi@myco.example", "orders-late.edi");
  const failed = await late.waitFor((x) => x.event === "mdn-failed" && norm(String(x.messageId)) === norm(sent.messageId), 20_000);
  assert.match(String(failed.detail), /ECONNREFUSED|ECONNECTION/);
  assert.match(String(failed.detail), /attempt 1 of/);
  const runId = String(failed.runId);
  const between = await receiverRecord("acmelate", runId, (r) => r.receiveDetails?.mdnDelivery !== undefined);
  assert.equal(between.receiveDetails!.mdnDelivery!.delivered, false);
  assert.match(between.receiveDetails!.mdnDelivery!.error ?? "", /ECONNREFUSED|ECONNECTION/);
  const upLate = await startRelay(false, port);
  const mail = await mailFor(upLate, sent.messageId);
  await checkMailedMdn(mail, sent);
  await receiverRunId(late, sent.messageId, "mdn-sent");
  const rec = await receiverRecord("acmelate", runId, (r) => r.receiveDetails?.mdnDelivery?.delivered === true);
  assert.equal(rec.receiveDetails!.mdnDelivery!.delivered, true);
  assert.equal(rec.receiveDetails!.mdnDelivery!.attempts, 2);
  assert.equal(rec.receiveDetails!.mdnDelivery!.error, undefined, "the record shows the last attempt");
});

test("a relay that offers no STARTTLS gets no password: the attempt fails (and is retried), nothing is mailed", async () => {
  const plain = await startRelay(false, 0, true);
  const cautious = await receiver("acmeplain", smtpConfig(plain.port, false));
  const sent = await send(cautious, "edi@myco.example", "orders-plain.edi");
  const failed = await cautious.waitFor((x) => x.event === "mdn-failed" && norm(String(x.messageId)) === norm(sent.messageId), 20_000);
  assert.match(String(failed.detail), /STARTTLS|TLS/i);
  assert.match(String(failed.detail), /attempt 1 of/);
  const rec = await receiverRecord("acmeplain", String(failed.runId), (r) => r.receiveDetails?.mdnDelivery !== undefined);
  assert.equal(rec.receiveDetails!.mdnDelivery!.delivered, false);
  assert.ok(rec.receiveDetails!.mdnDelivery!.nextAttemptAt);
  assert.equal(plain.logins, 0, "no AUTH over the plain connection");
  assert.equal(plain.mails.length, 0);
  cautious.proc.kill("SIGTERM");
  await cautious.exited;
});

test("a refused login (535) is our configuration, not the mail: retried on the schedule, not final", async () => {
  const wrong = await receiver("acmewrongpw", { ...smtpConfig(relay.port, false), password: "${AS2KIT_TEST_WRONG_PASS}" });
  const sent = await send(wrong, "edi@myco.example", "orders-wrongpw.edi");
  const failed = await wrong.waitFor((x) => x.event === "mdn-failed" && norm(String(x.messageId)) === norm(sent.messageId), 20_000);
  assert.match(String(failed.detail), /EAUTH/);
  assert.match(String(failed.detail), /535/);
  assert.match(String(failed.detail), /attempt 1 of \d+; next in/);
  const rec = await receiverRecord("acmewrongpw", String(failed.runId), (r) => r.receiveDetails?.mdnDelivery !== undefined);
  assert.equal(rec.receiveDetails!.mdnDelivery!.gaveUp, undefined);
  assert.match(rec.receiveDetails!.mdnDelivery!.error ?? "", /EAUTH/);
  wrong.proc.kill("SIGTERM");
  await wrong.exited;
});

/**
 * The windows a mailed receipt adds (issue 11 crash points): killed right after the MDN is queued,
 * the restarted receiver mails it; killed after the relay took it but before the queue entry was
 * removed, the restarted receiver mails the same MDN again (at least once: a partner ignores a
 * copy, as with a re-POSTed MDN), and the stored file is there once.
 */
for (const point of ["receive:queued", "receive:answered"] as const) {
  test(`killed at ${point}: after the restart the receipt is mailed${point === "receive:answered" ? " again, the same bytes" : ""}`, async () => {
    const station = `acmecrash${point.split(":")[1]}`;
    const relayed = relay.mails.length;
    const dying = await receiver(station, smtpConfig(relay.port, false), { AS2KIT_CRASH_AT: point });
    const sent = await send(dying, "edi@myco.example", `orders-${station}.edi`);
    const gone = await dying.exited;
    assert.equal(gone.signal, "SIGKILL", dying.stderr());
    assert.match(dying.stderr(), new RegExp(`killing this process at ${point}`));
    if (point === "receive:answered") await mailFor(relay, sent.messageId);
    else assert.equal(relay.mails.length, relayed, "nothing was mailed before the crash");
    const again = await receiver(station, smtpConfig(relay.port, false));
    const runId = await receiverRunId(again, sent.messageId, "mdn-sent");
    const mails = relay.mails.slice(relayed).filter((m) => {
      const e = parseEntityBytes(m.raw);
      return norm(parseMdn(e.headers, e.body).originalMessageId ?? "") === norm(sent.messageId);
    });
    assert.equal(mails.length, point === "receive:answered" ? 2 : 1);
    if (mails.length === 2) assert.deepEqual(mails[1]!.raw, mails[0]!.raw, "the same MDN both times");
    await checkMailedMdn(mails[mails.length - 1]!, sent);
    const rec = await receiverRecord(station, runId, (r) => r.receiveDetails?.mdnDelivery?.delivered === true);
    assert.equal(rec.state, "SUCCESS");
    assert.equal(rec.receiveDetails!.mdnDelivery!.delivered, true);
    assert.deepEqual(readdirSync(join(dir, `${station}-data`, "inbox", "myco")).filter((n) => !n.startsWith(".")), [`orders-${station}.edi`]);
  });
}

test("as2 check: mailto: entries without smtp are a warning; smtp.ca is read", async () => {
  const noSmtp = await as2(["check", "--config", join(dir, "acmenosmtp.json")], { env: ENV });
  assert.equal(noSmtp.status, 0, noSmtp.stdout + noSmtp.stderr);
  assert.match(noSmtp.stderr, /warning: partners\.myco\.inbound\.asyncMdnUrls: lists mailto: addresses, but no smtp is configured/);
  const withSmtp = await as2(["check", "--config", join(dir, "acme.json")], { env: ENV });
  assert.equal(withSmtp.status, 0, withSmtp.stdout + withSmtp.stderr);
  assert.doesNotMatch(withSmtp.stderr, /no smtp/);
  const badCa = writeJsonConfig(dir, "acme-bad-ca", { ...JSON.parse(readFileSync(join(dir, "acme.json"), "utf8")), smtp: { ...smtpConfig(relay.port, false), ca: ["no-such-ca.pem"] } });
  const bad = await as2(["check", "--config", badCa], { env: ENV });
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /problem: smtp\.ca\[0\]: file not found/);
  outputs.push(noSmtp.stdout, noSmtp.stderr, withSmtp.stdout, withSmtp.stderr, bad.stdout, bad.stderr);
});

function filesUnder(d: string): string[] {
  return readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test("the relay's password is in no record, queue entry, log line or output", async () => {
  const texts = [...outputs, ...servers.flatMap((s) => [JSON.stringify(s.events), s.stderr()])];
  assert.ok(texts.some((o) => o.includes("EAUTH")), "the refused login's output is among those searched");
  assert.ok(texts.length > 10);
  for (const t of texts) assert.ok(!t.includes(SMTP_PASS) && !t.includes(WRONG_PASS), "the password is in an output");
  const files = filesUnder(dir).filter((f) => !f.endsWith(".key") && !f.endsWith(".crt"));
  assert.ok(STORE_KIND === "postgres" || files.some((f) => f.includes(join("acme-data", "jobs"))), "the receiver's job records were searched");
  for (const f of files) assert.ok(!readFileSync(f).includes(SMTP_PASS) && !readFileSync(f).includes(WRONG_PASS), `the password is in ${f}`);
  // Every job record, wherever the store keeps it (a database's rows included).
  for (const station of ["acme", "acmetls", "acmenosmtp", "acmewrongpw"]) {
    const records = JSON.stringify(await readJobRecords(join(dir, `${station}-data`), station));
    assert.match(records, /"mdnDelivery"/);
    assert.ok(!records.includes(SMTP_PASS) && !records.includes(WRONG_PASS), `the password is in a job record of ${station}`);
  }
  // The configuration refers to it only through the environment.
  assert.match(readFileSync(join(dir, "acme.json"), "utf8"), /\$\{AS2KIT_TEST_SMTP_PASS\}/);
});
