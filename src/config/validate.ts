/**
 * Pure configuration validation (architecture.md §3.6): `${ENV}` expansion, then the schema;
 * every problem is reported at once with its dotted key path, the value found and what is
 * allowed. Secrets are never echoed back.
 */
import type { z } from "zod";
import { configSchema, type As2Config, type PRESETS } from "./schema.js";

export interface ConfigProblem {
  /** Dotted key path, e.g. partners.acme.tls.ca[0]. */
  path: string;
  message: string;
  /** Allowed values, when the key takes one of a list. */
  allowed?: string[];
}

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
  const s = JSON.stringify(value);
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

function problemOf(issue: Issue): ConfigProblem {
  const path = formatPath(issue.path);
  const input = "input" in issue ? issue.input : undefined;
  const found = input === undefined ? "" : `${show(input, issue.path)}: `;
  const allowed = allowedValues(issue);
  if (issue.code === "unrecognized_keys") {
    return { path, message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")} (check the spelling; see as2rc.schema.json)` };
  }
  // Cross-field rules: the message says what is wrong; the input is the whole object.
  if (issue.code === "custom") return { path, message: issue.message };
  if (issue.code === "invalid_type" && input === undefined) return { path, message: `is required (${issue.expected})` };
  // A bad record key (a partner name): the reason is in the nested issue.
  if (issue.code === "invalid_key") return { path, message: `${found}${issue.issues.map((i) => i.message).join("; ")}` };
  if (allowed.length) {
    let message = `${found}not allowed; allowed: ${allowed.join(", ")}`;
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
  const expanded = applyPresets(expandEnv(raw, env, problems));
  const r = configSchema.safeParse(expanded, { reportInput: true });
  if (!r.success) problems.push(...r.error.issues.map((i) => problemOf(i)));
  problems.sort((a, b) => a.path.localeCompare(b.path));
  return problems.length ? { problems } : { config: r.data, problems };
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}`).join("\n");
}

export class ConfigError extends Error {
  readonly code = "AS2_ERR_CONFIG";
  readonly problems: ConfigProblem[];
  constructor(source: string, problems: ConfigProblem[]) {
    super(`invalid configuration in ${source} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${formatProblems(problems)}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}
