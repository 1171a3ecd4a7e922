/**
 * Where an async MDN may go (issue 12 case 5): Receipt-Delivery-Option is chosen by whoever sends
 * the request, so without a check the receiver POSTs wherever a stranger names (an open POST
 * relay that carries our signature). A partner's `inbound.asyncMdnUrls` lists the allowed URL
 * patterns (`*` any run of characters); by default, the origin of the partner's own `url`.
 *
 * A `mailto:` option (RFC 4130 §7.3; as2-reference, the Receipt-Delivery-Option row; issue 17) is
 * mailed through `smtp`, and only to an address that one of the partner's `mailto:` patterns
 * allows: the default allows none, so a stranger cannot turn the receiver into a mail relay.
 */
import type { As2Config, PartnerConfig } from "../config/schema.js";
import { isMailAddress } from "../config/mail-address.js";

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

export function isMailto(url: string): boolean {
  return /^mailto:/i.test(url);
}

/**
 * The one address of a `mailto:` option (RFC 6068: percent-encoded), or why it is not one we
 * mail to: several recipients, header fields (`?cc=`, `?body=`), or anything outside the narrow
 * address syntax of mail-address.ts.
 */
export function mailtoAddress(url: string): { address: string } | { refused: string } {
  const rest = url.replace(/^mailto:/i, "");
  if (rest.includes("?")) return { refused: `${url} is not allowed: a mailto: receipt address takes no header fields (?...)` };
  let address: string;
  try {
    address = decodeURIComponent(rest);
  } catch {
    return { refused: `${url} is not allowed: not a mailto: URL (bad percent-encoding)` };
  }
  if (address.includes(",")) return { refused: `${url} is not allowed: a receipt goes to one address` };
  if (!isMailAddress(address)) return { refused: `${url} is not allowed: "${address.replace(/[^ -~]/g, "?")}" is not a plain e-mail address (name@host)` };
  return { address };
}

/** Undefined when allowed; else why not. `smtp` is the station's relay (mailto: needs one). */
export function refusedAsyncMdnUrl(partner: PartnerConfig | undefined, url: string, smtp?: As2Config["smtp"]): string | undefined {
  if (!partner) return "the partner is no longer configured";
  if (isMailto(url)) return refusedMailto(partner, url, smtp);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${url} is not a URL`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return undefined; // ftp:, file: and the like are refused as undeliverable
  const allowed = allowedAsyncMdnUrls(partner).filter((p) => !isMailto(p));
  if (allowed.some((p) => patternToRegExp(p).test(parsed.href))) return undefined;
  return `${url} is not allowed for this partner (inbound.asyncMdnUrls: ${allowed.join(", ") || "none"})`;
}

function refusedMailto(partner: PartnerConfig, url: string, smtp: As2Config["smtp"]): string | undefined {
  if (!smtp) return `${url} is not allowed: e-mail receipts need a mail relay, and no smtp is configured (set smtp: host, port, from)`;
  const parsed = mailtoAddress(url);
  if ("refused" in parsed) return parsed.refused;
  const patterns = (partner.inbound.asyncMdnUrls ?? []).filter(isMailto);
  if (patterns.some((p) => patternToRegExp(p).test(`mailto:${parsed.address}`))) return undefined;
  return `${url} is not allowed for this partner (inbound.asyncMdnUrls ${patterns.length ? `has only ${patterns.join(", ")}` : "has no mailto: entry; add e.g. \"mailto:*@their-domain.example\""})`;
}
