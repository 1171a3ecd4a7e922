/**
 * `as2 db migrate` (issue 15) against a real PostgreSQL: two nodes migrating at once apply each
 * migration once (advisory lock); exit codes of contract §3; the URL's password, given through
 * ${AS2_DATABASE_URL}, appears in no output, also when the database refuses it.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { as2 } from "../helpers/as2-process.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { opensslIdentity, tempDir } from "../helpers/tools.js";

const dir = tempDir();
let db: TestPostgres;
let config: string;
let filesConfig: string;

before(async () => {
  db = await startPostgres();
  opensslIdentity("acme", dir);
  const base = { dataDir: "./data", station: { as2Id: "ACME", key: { pem: "acme.key", certificate: "acme.crt" } }, partners: {} };
  config = join(dir, "pg.json");
  writeFileSync(config, JSON.stringify({ ...base, store: { kind: "postgres", url: "${AS2_DATABASE_URL}" } }));
  filesConfig = join(dir, "files.json");
  writeFileSync(filesConfig, JSON.stringify(base));
});

test("two `as2 db migrate --json` at once: both exit 0, each migration is applied by exactly one of them; a third run has nothing to do", async () => {
  const env = { AS2_DATABASE_URL: db.url };
  const runs = await Promise.all([as2(["db", "migrate", "--config", config, "--json"], { env }), as2(["db", "migrate", "--config", config, "--json"], { env })]);
  for (const r of runs) assert.equal(r.status, 0, r.stderr + r.stdout);
  const docs = runs.map((r) => JSON.parse(r.stdout) as { applied: Array<{ version: number }>; version: number; database: string });
  assert.deepEqual(docs.map((d) => d.applied.map((a) => a.version)).sort(), [[], [1, 2, 3]]);
  for (const d of docs) {
    assert.equal(d.version, 3);
    assert.ok(!d.database.includes(db.password), "the password is not printed");
    assert.match(d.database, /as2:\*\*\*@127\.0\.0\.1/);
  }
  assert.equal(db.psql("SELECT count(*) FROM as2_schema_migrations").trim(), "3");
  const again = await as2(["db", "migrate", "--config", config], { env });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /schema version 3 .*up to date/);
});

test("a wrong password: exit 1, one JSON error document, and neither password appears anywhere in the output", async () => {
  const wrong = "Wrong-Secret-4711";
  const r = await as2(["db", "migrate", "--config", config, "--json"], { env: { AS2_DATABASE_URL: db.url.replace(db.password, wrong) } });
  assert.equal(r.status, 1, r.stderr + r.stdout);
  const doc = JSON.parse(r.stdout) as { error: { code: string; message: string } };
  assert.equal(doc.error.code, "AS2_ERR_STORE_FAILED");
  assert.match(doc.error.message, /password authentication failed/);
  for (const secret of [wrong, db.password]) assert.ok(!(r.stdout + r.stderr).includes(secret), `${secret} leaked: ${r.stdout}${r.stderr}`);
});

test("a database that is not there: exit 1 with AS2_ERR_STORE_UNAVAILABLE; a files store or an unset variable: exit 2", async () => {
  const down = await as2(["db", "migrate", "--config", config, "--json"], { env: { AS2_DATABASE_URL: "postgres://as2:Down-Secret-99@127.0.0.1:9/as2" } });
  assert.equal(down.status, 1, down.stderr + down.stdout);
  assert.equal((JSON.parse(down.stdout) as { error: { code: string } }).error.code, "AS2_ERR_STORE_UNAVAILABLE");
  assert.ok(!(down.stdout + down.stderr).includes("Down-Secret-99"));
  const files = await as2(["db", "migrate", "--config", filesConfig]);
  assert.equal(files.status, 2, files.stderr);
  assert.match(files.stderr, /store\.kind is "files"/);
  const unset = await as2(["db", "migrate", "--config", config], { env: { AS2_DATABASE_URL: "" } });
  assert.equal(unset.status, 2, unset.stderr);
  assert.match(unset.stderr, /store\.url/);
});
