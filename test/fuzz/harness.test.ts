// The fuzz harness itself (lib/engine.ts, lib/worker.ts): each kind of finding is caught and named
// with the input that caused it, and a worker that hangs or blows up is replaced, so that the
// regression test's "no findings" means something. The "selftest" target does what its input says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { replayCorpus } from "./lib/engine.js";

test("the harness tells success and As2Errors from plain errors, async and sync hangs, memory blow-ups and stray rejections", async () => {
  const dir = mkdtempSync(join(tmpdir(), "as2kit-fuzz-selftest-"));
  try {
    const files = [0, 1, 2, 3, 4, 5, 6, 0].map((n, i) => {
      const f = join(dir, `${i}-${n}.bin`);
      writeFileSync(f, Buffer.from([n]));
      return f;
    });
    const results = await replayCorpus("selftest", files, { timeoutMs: 300, memoryLimitMb: 256 });
    const got = Object.fromEntries(results.map((r) => [r.file.split("/").pop(), r.outcome === "finding" ? r.finding!.kind : r.outcome]));
    assert.deepEqual(got, {
      "0-0.bin": "ok", "1-1.bin": "as2error", "2-2.bin": "error", "3-3.bin": "hang", "4-4.bin": "hang",
      "5-5.bin": "memory", "6-6.bin": "unhandled", "7-0.bin": "ok",
    });
    const sync = results.find((r) => r.file.endsWith("4-4.bin"))!;
    assert.deepEqual([...sync.finding!.data], [4], "the watchdog names the input the worker was stuck in");
    assert.match(results.find((r) => r.file.endsWith("2-2.bin"))!.finding!.error, /TypeError: plain/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
