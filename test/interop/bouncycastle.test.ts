// CompressedData (RFC 3274, K17) both ways against Bouncy Castle from Debian (libbcpkix-java),
// the reference the Java AS2 products (OpenAS2, Mendelson) build on. openssl here has no zlib.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { compressStream, decompressStream, buildMessage, openMessage, collect, fromBytes } from "../../src/core/index.js";
import { tempDir, write, opensslIdentity, chunks } from "../helpers/tools.js";

const dir = tempDir();
const CP = ["/usr/share/java/bcprov.jar", "/usr/share/java/bcpkix.jar", "/usr/share/java/bcutil.jar"].join(":");
const PAYLOAD = Buffer.concat([Buffer.from("UNB+UNOA:2+A+B'".repeat(5000)), randomBytes(50000)]);

before(() => {
  execFileSync("javac", ["-cp", CP, "-d", dir, join("test", "interop", "bc", "BcCompressed.java")], { stdio: "pipe" });
});

function bc(mode: "compress" | "decompress", input: Buffer): Buffer {
  const i = write(dir, `${mode}.in`, input);
  const o = join(dir, `${mode}.out`);
  execFileSync("java", ["-cp", `${CP}:${dir}`, "BcCompressed", mode, i, o], { stdio: "pipe" });
  return readFileSync(o);
}

test("Bouncy Castle inflates our CompressedData", async () => {
  const ours = await collect(compressStream(fromBytes(PAYLOAD)), 1e8);
  assert.ok(ours.length < PAYLOAD.length);
  assert.deepEqual(bc("decompress", ours), PAYLOAD);
});

test("we inflate Bouncy Castle's CompressedData (BER, streamed)", async () => {
  const theirs = bc("compress", PAYLOAD);
  for (const size of [1000, 65536]) assert.deepEqual(await collect(await decompressStream(chunks(theirs, size), { maxInflatedBytes: 1e8 }), 1e8), PAYLOAD);
});

test("a Bouncy Castle-compressed entity inside a message signed by us opens with both compression orders", async () => {
  const id = opensslIdentity("bc-signer", dir);
  for (const compress of ["before-signing", "after-signing"] as const) {
    const m = buildMessage({ from: "A", to: "B", payload: PAYLOAD, contentType: "application/edifact", compress, sign: { digest: "sha256", key: id.key, certificate: id.certificate } });
    const wire = await collect(m.body, 1e8);
    let got: Buffer | undefined;
    const opened = await openMessage({ headers: m.headers, body: fromBytes(wire), decryptionKeys: [], signerCertificates: [id.certificate], onPayload: async (_i, b) => { got = await collect(b, 1e8); } });
    assert.equal(opened.compressed, compress);
    assert.deepEqual(got, PAYLOAD);
    // the same inner compressed entity is readable by BC: take it out of the message and inflate it there
    if (compress === "after-signing") {
      const cms = wire;
      const inflated = bc("decompress", cms);
      assert.ok(inflated.toString("latin1").startsWith("Content-Type: multipart/signed"));
    }
  }
});
