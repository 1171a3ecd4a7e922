/**
 * Fuzz targets: how each builds its valid seed inputs, mutates them and runs them through the
 * public core functions. The contract under test: every failure is an As2Error; nothing hangs or
 * blows up memory. A target's run() lets an As2Error out unchanged (the harness accepts it) and
 * any other thrown value is a finding.
 *
 * The keys and certificates are the same in every run (derived from a constant), so a corpus file
 * replays in the context it was found in. The seed inputs are built from the run's seed.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import forge from "node-forge";
import {
  As2Error, BerReader, ByteReader, MultipartStream, buildMdn, buildMessage, checkBoundary, collect, compressStream, dechunk, decodeOid,
  decodeTransfer, decodeTransferStream, decompressStream, decryptStream, drain, encryptStream, fromBytes, keyMatchesCertificate,
  loadCertificates, loadPkcs12, loadPrivateKey, openMessage, parseContentType, parseEntityBytes, parseMdn, parseParameterized, parseTransferEncoding, readCapturedEntity,
  readEntityHead, readHeaderFile, splitMultipart, verifyMdn, type BuildMessageOptions, type Certificate, type ContentCipher,
  type DigestAlgorithm, type DispositionSpec, type GeneratedIdentity, type MessageMic,
} from "../../../src/core/index.js";
import { Rng, hash32 } from "./prng.js";
import { deterministicIdentity, deterministicRsaKey } from "./identities.js";
import { withDeterministicCrypto } from "./determinism.js";
import {
  MAX_INPUT, base64Mutation, base64Regions, berRegions, byteMutation, encodeBody, mutateContentType, mutateCte, parseBer, textMutation,
  treeMutation, writeBer, type BerNode,
} from "./mutate.js";

export interface InputMeta {
  /** HTTP headers (openMessage, mdn). */
  headers?: Record<string, string>;
  password?: string;
  alias?: string;
  /** Size of the pieces the body is streamed in (0: one piece). */
  chunk?: number;
}

export interface FuzzInput {
  data: Buffer;
  meta: InputMeta;
}

export interface TargetInstance {
  seeds: FuzzInput[];
  mutate(rng: Rng): FuzzInput | Promise<FuzzInput>;
  run(input: FuzzInput): Promise<void>;
}

export const TARGET_NAMES = ["openMessage", "mdn", "loadPrivateKey", "loadCertificates", "loadPkcs12", "mime", "ber"] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

// ---------------------------------------------------------------------------------------------
// Shared context

/** A fixed clock for certificate validity and for everything built. */
const NOW = new Date("2025-06-01T12:00:00Z");

interface Context {
  alice: GeneratedIdentity;
  bob: GeneratedIdentity;
  carol: GeneratedIdentity;
}

let contextPromise: Promise<Context> | undefined;
/** The identities: derived from a constant, so every run (and every replay) has the same keys. */
export function context(): Promise<Context> {
  return (contextPromise ??= (async () => {
    const rng = new Rng(hash32("as2kit-fuzz-identities-v1"));
    const alice = await deterministicIdentity(rng, "alice");
    const bob = await deterministicIdentity(rng, "bob");
    const carol = await deterministicIdentity(rng, "carol", { notBefore: new Date("2020-01-01T00:00:00Z"), notAfter: new Date("2060-01-01T00:00:00Z") });
    return { alice, bob, carol };
  })());
}

/** Streams bytes in pieces; tiny pieces are limited so one input never takes long just by chunking. */
async function* pieces(data: Buffer, chunk: number | undefined): AsyncGenerator<Uint8Array> {
  const size = !chunk || chunk <= 0 ? data.length || 1 : Math.max(chunk, Math.ceil(data.length / 4096));
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(data.length, i + size));
}

const CHUNKS = [0, 0, 1, 3, 7, 64, 100, 1000, 4096, 16384];

/** Runs a step; an As2Error ends only that step (the next ones still run on the same input). */
async function step(fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof As2Error)) throw e;
  }
}

function payload(rng: Rng): Buffer {
  const n = rng.pick([0, 1, 10, 200, 1000, 3000]);
  switch (rng.int(4)) {
    case 0: return rng.bytes(n);
    case 1: { // text with LF line ends (the canonicalisation fallback)
      const lines: string[] = [];
      for (let size = 0; size < n; size += 40) lines.push(`LINE ${size} ${"x".repeat(rng.int(30))}`);
      return Buffer.from(lines.join("\n"));
    }
    case 2: return Buffer.from(`UNB+UNOA:2+MYCO+ACME+240101:1200+${rng.int(1e6)}'UNH+1+ORDERS:D:96A:UN'`.repeat(Math.max(1, n / 60)));
    default: return Buffer.from(`ISA*00*          *00*          *ZZ*MYCO           *ZZ*ACME           *\r\n`.repeat(Math.max(1, n / 80)));
  }
}

