// Writes README.md's "Configuration reference" (between the config-reference markers) from the
// configuration schema's JSON Schema, so that the reference cannot drift from the schema:
// every key as a dotted path (`partners.<name>.` for partner keys), its type or allowed values,
// its default and its description. `npm run config-reference` (also part of `npm run schema`)
// after changing src/config/schema.ts; `--check` only compares (exit 1 when README.md is stale),
// and test/config/reference.test.ts fails when it is.
//
// The module has no side effects when imported: the test calls renderConfigReference() with the
// schema from src/ and compares the README section with it.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

export const START = "<!-- config-reference:start -->";
export const END = "<!-- config-reference:end -->";
export const HEADING = "## Configuration reference";
/** Where the section goes when README.md has no markers yet: before the first of these headings. */
const ANCHORS = ["## `as2 status`", "## Examples"];

const code = (v) => `\`${v}\``;
const literal = (v) => code(JSON.stringify(v));
/** A table cell: one line, pipes escaped (also inside code spans, as GitHub tables require). */
const cell = (s) => String(s).replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** The schema without what varies by place (default, description): to recognise a shape seen before. */
function shapeKey(s) {
  const { default: _d, description: _t, ...rest } = s;
  return JSON.stringify(rest);
}

const hasProperties = (s) => isObject(s?.properties);
const isObjectUnion = (s) => Array.isArray(s?.anyOf) && s.anyOf.every(hasProperties);
const isRecord = (s) => s?.type === "object" && !hasProperties(s) && isObject(s.additionalProperties);

/** "form" names of an object union: each alternative by its first required key. */
function formName(alt) {
  return (alt.required ?? Object.keys(alt.properties))[0];
}

