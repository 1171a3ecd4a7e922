/**
 * What a partner advertises about itself in its requests and answers: AS2-Version and
 * EDIINT-Features (RFC 6017 §3; as2-reference E1). Recorded in job records, bounded in size.
 */
export function advertised(headers: Record<string, string | string[] | undefined>): { as2Version?: string; ediintFeatures?: string[] } {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(", ") : v)?.trim();
  const version = one(headers["as2-version"]);
  const features = one(headers["ediint-features"])?.split(",").map((f) => f.trim()).filter(Boolean);
  return { ...(version ? { as2Version: version.slice(0, 32) } : {}), ...(features?.length ? { ediintFeatures: features.slice(0, 32).map((f) => f.slice(0, 64)) } : {}) };
}

