// README's configuration reference (issue 16) is generated from the schema and cannot drift:
// the section between the config-reference markers must be exactly what
// scripts/gen-config-reference.mjs renders from src/config/schema.ts (`npm run config-reference`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { configJsonSchema } from "../../src/config/index.js";
import {
  END, HEADING, START, configReferenceRows, currentConfigReference, renderConfigReference, replaceConfigReference,
} from "../../scripts/gen-config-reference.mjs";

const readme = readFileSync("README.md", "utf8");
const schema = configJsonSchema();

test("README's configuration reference is generated from the schema and up to date (npm run config-reference)", () => {
  const section = currentConfigReference(readme);
  assert.ok(section !== undefined, `README.md has no ${START} ... ${END} section`);
  assert.equal(section, renderConfigReference(schema), "README.md's configuration reference is stale: run npm run config-reference");
  // Under its heading, before `as2 status`.
  const heading = readme.indexOf(`\n${HEADING}\n`);
  assert.ok(heading >= 0 && heading < readme.indexOf(START), "the heading comes before the section");
  assert.ok(readme.indexOf(END) < readme.indexOf("\n## `as2 status`\n"), "the section comes before ## `as2 status`");
});

test("the script's --check agrees (the dist build, as npm run config-reference uses it)", () => {
  const r = spawnSync(process.execPath, ["scripts/gen-config-reference.mjs", "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

test("every key of the JSON Schema has its row, with type, default and description from the schema", () => {
  const rows = configReferenceRows(schema);
  const byPath = new Map(rows.map((r) => [r.path, r]));
  assert.equal(byPath.size, rows.length, "each path once");
  // Every property name anywhere in the schema ends some row's path.
  const names = new Set<string>();
  const walk = (s: unknown): void => {
    if (Array.isArray(s)) return s.forEach(walk);
    if (s === null || typeof s !== "object") return;
    const o = s as Record<string, unknown>;
    if (o.properties && typeof o.properties === "object") for (const k of Object.keys(o.properties)) names.add(k);
    Object.values(o).forEach(walk);
  };
  walk(schema);
  for (const n of names) assert.ok(rows.some((r) => r.path === n || r.path.endsWith(`.${n}`)), `no row for the key ${n}`);

  const row = (p: string) => {
    const r = byPath.get(p);
    assert.ok(r, `no row ${p}; rows: ${[...byPath.keys()].join(", ")}`);
    return r;
  };
  assert.equal(row("station.as2Id").default, "**required**");
  assert.equal(row("receive.port").default, "`4080`");
  assert.equal(row("receive.port").type, "integer 0-65535");
  assert.equal(row("receive.maxConnections").description, "connections beyond this get 503 with Retry-After");
  assert.equal(row("partners.<name>.url").default, "**required**");
  assert.equal(row("partners.<name>.sign").default, '`"sha256"`');
  assert.equal(row("partners.<name>.sign").type, '`false` | `"sha1"` | `"sha224"` | `"sha256"` | `"sha384"` | `"sha512"`');
  assert.match(row("partners.<name>.encrypt").type, /`"aes256-gcm"`/);
  assert.equal(row("partners.<name>.mdn.request").default, '`"signed"`');
  assert.equal(row("partners.<name>.quirks.micalgSpelling").description, (schema as any).properties.partners.additionalProperties.properties.quirks.properties.micalgSpelling.description);
  assert.equal(row("partners.<name>.inbound.users[].username").default, "**required**");
  assert.equal(row("station.key.pkcs12").default, "required in the `pkcs12` form");
  assert.equal(row("station.previousKeys").type, "array of objects like `station.key`");
  // In the Markdown, pipes inside cells are escaped: every table row has exactly 4 cells.
  const table = renderConfigReference(schema).split("\n").filter((l) => l.startsWith("| `"));
  assert.equal(table.length, rows.length);
  for (const l of table) assert.equal(l.replace(/\\\|/g, "").split("|").length, 6, l);
});

test("a stale section is noticed and replaced; without markers the section goes before ## `as2 status`", () => {
  const body = renderConfigReference(schema);
  const stale = readme.replace("`receive.port` | integer 0-65535 | `4080`", "`receive.port` | integer 0-65535 | `4081`");
  assert.notEqual(stale, readme);
  assert.notEqual(currentConfigReference(stale), body);
  assert.equal(replaceConfigReference(stale, body), readme);
  const bare = "# x\n\nintro\n\n## `as2 status`\n\nstatus\n\n## Examples\n";
  const filled = replaceConfigReference(bare, body);
  assert.equal(filled, `# x\n\nintro\n\n${HEADING}\n\n${START}\n${body}${END}\n\n## \`as2 status\`\n\nstatus\n\n## Examples\n`);
  assert.equal(currentConfigReference(filled), body);
  assert.equal(replaceConfigReference(filled, body), filled, "idempotent");
  assert.match(replaceConfigReference("# x\n\n## Examples\n", body), new RegExp(`${HEADING}\\n\\n${START}[^]*${END}\\n\\n## Examples\\n$`));
});

test("every key of the schema has a description (src/config/schema.ts .describe()), so no row of the reference is blank", () => {
  // Every `properties` entry anywhere in the JSON Schema, in every form of a union (the pkcs12
  // form's password as well as the pem form's), not only the first description a row picks up.
  const missing: string[] = [];
  const walk = (s: unknown, at: string): void => {
    if (Array.isArray(s)) return s.forEach((x, i) => walk(x, `${at}[${i}]`));
    if (s === null || typeof s !== "object") return;
    const o = s as Record<string, unknown>;
    if (o.properties && typeof o.properties === "object") {
      for (const [k, p] of Object.entries(o.properties as Record<string, { description?: string }>)) {
        if (!p.description?.trim()) missing.push(`${at}.${k}`);
      }
    }
    for (const [k, v] of Object.entries(o)) walk(v, `${at}.${k}`);
  };
  walk(schema, "#");
  assert.deepEqual(missing, [], `keys without .describe() in src/config/schema.ts:\n${missing.join("\n")}`);
  const rows = configReferenceRows(schema);
  assert.deepEqual(rows.filter((r) => !r.description.trim()).map((r) => r.path), []);
  assert.ok(rows.length >= 107, `${rows.length} rows`);
});
