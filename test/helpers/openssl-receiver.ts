/**
 * An AS2 receiver for tests that shares no code with as2kit: Node's http server for transport,
 * openssl cms for decryption, signature verification and signing the MDN, openssl dgst for the
 * MIC, Bouncy Castle (Debian's jars) for CompressedData, and plain string handling for MIME.
 * Its paths select misbehaviour: /negative, /badmic, /badsig, /html, /unsigned-mdn, /no-mic, /noattr.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { onCleanup } from "./tools.js";

const run = promisify(execFile);
const LEGACY = ["-provider", "legacy", "-provider", "default"];
export const BC_CP = ["/usr/share/java/bcprov.jar", "/usr/share/java/bcpkix.jar", "/usr/share/java/bcutil.jar"].join(":");

export interface Received {
  headers: http.IncomingHttpHeaders;
  messageId: string;
  layers: string[];
  payload: Buffer;
  payloadHeaders: string;
  mic: string;
  micAlg: string;
  signatureVerified: boolean;
  filename?: string;
  /** For an async request: the MDN the receiver would post to Receipt-Delivery-Option. */
  asyncMdn?: { headers: Record<string, string>; body: Buffer; url: string };
}

export interface ReceiverOptions {
  dir: string;
  keyFile: string;
  certFile: string;
  /** The sender's certificate, to verify its signatures. */
  partnerCertFile: string;
  /** Signs MDNs on /badsig: a key the sender does not know. */
  otherKeyFile: string;
  otherCertFile: string;
  /** Folder holding the compiled BcCompressed class (test/interop/bc). */
  bcClassDir: string;
  as2Id: string;
}

export interface OpensslReceiver {
  url: string;
  received: Received[];
  /** Payload file names (from Content-Disposition) answered with a negative MDN. */
  reject: Set<string>;
}

/** A MIME entity split at the first blank line (CRLF or LF). */
export function splitEntity(buf: Buffer): { head: string; body: Buffer } {
  let i = buf.indexOf("\r\n\r\n");
  let sep = 4;
  if (i < 0) { i = buf.indexOf("\n\n"); sep = 2; }
  if (i < 0) return { head: "", body: buf };
  return { head: buf.subarray(0, i).toString("latin1"), body: buf.subarray(i + sep) };
}

/** A header field of an entity head, unfolded. */
export function header(head: string, name: string): string | undefined {
  const unfolded = head.replace(/\r?\n[ \t]+/g, " ");
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, "im").exec(unfolded);
  return m?.[1]?.trim();
}

function param(value: string | undefined, name: string): string | undefined {
  if (!value) return undefined;
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, "i").exec(value);
  return m ? (m[1] ?? m[2]) : undefined;
}

const OPENSSL_DIGEST: Record<string, string> = { "sha-256": "sha256", sha256: "sha256", "sha-1": "sha1", sha1: "sha1", "sha-384": "sha384", sha384: "sha384", "sha-512": "sha512", sha512: "sha512", "sha-224": "sha224", sha224: "sha224", md5: "md5" };

