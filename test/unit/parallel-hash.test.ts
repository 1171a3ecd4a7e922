// Hashing on a worker thread gives the same digests and MICs as hashing inline, waits instead of
// buffering when the worker is behind, and fails (never hangs) when the worker cannot hash.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import { offloadedHash, inlineHash, tapHash, BUFFER_BYTES, POOL_BUFFERS, buildMessage, openMessage, collect, fromBytes } from "../../src/core/index.js";
import { opensslIdentity, tempDir } from "../helpers/tools.js";

test("offloaded sha256 equals inline over a payload larger than the buffer pool", async () => {
  const data = randomBytes(POOL_BUFFERS * BUFFER_BYTES * 2 + 12345);
  const h = offloadedHash("sha256");
  let waited = 0;
  for await (const _ of tapHash((async function* () { for (let i = 0; i < data.length; i += 3 * 1024 * 1024 + 7) { waited++; yield data.subarray(i, i + 3 * 1024 * 1024 + 7); } })(), h)) void _;
  assert.ok(waited > 5);
  assert.deepEqual(await h.digest(), createHash("sha256").update(data).digest());
  const i = inlineHash("sha1");
  i.update(data);
  assert.deepEqual(await i.digest(), createHash("sha1").update(data).digest());
});

test("a worker that cannot hash rejects instead of hanging", async () => {
  const h = offloadedHash("no-such-hash");
  await assert.rejects(h.digest());
});

test("a message built with worker hashing has the same MIC and opens", async () => {
  const id = opensslIdentity("ph", tempDir());
  const payload = randomBytes(3 * 1024 * 1024);
  for (const sign of [false, true]) {
    const mics: string[] = [];
    for (const hashing of ["inline", "worker"] as const) {
      const m = buildMessage({
        from: "A", to: "B", payload, contentType: "application/octet-stream", hashing, now: () => new Date(0), randomBytes: (n) => Buffer.alloc(n, 1),
        sign: sign && { digest: "sha256", key: id.key, certificate: id.certificate }, encrypt: { cipher: "aes128-cbc", recipients: [{ certificate: id.certificate }] },
      });
      const wire = await collect(m.body, 1e8);
      mics.push((await m.done).mic.base64);
      const opened = await openMessage({ headers: m.headers, body: fromBytes(wire), decryptionKeys: [{ key: id.key, certificate: id.certificate }], signerCertificates: [id.certificate], onPayload: async (_i, b) => { await collect(b, 1e8); } });
      assert.equal(opened.mic.base64, mics[mics.length - 1]);
    }
    assert.equal(mics[0], mics[1]);
  }
});

test("abandoning a body built with worker hashing stops the worker (the process can exit)", async () => {
  const id = opensslIdentity("ph2", tempDir());
  const m = buildMessage({ from: "A", to: "B", payload: randomBytes(4 * 1024 * 1024), contentType: "application/octet-stream", hashing: "worker", sign: { digest: "sha256", key: id.key, certificate: id.certificate } });
  for await (const _ of m.body) break; // the consumer gives up after the first chunk
  await assert.rejects(m.done, /not read to the end/);
});
