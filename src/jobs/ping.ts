/**
 * `as2 ping --partner <name>` (issue 16): the partner's transport settings, resolved exactly as
 * `as2 send` resolves them (postSpecFor), probed step by step by the transport (probe.ts).
 */
import type { As2Config } from "../config/schema.js";
import { probeConnection, type ProbeStep } from "../transport/index.js";
import { EXPIRY_WARNING_DAYS } from "./cert-expiry.js";
import { bypassesProxy } from "./env-proxy.js";
import { postSpecFor } from "./send-profile.js";

export interface PingReport {
  /** No step failed (warnings allowed). */
  ok: boolean;
  partner: string;
  url: string;
  steps: ProbeStep[];
}

export interface PingOptions {
  /** Each step's time limit. */
  timeoutMs: number;
  now: Date;
  /** For saying where the proxy came from (HTTPS_PROXY / HTTP_PROXY / NO_PROXY); postSpecFor reads process.env itself. */
  env: Record<string, string | undefined>;
  onStep?(step: ProbeStep): void;
  signal?: AbortSignal;
}

/** A URL without its user and password, for showing. */
export function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    if (!url.username && !url.password) return u;
    url.username = "";
    url.password = "";
    return url.href;
  } catch {
    return u;
  }
}

/** The environment variable that names a proxy for this URL (lower case first, as curl and env-proxy.ts read them). */
function proxyVariable(url: URL, env: Record<string, string | undefined>): string | undefined {
  const names = url.protocol === "https:" ? ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] : ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
  return names.find((n) => env[n]?.trim());
}

/**
 * Where the proxy comes from (the partner's `proxy`, else HTTPS_PROXY / HTTP_PROXY: env-proxy.ts,
 * as `as2 send` takes it), or why an environment proxy is not used for this partner.
 */
export function proxyOrigin(partnerName: string, partnerUrl: string, hasOwnProxy: boolean, usedProxy: boolean, env: Record<string, string | undefined>): { source?: string; note?: string; credentials?: string } {
  const at = `partners.${partnerName}.proxy`;
  if (hasOwnProxy) return { source: at, credentials: `${at}.username/password` };
  const url = new URL(partnerUrl);
  const name = proxyVariable(url, env);
  if (usedProxy) return { source: name ? `from ${name}` : "from the environment", credentials: `the user and password in ${name ?? "the proxy variable"}` };
  if (!name) return {};
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host === "::1" || /^127\./.test(host)) return { note: `${name} is set, but loopback addresses never go through an environment proxy` };
  if (bypassesProxy(url, env.no_proxy ?? env.NO_PROXY)) return { note: `${name} is set, and NO_PROXY excludes ${url.hostname}` };
  return { note: `${name} is set (${redactUrl(env[name]!)}), but names no proxy as2 can use` };
}

export async function pingPartner(config: As2Config, partnerName: string, o: PingOptions): Promise<PingReport> {
  const partner = config.partners[partnerName];
  if (!partner) throw new Error(`no partner "${partnerName}"`);
  // The same spec `as2 send` uses: the partner's proxy, else the environment's (env-proxy.ts).
  const spec = postSpecFor(partnerName, partner);
  const at = `partners.${partnerName}`;
  const origin = proxyOrigin(partnerName, spec.url, !!partner.proxy, !!spec.proxy, o.env);
  const result = await probeConnection({
    spec,
    stepTimeoutMs: o.timeoutMs,
    now: o.now,
    expiryWarningDays: EXPIRY_WARNING_DAYS,
    proxySource: origin.source,
    proxyNote: origin.note,
    labels: {
      ca: `${at}.tls.ca`, clientCertificate: `${at}.tls.clientCertificate`, rejectUnauthorized: `${at}.tls.rejectUnauthorized`,
      credentials: `${at}.username/password`, proxyCredentials: origin.credentials ?? `${at}.proxy.username/password`, followRedirects: `${at}.followRedirects`,
      timeout: "--timeout",
    },
    onStep: o.onStep,
    signal: o.signal,
  });
  return { ok: result.ok, partner: partnerName, url: redactUrl(spec.url), steps: result.steps };
}
