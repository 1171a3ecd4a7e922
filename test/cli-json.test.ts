/**
 * Issue 16: with --json every error path prints exactly one parseable document on stdout
 * ({ "error": { "code", "message" } }) beside the exit code of contract §3, and the help shows
 * examples, the global options and the exit codes.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { as2 } from "./helpers/as2-process.js";
import { opensslIdentity, tempDir } from "./helpers/tools.js";

const dir = tempDir("as2kit-cli-json-");
let good = "";

before(() => {
  opensslIdentity("myco", dir);
  opensslIdentity("acme", dir);
  good = join(dir, "good.json");
  writeFileSync(good, JSON.stringify({
    dataDir: "./data",
    station: { as2Id: "MYCO", key: { pem: "myco.key", certificate: "myco.crt" } },
    partners: { acme: { as2Id: "ACME", url: "http://127.0.0.1:9/as2", certificate: "acme.crt" } },
  }));
  writeFileSync(join(dir, "bad.json"), JSON.stringify({ station: { as2Id: "MYCO" }, recieve: {} }));
  writeFileSync(join(dir, "broken.json"), "{ not json");
  writeFileSync(join(dir, "order.edi"), "ISA*00~");
});

const cases: Array<[string, string[], number, string]> = [
  ["an unknown option", ["send", "--jsn"], 2, "AS2_ERR_USAGE"],
  ["an unknown command", ["sned"], 2, "AS2_ERR_USAGE"],
  ["a missing configuration", ["status", "--config", "missing.json"], 2, "AS2_ERR_CONFIG"],
  ["an invalid configuration", ["status", "--config", "bad.json"], 2, "AS2_ERR_CONFIG"],
  ["a configuration that is not JSON", ["status", "--config", "broken.json"], 2, "AS2_ERR_CONFIG"],
  ["an unknown partner", ["send", "--config", "good.json", "--partner", "nobody", "order.edi"], 2, "AS2_ERR_CONFIG"],
  ["a missing file to send", ["send", "--config", "good.json", "--partner", "acme", "nofile.edi"], 2, "AS2_ERR_USAGE"],
  ["a bad run ID", ["status", "--config", "good.json", "not-a-run"], 2, "AS2_ERR_USAGE"],
  ["an unknown run ID", ["status", "--config", "good.json", "20261202T000000000Z-000000000000"], 1, ""],
  ["an unreadable MDN file", ["mdn-verify", "--config", "good.json", "nothing.mdn"], 2, "AS2_ERR_USAGE"],
  ["a bad --sign value", ["send", "--config", "good.json", "--partner", "acme", "--sign", "md5", "order.edi"], 2, "AS2_ERR_CONFIG"],
];

for (const [label, args, exit, code] of cases) {
  test(`--json, ${label}: exit ${exit} and one parseable document on stdout`, async () => {
    const r = await as2([...args, "--json"], { cwd: dir });
    assert.equal(r.status, exit, r.stderr + r.stdout);
    const doc = JSON.parse(r.stdout) as { error?: { code: string; message: string } };
    if (code) {
      assert.equal(doc.error?.code, code, r.stdout);
      assert.ok(doc.error!.message.length > 0);
    } else {
      assert.ok(doc.error || Object.keys(doc).length, r.stdout);
    }
  });
}

test("help: examples in every command's help, global options and exit codes shown in subcommand help; did-you-mean for flags", async () => {
  for (const cmd of ["send", "receive", "status", "mdn-verify"]) {
    const h = await as2([cmd, "--help"]);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /Examples:\n {2}as2 /, cmd);
    assert.match(h.stdout, /Global Options:[\s\S]*--json/, cmd);
    assert.match(h.stdout, /Exit codes: 0 success/, cmd);
  }
  // One exit-code listing per help page, whichever command: the command's own or the global one.
  const { buildProgram } = await import("../src/cli/main.js");
  // Every command and subcommand (keys new, partner add, ...).
  type Cmd = { name(): string; commands: readonly Cmd[] };
  const paths = (c: Cmd, at: string[]): string[][] => c.commands.flatMap((sub) => [[...at, sub.name()], ...paths(sub, [...at, sub.name()])]);
  const commands = paths(buildProgram() as unknown as Cmd, []);
  assert.ok(commands.some((c) => c.join(" ") === "keys import") && commands.some((c) => c.join(" ") === "partner add"), JSON.stringify(commands));
  const pages = await Promise.all([[], ...commands].map(async (cmd) => [cmd.join(" ") || "as2", await as2([...cmd, "--help"])] as const));
  for (const [cmd, h] of pages) {
    assert.equal(h.status, 0, cmd);
    if (cmd !== "as2") assert.match(h.stdout, /Examples:\n {2}as2 /, cmd);
    assert.equal(h.stdout.match(/Exit codes:/g)?.length, 1, `${cmd} --help: ${h.stdout}`);
    assert.equal(h.stdout.match(/With --json, an error is also one document/g)?.length, 1, cmd);
  }
  const page = (name: string) => pages.find(([cmd]) => cmd === name)![1].stdout;
  assert.match(page("check"), /Exit codes: 0 no problem \(warnings allowed\); 1 problems found/);
  assert.match(page("ping"), /Exit codes: 0 every step passed \(warnings allowed\); 1 a step failed/);
  for (const cmd of ["check", "ping"]) assert.doesNotMatch(page(cmd), /3 partial|4 status --wait/, cmd);
  assert.match(page("as2"), /Exit codes: 0 success;[^]*3 partial/);
  const typo = await as2(["send", "--partnr", "acme"]);
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /Did you mean --partner\?/);
});

test("AS2_CONFIG names the configuration when --config is not given", async () => {
  const r = await as2(["status", "--json"], { cwd: tempDir(), env: { AS2_CONFIG: good } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).totalRecords, 0);
});
