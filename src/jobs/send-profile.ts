/**
 * From a partner profile (plus this run's flags, contract §2) to what the core and the transport
 * take: build options and the POST spec. Flags are validated by the same schema as the file, so
 * a bad --sign names the flag and the allowed values.
 */
import {
  As2Error, ErrorCodes, type BuildMessageOptions, type ContentCipher, type DigestAlgorithm,
} from "../core/index.js";
import { configSchema, type As2Config, type PartnerConfig } from "../config/schema.js";
import { ConfigError, normalizeSpelling, problemsOf } from "../config/validate.js";
import { encryptionCertificateAt, tlsPemOptions, type KeyMaterial } from "../config/keys.js";
import type { PostSpec } from "../transport/index.js";
import { proxyFromEnv } from "./env-proxy.js";
import { CONTENT_CIPHERS } from "../core/cms/cipher-names.js";
import { VERSION } from "../version.js";

/** The per-run overrides of contract §2; undefined = keep the profile's value. */
export interface SendOverrides {
  sign?: string | false;
  encrypt?: string | false;
  compress?: string | false;
  mdn?: string;
  mdnMode?: string;
  micAlg?: string;
  subject?: string;
  contentType?: string;
}

const FLAG_OF: Record<string, string> = {
  sign: "--sign", encrypt: "--encrypt", compress: "--compress", "mdn.request": "--mdn", "mdn.mode": "--mdn-mode",
  "mdn.micAlgorithm": "--mic-alg", subject: "--subject", contentType: "--content-type",
};

/** The partner profile with this run's flags applied, validated as a whole (cross-field rules too). */
export function applyOverrides(config: As2Config, partnerName: string, o: SendOverrides): PartnerConfig {
  const partner = config.partners[partnerName];
  if (!partner) {
    const known = Object.keys(config.partners);
    throw new ConfigError("--partner", [{ path: "--partner", message: `no partner "${partnerName}" in the configuration; configured: ${known.length ? known.join(", ") : "(none)"}`, allowed: known }]);
  }
  const merged: Record<string, unknown> = { ...partner, mdn: { ...partner.mdn } };
  const mdn = merged.mdn as Record<string, unknown>;
  // Common spellings (SHA256, AES256_CBC) are read as the names the schema knows (issue 16).
  if (o.sign !== undefined) merged.sign = typeof o.sign === "string" ? normalizeSpelling(o.sign, ["sha1", "sha224", "sha256", "sha384", "sha512"]) ?? o.sign : o.sign;
  if (o.encrypt !== undefined) merged.encrypt = typeof o.encrypt === "string" ? normalizeSpelling(o.encrypt, CONTENT_CIPHERS) ?? o.encrypt : o.encrypt;
  if (o.compress !== undefined) merged.compress = o.compress;
  if (o.subject !== undefined) merged.subject = o.subject;
  if (o.contentType !== undefined) merged.contentType = o.contentType;
  if (o.mdn !== undefined) mdn.request = o.mdn;
  if (o.mdnMode !== undefined) mdn.mode = o.mdnMode;
  if (o.micAlg !== undefined) mdn.micAlgorithm = o.micAlg;
  const result = configSchema.safeParse({ ...config, partners: { ...config.partners, [partnerName]: merged } }, { reportInput: true });
  if (!result.success) {
    const problems = problemsOf(result.error.issues).map((p) => {
      const prefix = `partners.${partnerName}.`;
      const key = p.path.startsWith(prefix) ? p.path.slice(prefix.length) : p.path;
      return FLAG_OF[key] ? { ...p, path: `${FLAG_OF[key]} (${p.path})` } : p;
    });
    throw new ConfigError("the options of this run", problems);
  }
  return result.data.partners[partnerName]!;
}

/** Where the partner should send an async MDN (Receipt-Delivery-Option, RFC 4130 §7.3). */
export function asyncReceiptUrl(config: As2Config, p: PartnerConfig): string | undefined {
  if (p.mdn.request === "none" || p.mdn.mode !== "async") return undefined;
  if (p.mdn.destination === "email") return `mailto:${p.mdn.email}`;
  if (p.mdn.url) return p.mdn.url;
  if (config.station.asyncMdnUrl) return config.station.asyncMdnUrl;
  return p.mdn.email ? `mailto:${p.mdn.email}` : undefined;
}

