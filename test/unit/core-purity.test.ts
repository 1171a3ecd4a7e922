// architecture.md §1: src/core stays pure (no fs, http, process, CLI libraries, outer folders).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const FORBIDDEN_MODULES = /^(node:)?(fs|fs\/promises|http|https|http2|net|tls|child_process|process)$|^(commander|chalk|ora|cosmiconfig)(\/|$)/;

test("src/core imports no fs/http/process/CLI modules and nothing outside core", () => {
  const problems: string[] = [];
  for (const file of files("src/core")) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
      const spec = m[1]!;
      if (FORBIDDEN_MODULES.test(spec)) problems.push(`${file}: imports ${spec}`);
      if (spec.startsWith(".")) {
        const target = join(file, "..", spec);
        if (!target.startsWith("src/core")) problems.push(`${file}: imports ${spec} outside src/core`);
      }
    }
    if (/\bprocess\.|\bconsole\./.test(text.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, ""))) problems.push(`${file}: uses process.* or console.*`);
  }
  assert.deepEqual(problems, []);
});

test("the purity check itself catches a forbidden import", () => {
  assert.ok(FORBIDDEN_MODULES.test("node:fs"));
  assert.ok(FORBIDDEN_MODULES.test("commander"));
  assert.ok(!FORBIDDEN_MODULES.test("node:crypto"));
});
