/**
 * AS2 Restart, the receiving side alone (draft-harding-as2-restart-07; as2-reference E3-E5,
 * E-8): a real `as2 receive` with receive.restart enabled, driven by raw HTTP requests whose
 * connections the test cuts where it wants. Messages are real (signed + encrypted, built by
 * `as2 send --dry-run`), so completion goes through the whole receive pipeline and its MDN.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { join } from "node:path";
import { before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parseMdn, Headers } from "../../src/core/index.js";
import { opensslIdentity, tempDir, writeJsonConfig } from "../helpers/tools.js";
import { as2, startAs2Receive, type As2Server } from "../helpers/as2-process.js";
import { readDryRun, type Req } from "../helpers/post.js";

const dir = tempDir();
const cfg = (name: string, c: Record<string, unknown>): string => writeJsonConfig(dir, name, c);
let acmeConfig = "";
let acme: As2Server;
const partials = () => join(dir, "acme-data", "spool", "restart");
const inbox = () => join(dir, "acme-data", "inbox", "myco");
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Res { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** One request and its answer, on its own connection. */
function exchange(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<Res> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: Number(u.port), path: u.pathname, method, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A POST whose body is written in the test's own time: write(), then end() or cut(). */
function openPost(url: string, headers: Record<string, string>) {
  const u = new URL(url);
  let answer!: Promise<Res>;
  const req = http.request({ host: u.hostname, port: Number(u.port), path: u.pathname, method: "POST", headers, agent: false });
  answer = new Promise((resolve, reject) => {
    req.on("response", (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on("error", reject);
  });
  answer.catch(() => undefined);
  return {
    answer,
    write: (b: Buffer) => new Promise<void>((r, j) => req.write(b, (e) => (e ? j(e) : r()))),
    end: (b?: Buffer) => { req.end(b); return answer; },
    cut: () => req.destroy(),
  };
}

let etagN = 0;
const newTag = () => `"restart-test-${process.pid}-${++etagN}"`;

/** The POST headers of a built message, with ETag and (optionally) Content-Range for bytes [start, total). */
function ranged(m: Req, etag: string, start?: number): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers)) if (!/^(host|content-length|transfer-encoding|connection)$/i.test(k)) h[k] = v;
  h.ETag = etag;
  const total = m.body.length;
  if (start !== undefined) h["Content-Range"] = `bytes ${start}-${total - 1}/${total}`;
  h["Content-Length"] = String(total - (start ?? 0));
  return h;
}

async function heldOf(m: Req, etag: string, url = acme.url): Promise<{ held: number; res: Res }> {
  const res = await exchange(url, "HEAD", { "AS2-From": m.headers["AS2-From"]!, "AS2-To": m.headers["AS2-To"]!, "AS2-Version": "1.2", ETag: etag, "If-Match": etag });
  assert.equal(res.status, 200);
  return { held: Number(res.headers["content-length"]), res };
}

let messages: Array<{ req: Req; payload: Buffer; as2MessageId: string; name: string }> = [];

function acmeCfg(): string {
  return cfg("acme", {
    dataDir: "./acme-data",
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2", restart: { enabled: true, maxAge: "1h" } },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { requireSigned: true } } },
  });
}

function positive(res: Res): Record<string, string> {
  assert.equal(res.status, 200, res.body.toString());
  const mdn = parseMdn(Headers.from(res.headers as Record<string, string>), res.body);
  assert.match(mdn.fields.disposition ?? "", /processed$/, JSON.stringify(mdn.fields));
  return mdn.fields;
}

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  const out = join(dir, "out");
  mkdirSync(out, { recursive: true });
  // 6 messages of ~3 MiB (deterministic, distinct): each test uses its own.
  const sources = Array.from({ length: 6 }, (_, i) => {
    const p = join(out, `big-${i + 1}.bin`);
    const b = Buffer.alloc(3 * 1024 * 1024 + i * 1000);
    for (let k = 0; k < b.length; k += 4) b.writeUInt32LE((k * 2654435761 + i) >>> 0, k);
    writeFileSync(p, b);
    return p;
  });
  const myco = cfg("myco-dry", {
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", mdn: { request: "signed" } } },
  });
  const dry = await as2(["send", "--config", myco, "--partner", "acme", "--dry-run", "--out", join(dir, "built"), "--json", ...sources]);
  assert.equal(dry.status, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as { messages: Array<{ file: string; out: string; as2MessageId: string }> };
  messages = plan.messages.map((m) => ({ req: readDryRun(m.out), payload: readFileSync(m.file), as2MessageId: m.as2MessageId, name: m.file.split("/").pop()! }));
  acmeConfig = acmeCfg();
  acme = await startAs2Receive(acmeConfig);
});

