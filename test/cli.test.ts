// The as2 binary: version, help listing the contract's commands, and no fake success meanwhile.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

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

test("commands not built yet fail clearly instead of pretending", () => {
  for (const c of ["mdn-verify"]) {
    const r = run(c, "--partner", "x");
    assert.equal(r.status, 1, c);
    assert.match(r.stderr, new RegExp(`as2 ${c} is not available`));
    assert.equal(r.stdout, "");
  }
  assert.equal(run("bogus").status, 2);
});

test("the README's first command (the core demo) runs and verifies everything", () => {
  const r = spawnSync(process.execPath, ["--openssl-legacy-provider", "dist/demo.js"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /identical: true/);
  assert.match(r.stdout, /MDN mic\s+PASS/);
  assert.match(r.stdout, /demo: OK/);
});
