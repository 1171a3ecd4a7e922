/**
 * SIGKILL in the middle of a large receive (issue 4): the inbox shows no partial file (the bytes
 * were only ever in .as2kit-tmp), the next `as2 receive` removes the dead process's temp file,
 * and `as2 send --restart` then delivers the file whole under its original Message-ID.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { before, test } from "node:test";
import { opensslIdentity, tempDir } from "../helpers/tools.js";
import { as2, startAs2Receive } from "../helpers/as2-process.js";

const dir = tempDir();
const SIZE_MB = 200;
const bigFile = join(dir, "big-order.bin");
const inbox = join(dir, "acme-data", "inbox", "myco");
const tmp = join(inbox, ".as2kit-tmp");
let acmeConfig = "";

async function sha256(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest("hex");
}

function mycoConfig(url: string): string {
  const f = join(dir, "myco.json");
  writeFileSync(f, JSON.stringify({
    dataDir: "./myco-data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    // Streamed (chunked, no retries): the receiver sees the bytes as they are made.
    partners: { acme: { as2Id: "ACME", url, certificate: "acme.crt", sign: "sha256", encrypt: "aes256-cbc", chunked: true, retries: 0, mdn: { request: "signed" } } },
  }));
  return f;
}

before(async () => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  acmeConfig = join(dir, "acme.json");
  writeFileSync(acmeConfig, JSON.stringify({
    dataDir: "./acme-data",
    station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } },
    receive: { host: "127.0.0.1", port: 0, path: "/as2" },
    partners: { myco: { as2Id: "MYCO", url: "http://127.0.0.1:9/as2", certificate: "myco.crt", inbound: { asyncMdnUrls: ["http://127.0.0.1:*"] } } },
  }));
  const block = randomBytes(1024 * 1024);
  const out = createWriteStream(bigFile);
  for (let i = 0; i < SIZE_MB; i++) if (!out.write(block)) await new Promise<void>((r) => out.once("drain", () => r()));
  await new Promise<void>((r) => out.end(() => r()));
});

test(`SIGKILL during a ${SIZE_MB} MB receive: no partial file in the inbox; a restart sweeps the temp file and the resend lands whole`, async () => {
  const server = await startAs2Receive(acmeConfig);
  const sending = as2(["send", "--config", mycoConfig(server.url), "--partner", "acme", "--json", bigFile]);
  // Wait until the receiver is well into the payload, then kill it without warning.
  let partSize = 0;
  for (let i = 0; i < 600 && partSize < 20 * 1024 * 1024; i++) {
    await sleep(50);
    const parts = existsSync(tmp) ? readdirSync(tmp) : [];
    partSize = parts.length ? statSync(join(tmp, parts[0]!)).size : 0;
  }
  assert.ok(partSize >= 20 * 1024 * 1024, `the receiver never got 20 MB into the payload (${partSize} bytes)`);
  server.proc.kill("SIGKILL");
  assert.equal((await server.exited).signal, "SIGKILL");

  assert.deepEqual(readdirSync(inbox).filter((n) => n !== ".as2kit-tmp"), [], "no file, partial or not, in the inbox");
  assert.equal(readdirSync(tmp).length, 1, "the dead receiver's temp file is still in .as2kit-tmp");
  const sent = await sending;
  assert.equal(sent.status, 1, sent.stderr);
  const job = JSON.parse(sent.stdout);
  assert.equal(job.files[0].status, "FAILED");

  const again = await startAs2Receive(acmeConfig);
  assert.match(again.stderr(), /removed 1 incomplete temp file/);
  assert.deepEqual(readdirSync(tmp), [], "swept at start-up");
  mycoConfig(again.url);
  const resent = await as2(["send", "--config", join(dir, "myco.json"), "--restart", job.runId, "--json"]);
  assert.equal(resent.status, 0, resent.stderr + resent.stdout);
  const second = JSON.parse(resent.stdout);
  assert.equal(second.files[0].as2MessageId, job.files[0].as2MessageId, "the same Message-ID");
  assert.deepEqual(readdirSync(inbox).filter((n) => n !== ".as2kit-tmp"), ["big-order.bin"]);
  assert.equal(await sha256(join(inbox, "big-order.bin")), await sha256(bigFile));
});