function bytesNote(n) {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = -1;
  while (v >= 1024 && v % 1024 === 0 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u >= 0 ? ` (${v} ${units[u]})` : "";
}

function numberType(s) {
  const name = s.type === "integer" ? "integer" : "number";
  const min = s.minimum;
  const max = s.maximum !== undefined && s.maximum < MAX_SAFE ? s.maximum : undefined;
  if (s.exclusiveMinimum !== undefined && max === undefined) return `${name} > ${s.exclusiveMinimum}`;
  if (min !== undefined && max !== undefined) return `${name} ${min}-${max}`;
  if (min !== undefined) return `${name} ≥ ${min}`;
  if (max !== undefined) return `${name} ≤ ${max}`;
  return name;
}

function stringType(s, plural) {
  const base = s.minLength === 1 ? `non-empty string${plural ? "s" : ""}` : `string${plural ? "s" : ""}`;
  return s.pattern ? `${base} matching ${code(s.pattern)}` : base;
}

/** A non-scalar alternative of a mixed union (a file, or { file, from, until }): named, its keys listed below. */
function mixedPart(a, plural) {
  if (hasProperties(a)) return plural ? "objects" : "object";
  if (a.type === "array") return `array of ${scalarType(a.items ?? {}, true) ?? "objects"}`;
  return "any";
}

/** The object alternatives of a mixed union, with the path suffix their keys go under. */
function mixedObjects(s) {
  const out = [];
  for (const a of s.anyOf ?? []) {
    if (hasProperties(a)) out.push(["", a]);
    else if (a.type === "array") for (const i of a.items?.anyOf ?? (a.items ? [a.items] : [])) if (hasProperties(i)) out.push(["[]", i]);
  }
  return out;
}

/** The type column for a scalar schema (or a union of scalars); undefined for anything else. */
function scalarType(s, plural = false) {
  if (s.const !== undefined) return literal(s.const);
  if (Array.isArray(s.enum)) return s.enum.map(literal).join(" | ");
  if (Array.isArray(s.anyOf) && !isObjectUnion(s)) {
    const parts = s.anyOf.map((a) => scalarType(a, plural) ?? mixedPart(a, plural));
    return parts.join(" | ");
  }
  if (s.type === "string") return stringType(s, plural);
  if (s.type === "integer" || s.type === "number") return numberType(s);
  if (s.type === "boolean") return "boolean";
  return undefined;
}

function renderDefault(s, required, requiredNote) {
  if (s.default === undefined) return required ? (requiredNote ?? "**required**") : "";
  const d = s.default;
  if (isObject(d) && hasProperties(s)) {
    // An object default that is just its keys' own defaults says nothing the rows below don't.
    const own = Object.fromEntries(Object.entries(s.properties).filter(([, p]) => p.default !== undefined).map(([k, p]) => [k, p.default]));
    if (Object.keys(d).length > 0 && JSON.stringify(Object.entries(d).sort()) === JSON.stringify(Object.entries(own).sort())) return "its keys' defaults";
  }
  return typeof d === "number" ? `${literal(d)}${bytesNote(d)}` : literal(d);
}

/**
 * Every key of the schema, depth first in the schema's order: { path, type, default, description }.
 * Objects get a row and then rows for their keys; records (partners, headers) use `<name>`;
 * arrays of objects use `[]`; a shape already listed (notify, key sources) points to it.
 */
export function configReferenceRows(schema) {
  const rows = [];
  const seen = new Map(); // shapeKey -> path where its keys are listed

  const join = (prefix, key) => (prefix ? `${prefix}.${key}` : key);

  function seenAt(s) {
    return seen.get(shapeKey(s));
  }

  function visit(path, s, required, requiredNote) {
    const row = { path, type: "", default: renderDefault(s, required, requiredNote), description: s.description ?? "" };
    rows.push(row);
    const scalar = scalarType(s);
    if (scalar !== undefined) {
      row.type = scalar;
      // A union of a scalar and objects (a certificate file, or { file, from, until }): the objects' keys.
      for (const [suffix, o] of mixedObjects(s)) {
        const like = seenAt(o);
        if (like) continue;
        seen.set(shapeKey(o), `${path}${suffix}`);
        children(`${path}${suffix}`, o);
      }
      return;
    }
    if (hasProperties(s) || isObjectUnion(s)) {
      const like = seenAt(s);
      if (like) {
        row.type = `object, like ${code(like)}`;
        return;
      }
      seen.set(shapeKey(s), path);
      if (hasProperties(s)) {
        row.type = "object";
        children(path, s);
      } else {
        const forms = s.anyOf.map((alt) => `{${Object.keys(alt.properties).map((k) => (alt.required?.includes(k) ? k : `${k}?`)).join(", ")}}`);
        row.type = `object, one of: ${forms.map(code).join(" or ")}`;
        // The keys of every form, once each; "required" names the form that requires it.
        const listed = new Set();
        for (const alt of s.anyOf) {
          for (const [k, p] of Object.entries(alt.properties)) {
            if (listed.has(k)) continue;
            listed.add(k);
            const inForms = s.anyOf.filter((a) => a.properties[k]);
            const req = inForms.filter((a) => a.required?.includes(k));
            const desc = inForms.map((a) => a.properties[k].description).find((d) => d) ?? "";
            const note = req.length === s.anyOf.length ? undefined : `required in the ${req.map((a) => code(formName(a))).join(", ")} form`;
            visit(join(path, k), { ...p, description: desc }, req.length > 0, note);
          }
        }
      }
      return;
    }
    if (isRecord(s)) {
      const names = s.propertyNames?.pattern ? ` (names matching ${code(s.propertyNames.pattern)})` : "";
      const value = s.additionalProperties;
      const valueType = scalarType(value);
      if (valueType !== undefined) {
        row.type = `object: name → ${valueType}${names}`;
        return;
      }
      const child = join(path, "<name>");
      row.type = `object: name → object${names}`;
      const like = seenAt(value);
      if (like) {
        row.type = `object: name → object like ${code(like)}${names}`;
        return;
      }
      seen.set(shapeKey(value), child);
      children(child, value);
      return;
    }
    if (s.type === "array") {
      const items = s.items ?? {};
      const itemType = scalarType(items, true);
      if (itemType !== undefined) {
        row.type = `array of ${itemType}`;
        for (const [, o] of mixedObjects(items)) {
          if (seenAt(o)) continue;
          seen.set(shapeKey(o), `${path}[]`);
          children(`${path}[]`, o);
        }
        return;
      }
      const like = seenAt(items);
      if (like) {
        row.type = `array of objects like ${code(like)}`;
        return;
      }
      row.type = "array of objects";
      seen.set(shapeKey(items), `${path}[]`);
      if (hasProperties(items)) children(`${path}[]`, items);
      return;
    }
    row.type = s.type ?? "any";
  }

  function children(prefix, s) {
    for (const [k, p] of Object.entries(s.properties ?? {})) visit(join(prefix, k), p, s.required?.includes(k) ?? false);
    if (s.additionalProperties === false) return;
    if (isObject(s.additionalProperties) && hasProperties(s.additionalProperties)) children(join(prefix, "<name>"), s.additionalProperties);
  }

  children("", schema);
  return rows;
}

/** The Markdown that goes between the markers (markers excluded), ending with a newline. */
export function renderConfigReference(schema) {
  const rows = configReferenceRows(schema);
  const lines = [
    "<!-- generated by scripts/gen-config-reference.mjs from src/config/schema.ts: edit the schema and run `npm run config-reference`, not this table -->",
    "",
    `${rows.length} keys. **required**: the key must be set (in its object, when the object is given); an empty default: unset unless given.`,
    "",
    "| key | type / allowed values | default | description |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| ${cell(code(r.path))} | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`),
  ];
  return `${lines.join("\n")}\n`;
}

/** README text with the section replaced (or, without markers, inserted with its heading). */
export function replaceConfigReference(readme, body) {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start >= 0 && end > start) return `${readme.slice(0, start + START.length)}\n${body}${readme.slice(end)}`;
  if (start >= 0 || end >= 0) throw new Error(`README.md: ${START} and ${END} must both be there, in that order`);
  const anchor = ANCHORS.map((a) => readme.indexOf(`\n${a}\n`)).find((i) => i >= 0);
  if (anchor === undefined) throw new Error(`README.md: no markers and none of ${ANCHORS.join(", ")} to put the section before`);
  const section = `\n${HEADING}\n\n${START}\n${body}${END}\n`;
  return `${readme.slice(0, anchor + 1)}${section.slice(1)}\n${readme.slice(anchor + 1)}`;
}

/** The section as it stands in README.md (between the markers), or undefined. */
export function currentConfigReference(readme) {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  return start >= 0 && end > start ? readme.slice(start + START.length + 1, end) : undefined;
}

async function main(argv) {
  const { configJsonSchema } = await import("../dist/config/schema.js");
  const readmeUrl = new URL("../README.md", import.meta.url);
  const readme = readFileSync(readmeUrl, "utf8");
  const body = renderConfigReference(configJsonSchema());
  if (argv.includes("--check")) {
    if (currentConfigReference(readme) === body) return 0;
    process.stderr.write("README.md's configuration reference is not the schema's: run npm run config-reference\n");
    return 1;
  }
  const next = replaceConfigReference(readme, body);
  if (next !== readme) writeFileSync(readmeUrl, next);
  const undocumented = configReferenceRows(configJsonSchema()).filter((r) => !r.description).length;
  process.stderr.write(`README.md: configuration reference ${next === readme ? "already up to date" : "written"} (${undocumented} keys without a description in the schema)\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
