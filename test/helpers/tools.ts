/** Test helpers: temp dirs, the openssl CLI as an independent peer, identities generated at test time. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { loadCertificates, loadPrivateKey, type Certificate } from "../../src/core/index.js";
import type { KeyObject } from "node:crypto";

/**
 * Clean-ups run once, after every test of the file. (node:test's after() called inside a before
 * hook would run when that hook ends, closing servers the tests still need.)
 */
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** Writes a station's configuration as <dir>/<name>.json and returns its path. */
export function writeJsonConfig(dir: string, name: string, c: Record<string, unknown>): string {
  const f = join(dir, `${name}.json`);
  writeFileSync(f, JSON.stringify(c, null, 2));
  return f;
}

export function tempDir(prefix = "as2kit-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs openssl; returns stdout. Legacy ciphers need the legacy provider next to the default one. */
export function openssl(args: string[], input?: Buffer): Buffer {
  try {
    return execFileSync("openssl", args, { input, stdio: ["pipe", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args.join(" ")} failed: ${err.stderr?.toString() ?? err.message}`);
  }
}

export const LEGACY = ["-provider", "legacy", "-provider", "default"];

export interface TestIdentity {
  name: string;
  keyFile: string;
  certFile: string;
  key: KeyObject;
  certificate: Certificate;
}

const cache = new Map<string, TestIdentity>();

/** An RSA-2048 key and self-signed certificate made by openssl (an independent generator). */
export function opensslIdentity(name: string, dir: string): TestIdentity {
  const cached = cache.get(`${dir}/${name}`);
  if (cached) return cached;
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "365", "-subj", `/C=XX/O=as2kit tests/CN=${name}`]);
  const id = { name, keyFile, certFile, key: loadPrivateKey(readFileSync(keyFile)), certificate: loadCertificates(readFileSync(certFile))[0]! };
  cache.set(`${dir}/${name}`, id);
  return id;
}

export function write(dir: string, name: string, data: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

/** A stream of the bytes in pieces of `size` (exercises every parser across chunk borders). */
export async function* chunks(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(i + size, data.length));
}
