/**
 * Keys and certificates generated at run time from the fuzz seed, so the seed inputs (and hence a
 * whole run) are the same for the same seed. Node cannot seed its RSA key generation, so the primes
 * come from our PRNG (Miller-Rabin over BigInt); the certificate is made by the library's own
 * generator with its randomness (the serial number) taken from the PRNG as well (determinism.ts).
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { createSelfSignedCertificate, type GeneratedIdentity } from "../../../src/core/index.js";
import { Rng } from "./prng.js";
import { withDeterministicCrypto } from "./determinism.js";

const SMALL_PRIMES: number[] = [];
for (let n = 3; SMALL_PRIMES.length < 300; n += 2) if (SMALL_PRIMES.every((p) => n % p !== 0)) SMALL_PRIMES.push(n);

function bigFrom(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString("hex") || "0"}`);
}

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

function isProbablePrime(n: bigint, rng: Rng): boolean {
  for (const p of SMALL_PRIMES) if (n % BigInt(p) === 0n) return n === BigInt(p);
  let d = n - 1n;
  let s = 0;
  while (!(d & 1n)) { d >>= 1n; s++; }
  for (let round = 0; round < 24; round++) {
    const a = 2n + (bigFrom(rng.bytes(64)) % (n - 4n));
    let x = modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    let composite = true;
    for (let i = 1; i < s; i++) {
      x = (x * x) % n;
      if (x === n - 1n) { composite = false; break; }
    }
    if (composite) return false;
  }
  return true;
}

function prime(bits: number, rng: Rng): bigint {
  for (;;) {
    const b = rng.bytes(bits / 8);
    b[0] |= 0xc0; // top two bits set: the product has exactly 2*bits bits
    b[b.length - 1] |= 1;
    const n = bigFrom(b);
    if (isProbablePrime(n, rng)) return n;
  }
}

function egcdInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [a % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

function b64u(n: bigint): string {
  let hex = n.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  return Buffer.from(hex, "hex").toString("base64url");
}

/** An RSA private key derived from the PRNG (1024 bits by default: fuzzing wants speed, not strength). */
export function deterministicRsaKey(rng: Rng, bits = 1024): crypto.KeyObject {
  const e = 65537n;
  for (;;) {
    const p = prime(bits / 2, rng);
    const q = prime(bits / 2, rng);
    if (p === q) continue;
    const phi = (p - 1n) * (q - 1n);
    if (phi % e === 0n) continue;
    const d = egcdInverse(e, phi);
    const jwk = { kty: "RSA", n: b64u(p * q), e: b64u(e), d: b64u(d), p: b64u(p), q: b64u(q), dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(egcdInverse(q, p)) };
    return crypto.createPrivateKey({ key: jwk, format: "jwk" });
  }
}

/** createSelfSignedCertificate with its randomness (the serial number) taken from the PRNG. */
export async function deterministicIdentity(rng: Rng, commonName: string, options: { bits?: number; notBefore?: Date; notAfter?: Date } = {}): Promise<GeneratedIdentity> {
  const key = deterministicRsaKey(rng, options.bits);
  return withDeterministicCrypto(rng, () => createSelfSignedCertificate({
    commonName, organization: "as2kit fuzz", key,
    notBefore: options.notBefore ?? new Date("2024-01-01T00:00:00Z"),
    notAfter: options.notAfter ?? new Date("2044-01-01T00:00:00Z"),
  }));
}
