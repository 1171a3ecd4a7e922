/**
 * Mutators. Byte-level ones (flips, truncation, insertion, deletion, duplicated ranges, splicing)
 * find what any parser misses; structure-aware ones reach deeper: a lenient BER tree that is
 * edited (nodes deleted, duplicated, re-tagged, OIDs swapped, times and integers broken, lengths
 * falsified) and written back, MIME text edits (lines, boundaries, header values), and base64
 * regions that are decoded, mutated and re-encoded. All randomness comes from the Rng.
 */
import { Buffer } from "node:buffer";
import type { Rng } from "./prng.js";

/** Inputs never grow beyond this: the targets must be fast, and big inputs test nothing new here. */
export const MAX_INPUT = 256 * 1024;

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x0a, 0x0d, 0x20, 0x2d, 0x30, 0x31, 0x3d, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xa0, 0xa1, 0xff];
const TOKENS = ["\r\n", "\n", "\r\n\r\n", "\n\n", "--", "=", ":", ";", '"', "\\", " ", "\t", "==", "=\r\n", "=0", "\x00\x00", "\x30\x80", "\x24\x80", "\xa0\x80", "\x04\x00", "\x05\x00", "\x30\x00"];

function clampGrow(out: Buffer, original: Buffer): Buffer {
  return out.length > MAX_INPUT ? original : out;
}

// ---------------------------------------------------------------------------------------------
// Byte-level

