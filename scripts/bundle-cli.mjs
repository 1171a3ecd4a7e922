// Bundles the `as2` command line (src/cli/main.ts and everything it imports, the dependencies
// included) into dist/bundle/, for bin/as2.js (issue 14). Node then reads a few files at start
// instead of resolving and loading some 200 modules: `as2 status` on an empty data folder starts
// about a quarter faster (bench/startup.bench.ts measures both).
//
// - Code splitting keeps each command's `await import()` lazy: `as2 --version` loads main.js
//   (commander and the error boundary), `as2 status` a few chunks, and only the commands that
//   need them load the chunks with pkijs, asn1js and node-forge.
// - The files lie two folders below the package root like dist/cli/*.js, so the
//   `new URL("../../as2rc.schema.json", import.meta.url)` of station-setup.ts finds the same file;
//   the version is written in as a constant (src/version.ts). Every `new URL(<path>,
//   import.meta.url)` left in the bundle is checked to name the same file from dist/bundle/ as
//   from its module in tsc's dist/: the build fails otherwise (a worker script addressed that way
//   must then become an entry point here, or be found another way).
// - CommonJS dependencies (cosmiconfig, node-forge, ...) call `require` for Node's built-in
//   modules, and cosmiconfig's import-fresh (a .js/.cjs configuration that import() could not
//   load) uses `__filename`: the banner gives each ESM output file a real `require`,
//   `__filename` and `__dirname`.
// - No source maps (issue 16: source maps ship with their sources or not at all). Only the syntax
//   is compacted (minifySyntax: dead branches such as version.ts's file read go); names and lines
//   stay and esbuild marks where each source file starts, so stack traces stay readable.
// - The licences of the bundled packages are written beside it (THIRD-PARTY-LICENSES.txt).
// The library entry (dist/index.js, from tsc) is not bundled.
import { build } from "esbuild";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist", "bundle");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

// Chunk names carry content hashes: a new build leaves none of the old ones behind.
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: "src/cli/main.ts" },
  outdir,
  chunkNames: "[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20.19",
  // cosmiconfig loads TypeScript only for a .ts configuration file (not one we search for).
  external: ["typescript"],
  define: { AS2KIT_BUNDLED_VERSION: JSON.stringify(pkg.version) },
  banner: { js: [
    'import { createRequire as __as2kitCreateRequire } from "node:module";',
    'import { fileURLToPath as __as2kitFileURLToPath } from "node:url";',
    "const require = __as2kitCreateRequire(import.meta.url);",
    "const __filename = __as2kitFileURLToPath(import.meta.url);",
    'const __dirname = __filename.slice(0, __filename.lastIndexOf("/"));',
  ].join(" ") },
  sourcemap: false,
  minifySyntax: true,
  metafile: true,
  logLevel: "warning",
});

/**
 * `new URL("<relative path>", import.meta.url)` in the bundle, each with the source module it
 * came from (esbuild's `// src/...` line above it): the file it names from dist/bundle/ must be
 * the one it names from that module's place in tsc's dist/.
 */
function checkFileUrls(outputs) {
  const wrong = [];
  for (const file of outputs.filter((f) => f.endsWith(".js"))) {
    let source;
    for (const line of readFileSync(join(root, file), "utf8").split("\n")) {
      const marker = /^\/\/ (src\/\S+)\.ts$/.exec(line);
      if (marker) source = marker[1];
      for (const m of line.matchAll(/new URL\(\s*(["'`])([^"'`]+)\1\s*,\s*import\.meta\.url\s*\)/g)) {
        const fromBundle = resolve(dirname(join(root, file)), m[2]);
        const fromDist = source ? resolve(dirname(join(root, "dist", source.slice("src/".length))), m[2]) : undefined;
        if (fromBundle !== fromDist) wrong.push(`${source ? `${source}.ts` : file}: new URL("${m[2]}", import.meta.url) names ${fromBundle} in the bundle, ${fromDist ?? "?"} in dist/`);
      }
    }
  }
  if (wrong.length) throw new Error(`files addressed from import.meta.url would move in the bundle:\n  ${wrong.join("\n  ")}`);
}

/** The package folder (node_modules/<name> or node_modules/@scope/<name>) of a bundled input. */
function packageDirOf(input) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m?.[1];
}

const packages = [...new Set(Object.keys(result.metafile.inputs).map(packageDirOf).filter(Boolean))].sort();
const notices = packages.map((dir) => {
  const p = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
  const licenceFile = readdirSync(join(root, dir)).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  const text = licenceFile ? readFileSync(join(root, dir, licenceFile), "utf8").trim() : `(no licence file; package.json says ${p.license})`;
  return `${p.name} ${p.version} (${p.license})\n\n${text}\n`;
});
writeFileSync(join(outdir, "THIRD-PARTY-LICENSES.txt"),
  `The as2 command-line bundle in this folder contains the following packages.\n\n${notices.join(`\n${"-".repeat(72)}\n\n`)}`);

if (!existsSync(join(outdir, "main.js"))) throw new Error("the bundle has no main.js");
checkFileUrls(Object.keys(result.metafile.outputs));
const outputs = Object.entries(result.metafile.outputs);
const bytes = outputs.reduce((n, [, o]) => n + o.bytes, 0);
console.log(`dist/bundle: ${outputs.length} files, ${(bytes / 1e6).toFixed(2)} MB, ${packages.length} packages bundled`);
