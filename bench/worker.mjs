// One benchmark step in its own process, so its peak RSS is its own (measured by /usr/bin/time -v).
//   build <payload> <out> <headers.json> <sender.key> <sender.crt> <recipient.crt> [compress]
//   open  <in> <headers.json> <recipient.key> <recipient.crt> <sender.crt>
import { createReadStream, createWriteStream, readFileSync, writeFileSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { Readable, Writable } from "node:stream";
import { buildMessage, openMessage, loadPrivateKey, loadCertificates } from "../dist/index.js";

const [mode, ...a] = process.argv.slice(2);
const cert = (f) => loadCertificates(readFileSync(f))[0];
if (mode === "build") {
  const [payload, out, headersFile, key, crt, rcpt, compress] = a;
  const m = buildMessage({
    from: "BENCH-A", to: "BENCH-B", payload: createReadStream(payload, { highWaterMark: 1 * 1024 * 1024 }), contentType: "application/edi-x12", filename: "bench.edi",
    sign: { digest: "sha256", key: loadPrivateKey(readFileSync(key)), certificate: cert(crt) },
    encrypt: { cipher: "aes256-cbc", recipients: [{ certificate: cert(rcpt) }] },
    compress: compress === "compress" ? "before-signing" : false,
    hashing: "worker",
  });
  await pipeline(Readable.from(m.body), createWriteStream(out, { highWaterMark: 1 * 1024 * 1024 }));
  const done = await m.done;
  writeFileSync(headersFile, JSON.stringify({ headers: m.headers.toObject(), mic: done.mic.base64 }));
} else {
  const [input, headersFile, key, crt, signer] = a;
  const { headers, mic } = JSON.parse(readFileSync(headersFile, "utf8"));
  let size = 0;
  const opened = await openMessage({
    headers, body: createReadStream(input, { highWaterMark: 1 * 1024 * 1024 }),
    decryptionKeys: [{ key: loadPrivateKey(readFileSync(key)), certificate: cert(crt) }], signerCertificates: [cert(signer)],
    onPayload: async (_info, body) => { for await (const c of body) size += c.length; },
  });
  if (opened.mic.base64 !== mic) throw new Error("MIC mismatch");
  process.stdout.write(JSON.stringify({ size, signed: opened.signed }) + "\n");
}
