/**
 * Tools for the hostile-request suite (test/e2e/hostile.test.ts, issue 12): a raw HTTP/1.1
 * client over net sockets (so every byte of a request, bad framing included, is the test's
 * choice), a small DER/BER walker to mutate CMS structures at known places, builders for MIME
 * entities whose every header byte is chosen by the test, and a bounded-concurrency runner.
 * Nothing here talks to anything but 127.0.0.1.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import * as net from "node:net";
import {
  collect, compressStream, createDetachedSignature, encryptStream, fromBytes,
  type Certificate, type ContentCipher, type DigestAlgorithm,
} from "../../src/core/index.js";

// ---------------------------------------------------------------- raw HTTP

export type Piece = Buffer | { delayMs: number };

export interface RawRequest {
  port: number;
  /** Request line, header lines and the blank line. */
  head: Buffer;
  /** Body pieces, with optional pauses between them. */
  body?: Piece[];
  /**
   * What the client does once everything is written: wait for the server to answer and close
   * (default); half-close its end (end: a body that stops short, then EOF) and wait; or
   * destroy the connection (a truncated upload) after `destroyDelayMs`.
   */
  after?: "wait" | "end" | "destroy";
  destroyDelayMs?: number;
  /** Give up (and close) after this long. */
  timeoutMs?: number;
}

export interface RawResponse {
  status?: number;
  headers: Record<string, string>;
  body: Buffer;
  raw: Buffer;
  closedAfterMs: number;
  timedOut: boolean;
  /** A write failed (the server closed while the client was still sending). */
  writeError?: string;
}

function parseResponse(raw: Buffer): { status?: number; headers: Record<string, string>; body: Buffer } {
  // Interim 1xx answers (100 Continue) come before the real one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(raw.subarray(0, 16).toString("latin1")) && raw.indexOf("\r\n\r\n") >= 0) raw = raw.subarray(raw.indexOf("\r\n\r\n") + 4);
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return { headers: {}, body: Buffer.alloc(0) };
  const lines = raw.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    if (c <= 0) continue;
    const n = l.slice(0, c).trim().toLowerCase();
    const v = l.slice(c + 1).trim();
    headers[n] = n in headers ? `${headers[n]}, ${v}` : v;
  }
  let body = raw.subarray(end + 4);
  if (headers["content-length"] !== undefined) body = body.subarray(0, Number(headers["content-length"]));
  else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = dechunk(body);
  return { status: m ? Number(m[1]) : undefined, headers, body: Buffer.from(body) };
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = b.indexOf("\r\n", i);
    if (nl < 0) break;
    const size = parseInt(b.subarray(i, nl).toString("latin1"), 16);
    if (!size) break;
    out.push(b.subarray(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** Sends one request on its own connection and collects what comes back until the server closes. */
export function rawRequest(o: RawRequest): Promise<RawResponse> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let timedOut = false;
    let writeError: string | undefined;
    let done = false;
    const s = net.connect(o.port, "127.0.0.1");
    const timer = setTimeout(() => { timedOut = true; s.destroy(); }, o.timeoutMs ?? 20_000);
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", (e) => { writeError ??= e.message; });
    s.on("close", () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      resolve({ ...parseResponse(raw), raw, closedAfterMs: Date.now() - started, timedOut, writeError });
    });
    const write = (b: Buffer) => new Promise<void>((res) => {
      if (s.destroyed) return res();
      if (s.write(b)) res();
      else {
        const go = () => { s.off("close", go); s.off("drain", go); res(); };
        s.once("drain", go);
        s.once("close", go);
      }
    });
    s.on("connect", async () => {
      await write(o.head);
      for (const p of o.body ?? []) {
        if (s.destroyed) break;
        if (Buffer.isBuffer(p)) await write(p);
        else await new Promise((r) => setTimeout(r, p.delayMs));
      }
      if (o.after === "end" && !s.destroyed) s.end();
      if (o.after === "destroy") {
        // Let the bytes leave before the connection goes away.
        await new Promise((r) => setTimeout(r, o.destroyDelayMs ?? 100));
        s.destroy();
      }
    });
  });
}

export type HeaderValue = string | Buffer;
export type HeaderList = Array<[string, HeaderValue]>;

/** Request line and headers as bytes (strings are written as latin1, so every byte is the test's). */
export function requestHead(method: string, path: string, headers: HeaderList): Buffer {
  const parts: Buffer[] = [Buffer.from(`${method} ${path} HTTP/1.1\r\n`, "latin1")];
  for (const [n, v] of headers) parts.push(Buffer.from(`${n}: `, "latin1"), Buffer.isBuffer(v) ? v : Buffer.from(v, "latin1"), Buffer.from("\r\n"));
  parts.push(Buffer.from("\r\n"));
  return Buffer.concat(parts);
}

