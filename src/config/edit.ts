/**
 * Editing the configuration file in place (`as2 partner add`, `as2 keys import`, `keys new --use`):
 * the file keeps its format (JSON stays JSON with its indentation, YAML stays YAML), every key
 * is kept (also those this version does not know), the result is validated as a whole before it
 * is written, and it is written atomically (temp file + rename): a failed edit leaves the old
 * file as it was, never half a file.
 */
import { randomBytes } from "node:crypto";
import { chmod, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { cosmiconfig } from "cosmiconfig";
import yaml from "js-yaml";
import { SEARCH_PLACES } from "./load.js";
import { ConfigError, validateConfig } from "./validate.js";
import type { As2Config } from "./schema.js";

export type ConfigFormat = "json" | "yaml";

export interface ConfigDocument {
  /** Absolute path of the file. */
  path: string;
  format: ConfigFormat;
  /** The configuration object as written in the file (no ${ENV} expansion, no defaults). */
  raw: Record<string, unknown>;
  /** package.json: the whole manifest, whose "as2" key is `raw`. */
  manifest?: Record<string, unknown>;
  /** JSON: the indentation found (2 when none could be seen). */
  indent: number;
  /** YAML: the file has comments, which a rewrite does not keep. */
  hasComments: boolean;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function problem(path: string, message: string): ConfigError {
  return new ConfigError(path, [{ path: "(file)", message }]);
}

/** The format a config file is written in: by its name, and for `.as2rc` by its content. */
export function formatOf(path: string, text: string): ConfigFormat {
  const ext = extname(path).toLowerCase();
  if (ext === ".json" || basename(path) === "package.json") return "json";
  if (ext === ".yaml" || ext === ".yml") return "yaml";
  try {
    JSON.parse(text);
    return "json";
  } catch {
    return "yaml";
  }
}

/** Parses the text of a config file into an editable document. */
export function parseConfigDocument(path: string, text: string): ConfigDocument {
  if (/\.(c|m)?js$/i.test(path) || /\.ts$/i.test(path)) {
    throw problem(path, `${basename(path)} is a program, which as2kit cannot edit: make the change by hand, or move the configuration to .as2rc.json`);
  }
  const format = formatOf(path, text);
  let parsed: unknown;
  try {
    parsed = format === "json" ? JSON.parse(text) : yaml.load(text);
  } catch (e) {
    throw problem(path, `cannot be parsed as ${format.toUpperCase()}: ${(e as Error).message.split("\n")[0]}`);
  }
  let manifest: Record<string, unknown> | undefined;
  if (basename(path) === "package.json") {
    if (!isObject(parsed)) throw problem(path, "package.json does not hold an object");
    manifest = parsed;
    parsed = parsed.as2 ?? {};
  }
  if (parsed === undefined || parsed === null) parsed = {};
  if (!isObject(parsed)) throw problem(path, "the configuration must be an object (key: value pairs) at the top level");
  const indentMatch = format === "json" ? /^[{[]\r?\n( +|\t)\S/.exec(text) : null;
  return {
    path: resolve(path),
    format,
    raw: parsed,
    manifest,
    indent: indentMatch ? (indentMatch[1] === "\t" ? 2 : indentMatch[1]!.length) : 2,
    hasComments: format === "yaml" && /(^|\s)#/m.test(text),
  };
}

export async function readConfigDocument(path: string): Promise<ConfigDocument> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw problem(path, err.code === "ENOENT" ? `file not found: ${resolve(path)}` : `cannot be read: ${err.message}`);
  }
  return parseConfigDocument(path, text);
}

/** The document's text, in its own format. */
export function serializeConfig(doc: ConfigDocument): string {
  if (doc.manifest) return `${JSON.stringify({ ...doc.manifest, as2: doc.raw }, null, doc.indent)}\n`;
  if (doc.format === "json") return `${JSON.stringify(doc.raw, null, doc.indent)}\n`;
  return yaml.dump(doc.raw, { lineWidth: -1, noRefs: true, quotingType: '"' });
}

/** Text for a new configuration file in `format`. */
export function formatNewConfig(raw: Record<string, unknown>, format: ConfigFormat): string {
  return serializeConfig({ path: "", format, raw, indent: 2, hasComments: false });
}

/**
 * Validates the edited document as a whole (presets, ${ENV}, every cross-key rule), as
 * `loadConfig` will read it. Throws ConfigError with every problem.
 */
export function validateDocument(doc: ConfigDocument, env: Record<string, string | undefined>): As2Config {
  const { config, problems } = validateConfig(doc.raw, env);
  if (!config) throw new ConfigError(`${doc.path} (after the change; the file was not written)`, problems);
  return config;
}

/**
 * Writes `data` to `path` through a temp file in the same folder and a rename, so readers see
 * the old file or the new one, never a part. `mode` applies to the new file (default: the old
 * file's mode, else 0644).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode?: number): Promise<void> {
  let fileMode = mode;
  if (fileMode === undefined) {
    try {
      fileMode = (await stat(path)).mode & 0o777;
    } catch {
      fileMode = 0o644;
    }
  }
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", fileMode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  // The umask may have narrowed the mode at creation; a key must end up exactly 0600.
  await chmod(tmp, fileMode);
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Writes the document back in its format. Returns the text written. */
export async function writeConfigDocument(doc: ConfigDocument): Promise<string> {
  const text = serializeConfig(doc);
  await writeFileAtomic(doc.path, text);
  return text;
}

/**
 * The configuration file the commands would use: `explicit` (--config / AS2_CONFIG), else the
 * cosmiconfig search from `cwd` upwards (contract §1). Undefined when there is none.
 */
export async function locateConfigFile(explicit: string | undefined, cwd: string): Promise<string | undefined> {
  if (explicit) return resolve(cwd, explicit);
  const explorer = cosmiconfig("as2", { searchPlaces: SEARCH_PLACES, searchStrategy: "global", cache: false });
  try {
    const found = await explorer.search(cwd);
    return found?.filepath;
  } catch (e) {
    const err = e as { filepath?: string; message: string };
    throw problem(err.filepath ?? "the configuration file", `cannot be read: ${err.message.split("\n")[0]}`);
  }
}