/** Picks a seed, stacks one or more mutations chosen by `one`. */
function stacked(rng: Rng, seeds: readonly FuzzInput[], one: (rng: Rng, input: FuzzInput) => FuzzInput): FuzzInput {
  let input = rng.pick(seeds);
  input = { data: input.data, meta: { ...input.meta, headers: input.meta.headers ? { ...input.meta.headers } : undefined } };
  const n = rng.chance(0.5) ? 1 : rng.chance(0.6) ? 2 : rng.range(3, 8);
  for (let i = 0; i < n; i++) input = one(rng, input);
  if (rng.chance(0.1)) input.meta.chunk = rng.pick(CHUNKS);
  return input;
}

function treesOf(datas: readonly Buffer[]): BerNode[] {
  const trees: BerNode[] = [];
  for (const d of datas) {
    for (const r of berRegions(d)) trees.push(r.node);
    for (const b of base64Regions(d)) {
      const dec = Buffer.from(d.subarray(b.start, b.end).toString("latin1").replace(/\s+/g, ""), "base64");
      const p = parseBer(dec);
      if (p) trees.push(p.node);
    }
  }
  return trees;
}

function boundariesOf(inputs: readonly FuzzInput[]): string[] {
  const out = new Set<string>();
  for (const i of inputs) {
    for (const v of [...Object.values(i.meta.headers ?? {}), i.data.subarray(0, 4096).toString("latin1")]) {
      for (const m of v.matchAll(/boundary="?([^";\r\n]+)"?/gi)) out.add(m[1]!);
    }
  }
  return [...out];
}

/** A mutation of binary data: bytes, a BER tree edit, or an edit inside base64. */
function binaryMutation(rng: Rng, data: Buffer, donors: readonly Buffer[], trees: readonly BerNode[]): Buffer {
  const r = rng.float();
  if (r < 0.45) return treeMutation(rng, data, trees) ?? byteMutation(rng, data, donors);
  if (r < 0.6) return base64Mutation(rng, data, (d) => (rng.chance(0.7) ? treeMutation(rng, d, trees) ?? byteMutation(rng, d, []) : byteMutation(rng, d, []))) ?? byteMutation(rng, data, donors);
  return byteMutation(rng, data, donors);
}

/** Mutations of an HTTP message (headers + body) with MIME and CMS inside. */
function messageMutator(seeds: readonly FuzzInput[]): (rng: Rng) => FuzzInput {
  const donors = seeds.map((s) => s.data);
  const trees = treesOf(donors);
  const boundaries = boundariesOf(seeds);
  return (rng) => stacked(rng, seeds, (rng, input) => {
    const h = input.meta.headers!;
    const ctKey = Object.keys(h).find((k) => k.toLowerCase() === "content-type") ?? "Content-Type";
    const r = rng.float();
    if (r < 0.1) {
      if (rng.chance(0.1)) delete h[ctKey];
      else h[ctKey] = mutateContentType(rng, h[ctKey], boundaries);
      return input;
    }
    if (r < 0.14) {
      const cteKey = Object.keys(h).find((k) => k.toLowerCase() === "content-transfer-encoding") ?? "Content-Transfer-Encoding";
      if (rng.chance(0.5)) {
        const enc = encodeBody(rng, input.data);
        h[cteKey] = enc.cte;
        return { ...input, data: enc.body.length > MAX_INPUT ? input.data : enc.body };
      }
      h[cteKey] = mutateCte(rng);
      return input;
    }
    if (r < 0.16) { // another seed's headers for this body
      input.meta.headers = { ...rng.pick(seeds).meta.headers! };
      return input;
    }
    if (r < 0.3) return { ...input, data: textMutation(rng, input.data, boundaries) };
    return { ...input, data: binaryMutation(rng, input.data, donors, trees) };
  });
}

/** Mutations of files (keys, certificates, PKCS#12): binary, inside PEM base64, or PEM text. */
function fileMutator(seeds: readonly FuzzInput[], extra?: (rng: Rng, input: FuzzInput) => FuzzInput | undefined): (rng: Rng) => FuzzInput {
  const donors = seeds.map((s) => s.data);
  const trees = treesOf(donors);
  return (rng) => stacked(rng, seeds, (rng, input) => {
    const x = extra?.(rng, input);
    if (x) return x;
    if (rng.chance(0.1)) return { ...input, data: textMutation(rng, input.data, []) };
    return { ...input, data: binaryMutation(rng, input.data, donors, trees) };
  });
}

// ---------------------------------------------------------------------------------------------
// openMessage

/**
 * Encrypted and compressed layers hide what is inside them from byte mutations (the result only
 * fails to decrypt or inflate). A layered seed keeps the innermost MIME entity and the layers
 * around it; a layered mutation edits the entity and wraps it again (encrypting for our key,
 * deterministically), so the MIME and signature parsers behind those layers get mutated input.
 */
