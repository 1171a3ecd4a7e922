/**
 * Pure configuration validation (architecture.md §3.6): `${ENV}` expansion, then the schema;
 * every problem is reported at once with its dotted key path, the value found and what is
 * allowed. Secrets are never echoed back.
 */
import type { z } from "zod";
import { configSchema, type As2Config, type PRESETS } from "./schema.js";
import { CONTENT_CIPHERS } from "../core/cms/cipher-names.js";
import type { ConfigProblem } from "./config-error.js";

export { ConfigError, formatProblems, type ConfigProblem } from "./config-error.js";

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || "(top level)";
}

const SECRET_KEY = /password|secret|token/i;

function isSecretPath(path: ReadonlyArray<PropertyKey>): boolean {
  return path.some((p) => typeof p === "string" && SECRET_KEY.test(p));
}

function show(value: unknown, path: ReadonlyArray<PropertyKey>): string {
  if (isSecretPath(path)) return "(hidden)";
  // A connection URL (store.url) may carry a password: shown without it.
  const s = JSON.stringify(value)?.replace(/(\/\/[^:/@"]*:)[^@"]*@/g, "$1***@");
  return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Replaces ${NAME} in every string; an unset variable is a problem naming it and the key path. */
export function expandEnv(raw: unknown, env: Record<string, string | undefined>, problems: ConfigProblem[], path: PropertyKey[] = []): unknown {
  if (typeof raw === "string") {
    return raw.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push({ path: formatPath(path), message: `environment variable ${name} is not set` });
        return "";
      }
      return v;
    });
  }
  if (Array.isArray(raw)) return raw.map((v, i) => expandEnv(v, env, problems, [...path, i]));
  if (raw && typeof raw === "object") {
    return Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, expandEnv(v, env, problems, [...path, k])]));
  }
  return raw;
}

type Issue = z.core.$ZodIssue;

/** All values an issue (and, for unions, its branches) would accept. */
function allowedValues(issue: Issue): string[] {
  if (issue.code === "invalid_value") return issue.values.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
  if (issue.code === "invalid_union") return [...new Set(issue.errors.flat().flatMap((i) => allowedValues(i as Issue)))];
  return [];
}

/** The keys the schema allows at a path (for "did you mean"): walks the schema's shapes. */
function knownKeysAt(path: ReadonlyArray<PropertyKey>): string[] {
  let node: unknown = configSchema;
  const unwrap = (n: unknown): unknown => {
    let cur = n as { def?: { innerType?: unknown; in?: unknown; schema?: unknown; type?: string; valueType?: unknown; options?: unknown[] } } | undefined;
    for (let i = 0; i < 10 && cur?.def; i++) {
      const next = cur.def.innerType ?? cur.def.in ?? cur.def.schema;
      if (!next) break;
      cur = next as typeof cur;
    }
    return cur;
  };
  for (const key of path) {
    node = unwrap(node);
    const n = node as { shape?: Record<string, unknown>; def?: { type?: string; valueType?: unknown; element?: unknown } };
    if (n.def?.type === "record") node = n.def.valueType;
    else if (n.def?.type === "array") node = n.def.element;
    else if (n.shape && typeof key === "string") node = n.shape[key];
    else return [];
  }
  const last = unwrap(node) as { shape?: Record<string, unknown> };
  return last?.shape ? Object.keys(last.shape) : [];
}