export async function startOpensslReceiver(o: ReceiverOptions): Promise<OpensslReceiver> {
  const received: Received[] = [];
  const reject = new Set<string>();
  let n = 0;
  const f = (name: string) => join(o.dir, name);

  async function digest(alg: string, data: Buffer): Promise<string> {
    const file = f(`dg-${n}.bin`);
    writeFileSync(file, data);
    const { stdout } = await run("openssl", ["dgst", `-${alg}`, "-binary", file], { encoding: "buffer" });
    return (stdout as unknown as Buffer).toString("base64");
  }

  async function handle(req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    const id = ++n;
    const path = req.url ?? "/";
    if (path.endsWith("/html")) return { status: 500, headers: { "Content-Type": "text/html" }, body: Buffer.from("<html><body><h1>500 Internal Server Error</h1><p>java.lang.NullPointerException</p></body></html>") };
    const dno = String(req.headers["disposition-notification-options"] ?? "");
    const micalgs = /signed-receipt-micalg\s*=\s*(?:required|optional)\s*,\s*([^;]+)/i.exec(dno)?.[1]?.split(",").map((s) => s.trim().toLowerCase()) ?? [];
    const micToken = micalgs[0] ?? "sha-256";
    const micAlg = OPENSSL_DIGEST[micToken] ?? "sha256";
    const messageId = String(req.headers["message-id"] ?? "");
    const layers: string[] = [];
    let contentType = String(req.headers["content-type"] ?? "");
    let entityHead = "";
    let data = body;
    let mic = "";
    let signatureVerified = false;
    let signedPart: Buffer | undefined;
    let lastEntity: Buffer | undefined;
    // Unwrap the layers the way an independent receiver would.
    for (let depth = 0; depth < 6; depth++) {
      const type = contentType.split(";")[0]!.trim().toLowerCase();
      const smime = (param(contentType, "smime-type") ?? "").toLowerCase();
      if (type === "application/pkcs7-mime" && (smime === "enveloped-data" || smime === "authenveloped-data")) {
        layers.push("encrypted");
        writeFileSync(f(`enc-${id}.der`), data);
        await run("openssl", ["cms", "-decrypt", ...LEGACY, "-binary", "-inform", "DER", "-in", f(`enc-${id}.der`), "-inkey", o.keyFile, "-recip", o.certFile, "-out", f(`dec-${id}.mime`)]);
        const dec = readFileSync(f(`dec-${id}.mime`));
        lastEntity = dec;
        ({ head: entityHead, body: data } = splitEntity(dec));
        contentType = header(entityHead, "Content-Type") ?? "text/plain";
        continue;
      }
      if (type === "application/pkcs7-mime" && smime === "compressed-data") {
        layers.push("compressed");
        writeFileSync(f(`z-${id}.der`), data);
        await run("java", ["-cp", `${BC_CP}:${o.bcClassDir}`, "BcCompressed", "decompress", f(`z-${id}.der`), f(`z-${id}.mime`)]);
        const inflated = readFileSync(f(`z-${id}.mime`));
        lastEntity = inflated;
        ({ head: entityHead, body: data } = splitEntity(inflated));
        contentType = header(entityHead, "Content-Type") ?? "text/plain";
        continue;
      }
      if (type === "multipart/signed") {
        layers.push("signed");
        const boundary = param(contentType, "boundary")!;
        const delim = Buffer.from(`--${boundary}`);
        const start = data.indexOf(delim) + delim.length + 2;
        const end = data.indexOf(Buffer.from(`\r\n--${boundary}`), start);
        const part1 = data.subarray(start, end);
        const rest = data.subarray(end + 2 + delim.length + 2);
        const sigEnd = rest.indexOf(Buffer.from(`\r\n--${boundary}--`));
        const sigPart = splitEntity(rest.subarray(0, sigEnd));
        const cte = (header(sigPart.head, "Content-Transfer-Encoding") ?? "binary").toLowerCase();
        writeFileSync(f(`sig-${id}.der`), cte === "base64" ? Buffer.from(sigPart.body.toString("latin1"), "base64") : sigPart.body);
        writeFileSync(f(`part1-${id}.bin`), part1);
        await run("openssl", ["cms", "-verify", "-binary", "-inform", "DER", "-in", f(`sig-${id}.der`), "-content", f(`part1-${id}.bin`), "-certfile", o.partnerCertFile, "-CAfile", o.partnerCertFile, "-purpose", "any", "-out", f(`verified-${id}.bin`)]);
        signatureVerified = true;
        // Signed: the MIC covers part 1 exactly as sent, headers included (RFC 4130 §7.3.1).
        signedPart = part1;
        lastEntity = part1;
        ({ head: entityHead, body: data } = splitEntity(part1));
        contentType = header(entityHead, "Content-Type") ?? "text/plain";
        continue;
      }
      break;
    }
    // Unsigned: the innermost entity with its headers when encrypted or compressed; the bare body otherwise.
    mic = await digest(micAlg, signedPart ?? (layers.length ? lastEntity! : data));
    const filename = param(header(entityHead, "Content-Disposition"), "filename");
    const entry: Received = { headers: req.headers, messageId, layers, payload: data, payloadHeaders: entityHead, mic, micAlg: micToken, signatureVerified, filename };
    received.push(entry);

    const negative = path.endsWith("/negative") || (filename !== undefined && reject.has(filename));
    const reportedMic = path.endsWith("/badmic") ? Buffer.from(Buffer.from(mic, "base64").map((b, i) => (i === 0 ? b ^ 1 : b))).toString("base64") : mic;
    const fields = [
      "Reporting-UA: openssl-test-receiver",
      `Original-Recipient: rfc822; ${o.as2Id}`,
      `Final-Recipient: rfc822; ${o.as2Id}`,
      `Original-Message-ID: ${messageId}`,
      // /no-mic: no Received-Content-MIC, as OpenAS2 answers an unsigned request and pyas2lib a
      // signed one for an unsigned message (issue 13 cases 1 and 7).
      ...(negative || path.endsWith("/no-mic") ? [] : [`Received-Content-MIC: ${reportedMic}, ${micToken}`]),
      `Disposition: automatic-action/MDN-sent-automatically; ${negative ? "processed/error: decryption-failed" : "processed"}`,
    ];
    const boundary = `mdn-${id}-boundary`;
    const reportType = `multipart/report; report-type=disposition-notification; boundary="${boundary}"`;
    const report = Buffer.from([
      `--${boundary}`, "Content-Type: text/plain", "", negative ? "The message could not be decrypted." : "The message was received.", "",
      `--${boundary}`, "Content-Type: message/disposition-notification", "", ...fields, "", `--${boundary}--`, "",
    ].join("\r\n"));
    const replyHeaders: Record<string, string> = { "AS2-From": o.as2Id, "AS2-To": String(req.headers["as2-from"] ?? ""), "AS2-Version": "1.2", "Message-ID": `<mdn-${id}@openssl-test-receiver>` };
    if (!req.headers["disposition-notification-to"]) return { status: 200, headers: { "Content-Type": "text/plain" }, body: Buffer.from("received, no MDN requested") };
    const wantsSigned = /signed-receipt-protocol/i.test(dno) && !path.endsWith("/unsigned-mdn");
    const asyncUrl = req.headers["receipt-delivery-option"] as string | undefined;
    const answer = async (): Promise<{ headers: Record<string, string>; body: Buffer }> => {
      if (!wantsSigned) return { headers: { ...replyHeaders, "Content-Type": reportType }, body: report };
      writeFileSync(f(`report-${id}.mime`), Buffer.concat([Buffer.from(`Content-Type: ${reportType}\r\n\r\n`), report]));
      const bad = path.endsWith("/badsig");
      // /noattr: no signed attributes, the signature over the content itself (IBM Sterling B2B Integrator).
      await run("openssl", ["cms", "-sign", "-binary", "-crlfeol", "-md", micAlg, ...(path.endsWith("/noattr") ? ["-noattr"] : []), "-in", f(`report-${id}.mime`), "-signer", bad ? o.otherCertFile : o.certFile, "-inkey", bad ? o.otherKeyFile : o.keyFile, "-out", f(`mdn-${id}.smime`)]);
      const signed = splitEntity(readFileSync(f(`mdn-${id}.smime`)));
      return { headers: { ...replyHeaders, "Content-Type": header(signed.head, "Content-Type")!, "MIME-Version": "1.0" }, body: signed.body };
    };
    const mdn = await answer();
    if (asyncUrl) {
      // Async (RFC 4130 §7.3): 200 with no MDN now; the test delivers this one later.
      entry.asyncMdn = { ...mdn, url: asyncUrl };
      return { status: 200, headers: { "Content-Length": "0" }, body: Buffer.alloc(0) };
    }
    return { status: 200, ...mdn };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, Buffer.concat(chunks)).then(
        (r) => { res.writeHead(r.status, r.headers); res.end(r.body); },
        (e: Error & { stderr?: string }) => { res.writeHead(500, { "Content-Type": "text/plain" }); res.end(`receiver error: ${e.message} ${e.stderr ?? ""}`); },
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/as2`, received, reject };
}