/** Replaces (or, with undefined, removes) every header of that name; appends when absent. */
export function setHeader(list: HeaderList, name: string, value: HeaderValue | undefined): HeaderList {
  const n = name.toLowerCase();
  const out = list.filter(([k]) => k.toLowerCase() !== n);
  if (value !== undefined) {
    const at = list.findIndex(([k]) => k.toLowerCase() === n);
    out.splice(at < 0 ? out.length : at, 0, [name, value]);
  }
  return out;
}

/** A body in chunked transfer coding with the given chunk sizes (cycled), and the final chunk. */
export function chunkedBody(body: Buffer, sizes: number[], opts: { extension?: string; trailer?: string; hexCase?: "lower" | "upper"; pad?: number } = {}): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (let k = 0; i < body.length; k++) {
    const n = Math.min(sizes[k % sizes.length]!, body.length - i);
    let hex = n.toString(16);
    if (opts.hexCase === "upper") hex = hex.toUpperCase();
    if (opts.pad) hex = hex.padStart(opts.pad, "0");
    out.push(Buffer.from(`${hex}${opts.extension ?? ""}\r\n`), body.subarray(i, i + n), Buffer.from("\r\n"));
    i += n;
  }
  out.push(Buffer.from(`0\r\n${opts.trailer ?? ""}\r\n`));
  return Buffer.concat(out);
}

// ---------------------------------------------------------------- DER / BER

export interface BerNode {
  /** Offset of the identifier octet. */
  off: number;
  /** Identifier octet (low tag numbers only: all CMS needs). */
  tag: number;
  constructed: boolean;
  /** Offset of the first content octet. */
  contentOff: number;
  /** Content length; null for indefinite. */
  len: number | null;
  /** Offset just past the element (past its end-of-contents when indefinite). */
  end: number;
  children: BerNode[];
}

/** Walks one BER element at `off` (definite and indefinite lengths); throws on anything odd. */
export function parseBer(buf: Buffer, off = 0): BerNode {
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) throw new Error(`high tag number at ${off}`);
  let p = off + 1;
  const l0 = buf[p++]!;
  let len: number | null;
  if (l0 < 0x80) len = l0;
  else if (l0 === 0x80) len = null;
  else {
    len = 0;
    for (let i = 0; i < (l0 & 0x7f); i++) len = len * 256 + buf[p++]!;
  }
  const constructed = (tag & 0x20) !== 0;
  const node: BerNode = { off, tag, constructed, contentOff: p, len, end: 0, children: [] };
  if (!constructed) {
    if (len === null) throw new Error(`indefinite primitive at ${off}`);
    node.end = p + len;
    return node;
  }
  if (len === null) {
    let q = p;
    while (!(buf[q] === 0 && buf[q + 1] === 0)) {
      const c = parseBer(buf, q);
      node.children.push(c);
      q = c.end;
    }
    node.end = q + 2;
  } else {
    let q = p;
    while (q < p + len) {
      const c = parseBer(buf, q);
      node.children.push(c);
      q = c.end;
    }
    node.end = p + len;
  }
  return node;
}

/** The node at a path of child indexes. */
export function berAt(root: BerNode, ...path: number[]): BerNode {
  let n = root;
  for (const i of path) {
    const c = n.children[i];
    if (!c) throw new Error(`no child ${i} at offset ${n.off}`);
    n = c;
  }
  return n;
}

export function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** The buffer with the node's length octets replaced by `lengthOctets` (nothing else changes). */
export function withLengthOctets(buf: Buffer, node: BerNode, lengthOctets: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, node.off + 1), lengthOctets, buf.subarray(node.contentOff)]);
}

/**
 * Re-encodes the tree: the nodes in `indefinite` get indefinite lengths with end-of-contents,
 * the others definite lengths. Primitive contents are copied.
 */
export function reencode(buf: Buffer, node: BerNode, indefinite: Set<BerNode>): Buffer {
  if (!node.constructed) return Buffer.from(buf.subarray(node.off, node.end));
  const content = Buffer.concat(node.children.map((c) => reencode(buf, c, indefinite)));
  if (indefinite.has(node)) return Buffer.concat([Buffer.from([node.tag, 0x80]), content, Buffer.from([0, 0])]);
  return Buffer.concat([Buffer.from([node.tag]), encodeLength(content.length), content]);
}