export type MessageOptions = Omit<BuildMessageOptions, "payload" | "contentType" | "filename" | "messageId">;

/** Build options for one partner: our key signs, the partner's certificate encrypts. */
export function buildOptionsFor(config: As2Config, partnerName: string, p: PartnerConfig, keys: KeyMaterial, now: Date = new Date()): MessageOptions {
  const material = keys.partners[partnerName];
  // CEM (issue 17): with several encryption entries, the one in use now (a new one from the partner's RespondByDate on).
  const encCert = encryptionCertificateAt(material, now);
  if (p.encrypt !== false && !encCert) throw new As2Error(ErrorCodes.BAD_CERTIFICATE, `partner ${partnerName}: encrypting needs the partner's certificate`);
  const micAlgorithm = p.mdn.micAlgorithm as DigestAlgorithm;
  return {
    from: config.station.as2Id,
    to: p.as2Id,
    subject: p.subject,
    sign: p.sign === false ? false : { digest: p.sign, key: keys.station.key, certificate: keys.station.certificate, scheme: p.signatureScheme },
    encrypt: p.encrypt === false ? false : {
      cipher: p.encrypt as ContentCipher,
      recipients: [{ certificate: encCert!, keyEncryption: p.keyEncryption === "rsa-oaep" ? "rsa-oaep" : "rsa", oaepHash: p.oaepHash }],
    },
    compress: p.compress,
    receipt: p.mdn.request === "none" ? false : {
      // RFC 4130 §7.3: the value is not interpreted by AS2 receivers; an address or our AS2 ID.
      notificationTo: config.station.email ?? config.station.as2Id,
      signed: p.mdn.request === "signed",
      micAlgorithms: [p.sign === false ? micAlgorithm : p.sign],
      asyncUrl: asyncReceiptUrl(config, p),
    },
    micAlgorithm,
    userAgent: p.userAgent ?? defaultUserAgent(),
    // Partner quirks (issue 13; README "Partner quirks").
    micNaming: p.quirks.micalgSpelling,
    outerTransferEncoding: p.quirks.outerTransferEncoding,
    quoteFilename: p.quirks.quoteFilename,
    micIncludesHeaders: p.quirks.compressedMicIncludesHeaders,
  };
}

export function defaultUserAgent(): string {
  return `as2kit/${VERSION}`;
}

/**
 * The partner's TLS files for Node's TLS options (PEM only): read through the shared key-file
 * module, so a DER file that is valid works and a wrong one is told in plain words with its key
 * path; every problem at once.
 */
function tlsOptionsFor(partnerName: string, tls: NonNullable<PartnerConfig["tls"]>): NonNullable<PostSpec["tls"]> {
  const pem = tlsPemOptions({
    ca: tls.ca, certificate: tls.clientCertificate, key: tls.clientKey, password: tls.clientKeyPassword,
    at: `partners.${partnerName}.tls`, paths: { ca: "ca", certificate: "clientCertificate", key: "clientKey", password: "clientKeyPassword" },
  });
  return { ca: pem.ca ?? [], cert: pem.cert, key: pem.key, minVersion: tls.minVersion, rejectUnauthorized: tls.rejectUnauthorized };
}

/** The transport spec for a partner: seconds become milliseconds, files are read now. */
export function postSpecFor(partnerName: string, p: PartnerConfig): PostSpec {
  return {
    url: p.url,
    connectTimeoutMs: p.connectTimeout * 1000,
    readTimeoutMs: p.readTimeout * 1000,
    retries: p.retries,
    retryIntervalMs: p.retryInterval * 1000,
    followRedirects: p.followRedirects,
    userAgent: p.userAgent ?? defaultUserAgent(),
    chunked: p.chunked,
    auth: p.username !== undefined ? { username: p.username, password: p.password ?? "" } : undefined,
    tls: p.tls ? tlsOptionsFor(partnerName, p.tls) : undefined,
    // A partner's own proxy wins; else HTTPS_PROXY/HTTP_PROXY/NO_PROXY (env-proxy.ts).
    proxy: p.proxy ?? proxyFromEnv(p.url),
  };
}
