/**
 * The configuration schema (contract.md §4): the one source of the validator, the TypeScript
 * types (z.infer) and the JSON Schema shipped as as2rc.schema.json for editor completion.
 */
import { z } from "zod";
import { CONTENT_CIPHERS } from "../core/cms/cipher-names.js";
import { DIGEST_ALGORITHMS } from "../core/cms/digests.js";

const SIGNING_DIGESTS = DIGEST_ALGORITHMS.filter((d) => d !== "md5") as ["sha1", "sha224", "sha256", "sha384", "sha512"];

/** AS2 IDs: 1-128 printable ASCII (RFC 4130 §6.2); quoting on the wire is automatic. */
const as2Id = z.string().regex(/^[ -~]{1,128}$/, { message: "must be 1-128 printable ASCII characters" });
const nonEmpty = z.string().min(1, { message: "must not be empty" });
const httpUrl = z.string().regex(/^https?:\/\/[^\s]+$/i, { message: "must be an http:// or https:// URL" });
/** Seconds; 0 is only allowed where it is documented as "wait forever". */
const seconds = z.number().min(0);
const positiveInt = z.number().int().positive();

const keyPem = z.strictObject({
  pem: nonEmpty.describe("private key file (PEM or DER; PKCS#1, PKCS#8, encrypted PKCS#8)"),
  certificate: nonEmpty.describe("certificate file (PEM, DER or certs-only PKCS#7)"),
  password: z.string().optional().describe("key password; use ${ENV_VAR}"),
});
const keyPkcs12 = z.strictObject({
  pkcs12: nonEmpty.describe("PKCS#12 file (.p12/.pfx)"),
  password: z.string().optional(),
  alias: z.string().optional().describe("friendlyName of the key when the file holds several"),
});
export const keySourceSchema = z.union([keyPem, keyPkcs12]);

const notifySchema = z.strictObject({
  url: httpUrl,
  method: z.enum(["POST", "PUT"]).default("POST"),
  headers: z.record(z.string(), z.string()).default({}),
});

