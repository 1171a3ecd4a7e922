/** HTTPS_PROXY / HTTP_PROXY / NO_PROXY for partners without a proxy of their own (contract §7, issue 16). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bypassesProxy, proxyFromEnv } from "../../src/jobs/env-proxy.js";

test("the scheme picks HTTPS_PROXY or HTTP_PROXY (lower case first); credentials and ports are read", () => {
  const env = { HTTPS_PROXY: "http://user:p%40ss@proxy.corp:3128", http_proxy: "proxy2.corp:8080", HTTP_PROXY: "http://ignored:1" };
  assert.deepEqual(proxyFromEnv("https://as2.acme.example/as2", env), { type: "http", host: "proxy.corp", port: 3128, username: "user", password: "p@ss" });
  assert.deepEqual(proxyFromEnv("http://as2.acme.example/as2", env), { type: "http", host: "proxy2.corp", port: 8080 });
  assert.deepEqual(proxyFromEnv("https://x.example/", { HTTPS_PROXY: "socks5://s.corp" }), { type: "socks5", host: "s.corp", port: 1080 });
  assert.equal(proxyFromEnv("https://x.example/", {}), undefined);
});

test("NO_PROXY: names, domain suffixes, ports and *; loopback is never proxied", () => {
  const env = { HTTPS_PROXY: "http://proxy.corp:3128", NO_PROXY: "internal.example, .corp.example,partner.example:8443" };
  assert.equal(proxyFromEnv("https://internal.example/as2", env), undefined);
  assert.equal(proxyFromEnv("https://as2.corp.example/as2", env), undefined);
  assert.equal(proxyFromEnv("https://partner.example:8443/as2", env), undefined);
  assert.ok(proxyFromEnv("https://partner.example/as2", env), "another port goes through the proxy");
  assert.ok(proxyFromEnv("https://notinternal.example/as2", env), "a suffix match needs a dot");
  assert.equal(proxyFromEnv("https://127.0.0.1:4080/as2", env), undefined);
  assert.equal(proxyFromEnv("http://[::1]:4080/as2", { HTTP_PROXY: "http://p:1" }), undefined);
  assert.equal(bypassesProxy(new URL("https://a.b/"), "*"), true);
});
