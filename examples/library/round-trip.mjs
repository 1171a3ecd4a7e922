// The as2kit library without the CLI: MYCO builds a signed, compressed and encrypted message for
// ACME; ACME opens it, keeps the payload and answers with a signed MDN; MYCO verifies that MDN
// against the MIC it computed when it built the message. Run: node examples/library/round-trip.mjs
import { buildMdn, buildMessage, collect, createSelfSignedCertificate, fromBytes, openMessage, parseMdn, verifyMdn } from "as2kit";

const year = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 365 * 86_400_000) };
const myco = await createSelfSignedCertificate({ commonName: "MYCO", ...year });
const acme = await createSelfSignedCertificate({ commonName: "ACME", ...year });

// MYCO: the message. Its body is a stream; here it is collected because it is small.
const order = Buffer.from("UNB+UNOA:2+MYCO+ACME+261122:1200+1'UNH+1+ORDERS:D:96A:UN'UNZ+1+1'");
const message = buildMessage({
  from: "MYCO", to: "ACME", payload: order, contentType: "application/EDIFACT", filename: "order.edi",
  sign: { digest: "sha256", key: myco.key, certificate: myco.certificate },
  encrypt: { cipher: "aes256-cbc", recipients: [{ certificate: acme.certificate }] },
  compress: "before-signing",
  receipt: { notificationTo: "edi@myco.example", signed: true, micAlgorithms: ["sha256"] },
});
const body = await collect(message.body, 10 * 1024 * 1024);
const { mic } = await message.done; // kept by the sender to check the MDN (RFC 4130 §7.3.1)
const headers = Object.fromEntries(message.headers.list.map((h) => [h.name, h.value]));

// ACME: open it (decrypt, verify MYCO's signature, inflate), keep the payload, answer.
let received;
const opened = await openMessage({
  headers, body: fromBytes(body), decryptionKeys: [acme], signerCertificates: [myco.certificate],
  onPayload: async (info, payload) => { received = { name: info.filename, data: await collect(payload, 1024 * 1024) }; },
});
const mdn = buildMdn({
  original: { messageId: headers["Message-ID"], from: headers["AS2-From"], to: headers["AS2-To"] },
  disposition: { type: "processed" },
  mic: { base64: opened.mic.base64, algorithm: opened.mic.algorithm },
  sign: { digest: "sha256", key: acme.key, certificate: acme.certificate },
});

// MYCO: verify the MDN: ACME's signature, the Message-ID, the disposition and the MIC.
const verdict = verifyMdn(parseMdn(Object.fromEntries(mdn.headers.list.map((h) => [h.name, h.value])), mdn.body), {
  partnerCertificates: [acme.certificate], expectedMessageId: headers["Message-ID"], expectedMics: [mic], requireSigned: true, now: new Date(),
});

console.log(`ACME received ${received.name} (${received.data.length} bytes, ${opened.signed ? "signed" : "unsigned"}, ${opened.encrypted ? "encrypted" : "plain"}, compressed ${opened.compressed})`);
for (const [check, { verdict: v, detail }] of Object.entries(verdict.checks)) console.log(`${v.toUpperCase().padEnd(4)}  ${check.padEnd(18)} ${detail}`);
console.log(verdict.ok && received.data.equals(order) ? "confirmed: the MDN proves ACME received exactly what MYCO sent" : "NOT confirmed");
process.exitCode = verdict.ok && received.data.equals(order) ? 0 : 1;