type Layer = { kind: "encrypt"; cipher: ContentCipher } | { kind: "compress" } | { kind: "compress-entity"; rawHeader: Buffer };
interface Layered {
  seed: FuzzInput;
  layers: Layer[];
  inner: Buffer;
}

async function unwrap(seed: FuzzInput, key: { key: crypto.KeyObject; certificate: Certificate }): Promise<Layered | undefined> {
  const ct = parseContentType(seed.meta.headers?.["Content-Type"]).mediaType;
  if (ct !== "application/pkcs7-mime") return undefined;
  const layers: Layer[] = [];
  let inner: Buffer;
  try {
    const dec = await decryptStream(fromBytes(seed.data), [key]);
    inner = await collect(dec.content, MAX_INPUT * 4);
    layers.push({ kind: "encrypt", cipher: dec.cipher });
  } catch {
    inner = await collect(await decompressStream(fromBytes(seed.data), { maxInflatedBytes: MAX_INPUT * 4 }), MAX_INPUT * 4);
    layers.push({ kind: "compress" });
  }
  // One more level: a compressed entity inside the encryption (compress after signing, then encrypt).
  const e = parseEntityBytes(inner);
  if (layers[0]!.kind === "encrypt" && parseContentType(e.headers.get("content-type")).mediaType === "application/pkcs7-mime") {
    layers.push({ kind: "compress-entity", rawHeader: Buffer.from(e.rawHeader) });
    inner = await collect(await decompressStream(fromBytes(e.body), { maxInflatedBytes: MAX_INPUT * 4 }), MAX_INPUT * 4);
  }
  return { seed, layers, inner };
}

async function wrap(rng: Rng, layers: readonly Layer[], inner: Buffer, recipient: Certificate): Promise<Buffer> {
  let data = inner;
  for (const layer of [...layers].reverse()) {
    if (layer.kind === "compress") data = await collect(compressStream(fromBytes(data)), MAX_INPUT * 8);
    else if (layer.kind === "compress-entity") data = Buffer.concat([layer.rawHeader, await collect(compressStream(fromBytes(data)), MAX_INPUT * 8)]);
    else {
      const plain = data;
      data = await withDeterministicCrypto(rng, () => collect(encryptStream(fromBytes(plain), { cipher: layer.cipher, recipients: [{ certificate: recipient }], randomBytes: (n) => rng.bytes(n) }), MAX_INPUT * 8));
    }
  }
  return data;
}