test("HEAD for an unknown ETag: 200, Content-Length 0, the ETag echoed, AS2-Restart advertised beside the other features", async () => {
  const tag = newTag();
  const { held, res } = await heldOf(messages[0]!.req, tag);
  assert.equal(held, 0);
  assert.equal(res.headers.etag, tag);
  assert.match(String(res.headers["ediint-features"]), /AS2-Restart/);
  assert.match(String(res.headers["ediint-features"]), /AS2-Reliability/, "the other tokens stay");
  // A plain HEAD (no ETag) is today's X3 answer.
  const plain = await exchange(acme.url, "HEAD", {});
  assert.equal(plain.status, 200);
  assert.equal(plain.headers["content-length"], "0");
});

test("a cut POST leaves a partial that HEAD reports exactly; a range beyond it gets 416 with Content-Range bytes */held; the rest completes it: MDN processed, the file whole; then HEAD says all held, and the last byte or the whole again is a duplicate with the same MDN and no second file", async () => {
  const m = messages[0]!;
  const etag = newTag();
  const total = m.req.body.length;
  const cut = Math.floor(total * 0.37);
  const post = openPost(acme.url, ranged(m.req, etag, 0));
  await post.write(m.req.body.subarray(0, cut));
  await sleep(300);
  post.cut();
  await acme.waitFor((e) => e.event === "partial" && e.messageId === m.as2MessageId);
  const { held } = await heldOf(m.req, etag);
  assert.equal(held, cut, "every byte that arrived is held");

  const bad = await exchange(acme.url, "POST", ranged(m.req, etag, held + 10), m.req.body.subarray(held + 10));
  assert.equal(bad.status, 416);
  assert.equal(bad.headers["content-range"], `bytes */${held}`);

  const done = await exchange(acme.url, "POST", ranged(m.req, etag, held), m.req.body.subarray(held));
  const fields = positive(done);
  assert.equal(fields["original-message-id"], m.as2MessageId);
  assert.equal(sha256(readFileSync(join(inbox(), m.name))), sha256(m.payload));
  // The bytes go once the message is recorded; a marker still says "all held", so that a sender
  // whose answer was lost resends the last byte only and gets the recorded MDN.
  assert.equal((await heldOf(m.req, etag)).held, total);
  assert.deepEqual(readdirSync(partials()).filter((n) => n.endsWith(".part")), [], "no partial bytes left");

  // The whole message again, same ETag: a duplicate, the same MDN bytes, no second file.
  const again = await exchange(acme.url, "POST", ranged(m.req, etag, 0), m.req.body);
  assert.equal(again.status, 200);
  assert.deepEqual(again.body, done.body, "the same MDN");
  // And the last byte alone (a sender told everything was held): the same.
  const last = await exchange(acme.url, "POST", ranged(m.req, etag, total - 1), m.req.body.subarray(total - 1));
  assert.deepEqual(last.body, done.body);
  await acme.waitFor((e) => e.event === "duplicate" && e.messageId === m.as2MessageId);
  assert.deepEqual(readdirSync(inbox()).filter((n) => n.startsWith(m.name.replace(/\.bin$/, ""))), [m.name]);
});

test("two parallel POSTs on one ETag: the second gets 500 (E5) while the first goes on and completes", async () => {
  const m = messages[1]!;
  const etag = newTag();
  const first = openPost(acme.url, ranged(m.req, etag, 0));
  await first.write(m.req.body.subarray(0, 1024 * 1024));
  await sleep(300);
  const second = await exchange(acme.url, "POST", ranged(m.req, etag, 0), m.req.body);
  assert.equal(second.status, 500, second.body.toString());
  assert.match(second.body.toString(), /another transfer/);
  positive(await first.end(m.req.body.subarray(1024 * 1024)));
  assert.equal(sha256(readFileSync(join(inbox(), m.name))), sha256(m.payload));
});

