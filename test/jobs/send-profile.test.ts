// The profile -> transport and build mapping, and file selection helpers (unit level; the e2e
// tests show the same properties on the wire).
import assert from "node:assert/strict";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { partnerSchema, configSchema } from "../../src/config/schema.js";
import { postSpecFor, asyncReceiptUrl } from "../../src/jobs/send-profile.js";
import { contentTypeFor, filesInDir, globToRegExp } from "../../src/jobs/source-files.js";
import { tempDir } from "../helpers/tools.js";

test("seconds become milliseconds; 0 stays 'wait forever'; retries, redirects and chunked pass through", () => {
  const p = partnerSchema.parse({ as2Id: "ACME", url: "https://acme.example/as2", encrypt: false, mdn: { request: "none" }, connectTimeout: 7, readTimeout: 0, retries: 3, retryInterval: 2.5, followRedirects: true, chunked: true, userAgent: "x/1", username: "u", password: "p", proxy: { type: "socks5", host: "px", alternateHost: "px2", port: 1080, username: "a", password: "b" } });
  const s = postSpecFor("acme", p);
  assert.deepEqual({ ...s, tls: undefined }, {
    url: "https://acme.example/as2", connectTimeoutMs: 7000, readTimeoutMs: 0, retries: 3, retryIntervalMs: 2500, followRedirects: true, userAgent: "x/1", chunked: true,
    auth: { username: "u", password: "p" }, tls: undefined, proxy: { type: "socks5", host: "px", alternateHost: "px2", port: 1080, username: "a", password: "b" },
  });
});

test("Receipt-Delivery-Option: mdn.url, else station.asyncMdnUrl; mailto: for the email destination", () => {
  const base = { station: { as2Id: "ME", key: { pem: "k", certificate: "c" }, asyncMdnUrl: "https://me.example/as2" }, partners: {} };
  const c = configSchema.parse(base);
  const p = (mdn: Record<string, unknown>) => partnerSchema.parse({ as2Id: "P", url: "http://p/as2", encrypt: false, sign: false, mdn: { request: "unsigned", ...mdn } });
  assert.equal(asyncReceiptUrl(c, p({ mode: "async" })), "https://me.example/as2");
  assert.equal(asyncReceiptUrl(c, p({ mode: "async", url: "https://mdn.example/x" })), "https://mdn.example/x");
  assert.equal(asyncReceiptUrl(c, p({ mode: "async", destination: "email", email: "edi@me.example" })), "mailto:edi@me.example");
  assert.equal(asyncReceiptUrl(c, p({ mode: "sync" })), undefined);
});

test("--pattern: * and ? only, whole names, no hidden files unless asked", async () => {
  assert.ok(globToRegExp("file_*.edi").test("file_20261122.edi"));
  assert.ok(!globToRegExp("file_?.edi").test("file_10.edi"));
  assert.ok(globToRegExp("a+b(1).x12").test("a+b(1).x12"));
  const dir = tempDir();
  mkdirSync(join(dir, "sub.edi"));
  for (const n of ["b.edi", "a.edi", ".hidden.edi", "c.txt"]) writeFileSync(join(dir, n), "x");
  assert.deepEqual((await filesInDir(dir, "*.edi")).map((f) => f.slice(dir.length + 1)), ["a.edi", "b.edi"]);
  assert.deepEqual((await filesInDir(dir, ".*")).map((f) => f.slice(dir.length + 1)), [".hidden.edi"]);
});

test("content type from the name; .edi by its first bytes", async () => {
  const dir = tempDir();
  const w = (n: string, s: string) => { writeFileSync(join(dir, n), s); return join(dir, n); };
  assert.equal(await contentTypeFor(w("a.edi", "ISA*00*")), "application/edi-x12");
  assert.equal(await contentTypeFor(w("b.edi", "UNB+UNOA")), "application/edifact");
  assert.equal(await contentTypeFor(w("c.edi", "HDR")), "application/edi-consent");
  assert.equal(await contentTypeFor(w("d.XML", "<x/>")), "application/xml");
  assert.equal(await contentTypeFor(w("e.bin", "")), "application/octet-stream");
});