export function byteMutation(rng: Rng, data: Buffer, donors: readonly Buffer[]): Buffer {
  const len = data.length;
  const op = rng.int(len === 0 ? 1 : 12);
  const pos = rng.int(len + 1);
  switch (op) {
    case 0: { // insert random or interesting bytes
      const ins = rng.chance(0.5) ? rng.bytes(rng.smallSize(32)) : Buffer.from(rng.pick(TOKENS), "latin1");
      return clampGrow(Buffer.concat([data.subarray(0, pos), ins, data.subarray(pos)]), data);
    }
    case 1: { // flip bits
      const out = Buffer.from(data);
      for (let n = rng.range(1, 4); n > 0; n--) { const p = rng.int(len); out[p] = out[p]! ^ (1 << rng.int(8)); }
      return out;
    }
    case 2: { // set interesting bytes
      const out = Buffer.from(data);
      for (let n = rng.range(1, 3); n > 0; n--) out[rng.int(len)] = rng.pick(INTERESTING_BYTES);
      return out;
    }
    case 3: { // random bytes
      const out = Buffer.from(data);
      for (let n = rng.range(1, 8); n > 0; n--) out[rng.int(len)] = rng.u32() & 0xff;
      return out;
    }
    case 4: // truncate
      return data.subarray(0, rng.int(len));
    case 5: { // delete a range
      const n = rng.smallSize(Math.max(1, len - pos));
      return Buffer.concat([data.subarray(0, pos), data.subarray(Math.min(len, pos + n))]);
    }
    case 6: { // duplicate a range in place
      const n = rng.smallSize(Math.max(1, len - pos));
      const piece = data.subarray(pos, pos + n);
      const times = rng.chance(0.9) ? 1 : rng.range(2, 64);
      return clampGrow(Buffer.concat([data.subarray(0, pos + n), ...Array(times).fill(piece), data.subarray(pos + n)]), data);
    }
    case 7: { // copy a range elsewhere (overwrite)
      const n = rng.smallSize(len);
      const from = rng.int(Math.max(1, len - n));
      const to = rng.int(Math.max(1, len - n));
      const out = Buffer.from(data);
      data.copy(out, to, from, from + n);
      return out;
    }
    case 8: { // splice with a donor: our prefix, its suffix
      const donor = donors.length ? rng.pick(donors) : data;
      return clampGrow(Buffer.concat([data.subarray(0, pos), donor.subarray(rng.int(donor.length + 1))]), data);
    }
    case 9: { // insert a donor range
      const donor = donors.length ? rng.pick(donors) : data;
      const from = rng.int(donor.length + 1);
      return clampGrow(Buffer.concat([data.subarray(0, pos), donor.subarray(from, from + rng.smallSize(4096)), data.subarray(pos)]), data);
    }
    case 10: { // arithmetic on a byte (lengths off by a little)
      const out = Buffer.from(data);
      const p = rng.int(len);
      out[p] = (out[p]! + rng.range(-8, 8)) & 0xff;
      return out;
    }
    default: { // append junk
      return clampGrow(Buffer.concat([data, rng.chance(0.5) ? rng.bytes(rng.smallSize(64)) : Buffer.from(rng.pick(TOKENS), "latin1")]), data);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A lenient BER tree

export interface BerNode {
  cls: number;
  cons: boolean;
  tag: number;
  indefinite: boolean;
  children?: BerNode[];
  content?: Buffer;
  /** A primitive OCTET STRING or BIT STRING whose content is itself one DER element. */
  encap?: { prefix: Buffer; node: BerNode };
  /** Set by a mutation: write this (wrong) length instead of the true one. */
  badLength?: Buffer;
}

class Cursor {
  constructor(public buf: Buffer, public pos: number) {}
}

function parseNode(c: Cursor, end: number, depth: number): BerNode {
  if (depth > 200) throw new Error("deep");
  if (c.pos >= end) throw new Error("eof");
  const b0 = c.buf[c.pos++]!;
  let tag = b0 & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (let i = 0; ; i++) {
      if (i > 3 || c.pos >= end) throw new Error("tag");
      const b = c.buf[c.pos++]!;
      tag = tag * 128 + (b & 0x7f);
      if (!(b & 0x80)) break;
    }
  }
  if (c.pos >= end) throw new Error("eof");
  const l0 = c.buf[c.pos++]!;
  const cons = (b0 & 0x20) !== 0;
  const node: BerNode = { cls: b0 >> 6, cons, tag, indefinite: false };
  let length = -1;
  if (l0 < 0x80) length = l0;
  else if (l0 === 0x80) {
    if (!cons) throw new Error("indef prim");
    node.indefinite = true;
  } else {
    const n = l0 & 0x7f;
    if (n > 4 || c.pos + n > end) throw new Error("len");
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + c.buf[c.pos++]!;
  }
  if (node.indefinite) {
    node.children = [];
    for (;;) {
      if (c.pos + 2 > end) throw new Error("eoc");
      if (c.buf[c.pos] === 0 && c.buf[c.pos + 1] === 0) { c.pos += 2; break; }
      node.children.push(parseNode(c, end, depth + 1));
    }
    return node;
  }
  const stop = c.pos + length;
  if (stop > end) throw new Error("overrun");
  if (cons) {
    node.children = [];
    while (c.pos < stop) node.children.push(parseNode(c, stop, depth + 1));
    return node;
  }
  node.content = c.buf.subarray(c.pos, stop);
  c.pos = stop;
  // Encapsulated DER (extension values, public keys, signed content): descend when it parses whole.
  if (node.cls === 0 && (node.tag === 4 || node.tag === 3) && node.content.length >= 2) {
    const prefix = node.tag === 3 ? node.content.subarray(0, 1) : Buffer.alloc(0);
    const inner = node.content.subarray(prefix.length);
    if (inner[0] === 0x30 || inner[0] === 0x31 || inner[0] === 0x04 || inner[0] === 0x02) {
      try {
        const ic = new Cursor(inner, 0);
        const child = parseNode(ic, inner.length, depth + 1);
        if (ic.pos === inner.length) node.encap = { prefix: Buffer.from(prefix), node: child };
      } catch {
        /* not DER inside */
      }
    }
  }
  return node;
}

/** Parses one element at `offset`; returns it and its end, or null when the bytes are not BER. */
export function parseBer(buf: Buffer, offset = 0): { node: BerNode; end: number } | null {
  try {
    const c = new Cursor(buf, offset);
    const node = parseNode(c, buf.length, 0);
    return { node, end: c.pos };
  } catch {
    return null;
  }
}

function identifier(n: BerNode): Buffer {
  const first = (n.cls << 6) | (n.cons ? 0x20 : 0);
  if (n.tag < 31) return Buffer.from([first | n.tag]);
  const bytes = [n.tag & 0x7f];
  for (let v = Math.floor(n.tag / 128); v > 0; v = Math.floor(v / 128)) bytes.unshift((v & 0x7f) | 0x80);
  return Buffer.from([first | 0x1f, ...bytes]);
}

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function writeBer(n: BerNode): Buffer {
  let content: Buffer;
  if (n.children) content = Buffer.concat(n.children.map(writeBer));
  else if (n.encap) content = Buffer.concat([n.encap.prefix, writeBer(n.encap.node)]);
  else content = n.content ?? Buffer.alloc(0);
  const id = identifier(n);
  if (n.badLength) return Buffer.concat([id, n.badLength, content]);
  if (n.indefinite && n.cons) return Buffer.concat([id, Buffer.from([0x80]), content, Buffer.from([0, 0])]);
  return Buffer.concat([id, lengthBytes(content.length), content]);
}

interface Slot {
  node: BerNode;
  parent?: BerNode;
  index: number;
}

function slots(root: BerNode): Slot[] {
  const out: Slot[] = [{ node: root, index: 0 }];
  const walk = (n: BerNode) => {
    if (n.children) n.children.forEach((c, i) => { out.push({ node: c, parent: n, index: i }); walk(c); });
    if (n.encap) { out.push({ node: n.encap.node, index: -1 }); walk(n.encap.node); }
  };
  walk(root);
  return out;
}

function clone(n: BerNode): BerNode {
  return {
    ...n,
    children: n.children?.map(clone),
    encap: n.encap ? { prefix: n.encap.prefix, node: clone(n.encap.node) } : undefined,
  };
}

const KNOWN_OIDS = [
  "2a864886f70d010701", "2a864886f70d010702", "2a864886f70d010703", "2a864886f70d0109100109", "2a864886f70d0109100117",
  "2a864886f70d0109100308", "2a864886f70d010903", "2a864886f70d010904", "2a864886f70d010905", "2a864886f70d01090f",
  "2a864886f70d0205", "2b0e03021a", "608648016503040204", "608648016503040201", "608648016503040202", "608648016503040203",
  "2a864886f70d010101", "2a864886f70d010105", "2a864886f70d01010b", "2a864886f70d010107", "2a864886f70d010108",
  "2a864886f70d010109", "2a864886f70d01010a", "2a864886f70d0307", "2a864886f70d0302", "608648016503040102", "608648016503040116",
  "60864801650304012a", "608648016503040106", "60864801650304011a", "60864801650304012e", "2a864886f67d07420a", "2b06010401bc07010102",
  "551d0e", "551d13", "551d0f", "550403", "550406", "2a8648ce3d0201", "2a8648ce3d030107", "2b6570", "2a864886f70d01050d", "2a864886f70d01050c",
  "2a864886f70d010c0103", "2a864886f70d010c0106", "2a864886f70d010c0a0102", "2a864886f70d010c0a0103", "2a864886f70d010914", "2a864886f70d010915",
].map((h) => Buffer.from(h, "hex"));

const BAD_TIMES = [
  "", "Z", "2401011200Z", "240101120000", "240101120000+0100", "991332256161Z", "20240101120000Z", "20241301000000Z", "2024010112Z",
  "20240101120000.123Z", "20240101120000.Z", "2024010112000", "20240101120000-2400", "99999999999999Z", "0000000000000Z", "YYYYMMDDhhmmssZ",
  "2024-01-01T12:00:00Z", "20240101120000,5Z", "19500101000000Z", "30000101000000Z", "2\u00004", "240230120000Z", "20240230120000Z",
];

const TAG_CHOICES: Array<[number, boolean, number]> = [
  [0, false, 1], [0, false, 2], [0, false, 3], [0, false, 4], [0, false, 5], [0, false, 6], [0, false, 12], [0, false, 19], [0, false, 22],
  [0, false, 23], [0, false, 24], [0, true, 16], [0, true, 17], [0, true, 4], [0, true, 3], [2, true, 0], [2, true, 1], [2, true, 2], [2, true, 3],
  [2, false, 0], [2, false, 1], [2, false, 2], [1, true, 16], [3, false, 0], [0, false, 0], [0, false, 31], [0, true, 1000],
];

function interestingInteger(rng: Rng): Buffer {
  return rng.pick([
    Buffer.alloc(0), Buffer.from([0]), Buffer.from([0xff]), Buffer.from([0x80]), Buffer.from([0x00, 0x80]), Buffer.from([0x7f, 0xff, 0xff, 0xff]),
    Buffer.from([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0x01, 0x00, 0x00, 0x00, 0x00]),
    Buffer.from([0x00, 0x00, 0x00, 0x01]), Buffer.from([0x03]), Buffer.from([0x02]), Buffer.from([0x04]), Buffer.from([0x0a]), Buffer.from([0x10]),
    rng.bytes(rng.range(1, 40)),
  ]);
}

function badLength(rng: Rng, trueLength: number): Buffer {
  switch (rng.int(9)) {
    case 0: return lengthBytes(Math.max(0, trueLength + rng.range(-16, 16)));
    case 1: return Buffer.from([0x80]);
    case 2: return Buffer.from([0x84, 0xff, 0xff, 0xff, 0xff]);
    case 3: return Buffer.from([0x86, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff]);
    case 4: return Buffer.from([0x88, 0, 0, 0, 0, 0, 0, 0, 1]);
    case 5: return Buffer.from([0x81, trueLength & 0xff]); // non-minimal / wrapped
    case 6: return Buffer.from([0x83, 0, 0, Math.min(trueLength, 255)]);
    case 7: return Buffer.from([0xff]);
    default: return lengthBytes(0);
  }
}

function contentLength(n: BerNode): number {
  if (n.children) return n.children.reduce((a, c) => a + writeBer(c).length, 0);
  return n.content?.length ?? 0;
}

/** One edit of a BER tree, in place (the root itself may be replaced: the new root is returned). */
export function mutateTree(rng: Rng, root: BerNode, donors: readonly BerNode[]): BerNode {
  const all = slots(root);
  const s = rng.pick(all);
  const n = s.node;
  const replace = (m: BerNode) => {
    if (s.parent) s.parent.children![s.index] = m;
    else if (s.index === -1) Object.assign(n, m); // encapsulated: edit in place
    else root = m;
  };
  const prims = all.filter((x) => x.node.content);
  switch (rng.int(14)) {
    case 0: // delete
      if (s.parent) s.parent.children!.splice(s.index, 1);
      else if (n.children?.length) n.children.splice(rng.int(n.children.length), 1);
      break;
    case 1: // duplicate
      if (s.parent) s.parent.children!.splice(s.index, 0, clone(n));
      break;
    case 2: { // swap with a sibling
      if (!s.parent) break;
      const sib = s.parent.children!;
      const j = rng.int(sib.length);
      [sib[s.index], sib[j]] = [sib[j]!, sib[s.index]!];
      break;
    }
    case 3: { // retag
      const [cls, cons, tag] = rng.pick(TAG_CHOICES);
      if (cons && !n.cons) {
        const inner = n.content && parseBer(n.content);
        n.children = inner && inner.end === n.content!.length ? [inner.node] : [];
        n.content = undefined;
        n.encap = undefined;
      } else if (!cons && n.cons) {
        n.content = Buffer.concat((n.children ?? []).map(writeBer));
        n.children = undefined;
        n.indefinite = false;
      }
      Object.assign(n, { cls, cons, tag });
      break;
    }
    case 4: { // replace a primitive's content with something typed but broken
      const p = prims.length ? rng.pick(prims).node : n;
      if (!p.content) break;
      p.encap = undefined;
      if (p.tag === 6) p.content = rng.chance(0.7) ? rng.pick(KNOWN_OIDS) : rng.pick([Buffer.alloc(0), Buffer.from([0x2a, 0x86]), Buffer.from([0x80, 0x80, 0x80]), rng.bytes(rng.range(1, 300))]);
      else if (p.tag === 23 || p.tag === 24) p.content = Buffer.from(rng.pick(BAD_TIMES), "latin1");
      else if (p.tag === 2 || p.tag === 10) p.content = interestingInteger(rng);
      else if (p.tag === 1) p.content = rng.pick([Buffer.alloc(0), Buffer.from([0]), Buffer.from([1, 2])]);
      else if (p.tag === 5) p.content = rng.bytes(rng.range(0, 3));
      else if (p.tag === 3) p.content = rng.pick([Buffer.alloc(0), Buffer.from([8]), Buffer.from([7, 0xff]), Buffer.concat([Buffer.from([0]), rng.bytes(rng.smallSize(64))])]);
      else p.content = rng.pick([Buffer.alloc(0), rng.bytes(rng.smallSize(300)), p.content.subarray(0, rng.int(p.content.length)), Buffer.concat([p.content, rng.bytes(rng.smallSize(16))])]);
      break;
    }
    case 5: { // byte edit inside a primitive
      const p = prims.length ? rng.pick(prims).node : n;
      if (!p.content || p.content.length === 0) break;
      p.encap = undefined;
      const c = Buffer.from(p.content);
      c[rng.int(c.length)] = rng.u32() & 0xff;
      p.content = c;
      break;
    }
    case 6: { // insert a new element
      const target = n.children ? n : s.parent;
      if (!target?.children) break;
      const [cls, cons, tag] = rng.pick(TAG_CHOICES);
      const fresh: BerNode = cons ? { cls, cons, tag, indefinite: rng.chance(0.3), children: [] } : { cls, cons, tag, indefinite: false, content: tag === 6 ? rng.pick(KNOWN_OIDS) : rng.bytes(rng.int(8)) };
      target.children.splice(rng.int(target.children.length + 1), 0, fresh);
      break;
    }
    case 7: // definite <-> indefinite
      if (n.cons) n.indefinite = !n.indefinite;
      break;
    case 8: { // wrap in many levels (depth limits)
      let w = clone(n);
      for (let k = rng.chance(0.5) ? rng.range(1, 4) : rng.range(30, 120); k > 0; k--) w = { cls: 0, cons: true, tag: rng.chance(0.5) ? 16 : 4, indefinite: rng.chance(0.5), children: [w] };
      replace(w);
      break;
    }
    case 9: { // graft a subtree from another seed
      if (!donors.length) break;
      const d = rng.pick(slots(rng.pick(donors))).node;
      replace(clone(d));
      break;
    }
    case 10: // falsify a length
      n.badLength = badLength(rng, contentLength(n));
      break;
    case 11: { // empty a constructed element or a primitive
      if (n.children) n.children = [];
      else { n.content = Buffer.alloc(0); n.encap = undefined; }
      break;
    }
    case 12: { // swap an OID for another known one (content type, algorithm)
      const oids = all.filter((x) => x.node.tag === 6 && x.node.cls === 0 && x.node.content);
      if (oids.length) rng.pick(oids).node.content = rng.pick(KNOWN_OIDS);
      break;
    }
    default: { // break a time or an integer specifically
      const targets = all.filter((x) => x.node.content && x.node.cls === 0 && (x.node.tag === 23 || x.node.tag === 24 || x.node.tag === 2));
      if (!targets.length) break;
      const t = rng.pick(targets).node;
      t.content = t.tag === 2 ? interestingInteger(rng) : Buffer.from(rng.pick(BAD_TIMES), "latin1");
      if (t.tag !== 2 && rng.chance(0.3)) t.tag = t.tag === 23 ? 24 : 23;
      break;
    }
  }
  return root;
}

/** BER regions of a buffer: at 0, and after blank lines (binary MIME bodies), that parse whole. */
export function berRegions(buf: Buffer): Array<{ start: number; end: number; node: BerNode }> {
  const out: Array<{ start: number; end: number; node: BerNode }> = [];
  const starts = new Set<number>([0]);
  for (let i = buf.indexOf("\n\n"); i >= 0 && starts.size < 16; i = buf.indexOf("\n\n", i + 1)) starts.add(i + 2);
  for (let i = buf.indexOf("\r\n\r\n"); i >= 0 && starts.size < 32; i = buf.indexOf("\r\n\r\n", i + 1)) starts.add(i + 4);
  for (const st of starts) {
    if (buf[st] !== 0x30) continue;
    const p = parseBer(buf, st);
    if (p && p.end - st >= 16) out.push({ start: st, end: p.end, node: p.node });
  }
  return out;
}

export function treeMutation(rng: Rng, data: Buffer, donorTrees: readonly BerNode[]): Buffer | null {
  const regions = berRegions(data);
  if (!regions.length) return null;
  const r = rng.pick(regions);
  let node = r.node;
  for (let k = rng.chance(0.7) ? 1 : rng.range(2, 4); k > 0; k--) node = mutateTree(rng, node, donorTrees);
  return clampGrow(Buffer.concat([data.subarray(0, r.start), writeBer(node), data.subarray(r.end)]), data);
}

// ---------------------------------------------------------------------------------------------
// Base64 regions (signature parts, encoded bodies)

const B64_LINE = /^[A-Za-z0-9+/=]{8,}\r?$/;

export function base64Regions(data: Buffer): Array<{ start: number; end: number; eol: string; width: number }> {
  const text = data.toString("latin1");
  const out: Array<{ start: number; end: number; eol: string; width: number }> = [];
  let pos = 0;
  let cur: { start: number; end: number; eol: string; width: number } | undefined;
  while (pos < text.length) {
    let nl = text.indexOf("\n", pos);
    if (nl < 0) nl = text.length;
    const line = text.slice(pos, nl);
    if (B64_LINE.test(line)) {
      const content = line.replace(/\r$/, "");
      if (!cur) cur = { start: pos, end: pos + content.length, eol: line.endsWith("\r") ? "\r\n" : "\n", width: content.length };
      else cur.end = pos + content.length;
    } else if (cur) {
      if (cur.end - cur.start >= 32) out.push(cur);
      cur = undefined;
    }
    pos = nl + 1;
  }
  if (cur && cur.end - cur.start >= 32) out.push(cur);
  return out;
}

export function base64Mutation(rng: Rng, data: Buffer, inner: (d: Buffer) => Buffer): Buffer | null {
  const regions = base64Regions(data);
  if (!regions.length) return null;
  const r = rng.pick(regions);
  const decoded = Buffer.from(data.subarray(r.start, r.end).toString("latin1").replace(/\s+/g, ""), "base64");
  const mutated = inner(decoded);
  const b64 = mutated.toString("base64");
  const lines: string[] = [];
  const width = r.width > 0 ? r.width : 76;
  for (let i = 0; i < b64.length; i += width) lines.push(b64.slice(i, i + width));
  return clampGrow(Buffer.concat([data.subarray(0, r.start), Buffer.from(lines.join(r.eol), "latin1"), data.subarray(r.end)]), data);
}

// ---------------------------------------------------------------------------------------------
// MIME text

const MEDIA_TYPES = [
  "application/pkcs7-mime", "application/x-pkcs7-mime", "multipart/signed", "application/pkcs7-signature", "application/x-pkcs7-signature",
  "multipart/report", "message/disposition-notification", "text/plain", "application/edi-x12", "multipart/mixed", "", "application/octet-stream",
];
const PARAMS: Record<string, string[]> = {
  "smime-type": ["enveloped-data", "authEnveloped-data", "compressed-data", "signed-data", "certs-only", "", "x"],
  micalg: ["sha1", "sha-256", "sha256", "md5", "sha-512", "rsa-sha1", "whirlpool", "", "sha-256,sha1", '"sha-1"'],
  protocol: ["application/pkcs7-signature", '"application/pkcs7-signature"', "application/x-pkcs7-signature", "application/pgp-signature", ""],
  "report-type": ["disposition-notification", "delivery-status", ""],
  charset: ["us-ascii", "utf-8", "x"],
  name: ["smime.p7m", "smime.p7s", "\"\""],
  filename: ["a.edi", "../../etc/passwd", "\"\"", "\"a;b\""],
};
const CTES = ["binary", "base64", "quoted-printable", "7bit", "8bit", "BASE64", " base64 ", "x-uuencode", ""];

/** A mutated Content-Type value (boundaries come from `boundaries` so they can still match). */
export function mutateContentType(rng: Rng, value: string | undefined, boundaries: readonly string[]): string {
  const v = value ?? "";
  switch (rng.int(8)) {
    case 0: return rng.pick(MEDIA_TYPES) + v.slice(Math.max(0, v.indexOf(";")) || v.length);
    case 1: { const [k, vals] = rng.pick(Object.entries(PARAMS)); return `${v}; ${k}=${rng.pick(vals)}`; }
    case 2: { // change or drop the boundary
      const b = rng.pick([...boundaries, "", "x".repeat(71), "a b", '"', "--", boundaries[0]?.slice(0, -1) ?? "b"]);
      const without = v.replace(/;\s*boundary\s*=\s*("[^"]*"|[^;]*)/i, "");
      return rng.chance(0.2) ? without : `${without}; boundary=${rng.chance(0.5) ? `"${b}"` : b}`;
    }
    case 3: return v.replace(/;[^;]*$/, ""); // drop the last parameter
    case 4: return v.replace(/"/g, rng.chance(0.5) ? "" : '""');
    case 5: return `${v};${rng.pick(["", ";", "=", "a=", '=""', 'x="unterminated', "boundary", "BOUNDARY=z"])}`;
    case 6: return v.toUpperCase();
    default: return rng.pick(MEDIA_TYPES);
  }
}

export function mutateCte(rng: Rng): string {
  return rng.pick(CTES);
}

/** Line-level edits of MIME text (header lines, delimiters, line ends). */
export function textMutation(rng: Rng, data: Buffer, boundaries: readonly string[]): Buffer {
  const text = data.toString("latin1");
  const lines = text.split("\n");
  switch (rng.int(9)) {
    case 0: { lines.splice(rng.int(lines.length), 1); break; }
    case 1: { const i = rng.int(lines.length); lines.splice(i, 0, lines[i] ?? ""); break; }
    case 2: { const i = rng.int(lines.length), j = rng.int(lines.length); [lines[i], lines[j]] = [lines[j]!, lines[i]!]; break; }
    case 3: return Buffer.from(rng.chance(0.5) ? text.replace(/\r\n/g, "\n") : text.replace(/\r?\n/g, "\r\n"), "latin1");
    case 4: { // edit a header value
      const headerLines = lines.map((l, i) => [l, i] as const).filter(([l]) => /^[A-Za-z-]+:/.test(l));
      if (!headerLines.length) break;
      const [l, i] = rng.pick(headerLines);
      const name = l.slice(0, l.indexOf(":"));
      const eol = l.endsWith("\r") ? "\r" : "";
      let value: string;
      if (/content-type/i.test(name)) value = mutateContentType(rng, l.slice(name.length + 1).trim().replace(/\r$/, ""), boundaries);
      else if (/content-transfer-encoding/i.test(name)) value = mutateCte(rng);
      else value = rng.pick(["", "x", "\t", l.slice(name.length + 1).trim().repeat(3)]);
      lines[i] = `${rng.chance(0.1) ? name.toUpperCase() : name}: ${value}${eol}`;
      break;
    }
    case 5: { // insert a header line
      const hdr = rng.pick(["Content-Type: multipart/signed; boundary=\"b\"", "Content-Transfer-Encoding: base64", "Content-Type: application/pkcs7-mime", ": novalue", "X", " folded", "\tfolded", "Content-Disposition: attachment; filename=\"x\""]);
      lines.splice(rng.int(Math.min(lines.length, 8) + 1), 0, hdr + "\r");
      break;
    }
    case 6: { // a delimiter line: remove, duplicate, corrupt, or make it a close delimiter
      const delims = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith("--"));
      if (!delims.length) break;
      const [l, i] = rng.pick(delims);
      const op = rng.int(5);
      if (op === 0) lines.splice(i, 1);
      else if (op === 1) lines.splice(i, 0, l);
      else if (op === 2) lines[i] = l.replace(/\r?$/, "--$&");
      else if (op === 3) lines[i] = l.replace(/--\r?$/, "") + (l.endsWith("\r") ? "\r" : "");
      else lines[i] = l.slice(0, rng.int(l.length));
      break;
    }
    case 7: { // long line / many lines
      const i = rng.int(lines.length);
      lines.splice(i, 0, rng.chance(0.5) ? "A".repeat(rng.range(100, 70000)) : Array(rng.range(10, 3000)).fill("X-H: v\r").join("\n"));
      break;
    }
    default: { // a folded continuation line
      const i = rng.int(lines.length);
      lines.splice(i, 0, rng.pick([" ", "\t", " x", "\t;boundary=z"]));
      break;
    }
  }
  const out = Buffer.from(lines.join("\n"), "latin1");
  return out.length > MAX_INPUT ? data : out;
}

/** Encodes a whole body as base64 or quoted-printable (so a CTE header change has a real counterpart). */
export function encodeBody(rng: Rng, data: Buffer): { body: Buffer; cte: string } {
  if (rng.chance(0.5)) {
    const b = data.toString("base64").replace(/.{76}/g, "$&\r\n");
    return { body: Buffer.from(b, "latin1"), cte: "base64" };
  }
  let qp = "";
  for (const byte of data) qp += byte >= 33 && byte <= 126 && byte !== 61 ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  return { body: Buffer.from(qp.replace(/.{72}/g, "$&=\r\n"), "latin1"), cte: "quoted-printable" };
}
