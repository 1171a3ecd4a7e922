/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY (contract §7), used when a partner has no `proxy` of its
 * own: the conventions curl and most tools follow. Lower-case names win over upper-case ones, as
 * in curl; NO_PROXY is a comma list of host names, domain suffixes (".example.com" or
 * "example.com" matches sub.example.com), IP addresses, host:port, or "*". Loopback addresses
 * never go through an environment proxy.
 */
import type { ProxySpec } from "../transport/index.js";

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name.toLowerCase()] ?? env[name];
  return v && v.trim() ? v.trim() : undefined;
}

export function bypassesProxy(url: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return noProxy.split(",").map((e) => e.trim().toLowerCase()).filter(Boolean).some((entry) => {
    if (entry === "*") return true;
    const [h, p] = entry.startsWith("[") ? [entry.slice(1, entry.indexOf("]")), entry.split("]:")[1]] : entry.split(":");
    if (p && p !== port) return false;
    const name = h!.replace(/^\*?\./, "");
    return host === name || host.endsWith(`.${name}`);
  });
}

/** The proxy the environment names for this URL, if any (http:// or https:// proxy URLs, with credentials). */
export function proxyFromEnv(target: string, env: NodeJS.ProcessEnv = process.env): ProxySpec | undefined {
  const url = new URL(target);
  const raw = url.protocol === "https:" ? envValue(env, "HTTPS_PROXY") ?? envValue(env, "ALL_PROXY") : envValue(env, "HTTP_PROXY") ?? envValue(env, "ALL_PROXY");
  // Loopback is never sent through an environment proxy (a proxy cannot reach our loopback; Go does the same).
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host === "::1" || /^127\./.test(host)) return undefined;
  if (!raw || bypassesProxy(url, envValue(env, "NO_PROXY"))) return undefined;
  const p = new URL(raw.includes("://") ? raw : `http://${raw}`);
  const type = p.protocol.replace(/:$/, "") as ProxySpec["type"];
  if (!["http", "https", "socks4", "socks5"].includes(type)) return undefined;
  return {
    type, host: p.hostname.replace(/^\[|\]$/g, ""), port: Number(p.port || (type === "https" ? 443 : type.startsWith("socks") ? 1080 : 80)),
    ...(p.username ? { username: decodeURIComponent(p.username), password: decodeURIComponent(p.password) } : {}),
  };
}