/** Constructed nodes down to `depth` levels (the root is level 0). */
export function constructedDownTo(root: BerNode, depth: number): BerNode[] {
  const out: BerNode[] = [];
  const walk = (n: BerNode, d: number) => {
    if (!n.constructed || d > depth) return;
    out.push(n);
    for (const c of n.children) walk(c, d + 1);
  };
  walk(root, 0);
  return out;
}

/** Finds the first OBJECT IDENTIFIER whose content equals the OID's DER content, depth first. */
export function findOid(buf: Buffer, root: BerNode, oidContent: Buffer): BerNode | undefined {
  if (root.tag === 0x06 && buf.subarray(root.contentOff, root.end).equals(oidContent)) return root;
  for (const c of root.children) {
    const f = findOid(buf, c, oidContent);
    if (f) return f;
  }
  return undefined;
}

/** Every OBJECT IDENTIFIER whose content equals the OID's DER content, in document order. */
export function findOids(buf: Buffer, root: BerNode, oidContent: Buffer): BerNode[] {
  const out: BerNode[] = [];
  const walk = (n: BerNode) => {
    if (n.tag === 0x06 && buf.subarray(n.contentOff, n.end).equals(oidContent)) out.push(n);
    for (const c of n.children) walk(c);
  };
  walk(root);
  return out;
}

export function oidContent(oid: string): Buffer {
  const arcs = oid.split(".").map(Number);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const a of arcs.slice(2)) {
    const b: number[] = [];
    let v = a;
    do { b.unshift(v & 0x7f); v = Math.floor(v / 128); } while (v > 0);
    for (let i = 0; i < b.length - 1; i++) b[i]! |= 0x80;
    out.push(...b);
  }
  return Buffer.from(out);
}

/** The buffer with an OID element's content replaced (lengths of the enclosing elements fixed up). */
export function replaceOid(buf: Buffer, root: BerNode, target: BerNode, newContent: Buffer): Buffer {
  // Simple and exact: re-encode the whole tree, substituting the one primitive.
  const sub = (n: BerNode): Buffer => {
    if (n === target) return Buffer.concat([Buffer.from([0x06]), encodeLength(newContent.length), newContent]);
    if (!n.constructed) return Buffer.from(buf.subarray(n.off, n.end));
    const content = Buffer.concat(n.children.map(sub));
    if (n.len === null) return Buffer.concat([Buffer.from([n.tag, 0x80]), content, Buffer.from([0, 0])]);
    return Buffer.concat([Buffer.from([n.tag]), encodeLength(content.length), content]);
  };
  return sub(root);
}

/** The buffer with one node replaced by other bytes (definite-length parents fixed up). */
export function replaceNode(buf: Buffer, root: BerNode, target: BerNode, replacement: Buffer): Buffer {
  const sub = (n: BerNode): Buffer => {
    if (n === target) return replacement;
    if (!n.constructed) return Buffer.from(buf.subarray(n.off, n.end));
    const content = Buffer.concat(n.children.map(sub));
    if (n.len === null) return Buffer.concat([Buffer.from([n.tag, 0x80]), content, Buffer.from([0, 0])]);
    return Buffer.concat([Buffer.from([n.tag]), encodeLength(content.length), content]);
  };
  return sub(root);
}

export function flip(buf: Buffer, at: number, mask = 0x20): Buffer {
  const c = Buffer.from(buf);
  c[at] = c[at]! ^ mask;
  return c;
}

/** `count` offsets spread evenly over [from, to). */
export function spread(from: number, to: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(from + Math.floor(((to - from) * (i + 0.5)) / count));
  return [...new Set(out)];
}

// ---------------------------------------------------------------- MIME entities and CMS

export interface Signer {
  key: crypto.KeyObject;
  certificate: Certificate;
}

/** A MIME entity from raw header lines (bytes as given, latin1 for strings) and a body. */
export function entity(headers: Array<string | Buffer>, body: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const h of headers) parts.push(Buffer.isBuffer(h) ? h : Buffer.from(h, "latin1"), Buffer.from("\r\n"));
  parts.push(Buffer.from("\r\n"), body);
  return Buffer.concat(parts);
}

export function base64Lines(b: Buffer, width = 76): string {
  const s = b.toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < s.length; i += width) lines.push(s.slice(i, i + width));
  return lines.join("\r\n");
}

/** Quoted-printable (RFC 2045 §6.7) of arbitrary bytes, CRLF line breaks, soft breaks at 76. */
export function quotedPrintable(b: Buffer): string {
  let out = "";
  let line = "";
  for (const c of b) {
    const enc = (c >= 33 && c <= 126 && c !== 61) ? String.fromCharCode(c) : `=${c.toString(16).toUpperCase().padStart(2, "0")}`;
    if (line.length + enc.length > 75) {
      out += `${line}=\r\n`;
      line = "";
    }
    line += enc;
  }
  return out + line;
}