async function openMessageTarget(seed: number): Promise<TargetInstance> {
  const { alice, bob, carol } = await context();
  const rng = new Rng(hash32(`${seed}/openMessage/seeds`));
  const sign = (digest: DigestAlgorithm, extra: object = {}) => ({ digest, key: alice.key, certificate: alice.certificate, ...extra });
  const enc = (cipher: ContentCipher, extra: object = {}, recipients = [{ certificate: bob.certificate, ...extra }]) => ({ cipher, recipients });
  const recipes: Array<Partial<BuildMessageOptions>> = [
    {},
    { sign: sign("sha256") },
    { sign: sign("sha1", { chain: [carol.certificate] }) },
    { sign: sign("sha384", { scheme: "rsassa-pss" }) }, // sha512 PSS does not fit a 1024-bit key
    { sign: sign("sha256", { useSubjectKeyIdentifier: true }) },
    { encrypt: enc("aes128-cbc") },
    { encrypt: enc("aes256-gcm") },
    { encrypt: enc("3des"), sign: sign("sha256") },
    { encrypt: enc("aes192-cbc", { keyEncryption: "rsa-oaep", oaepHash: "sha256" }), sign: sign("sha384") },
    { encrypt: enc("rc2-40"), sign: sign("sha1") },
    { encrypt: enc("rc2-128") },
    { encrypt: { ...enc("cast5"), cast5Params: "iv-only" } },
    { encrypt: enc("cast5"), sign: sign("sha224") },
    { encrypt: enc("idea") },
    { encrypt: enc("aes128-gcm", {}, [{ certificate: carol.certificate }, { certificate: bob.certificate, useSubjectKeyIdentifier: true } as never]) },
    // (sha512 OAEP does not fit a 1024-bit key)
    { encrypt: enc("aes192-gcm", { keyEncryption: "rsa-oaep", oaepHash: "sha1" }), sign: sign("sha384", { scheme: "rsassa-pss" }), compress: "after-signing" },
    { compress: "after-signing" },
    { compress: "after-signing", micIncludesHeaders: false },
    { sign: sign("sha256"), compress: "before-signing" },
    { sign: sign("sha256"), compress: "after-signing" },
    { sign: sign("sha256"), encrypt: enc("aes256-cbc"), compress: "before-signing" },
    { encrypt: enc("aes256-cbc", { keyEncryption: "rsa-oaep" }), compress: "after-signing" },
  ];
  const seeds: FuzzInput[] = [];
  await withDeterministicCrypto(rng, async () => {
    for (const recipe of recipes) {
      const m = buildMessage({
        from: rng.chance(0.8) ? "MYCO" : "My Company", to: "ACME", payload: payload(rng), filename: rng.chance(0.5) ? "order.edi" : undefined,
        contentType: rng.pick(["application/edi-x12", "application/EDIFACT", "application/octet-stream", "text/plain; charset=us-ascii"]),
        receipt: rng.chance(0.5) ? { notificationTo: "edi@myco.example", signed: true, micAlgorithms: ["sha256"] } : false,
        now: () => NOW, randomBytes: (n) => rng.bytes(n), ...recipe,
      });
      const body = await collect(m.body, MAX_INPUT * 4);
      seeds.push({ data: body, meta: { headers: m.headers.toObject(), chunk: rng.pick(CHUNKS) } });
    }
  });
  const layered: Layered[] = [];
  for (const seedInput of seeds) {
    const l = await unwrap(seedInput, { key: bob.key, certificate: bob.certificate }).catch(() => undefined);
    if (l) layered.push(l);
  }
  const outer = messageMutator(seeds);
  const innerDonors = layered.map((l) => l.inner);
  const innerTrees = treesOf(innerDonors);
  const innerBoundaries = boundariesOf(layered.map((l) => ({ data: l.inner, meta: {} })));
  return {
    seeds,
    async mutate(rng) {
      if (!layered.length || !rng.chance(0.25)) return outer(rng);
      const l = rng.pick(layered);
      let inner = l.inner;
      for (let n = rng.chance(0.6) ? 1 : rng.range(2, 4); n > 0; n--) {
        inner = rng.chance(0.3) ? textMutation(rng, inner, innerBoundaries) : binaryMutation(rng, inner, innerDonors, innerTrees);
      }
      return { data: await wrap(rng, l.layers, inner, bob.certificate), meta: { ...l.seed.meta, headers: { ...l.seed.meta.headers } } };
    },
    async run(input) {
      // The options a partner profile can set, varied by the input itself (so a replay is the same).
      const v = input.data.length;
      const headers = input.meta.headers ?? {};
      await openMessage({
        headers,
        body: pieces(input.data, input.meta.chunk),
        decryptionKeys: [{ key: bob.key, certificate: bob.certificate }],
        signerCertificates: [alice.certificate],
        limits: { maxInflatedBytes: 16 * 1024 * 1024 },
        signerValidity: { now: NOW, messageDate: headers.Date ? new Date(headers.Date) : undefined, enforce: (v & 2) !== 0 },
        rc2WithoutVersion: v & 4 ? "key-length" : "rfc2268",
        filenameFromContentTypeName: (v & 8) === 0,
        onPayload: async (_info, body) => { await drain(body); },
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// parseMdn + verifyMdn

const MDN_MIC: MessageMic = (() => {
  const digest = crypto.createHash("sha256").update("as2kit fuzz").digest();
  return { algorithm: "sha256", digest, base64: digest.toString("base64") };
})();
const MDN_MSG_ID = "<as2kit-20250601T120000Z-0011223344556677@MYCO>";

async function mdnTarget(seed: number): Promise<TargetInstance> {
  const { alice } = await context();
  const rng = new Rng(hash32(`${seed}/mdn/seeds`));
  const dispositions: Array<[DispositionSpec, string | undefined]> = [
    [{ type: "processed" }, undefined],
    [{ type: "processed", modifier: "error", description: "decryption-failed" }, "no RecipientInfo matches"],
    [{ type: "processed", modifier: "error", description: "integrity-check-failed" }, undefined],
    [{ type: "processed", modifier: "warning", description: "duplicate-document" }, "already received"],
    [{ type: "failed", modifier: "failure", description: "unsupported MIC-algorithms" }, "whirlpool"],
  ];
  const seeds: FuzzInput[] = [];
  await withDeterministicCrypto(rng, async () => {
    for (const [disposition, detail] of dispositions) {
      for (const signWith of [false, "sha256", "sha1", "sha384-pss"] as const) {
        const m = buildMdn({
          original: { messageId: MDN_MSG_ID, from: "MYCO", to: rng.chance(0.8) ? "ACME" : "Acme Corp", subject: "order" }, disposition, detail,
          mic: disposition.type === "processed" && !disposition.modifier ? { base64: MDN_MIC.base64, algorithm: "sha256", token: rng.pick([undefined, "SHA256", "sha-256"]) } : undefined,
          sign: signWith === false ? false : signWith === "sha384-pss"
            ? { digest: "sha384", key: alice.key, certificate: alice.certificate, scheme: "rsassa-pss" }
            : { digest: signWith, key: alice.key, certificate: alice.certificate },
          now: () => NOW, randomBytes: (n) => rng.bytes(n),
        });
        seeds.push({ data: m.body, meta: { headers: m.headers.toObject() } });
        // Vendor variants: bare LF line ends (unsigned), the RFC 3798 "Error:" form.
        if (signWith === false && rng.chance(0.5)) seeds.push({ data: Buffer.from(m.body.toString("latin1").replace(/\r\n/g, "\n"), "latin1"), meta: { headers: m.headers.toObject() } });
      }
    }
  });
  return {
    seeds,
    mutate: messageMutator(seeds),
    async run(input) {
      const parsed = parseMdn(input.meta.headers ?? {}, input.data);
      const requireSigned = (input.data.length & 1) === 0;
      verifyMdn(parsed, { partnerCertificates: [alice.certificate], expectedMessageId: MDN_MSG_ID, expectedMics: [MDN_MIC], requireSigned, now: NOW });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Keys and certificates

function ecKey(rng: Rng): crypto.KeyObject {
  const ecdh = crypto.createECDH("prime256v1");
  for (;;) {
    const d = rng.bytes(32);
    try {
      ecdh.setPrivateKey(d);
    } catch {
      continue;
    }
    const pub = ecdh.getPublicKey();
    return crypto.createPrivateKey({
      key: { kty: "EC", crv: "P-256", d: d.toString("base64url"), x: pub.subarray(1, 33).toString("base64url"), y: pub.subarray(33).toString("base64url") },
      format: "jwk",
    });
  }
}

function pem(label: string, der: Buffer, eol = "\n"): Buffer {
  const b64 = der.toString("base64").replace(/.{64}/g, `$&${eol}`).replace(new RegExp(`${eol}$`), "");
  return Buffer.from(`-----BEGIN ${label}-----${eol}${b64}${eol}-----END ${label}-----${eol}`, "latin1");
}

async function loadPrivateKeyTarget(seed: number): Promise<TargetInstance> {
  const rng = new Rng(hash32(`${seed}/loadPrivateKey/seeds`));
  const seeds: FuzzInput[] = [];
  await withDeterministicCrypto(rng, async () => {
    const rsa = deterministicRsaKey(rng, rng.pick([512, 1024]));
    const ec = ecKey(rng);
    const fk = forge.pki.privateKeyFromPem(rsa.export({ type: "pkcs8", format: "pem" }).toString());
    const add = (data: Buffer | string, password?: string) => seeds.push({ data: Buffer.from(data), meta: password === undefined ? {} : { password } });
    add(rsa.export({ type: "pkcs8", format: "pem" }));
    add(rsa.export({ type: "pkcs1", format: "pem" }));
    add(rsa.export({ type: "pkcs8", format: "der" }));
    add(rsa.export({ type: "pkcs1", format: "der" }));
    add(ec.export({ type: "pkcs8", format: "pem" }));
    add(ec.export({ type: "sec1", format: "pem" }));
    add(ec.export({ type: "pkcs8", format: "der" }));
    add(forge.pki.encryptRsaPrivateKey(fk, "secret", { algorithm: "aes256", count: 64 }), "secret");
    add(forge.pki.encryptRsaPrivateKey(fk, "secret", { algorithm: "3des", count: 2048 }), "secret");
    add(forge.pki.encryptRsaPrivateKey(fk, "secret", { legacy: true, algorithm: "aes128" }), "secret");
    add(forge.pki.encryptRsaPrivateKey(fk, "secret", { legacy: true, algorithm: "des" as "3des" }), "secret");
    const encInfo = forge.pki.encryptPrivateKeyInfo(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(fk)), "secret", { algorithm: "aes128", count: 16 });
    add(Buffer.from(forge.asn1.toDer(encInfo).getBytes(), "binary"), "secret");
    add(Buffer.from(`Bag Attributes\n    friendlyName: key\n${rsa.export({ type: "pkcs8", format: "pem" }).toString().replace(/\n/g, "\r\n")}`));
  });
  return {
    seeds,
    mutate: fileMutator(seeds, (rng, input) => {
      if (!rng.chance(0.03)) return undefined;
      return { ...input, meta: { ...input.meta, password: rng.pick([undefined, "", "secret", "wrong"]) } };
    }),
    async run(input) {
      loadPrivateKey(input.data, input.meta.password);
    },
  };
}

/** Re-encodes the validity of a DER certificate with GeneralizedTime (valid after 2049, RFC 5280 §4.1.2.5). */
function withGeneralizedTimes(certDer: Buffer): Buffer {
  const p = parseBer(certDer)!;
  const tbs = p.node.children![0]!;
  const validity = tbs.children!.find((c, i) => i > 2 && c.cons && c.children?.length === 2 && c.children.every((t) => t.tag === 23 || t.tag === 24));
  for (const t of validity?.children ?? []) {
    if (t.tag === 23) {
      const s = t.content!.toString("latin1");
      t.tag = 24;
      t.content = Buffer.from((Number(s.slice(0, 2)) >= 50 ? "19" : "20") + s, "latin1");
    }
  }
  return writeBer(p.node);
}

/** A certificate whose SubjectPublicKeyInfo is replaced (signature no longer valid, which loading does not check). */
function withPublicKey(certDer: Buffer, spki: Buffer): Buffer {
  const p = parseBer(certDer)!;
  const tbs = p.node.children![0]!;
  const i = tbs.children!.findIndex((c) => c.cons && c.children?.[0]?.children?.[0]?.tag === 6 && c.children?.[1]?.tag === 3);
  if (i >= 0) tbs.children![i] = parseBer(spki)!.node;
  return writeBer(p.node);
}

function certsOnlyPkcs7(certs: readonly Certificate[]): Buffer {
  const p7 = forge.pkcs7.createSignedData();
  for (const c of certs) p7.addCertificate(forge.pki.certificateFromPem(c.toPem()));
  return Buffer.from(forge.asn1.toDer(p7.toAsn1()).getBytes(), "binary");
}

async function loadCertificatesTarget(seed: number): Promise<TargetInstance> {
  const { alice, bob, carol } = await context();
  const rng = new Rng(hash32(`${seed}/loadCertificates/seeds`));
  const seeds: FuzzInput[] = [];
  await withDeterministicCrypto(rng, async () => {
    const add = (data: Buffer | string) => seeds.push({ data: Buffer.from(data), meta: {} });
    add(alice.certificatePem);
    add(alice.certificate.der);
    add(alice.certificatePem + carol.certificatePem);
    add(carol.certificate.der);
    add(withGeneralizedTimes(bob.certificate.der));
    add(pem("CERTIFICATE", withGeneralizedTimes(carol.certificate.der), "\r\n"));
    add(withPublicKey(bob.certificate.der, crypto.createPublicKey(ecKey(rng)).export({ type: "spki", format: "der" })));
    // An Ed25519 PKCS#8 key is a fixed prefix and a 32-byte seed (RFC 8410 §7).
    const ed = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), rng.bytes(32)]), format: "der", type: "pkcs8" });
    add(withPublicKey(carol.certificate.der, crypto.createPublicKey(ed).export({ type: "spki", format: "der" })));
    const p7 = certsOnlyPkcs7([alice.certificate, bob.certificate]);
    add(p7);
    add(pem("PKCS7", p7));
    add(pem("CMS", certsOnlyPkcs7([carol.certificate])));
    add(`subject=CN=alice\nissuer=CN=alice\n${alice.certificatePem.replace("CERTIFICATE", "TRUSTED CERTIFICATE").replace("END CERTIFICATE", "END TRUSTED CERTIFICATE")}`);
  });
  return {
    seeds,
    mutate: fileMutator(seeds),
    async run(input) {
      // The loader and everything a loaded certificate offers (its getters parse lazily).
      for (const c of loadCertificates(input.data)) {
        void [c.subject, c.issuer, c.serialHex, c.toPem(), c.describe()];
        await step(() => {
          // A logic check too: "valid" must agree with the dates it reports (Invalid Date compares false).
          const v = c.checkValidity(NOW);
          const inside = v.notBefore.getTime() <= NOW.getTime() && NOW.getTime() <= v.notAfter.getTime();
          if (v.valid !== inside) throw new Error(`invariant: checkValidity says valid=${v.valid} for ${v.notBefore.toISOString()}..${v.notAfter.toISOString()}`);
        });
        await step(() => c.publicKey);
        await step(() => c.matchesIssuerSerial(c.issuerDer, c.serialBytes));
        await step(() => c.subjectKeyIdentifier);
        await step(() => keyMatchesCertificate(alice.key, c));
      }
    },
  };
}

async function loadPkcs12Target(seed: number): Promise<TargetInstance> {
  const { alice, bob } = await context();
  const rng = new Rng(hash32(`${seed}/loadPkcs12/seeds`));
  const seeds: FuzzInput[] = [];
  const fk = forge.pki.privateKeyFromPem(alice.keyPem) as forge.pki.rsa.PrivateKey;
  const fc = forge.pki.certificateFromPem(alice.certificatePem);
  const fc2 = forge.pki.certificateFromPem(bob.certificatePem);
  await withDeterministicCrypto(rng, async () => {
    const add = (key: forge.pki.rsa.PrivateKey | null, certs: forge.pki.Certificate[], password: string, opts: object, alias?: string) => {
      const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs, password, opts);
      seeds.push({ data: Buffer.from(forge.asn1.toDer(asn1).getBytes(), "binary"), meta: { password, alias } });
    };
    add(fk, [fc], "secret", { algorithm: "3des", count: 16 });
    add(fk, [fc, fc2], "secret", { algorithm: "aes256", count: 16, friendlyName: "alice" }, "alice");
    add(fk, [fc], "", { algorithm: "aes128", count: 16, generateLocalKeyId: true });
    add(fk, [fc], "secret", { algorithm: "3des", count: 2048, useMac: false });
    add(fk, null as unknown as forge.pki.Certificate[], "secret", { algorithm: "3des", count: 16 });
    add(null, [fc], "secret", { count: 16 });
    add(fk, [fc2], "secret", { algorithm: "aes192", count: 16, friendlyName: "x" }, "y");
    // Without a MAC, edits get past the integrity check into the bags (with one, nearly every edit stops there).
    add(fk, [fc, fc2], "secret", { algorithm: "aes256", count: 16, useMac: false, friendlyName: "alice" });
    add(fk, [fc], "", { algorithm: "3des", count: 16, useMac: false });
    add(fk, [fc], "secret", { algorithm: "aes128", count: 16, useMac: false, generateLocalKeyId: false });
  });
  return {
    seeds,
    mutate: fileMutator(seeds, (rng, input) => {
      if (!rng.chance(0.03)) return undefined;
      return { ...input, meta: { ...input.meta, password: rng.pick([undefined, "", "secret", "wrong"]), alias: rng.pick([undefined, "alice", "x"]) } };
    }),
    async run(input) {
      loadPkcs12(input.data, { password: input.meta.password, alias: input.meta.alias });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// MIME

async function walkEntity(bytes: Buffer, depth: number): Promise<void> {
  const e = parseEntityBytes(bytes);
  const ct = parseContentType(e.headers.get("content-type"));
  const disposition = e.headers.get("content-disposition");
  if (disposition) parseParameterized(disposition);
  await step(() => decodeTransfer(e.body, parseTransferEncoding(e.headers.get("content-transfer-encoding"))));
  if (ct.mediaType.startsWith("multipart/") && depth < 4) {
    for (const part of splitMultipart(e.body, checkBoundary(ct.params.boundary))) await step(() => walkEntity(part.raw, depth + 1));
  }
}

async function streamEntity(source: AsyncIterable<Uint8Array>, depth: number): Promise<void> {
  const reader = new ByteReader(source);
  const head = await readEntityHead(reader);
  const ct = parseContentType(head.headers.get("content-type"));
  const cte = parseTransferEncoding(head.headers.get("content-transfer-encoding"));
  if (ct.mediaType.startsWith("multipart/") && depth < 4) {
    const parts = new MultipartStream(reader.rest(), checkBoundary(ct.params.boundary));
    for (let p = await parts.nextPart(); p; p = await parts.nextPart()) await streamEntity(p, depth + 1);
  } else {
    await drain(decodeTransferStream(reader.rest(), cte));
  }
}

async function mimeTarget(seed: number): Promise<TargetInstance> {
  const rng = new Rng(hash32(`${seed}/mime/seeds`));
  const messages = await openMessageTarget(seed);
  const mdns = await mdnTarget(seed);
  const seeds: FuzzInput[] = [];
  const entity = (headers: Record<string, string>, body: Buffer, eol = "\r\n") => {
    const lines = Object.entries(headers).filter(([k]) => /^content-|^mime-/i.test(k)).map(([k, v]) => `${k}: ${v}`);
    return Buffer.concat([Buffer.from(lines.join(eol) + eol + eol, "latin1"), body]);
  };
  for (const s of [...messages.seeds, ...mdns.seeds]) {
    const ct = parseContentType(s.meta.headers!["Content-Type"]);
    if (!ct.mediaType.startsWith("multipart/") && !rng.chance(0.2)) continue;
    seeds.push({ data: entity(s.meta.headers!, s.data), meta: { chunk: rng.pick(CHUNKS) } });
    if (rng.chance(0.3)) {
      const http = Buffer.concat([Buffer.from(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: ${s.data.length}\r\n`), entity(s.meta.headers!, s.data)]);
      seeds.push({ data: http, meta: { chunk: rng.pick(CHUNKS) } });
    }
  }
  const body = payload(rng);
  const enc = encodeBody(rng, body);
  seeds.push({ data: Buffer.concat([Buffer.from(`POST /as2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/edi-x12\r\nContent-Transfer-Encoding: ${enc.cte}\r\n\r\n`), Buffer.from(`${enc.body.length.toString(16)};x=1\r\n`), enc.body, Buffer.from("\r\n0\r\n\r\n")]), meta: {} });
  seeds.push({ data: Buffer.from('HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: "multipart/signed; boundary=\\"x\\""\r\n\r\n'), meta: {} });
  seeds.push({ data: Buffer.from('Content-Type: multipart/mixed; boundary="o"\n\npreamble\n--o\nContent-Type: multipart/mixed; boundary=i\n\n--i\nContent-Transfer-Encoding: quoted-printable\n\na=3Db=\n c\n--i--\n--o\nContent-Transfer-Encoding: base64\n\nQUJD\nREVG\n--o--\nepilogue'), meta: { chunk: 3 } });
  return {
    seeds,
    mutate: fileMutator(seeds),
    async run(input) {
      const data = input.data;
      await step(() => readCapturedEntity(data));
      await step(() => readCapturedEntity(data, data.subarray(0, Math.min(data.length, 2048))));
      await step(() => readHeaderFile(data));
      await step(() => dechunk(data));
      await step(() => walkEntity(data, 0));
      await step(() => streamEntity(pieces(data, input.meta.chunk), 0));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// BER

async function walkBer(r: BerReader, parent: { end: number | null; depth: number } | undefined): Promise<void> {
  for (let n = 0; parent ? await r.hasMore(parent) : !(await r.bytes.atEnd()); n++) {
    const h = await r.readHeader("element");
    if (h.constructed && h.tagClass === 0 && (h.tagNumber === 4 || h.tagNumber === 3)) {
      await drain(r.octetStringContent(h, "octets", parent));
    } else if (h.constructed) {
      if (n % 3 === 2) {
        await r.skip(h, "skipped", parent);
        continue;
      }
      const c = r.enter(h, parent);
      await walkBer(r, c);
      await r.leave(c);
    } else if (h.tagClass === 0 && (h.tagNumber === 6 || h.tagNumber === 2) && h.length !== null && h.length <= 256) {
      r.bytes.unshift(h.raw);
      if (h.tagNumber === 6) await r.readOid("oid");
      else if (h.length >= 1 && h.length <= 6) await r.readSmallInt("int");
      else await r.readPrimitiveContent(await r.readHeader("int"), "int");
    } else if (h.length !== null && h.length > 4096) {
      await r.skip(h, "big", parent);
    } else {
      const content = await r.readPrimitiveContent(h, "primitive");
      if (h.tagClass === 2 && content.length) await step(() => decodeOid(content));
    }
  }
}

async function berTarget(seed: number): Promise<TargetInstance> {
  const rng = new Rng(hash32(`${seed}/ber/seeds`));
  const { alice } = await context();
  const messages = await openMessageTarget(seed);
  const seeds: FuzzInput[] = [];
  for (const s of messages.seeds) {
    for (const r of berRegions(s.data)) seeds.push({ data: s.data.subarray(r.start, r.end), meta: { chunk: rng.pick(CHUNKS) } });
    for (const b of base64Regions(s.data)) seeds.push({ data: Buffer.from(s.data.subarray(b.start, b.end).toString("latin1").replace(/\s+/g, ""), "base64"), meta: { chunk: rng.pick(CHUNKS) } });
  }
  seeds.push({ data: alice.certificate.der, meta: {} });
  seeds.push({ data: Buffer.from("2480040361626324800400040162000004020304000030800201010000", "hex"), meta: { chunk: 1 } });
  return {
    seeds,
    mutate: fileMutator(seeds),
    async run(input) {
      const src = () => pieces(input.data, input.meta.chunk);
      await step(() => walkBer(new BerReader(src()), undefined));
      await step(() => walkBer(new BerReader(src(), { maxDepth: 6, maxElementBytes: 512 }), undefined));
      await step(async () => {
        const r = new BerReader(src());
        while (!(await r.bytes.atEnd())) await r.readRawElement("raw");
      });
      await step(async () => drain(await decompressStream(src(), { maxInflatedBytes: 1024 * 1024 })));
    },
  };
}

/**
 * The harness checking itself (test/fuzz/harness.test.ts, never part of "all"): the input's first
 * byte says what to do, so each kind of finding can be produced on purpose.
 */
function selftestTarget(): TargetInstance {
  const seeds = [0, 1, 2, 3, 4, 5, 6].map((n) => ({ data: Buffer.from([n]), meta: {} }));
  return {
    seeds,
    mutate: (rng) => rng.pick(seeds),
    async run(input) {
      switch (input.data[0]) {
        case 1: throw new As2Error("AS2_ERR_MALFORMED_BER", "typed");
        case 2: throw new TypeError("plain");
        case 3: await new Promise(() => undefined); break; // never settles
        case 4: for (;;) { /* a synchronous hang: only the watchdog can see it */ }
        case 5: { // memory: hold 16 MiB buffers and spin until the watchdog steps in
          const held: Buffer[] = [];
          for (;;) if (held.length < 64) held.push(Buffer.alloc(16 * 1024 * 1024, 1));
        }
        case 6: void Promise.reject(new Error("stray")); break;
        default: break;
      }
    },
  };
}

export async function createTarget(name: string, seed: number): Promise<TargetInstance> {
  if (name === "selftest") return selftestTarget();
  switch (name as TargetName) {
    case "openMessage": return openMessageTarget(seed);
    case "mdn": return mdnTarget(seed);
    case "loadPrivateKey": return loadPrivateKeyTarget(seed);
    case "loadCertificates": return loadCertificatesTarget(seed);
    case "loadPkcs12": return loadPkcs12Target(seed);
    case "mime": return mimeTarget(seed);
    case "ber": return berTarget(seed);
    default: throw new Error(`unknown fuzz target ${name} (targets: ${TARGET_NAMES.join(", ")})`);
  }
}
