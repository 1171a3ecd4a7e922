/**
 * Seed inputs must be the same bytes for the same fuzz seed (a finding is then reproducible from
 * the seed alone, and CI's short pass is not flaky). The library takes injected randomness where
 * a caller can pass it (buildMessage, buildMdn), but some randomness is drawn below it: RSA
 * PKCS#1 v1.5 and OAEP padding (crypto.publicEncrypt), PSS salts (crypto.sign), the certificate
 * serial (crypto.randomBytes) and node-forge's salts and IVs. While seeds are built, those calls
 * are replaced by equivalents that draw from the PRNG: the padding is computed here (RFC 8017
 * §7.1.1, §7.2.1, §9.1.1) and the raw RSA operation is left to OpenSSL.
 * Nothing else runs in the fuzz worker while the shim is active; it is removed before fuzzing.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { createRequire, syncBuiltinESMExports } from "node:module";
import forge from "node-forge";
import type { Rng } from "./prng.js";

type NodeCrypto = typeof crypto;
const nodeCrypto = createRequire(import.meta.url)("node:crypto") as { -readonly [K in keyof NodeCrypto]: NodeCrypto[K] };

function mgf1(hash: string, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let size = 0;
  for (let counter = 0; size < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = crypto.createHash(hash).update(seed).update(c).digest();
    out.push(block);
    size += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function modulusBits(key: crypto.KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) throw new Error("deterministic shim: not an RSA key");
  return bits;
}

function keyObjectOf(k: unknown, kind: "public" | "private"): crypto.KeyObject {
  const key = (k as { key?: unknown }).key ?? k;
  if (key instanceof crypto.KeyObject) return kind === "public" && key.type === "private" ? crypto.createPublicKey(key) : key;
  return kind === "public" ? crypto.createPublicKey(key as crypto.PublicKeyInput) : crypto.createPrivateKey(key as crypto.PrivateKeyInput);
}

function rsaPublicEncrypt(rng: Rng, original: NodeCrypto["publicEncrypt"]): NodeCrypto["publicEncrypt"] {
  return ((keyInput: crypto.RsaPublicKey | crypto.KeyLike, data: NodeJS.ArrayBufferView) => {
    const opts = keyInput as crypto.RsaPublicKey & { oaepHash?: string; oaepLabel?: Buffer };
    const key = keyObjectOf(keyInput, "public");
    const k = modulusBits(key) / 8;
    const m = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let em: Buffer;
    if (opts.padding === crypto.constants.RSA_PKCS1_OAEP_PADDING) {
      const hash = opts.oaepHash ?? "sha1";
      const hLen = crypto.createHash(hash).digest().length;
      const lHash = crypto.createHash(hash).update(opts.oaepLabel ?? Buffer.alloc(0)).digest();
      const db = Buffer.concat([lHash, Buffer.alloc(k - m.length - 2 * hLen - 2), Buffer.from([1]), m]);
      const seed = rng.bytes(hLen);
      const maskedDb = xor(db, mgf1(hash, seed, k - hLen - 1));
      em = Buffer.concat([Buffer.from([0]), xor(seed, mgf1(hash, maskedDb, hLen)), maskedDb]);
    } else if (opts.padding === crypto.constants.RSA_PKCS1_PADDING || opts.padding === undefined) {
      const ps = Buffer.alloc(k - m.length - 3);
      for (let i = 0; i < ps.length; i++) ps[i] = 1 + rng.int(255);
      em = Buffer.concat([Buffer.from([0, 2]), ps, Buffer.from([0]), m]);
    } else {
      return original(keyInput, data);
    }
    return original({ key, padding: crypto.constants.RSA_NO_PADDING }, em);
  }) as NodeCrypto["publicEncrypt"];
}

function rsaSign(rng: Rng, original: NodeCrypto["sign"]): NodeCrypto["sign"] {
  return ((algorithm: string | null | undefined, data: NodeJS.ArrayBufferView, keyInput: crypto.SignKeyObjectInput, cb?: unknown) => {
    const opts = keyInput as crypto.SignKeyObjectInput;
    if (cb || !algorithm || opts.padding !== crypto.constants.RSA_PKCS1_PSS_PADDING) return (original as (...a: unknown[]) => Buffer)(algorithm, data, keyInput, cb);
    const key = keyObjectOf(keyInput, "private");
    const emBits = modulusBits(key) - 1;
    const emLen = Math.ceil(emBits / 8);
    const mHash = crypto.createHash(algorithm).update(data).digest();
    const hLen = mHash.length;
    const sLen = opts.saltLength !== undefined && opts.saltLength >= 0 ? opts.saltLength : hLen;
    const salt = rng.bytes(sLen);
    const h = crypto.createHash(algorithm).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
    const db = Buffer.concat([Buffer.alloc(emLen - sLen - hLen - 2), Buffer.from([1]), salt]);
    const maskedDb = xor(db, mgf1(algorithm, h, emLen - hLen - 1));
    maskedDb[0]! &= 0xff >> (8 * emLen - emBits);
    const em = Buffer.concat([maskedDb, h, Buffer.from([0xbc])]);
    const k = Math.ceil((emBits + 1) / 8);
    const padded = em.length < k ? Buffer.concat([Buffer.alloc(k - em.length), em]) : em;
    return crypto.privateEncrypt({ key, padding: crypto.constants.RSA_NO_PADDING }, padded);
  }) as NodeCrypto["sign"];
}

/** Runs fn with node:crypto's and node-forge's randomness drawn from rng. */
export async function withDeterministicCrypto<T>(rng: Rng, fn: () => Promise<T>): Promise<T> {
  const saved = { randomBytes: nodeCrypto.randomBytes, publicEncrypt: nodeCrypto.publicEncrypt, sign: nodeCrypto.sign };
  const forgeRandom = forge.random as unknown as { getBytes: unknown; getBytesSync: unknown };
  const savedForge = { getBytes: forgeRandom.getBytes, getBytesSync: forgeRandom.getBytesSync };
  nodeCrypto.randomBytes = ((n: number, cb?: (e: Error | null, b: Buffer) => void) => {
    const b = rng.bytes(n);
    if (cb) { cb(null, b); return undefined; }
    return b;
  }) as NodeCrypto["randomBytes"];
  nodeCrypto.publicEncrypt = rsaPublicEncrypt(rng, saved.publicEncrypt);
  nodeCrypto.sign = rsaSign(rng, saved.sign);
  const forgeBytes = (n: number) => rng.bytes(n).toString("binary");
  forgeRandom.getBytes = (n: number, cb?: (e: Error | null, b: string) => void) => (cb ? cb(null, forgeBytes(n)) : forgeBytes(n));
  forgeRandom.getBytesSync = forgeBytes;
  syncBuiltinESMExports();
  try {
    return await fn();
  } finally {
    Object.assign(nodeCrypto, saved);
    Object.assign(forgeRandom, savedForge);
    syncBuiltinESMExports();
  }
}
