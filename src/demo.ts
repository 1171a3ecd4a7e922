/**
 * The README's first command: a loopback of the protocol core between two stations with freshly
 * generated keys. Builds a signed, compressed, encrypted message from a sample file, opens it
 * again as the partner would, answers with a signed MDN and verifies that MDN.
 * (When `as2 send`/`as2 receive` exist this becomes a real HTTP transfer between two stations.)
 */
import { readFile } from "node:fs/promises";
import { Buffer } from "node:buffer";
import {
  buildMessage, openMessage, buildMdn, parseMdn, verifyMdn, createSelfSignedCertificate, collect, fromBytes, micAlgorithmName,
} from "./core/index.js";

async function main(): Promise<void> {
  const file = process.argv[2] ?? new URL("../examples/sample-order.edi", import.meta.url).pathname;
  const payload = await readFile(file);
  const now = new Date();
  const validity = { notBefore: new Date(now.getTime() - 3600_000), notAfter: new Date(now.getTime() + 365 * 86400_000) };
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`as2kit demo: MYCO sends ${file} (${payload.length} bytes) to ACME`);
  const [myco, acme] = await Promise.all([
    createSelfSignedCertificate({ commonName: "MYCO demo", ...validity }),
    createSelfSignedCertificate({ commonName: "ACME demo", ...validity }),
  ]);
  out(`  generated keys: ${myco.certificate.describe()} / ${acme.certificate.describe()}`);

  const message = buildMessage({
    from: "MYCO", to: "ACME", payload, contentType: "application/edifact", filename: "sample-order.edi", subject: "Demo order",
    sign: { digest: "sha256", key: myco.key, certificate: myco.certificate },
    encrypt: { cipher: "aes256-cbc", recipients: [{ certificate: acme.certificate }] },
    compress: "before-signing",
    receipt: { notificationTo: "edi@myco.example", signed: true, micAlgorithms: ["sha256"] },
  });
  const wire = await collect(message.body, 64 * 1024 * 1024);
  const sent = await message.done;
  out(`  built ${message.messageId}: signed sha256, compressed before signing, encrypted aes256-cbc, ${wire.length} bytes on the wire`);
  out(`  MIC at send time:  ${sent.mic.base64}, ${micAlgorithmName(sent.mic.algorithm)}`);

  let received: Buffer = Buffer.alloc(0);
  const opened = await openMessage({
    headers: message.headers, body: fromBytes(wire),
    decryptionKeys: [{ key: acme.key, certificate: acme.certificate }], signerCertificates: [myco.certificate],
    requireSigned: true, requireEncrypted: true,
    onPayload: async (_info, body) => { received = await collect(body, 64 * 1024 * 1024); },
  });
  out(`  ACME opened it:    decrypted with ${opened.encryption!.cipher} (${opened.encryption!.keyEncryption}), signature by ${opened.signature!.signer.describe()}, compression ${opened.compressed}`);
  out(`  payload ${opened.payload.filename} ${opened.payload.size} bytes, identical: ${received.equals(payload)}`);
  out(`  MIC at receipt:    ${opened.mic.base64}, ${micAlgorithmName(opened.mic.algorithm)}`);

  const mdn = buildMdn({
    original: { messageId: message.messageId, from: "MYCO", to: "ACME", subject: "Demo order" },
    disposition: { type: "processed" },
    mic: { base64: opened.mic.base64, algorithm: opened.mic.algorithm },
    sign: { digest: "sha256", key: acme.key, certificate: acme.certificate },
  });
  const parsed = parseMdn(mdn.headers, mdn.body);
  const verdict = verifyMdn(parsed, { partnerCertificates: [acme.certificate], expectedMessageId: message.messageId, expectedMics: [sent.mic], requireSigned: true, now });
  for (const [name, check] of Object.entries(verdict.checks)) out(`  MDN ${name.padEnd(18)} ${check.verdict.toUpperCase().padEnd(5)} ${check.detail}`);
  out(verdict.ok && received.equals(payload) ? "demo: OK" : "demo: FAILED");
  process.exitCode = verdict.ok && received.equals(payload) ? 0 : 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`demo failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
