// The as2 binary: version, help listing the contract's commands, usage errors, and the demo.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const run = (...args: string[]) => spawnSync(process.execPath, ["--openssl-legacy-provider", "bin/as2.js", ...args], { encoding: "utf8" });

test("as2 --version prints the package version", () => {
  const r = run("--version");
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), JSON.parse(readFileSync("package.json", "utf8")).version);
});

test("as2 --help lists send, receive, mdn-verify and status", () => {
  const r = run("--help");
  assert.equal(r.status, 0);
  for (const c of ["send", "receive", "mdn-verify", "status", "--config", "--data-dir", "--json", "--quiet", "--verbose", "--no-color"]) assert.match(r.stdout, new RegExp(`\\s${c}\\b`));
});

test("an unknown command is a usage error (exit 2)", () => {
  const r = run("bogus");
  assert.equal(r.status, 2);
  assert.equal(r.stdout, "");
});

test("the README's first command: the loopback demo between two stations (send, receive, status), cleaning up after itself", () => {
  const r = spawnSync(process.execPath, ["--openssl-legacy-provider", "dist/demo.js"], { encoding: "utf8", timeout: 150_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\[ACME server\] received <[^>]+> -> \S+sample-order\.edi: processed/);
  assert.match(r.stdout, /\[MYCO server\] async MDN for <[^>]+>: automatic-action\/MDN-sent-automatically; processed/);
  assert.equal(r.stdout.match(/AS2 Send\s+transfer\s+\S+ \S+\s+1\s+MYCO\s+ACME\s+Received\s+SUCCESS/g)?.length, 2, r.stdout);
  assert.equal(r.stdout.match(/AS2 Receive\s+transfer\s+\S+ \S+\s+1\s+MYCO\s+ACME\s+\S+\s+SUCCESS/g)?.length, 2, r.stdout);
  assert.match(r.stdout, /Security\s+signed, encrypted, compressed/);
  assert.match(r.stdout, /mic\s+PASS/);
  assert.match(r.stdout, /demo: OK/);
  const workDir = /working in (\S+)/.exec(r.stdout)![1]!;
  assert.equal(existsSync(workDir), false, "the demo removes what it made");
});
