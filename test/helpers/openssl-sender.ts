/**
 * An AS2 sender for tests that shares no code with as2kit: MIME entities are written by hand,
 * `openssl cms` signs (detached S/MIME, multipart/signed) and encrypts (EnvelopedData, DER),
 * Bouncy Castle (Debian's jars, test/interop/bc) makes CompressedData, and `openssl dgst` gives
 * the MIC the receiver must report (as2-reference §7). Also an independent MDN checker: `openssl
 * cms -verify` on a signed MDN and string handling for the disposition fields.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BC_CP, header, splitEntity } from "./openssl-receiver.js";
import { LEGACY, openssl } from "./tools.js";

export type Layer = "sign" | "compress" | "encrypt";

export interface OpensslSenderOptions {
  dir: string;
  /** The sender's key and certificate (signing). */
  keyFile: string;
  certFile: string;
  /** The receiver's certificate (encryption). */
  recipientCertFile: string;
  /** Folder holding the compiled BcCompressed class. */
  bcClassDir: string;
}

export interface OpensslMessage {
  /** The outer Content-Type, which goes in the HTTP headers (RFC 4130 §5.2). */
  contentType: string;
  /** Other outer headers (the plain case carries Content-Disposition in HTTP). */
  extraHeaders: Record<string, string>;
  body: Buffer;
  /** The bytes the receiver's MIC must cover, and the digest (openssl name) it must use when signed. */
  micInput: Buffer;
  signDigest?: string;
}

let seq = 0;

/**
 * Builds a message from the payload, applying the layers innermost first: ["compress", "sign",
 * "encrypt"] is compress-before-signing, then encryption.
 */
export function buildWithOpenssl(o: OpensslSenderOptions, payload: Buffer, filename: string, contentType: string, layers: Layer[], signDigest = "sha256", cipher = "aes256"): OpensslMessage {
  const payloadEntity = Buffer.concat([
    Buffer.from(`Content-Type: ${contentType}\r\nContent-Transfer-Encoding: binary\r\nContent-Disposition: attachment; filename="${filename}"\r\n\r\n`),
    payload,
  ]);
  if (!layers.length) {
    return { contentType, extraHeaders: { "Content-Disposition": `attachment; filename="${filename}"` }, body: payload, micInput: payload };
  }
  return wrapWithOpenssl(o, payloadEntity, layers, signDigest, cipher);
}

/**
 * The layers around a whole MIME entity given as bytes (headers, blank line, body), e.g. a
 * hand-built multipart/related with several attachments (RFC 6362). Plain (no layers): the
 * entity's headers go to HTTP and the MIC covers its body only (RFC 4130 §7.3.1 b3).
 */
export function wrapWithOpenssl(o: OpensslSenderOptions, payloadEntity: Buffer, layers: Layer[], signDigest = "sha256", cipher = "aes256"): OpensslMessage {
  const n = ++seq;
  const f = (name: string) => join(o.dir, `osend-${n}-${name}`);
  if (!layers.length) {
    const { head, body } = splitEntity(payloadEntity);
    return { contentType: header(head, "Content-Type")!, extraHeaders: {}, body, micInput: body };
  }
  let entity = payloadEntity;
  let micInput: Buffer | undefined;
  for (const layer of layers) {
    writeFileSync(f(`${layer}-in`), entity);
    if (layer === "sign") {
      // RFC 4130 §7.3.1: the MIC of a signed message covers part 1 exactly as signed.
      micInput = entity;
      openssl(["cms", "-sign", "-binary", "-crlfeol", "-md", signDigest, "-in", f("sign-in"), "-signer", o.certFile, "-inkey", o.keyFile, "-out", f("sign-out")]);
      entity = readFileSync(f("sign-out"));
    } else if (layer === "compress") {
      execFileSync("java", ["-cp", `${BC_CP}:${o.bcClassDir}`, "BcCompressed", "compress", f("compress-in"), f("compress-out")], { stdio: "pipe" });
      entity = Buffer.concat([Buffer.from("Content-Type: application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z\r\nContent-Transfer-Encoding: binary\r\n\r\n"), readFileSync(f("compress-out"))]);
    } else {
      openssl(["cms", "-encrypt", ...LEGACY, "-binary", `-${cipher}`, "-in", f("encrypt-in"), "-outform", "DER", "-out", f("encrypt-out"), o.recipientCertFile]);
      entity = Buffer.concat([Buffer.from("Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: binary\r\n\r\n"), readFileSync(f("encrypt-out"))]);
    }
  }
  const { head, body } = splitEntity(entity);
  const outerType = header(head, "Content-Type");
  if (!outerType) throw new Error(`no Content-Type in ${head}`);
  // Unsigned but encrypted or compressed: the innermost entity, headers included (M table).
  return { contentType: outerType, extraHeaders: {}, body, micInput: micInput ?? payloadEntity, signDigest: micInput ? signDigest : undefined };
}

/** The base64 digest openssl computes over the bytes. */
export function opensslMic(dir: string, digest: string, data: Buffer): string {
  const file = join(dir, `mic-${++seq}.bin`);
  writeFileSync(file, data);
  return openssl(["dgst", `-${digest}`, "-binary", file]).toString("base64");
}

export interface CheckedMdn {
  signed: boolean;
  /** The message/disposition-notification fields, names lower-cased. */
  fields: Record<string, string>;
}

/**
 * Reads an MDN as an outside tool would: a signed one must verify with `openssl cms -verify`
 * against the signer's certificate; then the disposition-notification part is found by its
 * Content-Type and its fields are read.
 */
export function checkMdnWithOpenssl(dir: string, contentType: string, body: Buffer, signerCertFile: string): CheckedMdn {
  const file = join(dir, `mdn-${++seq}.eml`);
  writeFileSync(file, Buffer.concat([Buffer.from(`Content-Type: ${contentType}\r\n\r\n`), body]));
  const signed = /^multipart\/signed/i.test(contentType);
  const report = signed
    ? openssl(["cms", "-verify", "-in", file, "-certfile", signerCertFile, "-CAfile", signerCertFile, "-purpose", "any"])
    : body;
  const text = report.toString("latin1");
  const at = text.search(/content-type:\s*message\/disposition-notification/i);
  if (at < 0) throw new Error(`no message/disposition-notification part in: ${text}`);
  const afterHead = text.slice(at).split(/\r?\n\r?\n/)[1] ?? "";
  const fields: Record<string, string> = {};
  for (const line of afterHead.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (m) fields[m[1]!.toLowerCase()] = m[2]!.trim();
  }
  return { signed, fields };
}
