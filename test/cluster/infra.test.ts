/** The cluster tests' own infrastructure: a throwaway PostgreSQL and HAProxy, both real. */
import assert from "node:assert/strict";
import * as http from "node:http";
import { test } from "node:test";
import pg from "pg";
import { startHaproxy } from "../helpers/haproxy.js";
import { startPostgres } from "../helpers/postgres.js";
import { tempDir } from "../helpers/tools.js";

test("a throwaway PostgreSQL takes password logins on 127.0.0.1, stops and starts again", async () => {
  const db = await startPostgres();
  const query = async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query<{ u: string }>("SELECT current_user AS u")).rows[0]!.u;
    } finally {
      await c.end();
    }
  };
  assert.equal(await query(), "as2");
  await db.stop();
  await assert.rejects(query);
  await db.start();
  assert.equal(await query(), "as2");
  const bad = new pg.Client({ connectionString: db.url.replace(db.password, "wrong") });
  await assert.rejects(bad.connect(), /password authentication failed/);
});

test("HAProxy spreads requests round robin and leaves out a node that is down", async () => {
  const servers = await Promise.all([1, 2, 3].map((n) => new Promise<{ server: http.Server; port: number }>((resolve) => {
    const server = http.createServer((req, res) => { res.writeHead(req.method === "GET" ? 405 : 200); res.end(`node${n}`); });
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port }));
  })));
  const lb = await startHaproxy(tempDir(), servers.map((s) => ({ host: "127.0.0.1", port: s.port })));
  const post = () => fetch(lb.url, { method: "POST", body: "x" }).then((r) => r.text());
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add(await post());
  assert.deepEqual([...seen].sort(), ["node1", "node2", "node3"]);
  await new Promise<void>((r) => servers[1]!.server.close(() => r()));
  servers[1]!.server.closeAllConnections();
  const after = new Set<string>();
  for (let i = 0; i < 9; i++) after.add(await post());
  assert.deepEqual([...after].sort(), ["node1", "node3"]);
  for (const s of [servers[0]!, servers[2]!]) { s.server.close(); s.server.closeAllConnections(); }
  await lb.stop();
});