test("a partial survives a SIGKILL of the receiver; after the restart HEAD reports it (the dead transfer's lock is taken over) and the rest completes the message", async () => {
  const m = messages[2]!;
  const etag = newTag();
  const part = Math.floor(m.req.body.length * 0.6);
  const post = openPost(acme.url, ranged(m.req, etag, 0));
  await post.write(m.req.body.subarray(0, part));
  await sleep(500);
  // Killed while the transfer runs and holds its lock (the connection is still open).
  acme.proc.kill("SIGKILL");
  await acme.exited;
  post.cut();
  assert.ok(existsSync(partials()) && readdirSync(partials()).some((n) => n.endsWith(".lock")), "the dead receiver's lock is still there");
  acme = await startAs2Receive(acmeConfig);
  const { held } = await heldOf(m.req, etag);
  assert.ok(held > 0 && held <= part, `held ${held} of the ${part} bytes sent`);
  positive(await exchange(acme.url, "POST", ranged(m.req, etag, held), m.req.body.subarray(held)));
  assert.equal(sha256(readFileSync(join(inbox(), m.name))), sha256(m.payload));
});

test("an expired partial: HEAD answers 0 and removes it; as2 prune removes one older than receive.restart.maxAge", async () => {
  const m = messages[3]!;
  for (const how of ["head", "prune"] as const) {
    const etag = newTag();
    const post = openPost(acme.url, ranged(m.req, etag, 0));
    await post.write(m.req.body.subarray(0, 200_000));
    await sleep(300);
    post.cut();
    await acme.waitFor((e) => e.event === "partial" && String(e.detail).includes(etag));
    assert.equal((await heldOf(m.req, etag)).held, 200_000);
    // Two hours pass for this partial (maxAge is 1h): its last write is moved back.
    const metas = readdirSync(partials()).filter((n) => n.endsWith(".json"));
    const metaFile = metas.map((n) => join(partials(), n)).find((f) => JSON.parse(readFileSync(f, "utf8")).etag === etag)!;
    const meta = JSON.parse(readFileSync(metaFile, "utf8"));
    writeFileSync(metaFile, JSON.stringify({ ...meta, updated: new Date(Date.now() - 2 * 3_600_000).toISOString() }));
    const part = metaFile.replace(/\.json$/, ".part");
    if (how === "head") {
      assert.equal((await heldOf(m.req, etag)).held, 0);
    } else {
      const r = await as2(["prune", "--config", acmeConfig, "--older-than", "90d", "--json"]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(JSON.parse(r.stdout).spool.count >= 1);
    }
    assert.ok(!existsSync(part) && !existsSync(metaFile), `${how}: the partial is gone`);
  }
});

for (const [k, point] of [[4, "receive:restart-whole"], [5, "receive:committed"]] as const) {
  test(`a receiver killed at ${point} (every byte held, the message not answered): HEAD says all is held, the last byte completes it; stored once`, async () => {
    const m = messages[k]!;
    const etag = newTag();
    const total = m.req.body.length;
    // A second receiver on the same data folder, which kills itself at the crash point.
    const doomed = await startAs2Receive(acmeConfig, [], { AS2KIT_CRASH_AT: point });
    await assert.rejects(exchange(doomed.url, "POST", ranged(m.req, etag, 0), m.req.body), "no answer: the receiver died");
    assert.equal((await doomed.exited).signal, "SIGKILL");
    const { held } = await heldOf(m.req, etag);
    assert.equal(held, total, "every byte is held");
    positive(await exchange(acme.url, "POST", ranged(m.req, etag, total - 1), m.req.body.subarray(total - 1)));
    assert.deepEqual(readdirSync(inbox()).filter((n) => n.startsWith(m.name.replace(/\.bin$/, ""))), [m.name]);
    assert.equal(sha256(readFileSync(join(inbox(), m.name))), sha256(m.payload));
  });
}
