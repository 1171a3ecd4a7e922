/**
 * The files backend of the CEM request store (src/store/cem-requests.ts; issue 17): of many
 * registrations of one request at once exactly one creates it and all see the same record;
 * concurrent updates under the record's lock lose nothing; odd request IDs stay inside the folder.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { FileCemRequestStore, type CemRequestRecord } from "../../src/store/index.js";
import { tempDir } from "../helpers/tools.js";

function record(requestId: string, extra: Partial<CemRequestRecord> = {}): CemRequestRecord {
  const at = new Date().toISOString();
  return {
    requestId, direction: "received", partner: "acme", partnerAs2Id: "ACME", state: "pending", createdAt: at, updatedAt: at,
    usages: ["digitalSignature"], respondBy: at, responseUrl: "http://127.0.0.1:1/as2",
    certificate: { pem: "", subject: "CN=x", issuerName: "CN=x", serialNumber: "1", notBefore: at, notAfter: at }, ...extra,
  };
}

test("20 registrations of one request at once: one creates it, all get the same record", async () => {
  const store = new FileCemRequestStore(tempDir());
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.register(record("R-1", { messageId: `<m${i}>` }))));
  assert.equal(results.filter((r) => r.created).length, 1);
  const winner = results.find((r) => r.created)!.record.messageId;
  for (const r of results) assert.equal(r.record.messageId, winner);
  assert.equal((await store.list()).length, 1);
});

test("concurrent updates under the lock lose nothing; a request ID with path characters stays in its folder", async () => {
  const dir = tempDir();
  const store = new FileCemRequestStore(dir);
  const id = "../../etc/passwd\u0000x";
  await store.register(record(id, { usages: [] }));
  await Promise.all(Array.from({ length: 10 }, (_, i) => store.update("received", "acme", id, (r) => ({ ...r, usages: [...r.usages, `u${i}`] }))));
  const r = await store.get("received", "acme", id);
  assert.equal(r?.usages.length, 10);
  assert.deepEqual(readdirSync(join(dir, "cem", "received", "acme")).filter((n) => n.endsWith(".json")).length, 1);
  assert.equal(await store.update("received", "acme", "missing", (x) => x), undefined);
});

test("pending requests past their RespondByDate become expired; decided ones and future ones stay", async () => {
  const { expireOverdue } = await import("../../src/store/cem-requests.js");
  const store = new FileCemRequestStore(tempDir());
  const past = new Date(Date.now() - 60_000).toISOString();
  const future = new Date(Date.now() + 3_600_000).toISOString();
  await store.register(record("OLD", { respondBy: past }));
  await store.register(record("NEW", { respondBy: future }));
  await store.register(record("DONE", { respondBy: past, state: "accepted" }));
  await expireOverdue(store, new Date());
  const states = Object.fromEntries((await store.list()).map((r) => [r.requestId, r.state]));
  assert.deepEqual(states, { OLD: "expired", NEW: "pending", DONE: "accepted" });
});