function problemOf(issue: Issue): ConfigProblem {
  const path = formatPath(issue.path);
  const input = "input" in issue ? issue.input : undefined;
  const found = input === undefined ? "" : `${show(input, issue.path)}: `;
  const allowed = allowedValues(issue);
  if (issue.code === "unrecognized_keys") {
    const known = knownKeysAt(issue.path);
    const hints = issue.keys.map((k) => { const m = didYouMean(k, known); return m ? `"${k}" (did you mean "${m}"?)` : `"${k}"`; });
    return { path, message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${hints.join(", ")} (see as2rc.schema.json)` };
  }
  // Cross-field rules: the message says what is wrong; the input is the whole object.
  if (issue.code === "custom") return { path, message: issue.message };
  if (issue.code === "invalid_type" && input === undefined) return { path, message: `is required (${issue.expected})` };
  // A bad record key (a partner name): the reason is in the nested issue.
  if (issue.code === "invalid_key") return { path, message: `${found}${issue.issues.map((i) => i.message).join("; ")}` };
  if (allowed.length) {
    const guess = typeof input === "string" ? didYouMean(input, allowed) : undefined;
    let message = `${found}not allowed${guess ? ` (did you mean ${guess}?)` : ""}; allowed: ${allowed.join(", ")}`;
    if (issue.path[issue.path.length - 1] === "sign" && input === "md5") message = `${found}md5 signatures are accepted for verification only, never created; allowed: ${allowed.join(", ")}`;
    return { path, message, allowed };
  }
  return { path, message: `${found}${issue.message.replace(/^Invalid input: /, "")}` };
}

/** Schema issues as problems, sorted by path. */
export function problemsOf(issues: readonly Issue[]): ConfigProblem[] {
  return issues.map((i) => problemOf(i)).sort((a, b) => a.path.localeCompare(b.path));
}

export interface ValidationResult {
  config?: As2Config;
  problems: ConfigProblem[];
  /** Spellings accepted and rewritten (`SHA256` -> `sha256`), each with its key path. */
  notes?: string[];
}

/** Edit distance, for "did you mean" (small inputs only: keys and enum values). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate within a third of the word's length (at least 2 edits), if any. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestD) { best = c; bestD = dist; }
  }
  return best;
}

/** Compact form for comparing algorithm spellings: SHA-256, sha_256, Sha256 -> sha256; AES256_CBC -> aes256cbc. */
const compact = (v: string) => v.toLowerCase().replace(/[^a-z0-9]/g, "");

/**
 * Common spellings of algorithm names are accepted and rewritten, with a note (issue 16): users
 * copy names from other products' screens (SHA256, sha-256, AES256_CBC, 3DES).
 */
export function normalizeSpelling(value: string, allowed: readonly string[]): string | undefined {
  if (allowed.includes(value)) return undefined;
  const c = compact(value);
  const aliases: Record<string, string> = { desede3cbc: "3des", tripledes: "3des", des3: "3des", desede: "3des", tdes: "3des" };
  const hit = allowed.find((a) => compact(a) === c) ?? (aliases[c] && allowed.includes(aliases[c]!) ? aliases[c] : undefined);
  return hit;
}

const ALGORITHM_KEYS: Array<{ path: string[]; allowed: readonly string[] }> = [
  { path: ["sign"], allowed: ["sha1", "sha224", "sha256", "sha384", "sha512"] },
  { path: ["encrypt"], allowed: CONTENT_CIPHERS },
  { path: ["mdn", "micAlgorithm"], allowed: ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"] },
];

function normalizeSpellings(raw: unknown, notes: string[]): unknown {
  if (!isObject(raw) || !isObject(raw.partners)) return raw;
  for (const [name, p] of Object.entries(raw.partners)) {
    for (const { path, allowed } of ALGORITHM_KEYS) {
      let holder: unknown = p;
      for (const k of path.slice(0, -1)) holder = isObject(holder) ? holder[k] : undefined;
      const key = path[path.length - 1]!;
      if (!isObject(holder) || typeof holder[key] !== "string") continue;
      const fixed = normalizeSpelling(holder[key] as string, allowed);
      if (fixed) {
        notes.push(`partners.${name}.${path.join(".")}: "${holder[key] as string}" read as "${fixed}"`);
        holder[key] = fixed;
      }
    }
  }
  return raw;
}

/** Validates a raw configuration object. Never throws for bad input: problems are data. */
/**
 * Presets (issue 13): defaults for the partner keys its configuration does not set. `legacy` is
 * RFC 4130 as most installed products do it (sha1, 3des, RFC 3851 micalg names, signed MDNs
 * without a MIC tolerated); `modern` follows draft-petta-4130bis (AS2 1.3): sha-256, AES, and
 * the MDN rules it tightens (a MIC in every receipt, signer certificates valid at signing).
 */
export const PRESET_DEFAULTS: Record<(typeof PRESETS)[number], Record<string, unknown>> = {
  legacy: {
    sign: "sha1", encrypt: "3des", mdn: { micAlgorithm: "sha1" },
    quirks: { micalgSpelling: "rfc3851", signedMdnWithoutMic: "warn", unsignedMdnMic: "optional" },
  },
  modern: {
    sign: "sha256", encrypt: "aes256-cbc", mdn: { micAlgorithm: "sha256", request: "signed" },
    quirks: { micalgSpelling: "rfc5751", unsignedMdnMic: "required", signedMdnWithoutMic: "fail" },
    inbound: { signerCertificateValidity: "enforce" },
  },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

/** The user's values over the preset's (objects merged key by key). */
function underlay(user: Record<string, unknown>, preset: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...preset, ...user };
  for (const [k, v] of Object.entries(preset)) if (isObject(v) && isObject(user[k])) out[k] = underlay(user[k] as Record<string, unknown>, v);
  return out;
}

function applyPresets(raw: unknown): unknown {
  if (!isObject(raw) || !isObject(raw.partners)) return raw;
  const partners = Object.fromEntries(Object.entries(raw.partners).map(([name, p]) => {
    const preset = isObject(p) && typeof p.preset === "string" ? PRESET_DEFAULTS[p.preset as keyof typeof PRESET_DEFAULTS] : undefined;
    return [name, preset ? underlay(p as Record<string, unknown>, preset) : p];
  }));
  return { ...raw, partners };
}

export function validateConfig(raw: unknown, env: Record<string, string | undefined> = {}): ValidationResult {
  const problems: ConfigProblem[] = [];
  const notes: string[] = [];
  const expanded = normalizeSpellings(applyPresets(expandEnv(raw, env, problems)), notes);
  const r = configSchema.safeParse(expanded, { reportInput: true });
  if (!r.success) problems.push(...r.error.issues.map((i) => problemOf(i)));
  problems.sort((a, b) => a.path.localeCompare(b.path));
  return problems.length ? { problems, notes } : { config: r.data, problems, notes };
}

