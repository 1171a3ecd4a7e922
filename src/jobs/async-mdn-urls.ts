/**
 * Where an async MDN may go (issue 12 case 5): Receipt-Delivery-Option is chosen by whoever sends
 * the request, so without a check the receiver POSTs wherever a stranger names (an open POST
 * relay that carries our signature). A partner's `inbound.asyncMdnUrls` lists the allowed URL
 * patterns (`*` any run of characters); by default, the origin of the partner's own `url`.
 */
import type { PartnerConfig } from "../config/schema.js";

function patternToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.split("*").map((p) => p.replace(/[\\^$.|?+()[\]{}]/g, "\\$&")).join(".*")}$`, "i");
}

export function allowedAsyncMdnUrls(partner: PartnerConfig): string[] {
  if (partner.inbound.asyncMdnUrls) return partner.inbound.asyncMdnUrls;
  try {
    return [`${new URL(partner.url).origin}/*`];
  } catch {
    return [];
  }
}

/** Undefined when allowed; else why not. */
export function refusedAsyncMdnUrl(partner: PartnerConfig | undefined, url: string): string | undefined {
  if (!partner) return "the partner is no longer configured";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${url} is not a URL`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return undefined; // mailto: and the like are refused as undeliverable
  const allowed = allowedAsyncMdnUrls(partner);
  if (allowed.some((p) => patternToRegExp(p).test(parsed.href))) return undefined;
  return `${url} is not allowed for this partner (inbound.asyncMdnUrls: ${allowed.join(", ") || "none"})`;
}