export interface SignedParts {
  /** The multipart/signed Content-Type (for HTTP or for an enclosing entity). */
  contentType: string;
  body: Buffer;
}

export interface SignOptions {
  digest?: Exclude<DigestAlgorithm, "md5">;
  /** Boundary used in the body. */
  boundary?: string;
  /** The Content-Type to announce (default: multipart/signed with `boundary` quoted). */
  contentType?: string;
  preamble?: string;
  epilogue?: string;
  /** The signature part's Content-Transfer-Encoding line ("" leaves it out; raw DER then). */
  signatureCte?: string;
  /** Replace the CMS bytes (after signing) - for mutations of the SignedData. */
  mutateSignature?: (cms: Buffer) => Buffer;
  chain?: Certificate[];
  /** Skip the closing delimiter. */
  noClose?: boolean;
}

/** multipart/signed over exactly `part1` (headers included), detached CMS signature in part 2. */
export function signEntity(part1: Buffer, signer: Signer, o: SignOptions = {}): SignedParts {
  const digest = o.digest ?? "sha256";
  const boundary = o.boundary ?? `----=_hostile_${crypto.randomBytes(8).toString("hex")}`;
  const md = crypto.createHash(digest).update(part1).digest();
  let cms = createDetachedSignature(md, { digest, key: signer.key, certificate: signer.certificate, signingTime: new Date(), chain: o.chain });
  if (o.mutateSignature) cms = o.mutateSignature(cms);
  const cte = o.signatureCte ?? "base64";
  const sigBody = cte === "" || cte === "binary" ? cms : Buffer.from(`${base64Lines(cms)}\r\n`, "latin1");
  const body = Buffer.concat([
    Buffer.from(`${o.preamble ?? ""}--${boundary}\r\n`, "latin1"),
    part1,
    Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n${cte ? `Content-Transfer-Encoding: ${cte}\r\n` : ""}Content-Disposition: attachment; filename=smime.p7s\r\n\r\n`, "latin1"),
    sigBody,
    Buffer.from(o.noClose ? "" : `\r\n--${boundary}--\r\n${o.epilogue ?? ""}`, "latin1"),
  ]);
  const micalg = digest === "sha1" ? "sha-1" : `sha-${digest.slice(3)}`;
  return { contentType: o.contentType ?? `multipart/signed; protocol="application/pkcs7-signature"; micalg=${micalg}; boundary="${boundary}"`, body };
}

/** The signed parts as one MIME entity (to be encrypted or compressed). */
export function signedAsEntity(s: SignedParts): Buffer {
  return entity([`Content-Type: ${s.contentType}`], s.body);
}

export async function encryptBytes(content: Buffer, recipients: Certificate[], cipher: ContentCipher = "aes256-cbc"): Promise<Buffer> {
  return collect(encryptStream(fromBytes(content), { cipher, recipients: recipients.map((certificate) => ({ certificate })) }), 512 * 1024 * 1024);
}

export async function compressBytes(content: AsyncIterable<Uint8Array> | Buffer): Promise<Buffer> {
  return collect(compressStream(Buffer.isBuffer(content) ? fromBytes(content) : content, { level: 9 }), 512 * 1024 * 1024);
}

export const ENVELOPED_TYPE = "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m";
export const AUTH_ENVELOPED_TYPE = "application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m";
export const COMPRESSED_TYPE = "application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z";

/** A compressed entity around `inner` (an entity with headers). */
export async function compressedEntity(inner: Buffer | AsyncIterable<Uint8Array>): Promise<Buffer> {
  return entity([`Content-Type: ${COMPRESSED_TYPE}`, "Content-Transfer-Encoding: binary"], await compressBytes(inner));
}

/** `n` bytes of zeros as a stream, without holding them (bombs). */
export async function* zeros(n: number, head?: Buffer): AsyncGenerator<Uint8Array> {
  if (head) yield head;
  const block = Buffer.alloc(1024 * 1024);
  for (let left = n; left > 0; left -= block.length) yield left >= block.length ? block : block.subarray(0, left);
}

// ---------------------------------------------------------------- running

/** Runs the functions with at most `limit` at once; resolves with their results in order. */
export async function pool<T>(limit: number, jobs: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

/** Characters a stored file name must never contain (spec: sanitised names). */
export const UNSAFE_NAME = /[\u0000-\u001f\u007f-\u009f/\\<>:"|?*\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