const tlsClientSchema = z.strictObject({
  clientCertificate: nonEmpty.optional(),
  clientKey: nonEmpty.optional(),
  clientKeyPassword: z.string().optional(),
  ca: z.array(nonEmpty).default([]),
  minVersion: z.enum(["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]).default("TLSv1.2"),
  rejectUnauthorized: z.boolean().default(true),
});

const proxySchema = z.strictObject({
  type: z.enum(["http", "https", "socks4", "socks5"]),
  host: nonEmpty,
  alternateHost: nonEmpty.optional().describe("used when the primary proxy does not answer"),
  port: z.number().int().min(1).max(65535),
  username: z.string().optional(),
  password: z.string().optional(),
});

const mdnSchema = z.strictObject({
  request: z.enum(["none", "signed", "unsigned"]).default("signed"),
  micAlgorithm: z.enum(DIGEST_ALGORITHMS as unknown as ["md5", ...typeof SIGNING_DIGESTS]).default("sha256"),
  mode: z.enum(["sync", "async"]).default("sync"),
  destination: z.enum(["joblog", "file", "email", "url", "discard"]).default("joblog"),
  file: nonEmpty.optional(),
  whenExists: z.enum(["rename", "append", "overwrite", "skip", "error"]).default("rename"),
  email: nonEmpty.optional(),
  url: httpUrl.optional(),
  transferEncoding: z.enum(["base64", "quoted-printable", "7bit", "8bit", "binary"]).default("binary"),
});

const inboundSchema = z.strictObject({
  inbox: nonEmpty.optional(),
  users: z.array(z.strictObject({ username: nonEmpty, password: z.string() })).default([]),
  requireSigned: z.boolean().default(false),
  requireEncrypted: z.boolean().default(false),
  requireClientCertificate: z.boolean().default(false).describe("only accept this partner over HTTPS with a client certificate the receive.tls.ca trusts"),
  whenExists: z.enum(["rename", "append", "overwrite", "skip", "error"]).default("rename"),
  signerCertificateValidity: z.enum(["warn", "enforce"]).default("warn")
    .describe("a signer certificate not valid at the signing time (else the Date header, else now): a warning, or authentication-failed"),
  asyncMdnUrls: z.array(z.string().regex(/^(https?|\*):\/\/\S+$/i, { message: "must be an http(s):// URL pattern (* matches any run of characters)" })).optional()
    .describe("URLs (patterns with *) an async MDN to this partner may be POSTed to; default: the origin of the partner's url"),
});

/**
 * Per-partner interop settings (issue 13), each named after what it does; the defaults follow the
 * RFCs. README "Partner quirks" lists the products each one is for.
 */
const quirksSchema = z.strictObject({
  micalgSpelling: z.enum(["rfc5751", "rfc3851"]).default("rfc5751")
    .describe("micalg and signed-receipt-micalg names: sha-256 (RFC 5751) or sha256/sha1 (RFC 3851, older products)"),
  outerTransferEncoding: z.boolean().default(false).describe("send Content-Transfer-Encoding: binary among the HTTP headers"),
  quoteFilename: z.boolean().default(false).describe("always quote the Content-Disposition file name"),
  compressedMicIncludesHeaders: z.boolean().default(true)
    .describe("unsigned, unencrypted, compressed messages: the MIC covers the inflated entity's headers (RFC 5402 §4.3) or not (OpenAS2)"),
  unsignedMdnMic: z.enum(["optional", "required"]).default("optional")
    .describe("an unsigned MDN without Received-Content-MIC: a warning (as2-reference M6), or a failed file"),
  rc2WithoutVersion: z.enum(["rfc2268", "key-length"]).default("rfc2268")
    .describe("RC2 parameters without rc2ParameterVersion: 32 effective bits (RFC 2268), or the content key's length (pyas2lib)"),
  signedMdnWithoutMic: z.enum(["fail", "warn"]).default("fail")
    .describe("a signed MDN without Received-Content-MIC (pyas2lib, for unsigned messages): a failed file (RFC 4130 §7.4.3), or a warning"),
});

export const PRESETS = ["legacy", "modern"] as const;

export const partnerSchema = z.strictObject({
  as2Id,
  preset: z.enum(PRESETS).optional().describe("defaults for the keys not set: legacy (RFC 4130 as most installed products do it) or modern (sha-256, strict MIC and signer rules); README \"Presets\""),
  type: z.enum(["production", "test"]).default("production"),
  url: httpUrl,
  certificate: nonEmpty.optional().describe("encryption and signature certificate"),
  encryptionCertificate: nonEmpty.optional(),
  signatureCertificates: z.array(nonEmpty).optional().describe("several during a certificate rollover"),
  username: z.string().optional(),
  password: z.string().optional(),
  connectTimeout: seconds.default(60),
  readTimeout: seconds.default(0).describe("seconds; 0 = wait forever"),
  retries: z.number().int().min(0).default(0),
  retryInterval: seconds.default(0),
  followRedirects: z.boolean().default(false),
  userAgent: z.string().optional(),
  chunked: z.boolean().default(false),
  keepAlive: z.boolean().default(true).describe("one connection (TCP, proxy tunnel, TLS) for all files of a send, HTTP/1.1 keep-alive; false opens one per message and closes it"),
  tls: tlsClientSchema.optional(),
  proxy: proxySchema.optional(),
  sign: z.union([z.literal(false), z.enum(SIGNING_DIGESTS)]).default("sha256"),
  signatureScheme: z.enum(["rsa", "rsassa-pss"]).default("rsa"),
  encrypt: z.union([z.literal(false), z.enum(CONTENT_CIPHERS as unknown as [string, ...string[]])]).default("aes256-cbc"),
  keyEncryption: z.enum(["rsa", "rsa-oaep"]).default("rsa"),
  oaepHash: z.enum(["sha1", "sha256", "sha384", "sha512"]).default("sha256"),
  compress: z.union([z.literal(false), z.enum(["before-signing", "after-signing"])]).default(false),
  subject: z.string().optional(),
  contentType: z.string().optional(),
  mdn: mdnSchema.default(() => mdnSchema.parse({})),
  inbound: inboundSchema.default(() => inboundSchema.parse({})),
  quirks: quirksSchema.default(() => quirksSchema.parse({})),
  deleteSourceFiles: z.boolean().default(false),
  notify: notifySchema.optional(),
});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional(),
    dataDir: nonEmpty.default("./as2-data"),
    store: z
      .strictObject({ kind: z.literal("files").describe("local JSON files under dataDir (contract §5)") })
      .default({ kind: "files" })
      .describe("where job records, the received-message ledger and the MDN queue live"),
    station: z.strictObject({
      as2Id,
      email: z.string().optional().describe("Disposition-Notification-To"),
      key: keySourceSchema,
      previousKeys: z.array(keySourceSchema).default([]).describe("older keys still accepted for decryption (rollover)"),
      asyncMdnUrl: httpUrl.optional(),
    }),
    receive: z
      .strictObject({
        host: nonEmpty.default("0.0.0.0"),
        port: z.number().int().min(0).max(65535).default(4080),
        path: z.string().regex(/^\//, { message: "must start with /" }).default("/as2"),
        tls: z.strictObject({
          key: nonEmpty, certificate: nonEmpty, password: z.string().optional(),
          ca: z.array(nonEmpty).default([]), requestClientCertificate: z.boolean().default(false),
        }).optional(),
        maxMessageBytes: positiveInt.default(10 * 1024 * 1024 * 1024),
        maxHeaderBytes: positiveInt.default(64 * 1024),
        maxInflatedBytes: positiveInt.default(10 * 1024 * 1024 * 1024),
        requestTimeout: z.number().positive().default(600),
        maxConnections: positiveInt.default(1000).describe("connections beyond this get 503 with Retry-After"),
        headersTimeout: z.number().positive().default(30).describe("seconds a client has to send all its headers"),
        maxHeaderCount: positiveInt.default(200).describe("header lines per request; more get 431"),
        minFreeBytes: z.number().int().min(0).default(1024 ** 3).describe("free space kept on the inbox's file system; 0 keeps none (explicitly)"),
      })
      .default(() => ({
        host: "0.0.0.0", port: 4080, path: "/as2", maxMessageBytes: 10 * 1024 ** 3, maxHeaderBytes: 64 * 1024, maxInflatedBytes: 10 * 1024 ** 3, requestTimeout: 600,
        maxConnections: 1000, headersTimeout: 30, maxHeaderCount: 200, minFreeBytes: 1024 ** 3,
      })),
    notify: notifySchema.optional(),
    partners: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: "partner names use letters, digits, '.', '_' and '-'" }), partnerSchema).default({}),
  })
  .superRefine((c, ctx) => {
    for (const [name, p] of Object.entries(c.partners)) {
      const at = (...path: (string | number)[]) => ["partners", name, ...path];
      if (p.encrypt !== false && !p.certificate && !p.encryptionCertificate) {
        ctx.addIssue({ code: "custom", path: at("encrypt"), message: `encrypting with ${p.encrypt} needs the partner's certificate: set certificate or encryptionCertificate, or encrypt: false` });
      }
      if ((p.mdn.request === "signed" || p.inbound.requireSigned) && !p.certificate && !p.signatureCertificates?.length) {
        ctx.addIssue({ code: "custom", path: at(p.mdn.request === "signed" ? "mdn" : "inbound", p.mdn.request === "signed" ? "request" : "requireSigned"), message: "verifying the partner's signatures needs certificate or signatureCertificates" });
      }
      if (p.mdn.destination === "file" && !p.mdn.file) ctx.addIssue({ code: "custom", path: at("mdn", "file"), message: 'required when mdn.destination is "file"' });
      if ((p.mdn.destination === "email" || p.mdn.destination === "url") && p.mdn.mode !== "async" && p.mdn.request !== "none") {
        ctx.addIssue({ code: "custom", path: at("mdn", "mode"), message: `mdn.destination "${p.mdn.destination}" means the MDN comes asynchronously: set mdn.mode to "async"` });
      }
      if (p.mdn.destination === "email" && !p.mdn.email) ctx.addIssue({ code: "custom", path: at("mdn", "email"), message: 'required when mdn.destination is "email"' });
      if (p.mdn.request !== "none" && p.mdn.mode === "async" && !p.mdn.url && !p.mdn.email && !c.station.asyncMdnUrl) {
        ctx.addIssue({ code: "custom", path: at("mdn", "url"), message: "an async MDN needs mdn.url, mdn.email or station.asyncMdnUrl" });
      }
      if ((p.username === undefined) !== (p.password === undefined)) ctx.addIssue({ code: "custom", path: at(p.username === undefined ? "username" : "password"), message: "username and password go together" });
      if (p.tls && (p.tls.clientCertificate === undefined) !== (p.tls.clientKey === undefined)) ctx.addIssue({ code: "custom", path: at("tls", p.tls.clientKey === undefined ? "clientKey" : "clientCertificate"), message: "clientCertificate and clientKey go together" });
    }
  });

export type As2Config = z.infer<typeof configSchema>;
export type PartnerConfig = z.infer<typeof partnerSchema>;
export type KeySource = z.infer<typeof keySourceSchema>;

/** The JSON Schema for editors (as2rc.schema.json), generated from the same schema. */
export function configJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }), title: "as2kit configuration (.as2rc)" };
}

/** The partner whose AS2 ID this is (AS2 IDs compare exactly, RFC 4130 §6.2). */
export function partnerByAs2Id(config: As2Config, id: string): [string, PartnerConfig] | undefined {
  return Object.entries(config.partners).find(([, p]) => p.as2Id === id);
}
