/**
 * The DER fast path of parseSignedData (src/core/cms/signed-der.ts, issue 14) must read exactly
 * what the pkijs reader reads, or decline (undefined) so that pkijs reads it. Signatures from
 * as2kit (every digest, issuerAndSerialNumber and subjectKeyIdentifier, with and without signed
 * attributes' signingTime, with a chain) and from `openssl cms` (an independent encoder; BER with
 * -stream) are read both ways and compared field by field.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { createDetachedSignature, type DigestAlgorithm } from "../../src/core/index.js";
import { parseSignedDataWithPkijs, parseSignedData, type ParsedSignature } from "../../src/core/cms/signed.js";
import { readSignedDataDer } from "../../src/core/cms/signed-der.js";
import { openssl, opensslIdentity, tempDir } from "../helpers/tools.js";

const dir = tempDir("as2kit-signed-der-");
const a = opensslIdentity("signer", dir);
const b = opensslIdentity("intermediate", dir);

function comparable(p: ParsedSignature): unknown {
  return {
    certificates: p.certificates.map((c) => c.der.toString("hex")),
    signers: p.signers.map((s) => ({ ...s, signingTime: s.signingTime?.toISOString() })),
  };
}

function assertSame(cms: Buffer, what: string): void {
  const fast = readSignedDataDer(cms);
  assert.ok(fast, `${what}: the DER reader declined`);
  assert.deepEqual(comparable(fast), comparable(parseSignedDataWithPkijs(cms)), what);
}

for (const digest of ["sha1", "sha256", "sha384", "sha512"] as DigestAlgorithm[]) {
  test(`as2kit's own SignedData (${digest}): the DER reader reads what pkijs reads`, () => {
    const md = createHash(digest).update(randomBytes(100)).digest();
    assertSame(createDetachedSignature(md, { digest, key: a.key, certificate: a.certificate, signingTime: new Date("2026-03-04T05:06:07Z") }), `${digest}, signingTime`);
    assertSame(createDetachedSignature(md, { digest, key: a.key, certificate: a.certificate, signingTime: null, chain: [b.certificate] }), `${digest}, no signingTime, a chain`);
    assertSame(createDetachedSignature(md, { digest, key: a.key, certificate: a.certificate, signingTime: new Date("1999-12-31T23:59:59Z"), useSubjectKeyIdentifier: true, smimeCapabilities: false }), `${digest}, subjectKeyIdentifier`);
  });
}

test("openssl cms -sign (DER, and BER with -stream): the DER reader agrees with pkijs, or declines and pkijs reads it", () => {
  const content = join(dir, "content.txt");
  writeFileSync(content, "UNB+UNOA:2+MYCO+ACME'\r\n");
  for (const [flags, ber] of [[["-md", "sha256"], false], [["-md", "sha512", "-nosmimecap"], false], [["-md", "sha256", "-noattr"], false], [["-md", "sha256", "-stream"], true]] as const) {
    const out = join(dir, "sig.der");
    openssl(["cms", "-sign", "-binary", "-in", content, "-signer", a.certFile, "-inkey", a.keyFile, "-outform", "DER", "-out", out, ...flags]);
    const cms = readFileSync(out);
    if (ber) {
      assert.equal(readSignedDataDer(cms), undefined, "indefinite lengths (BER) are for pkijs");
      assert.deepEqual(comparable(parseSignedData(cms)), comparable(parseSignedDataWithPkijs(cms)));
    } else {
      assertSame(cms, `openssl ${flags.join(" ")}`);
    }
  }
});

test("RSASSA-PSS, trailing bytes and a cut-off input: declined, so pkijs's reading and errors stand", () => {
  const md = createHash("sha256").update("x").digest();
  const pss = createDetachedSignature(md, { digest: "sha256", key: a.key, certificate: a.certificate, signingTime: null, scheme: "rsassa-pss" });
  assert.equal(readSignedDataDer(pss), undefined);
  assert.equal(parseSignedData(pss).signers[0]!.scheme, "rsassa-pss");
  const plain = createDetachedSignature(md, { digest: "sha256", key: a.key, certificate: a.certificate, signingTime: null });
  assert.equal(readSignedDataDer(Buffer.concat([plain, Buffer.from([0])])), undefined);
  assert.equal(readSignedDataDer(plain.subarray(0, plain.length - 10)), undefined);
  assert.throws(() => parseSignedData(plain.subarray(0, plain.length - 10)), { code: "AS2_ERR_MALFORMED_CMS" });
});
