// A minimal AS2 receiver for the send benchmarks: it decrypts and verifies each message (the
// library's openMessage, payload discarded) and answers with a signed sync MDN carrying the MIC,
// so that `as2 send` judges every file SUCCESS; it stores nothing and keeps no ledger. What it
// measures is therefore the sender's ceiling, apart from the receive pipeline's own cost.
//   node bench/mdn-sink.mjs <key.pem> <cert.pem> <partner-cert.pem>
// Prints its port on stdout; on SIGTERM prints `{"messages":N,"connections":M}` to stdout and exits.
// HTTP/1.1 keep-alive as Node's server does it by default (keepAliveTimeout 5 s).
import * as http from "node:http";
import { readFileSync } from "node:fs";
import { buildMdn, loadCertificates, loadPrivateKey, openMessage } from "../dist/index.js";

const [keyFile, certFile, partnerFile] = process.argv.slice(2);
const key = loadPrivateKey(readFileSync(keyFile));
const certificate = loadCertificates(readFileSync(certFile))[0];
const partner = loadCertificates(readFileSync(partnerFile))[0];
let messages = 0;
let connections = 0;

const server = http.createServer(async (req, res) => {
  try {
    const opened = await openMessage({
      headers: req.headers, body: req,
      decryptionKeys: [{ key, certificate }], signerCertificates: [partner],
      onPayload: async (_info, body) => { for await (const _ of body); },
    });
    const mdn = buildMdn({
      original: { messageId: String(req.headers["message-id"]), from: String(req.headers["as2-from"]), to: String(req.headers["as2-to"]) },
      disposition: { type: "processed" },
      mic: { base64: opened.mic.base64, algorithm: opened.mic.algorithm },
      sign: { digest: "sha256", key, certificate },
    });
    messages++;
    res.writeHead(200, mdn.headers.toObject());
    res.end(mdn.body);
  } catch (e) {
    res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(String(e?.message ?? e));
  }
});
server.on("connection", () => { connections++; });
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
process.on("SIGTERM", () => {
  process.stdout.write(`${JSON.stringify({ messages, connections })}\n`, () => process.exit(0));
});
