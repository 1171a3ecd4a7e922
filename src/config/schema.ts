/**
 * The configuration schema (contract.md §4): the one source of the validator, the TypeScript
 * types (z.infer) and the JSON Schema shipped as as2rc.schema.json for editor completion.
 */
import { z } from "zod";
import { CONTENT_CIPHERS } from "../core/cms/cipher-names.js";
import { DIGEST_ALGORITHMS } from "../core/cms/digests.js";
import { DURATION_FORMS, parseDuration } from "./duration.js";
import { parseFromAddress } from "./mail-address.js";

const SIGNING_DIGESTS = DIGEST_ALGORITHMS.filter((d) => d !== "md5") as ["sha1", "sha224", "sha256", "sha384", "sha512"];

/** AS2 IDs: 1-128 printable ASCII (RFC 4130 §6.2); quoting on the wire is automatic. */
const as2Id = z.string().regex(/^[ -~]{1,128}$/, { message: "must be 1-128 printable ASCII characters" });
const nonEmpty = z.string().min(1, { message: "must not be empty" });
const httpUrl = z.string().regex(/^https?:\/\/[^\s]+$/i, { message: "must be an http:// or https:// URL" });
/** Seconds; 0 is only allowed where it is documented as "wait forever". */
const seconds = z.number().min(0);
const positiveInt = z.number().int().positive();

const KEY_PASSWORD = "password of an encrypted private key (pem form) or of the PKCS#12 file (pkcs12 form); write \"${MYCO_KEY_PASS}\" rather than the secret itself.; a missing or wrong one is reported in plain words, naming the key and the file";
const keyPem = z.strictObject({
  pem: nonEmpty.describe("private key file, relative to the configuration file's folder: PEM or DER, PKCS#1, PKCS#8 or encrypted PKCS#8; e.g. \"keys/myco.key\""),
  certificate: nonEmpty.describe("the key's certificate file (PEM, DER or certs-only PKCS#7); its public key must match the private key (as2 check tests the pair); e.g. \"keys/myco.crt\""),
  password: z.string().optional().describe(KEY_PASSWORD),
});
const keyPkcs12 = z.strictObject({
  pkcs12: nonEmpty.describe("PKCS#12 file (.p12/.pfx) holding the private key and its certificate, relative to the configuration file's folder; e.g. \"keys/myco.p12\""),
  password: z.string().optional().describe(KEY_PASSWORD),
  alias: z.string().optional().describe("friendlyName of the key to use; required when the PKCS#12 file holds several keys"),
});
export const keySourceSchema = z.union([keyPem, keyPkcs12]);

const notifySchema = z.strictObject({
  url: httpUrl.describe("where each job reports Started, Completed and Failed as JSON { jobId, status, message } (contract §6); e.g. \"https://ci.example/hooks/as2\""),
  method: z.enum(["POST", "PUT"]).default("POST").describe("HTTP method of the notification request"),
  headers: z.record(z.string(), z.string()).default({}).describe("extra request headers, e.g. { \"Authorization\": \"Bearer ${HOOK_TOKEN}\" }; Content-Type is always application/json"),
});

const tlsClientSchema = z.strictObject({
  clientCertificate: nonEmpty.optional().describe("TLS client certificate file (PEM) shown to the partner's HTTPS server (the connector's Client Certificate Alias); set together with clientKey"),
  clientKey: nonEmpty.optional().describe("private key file (PEM) of clientCertificate; set together with it"),
  clientKeyPassword: z.string().optional().describe("passphrase of an encrypted clientKey; use ${ENV_VAR}"),
  ca: z.array(nonEmpty).default([]).describe("CA certificate files (PEM) trusted for the partner's HTTPS server (and an https proxy) instead of Node's built-in list; empty: the built-in list (the connector's Trust Store)"),
  minVersion: z.enum(["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]).default("TLSv1.2").describe("oldest TLS version accepted (the connector's SSL Context Protocol)"),
  rejectUnauthorized: z.boolean().default(true).describe("false accepts a server certificate that does not verify (self-signed, wrong name, expired): for tests only, it gives up server authentication"),
});

const proxySchema = z.strictObject({
  type: z.enum(["http", "https", "socks4", "socks5"]).describe("http: HTTP CONNECT; https: HTTP CONNECT to a proxy reached over TLS (checked with tls.ca); socks4 or socks5"),
  host: nonEmpty.describe("proxy host name or IP address; e.g. \"proxy.myco\""),
  alternateHost: nonEmpty.optional().describe("second proxy host (same port), tried when host is unreachable"),
  port: z.number().int().min(1).max(65535).describe("proxy port; e.g. 8080"),
  username: z.string().optional().describe("proxy user name (HTTP Proxy-Authorization basic, or SOCKS user)"),
  password: z.string().optional().describe("proxy password; use ${ENV_VAR}"),
});

const smtpSchema = z.strictObject({
  host: nonEmpty.describe("the SMTP relay's host name or IP address; e.g. \"smtp.myco.example\""),
  port: z.number().int().min(1).max(65535).default(587).describe("the relay's port: 587 (submission, STARTTLS) or 465 (with secure: true); 25 for a relay inside the network"),
  secure: z.boolean().default(false).describe("true: TLS from the first byte (implicit TLS, port 465); false: a plain connection upgraded with STARTTLS when the relay offers it (required when username is set: the password is never sent in the clear)"),
  username: z.string().optional().describe("user name for SMTP AUTH; set together with password; unset: no authentication"),
  password: z.string().optional().describe("password for SMTP AUTH; write \"${SMTP_PASS}\" rather than the secret itself; never logged or recorded"),
  from: z.string().refine((v) => parseFromAddress(v) !== undefined, { message: "must be an e-mail address, e.g. \"as2@myco.example\" or \"MYCO AS2 <as2@myco.example>\"" })
    .describe("sender of the MDN mails (From: and MAIL FROM); e.g. \"as2@myco.example\""),
  ca: z.array(nonEmpty).default([]).describe("CA certificate files (PEM) trusted for the relay's TLS certificate instead of Node's built-in list (a relay with a private CA); relative to the configuration file's folder"),
}).superRefine((s, ctx) => {
  if ((s.username === undefined) !== (s.password === undefined)) ctx.addIssue({ code: "custom", path: [s.username === undefined ? "username" : "password"], message: "username and password go together" });
});

const mdnSchema = z.strictObject({
  request: z.enum(["none", "signed", "unsigned"]).default("signed")
    .describe("the receipt asked for (Disposition-Notification-Options, RFC 4130 §7.3): a signed MDN (needs the partner's certificate), an unsigned one, or none (the file counts as sent on HTTP 2xx); flag --mdn"),
  micAlgorithm: z.enum(DIGEST_ALGORITHMS as unknown as ["md5", ...typeof SIGNING_DIGESTS]).default("sha256")
    .describe("digest of the MIC the MDN must return when the message is not signed (signed messages use sign's digest); flag --mic-alg"),
  mode: z.enum(["sync", "async"]).default("sync")
    .describe("sync: the MDN comes back on the same HTTP response; async: the partner POSTs it later to mdn.url, station.asyncMdnUrl or mails it to mdn.email (Receipt-Delivery-Option), and the job waits in AWAITING_MDN; flag --mdn-mode"),
  destination: z.enum(["joblog", "file", "email", "url", "discard"]).default("joblog")
    .describe("where the received MDN is kept: joblog (in the job record's mdnMessage.content), file (mdn.file), email or url (an async MDN by mail or to a URL; needs mode \"async\"), discard (verified, then only its result is recorded)"),
  file: nonEmpty.optional().describe("file the MDN is written to when destination is \"file\" (required then), relative to the configuration file's folder; e.g. \"mdn/acme-mdn.txt\""),
  whenExists: z.enum(["rename", "append", "overwrite", "skip", "error"]).default("rename")
    .describe("when mdn.file exists: rename (write name.1.ext, name.2.ext, ...), append, overwrite, skip (keep the old file; a warning), error (the file fails)"),
  email: nonEmpty.optional().describe("address an async MDN is mailed to (Receipt-Delivery-Option mailto:); required when destination is \"email\"; e.g. \"edi@myco.example\""),
  url: httpUrl.optional().describe("URL the partner POSTs an async MDN to (Receipt-Delivery-Option), usually this station's as2 receive; default: station.asyncMdnUrl; e.g. \"https://as2.myco.example/as2\""),
  transferEncoding: z.enum(["base64", "quoted-printable", "7bit", "8bit", "binary"]).default("binary")
    .describe("the connector's Receipt Transfer Encoding, accepted for compatibility: as2kit keeps an MDN byte for byte as it arrived (binary) and does not re-encode it"),
});

const inboundSchema = z.strictObject({
  inbox: nonEmpty.optional().describe("folder the partner's files are stored in, relative to the configuration file's folder; default: <dataDir>/inbox/<partner name>"),
  users: z.array(z.strictObject({
    username: nonEmpty.describe("user name the partner sends with HTTP basic authentication"),
    password: z.string().describe("its password; use ${ENV_VAR}"),
  })).default([]).describe("HTTP basic-auth users the partner must send as; a message without matching credentials gets 401. Empty: no authentication asked"),
  requireSigned: z.boolean().default(false).describe("refuse unsigned messages from this partner (insufficient-message-security in the MDN); needs certificate or signatureCertificates"),
  requireEncrypted: z.boolean().default(false).describe("refuse unencrypted messages from this partner (insufficient-message-security in the MDN)"),
  requireClientCertificate: z.boolean().default(false).describe("only accept this partner over HTTPS with a client certificate the receive.tls.ca trusts"),
  whenExists: z.enum(["rename", "append", "overwrite", "skip", "error"]).default("rename")
    .describe("when a received file's name exists in the inbox: rename (store name.1.ext, name.2.ext, ...; never overwrites), append, overwrite, skip (keep the existing file), error (negative MDN)"),
  signerCertificateValidity: z.enum(["warn", "enforce"]).default("warn")
    .describe("a signer certificate not valid at the signing time (else the Date header, else now): a warning, or authentication-failed"),
  asyncMdnUrls: z.array(z.string().regex(/^((https?|\*):\/\/\S+|mailto:[^\s@]+@[^\s@]+)$/i, { message: "must be an http(s):// URL pattern or a mailto: address pattern (* matches any run of characters)" })).optional()
    .describe("URLs (patterns with *) an async MDN to this partner may be POSTed to, and mailto: addresses it may be mailed to through smtp (e.g. \"mailto:edi@acme.example\", \"mailto:*@acme.example\"); default: the origin of the partner's url, and no address"),
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

/**
 * AS2 Restart as a receiver. Off by default: turning it on spools a POST that carries an ETag to
 * disk before it is processed (so its bytes survive a broken connection), keeps partial uploads
 * on disk for maxAge, and advertises AS2-Restart to every partner - a promise the operator makes.
 */
const restartReceiveSchema = z.strictObject({
  enabled: z.boolean().default(false)
    .describe("keep partial uploads keyed by (AS2-From, ETag), answer HEAD with the bytes held, accept Content-Range continuations, and advertise AS2-Restart in EDIINT-Features; off by default (see README \"AS2 Restart\")"),
  maxAge: z.string().refine((v) => parseDuration(v) !== undefined, { message: `must be ${DURATION_FORMS}` }).default("24h")
    .describe("a partial upload not written to for this long is removed (at start, every 10 minutes, on HEAD and by as2 prune); a HEAD then answers 0 and the sender starts again; e.g. 24h (covers retry policies and a next-day as2 send --restart)"),
});

/** An ISO 8601 date-time with its offset, e.g. "2027-01-31T00:00:00Z". */
const isoDateTime = z.string().refine((v) => /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v)), { message: "must be an ISO 8601 date-time, e.g. \"2027-01-31T00:00:00Z\"" });

/**
 * A partner certificate file, or the file with the window in which it is used (issue 17, CEM):
 * during a certificate exchange the old certificate gets an `until` and the new one a `from`,
 * so both are accepted during the overlap and the old one is refused after it.
 */
const certificateEntry = z.union([
  nonEmpty,
  z.strictObject({
    file: nonEmpty.describe("certificate file (PEM, DER or PKCS#7), relative to the configuration file's folder"),
    from: isoDateTime.optional().describe("used from this time on (ISO 8601); before it the certificate is not used; unset: always"),
    until: isoDateTime.optional().describe("used until this time (ISO 8601); after it the certificate is not used (a signature it verifies is refused); unset: always"),
  }),
]);
export type CertificateEntry = z.infer<typeof certificateEntry>;

/** The file of a certificate entry. */
export function certificateFileOf(e: CertificateEntry): string {
  return typeof e === "string" ? e : e.file;
}

/** Whether a certificate entry is in use at `now` (its from/until window; a plain file always is). */
export function certificateInUse(e: CertificateEntry, now: Date): boolean {
  if (typeof e === "string") return true;
  return (!e.from || Date.parse(e.from) <= now.getTime()) && (!e.until || now.getTime() < Date.parse(e.until));
}

/** The partner's encryption certificate entries (a single file is a list of one). */
export function encryptionEntriesOf(p: { encryptionCertificate?: string | CertificateEntry[] | undefined }): CertificateEntry[] {
  const e = p.encryptionCertificate;
  return e === undefined ? [] : typeof e === "string" ? [e] : e;
}

/**
 * Certificate exchange with this partner (CEM, draft-meadors-certificate-exchange-14, issue 17;
 * README "Certificate exchange (CEM)").
 */
const cemSchema = z.strictObject({
  policy: z.enum(["manual", "accept"]).default("manual")
    .describe("what as2 receive does with a CEM request from this partner: manual (it waits, pending, for as2 cem accept|reject <request-id>) or accept (accepted at once: the certificate is added to this profile with its window and an Accepted response is sent)"),
  responseUrl: httpUrl.optional()
    .describe("ResponseURL of our CEM requests to this partner: where its CEM response is POSTed (our as2 receive); default: station.asyncMdnUrl"),
});

export const PRESETS = ["legacy", "modern"] as const;

export const partnerSchema = z.strictObject({
  as2Id: as2Id.describe("the partner's AS2 ID (AS2-To when sending, AS2-From it sends with): 1-128 printable ASCII, compared exactly; e.g. \"ACME\""),
  preset: z.enum(PRESETS).optional().describe("defaults for the keys not set: legacy (RFC 4130 as most installed products do it) or modern (sha-256, strict MIC and signer rules); README \"Presets\""),
  type: z.enum(["production", "test"]).default("production").describe("recorded as the job record's partnerType (Production or Test); changes nothing else"),
  url: httpUrl.describe("the partner's AS2 endpoint that messages are POSTed to; e.g. \"https://as2.acme.example/as2\""),
  certificate: nonEmpty.optional().describe("the partner's certificate file (PEM, DER or PKCS#7): encrypts what we send and verifies its signatures and signed MDNs; or set encryptionCertificate and signatureCertificates"),
  encryptionCertificate: z.union([nonEmpty, z.array(certificateEntry).min(1)]).optional().describe("certificate file that encrypts messages to the partner, when it differs from certificate (takes its place for encryption); or a list of entries { file, from, until } (written by CEM): the entry in use when a message is sent encrypts it (the one with the latest from)"),
  signatureCertificates: z.array(certificateEntry).optional().describe("certificate files that verify the partner's signatures (messages and MDNs), instead of certificate; several during a certificate rollover, any of them may match; an entry { file, from, until } is used only in its window (CEM writes those)"),
  username: z.string().optional().describe("HTTP basic-auth user for our POSTs to url; set together with password"),
  password: z.string().optional().describe("HTTP basic-auth password for our POSTs to url; use ${ENV_VAR}; never logged"),
  connectTimeout: seconds.default(60).describe("seconds to open the connection (TCP, proxy and TLS) before the attempt fails (the connector's Connection Timeout)"),
  readTimeout: seconds.default(0).describe("seconds without data from the partner before the attempt fails (the connector's Read Timeout); 0 = wait forever"),
  retries: z.number().int().min(0).default(0).describe("extra attempts after a connection failure, a timeout, or HTTP 408/425/5xx; each resends the identical message (same Message-ID, RFC 6017 §3)"),
  retryInterval: seconds.default(0).describe("seconds between those attempts"),
  followRedirects: z.boolean().default(false).describe("follow HTTP 301/302/303/307/308 (up to 5, POSTing again, credentials dropped on another origin); false: a redirect fails the file"),
  userAgent: z.string().optional().describe("User-Agent header of our requests; default: as2kit/<version>"),
  chunked: z.boolean().default(false).describe("send the body with Transfer-Encoding: chunked instead of Content-Length (the connector's Use Chunked Encoding); some servers refuse chunked requests"),
  keepAlive: z.boolean().default(true).describe("one connection (TCP, proxy tunnel, TLS) for all files of a send, HTTP/1.1 keep-alive; false opens one per message and closes it"),
  tls: tlsClientSchema.optional().describe("HTTPS settings for url (https:// URLs only): trusted CAs, client certificate, TLS version"),
  proxy: proxySchema.optional().describe("proxy for the connection to url; unset: HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment, else none"),
  sign: z.union([z.literal(false), z.enum(SIGNING_DIGESTS)]).default("sha256")
    .describe("sign messages with station.key using this digest (S/MIME multipart/signed), or false to send unsigned; also the MIC algorithm asked of the MDN; flag --sign (SHA256, sha-256 are accepted)"),
  signatureScheme: z.enum(["rsa", "rsassa-pss"]).default("rsa").describe("RSA signature padding: PKCS#1 v1.5 (rsa, what partners expect) or RSASSA-PSS (RFC 4056)"),
  encrypt: z.union([z.literal(false), z.enum(CONTENT_CIPHERS as unknown as [string, ...string[]])]).default("aes256-cbc")
    .describe("content cipher that encrypts messages to the partner's certificate (S/MIME enveloped-data), or false to send unencrypted; flag --encrypt (AES256_CBC is accepted)"),
  keyEncryption: z.enum(["rsa", "rsa-oaep"]).default("rsa").describe("how the content key is encrypted to the partner's RSA key: PKCS#1 v1.5 (rsa) or RSAES-OAEP (rsa-oaep, RFC 3560)"),
  oaepHash: z.enum(["sha1", "sha256", "sha384", "sha512"]).default("sha256").describe("OAEP digest (and MGF1 digest) when keyEncryption is \"rsa-oaep\""),
  compress: z.union([z.literal(false), z.enum(["before-signing", "after-signing"])]).default(false)
    .describe("compress the payload (RFC 5402, zlib) before or after signing, or false; flag --compress"),
  subject: z.string().optional().describe("Subject header of the messages; flag --subject; e.g. \"EDI\""),
  contentType: z.string().optional().describe("Content-Type of the payload; default: from the file name (.edi by its first bytes: application/edi-x12, application/edifact or application/edi-consent; .xml, .pdf, .zip, ... by extension; else application/octet-stream); flag --content-type"),
  mdn: mdnSchema.default(() => mdnSchema.parse({})).describe("the receipt (MDN) asked for with each message and what is done with it"),
  multipleAttachments: z.union([z.literal("auto"), z.boolean()]).default("auto")
    .describe("whether as2 send --multiple-attachments may send to this partner (RFC 6362): auto (only when the partner advertised multiple-attachments in EDIINT-Features in its most recent recorded message or MDN), true, or false"),
  inbound: inboundSchema.default(() => inboundSchema.parse({})).describe("rules for the messages this partner sends us (as2 receive)"),
  quirks: quirksSchema.default(() => quirksSchema.parse({})).describe("named interop settings for products that deviate from the RFCs; README \"Partner quirks and presets\""),
  deleteSourceFiles: z.boolean().default(false).describe("delete each sent file once its positive MDN (or, with mdn.request \"none\", its 2xx answer) confirms it; flag --delete-source"),
  notify: notifySchema.optional().describe("job notifications for this partner's jobs, instead of the top-level notify"),
  restart: z.union([z.literal("auto"), z.boolean()]).default("auto")
    .describe("AS2 Restart (draft-harding-as2-restart-07) for messages of at least restartMinBytes: they carry an ETag and Content-Range, and a retry after a broken transfer first asks (HEAD) how many bytes the partner holds and sends only the rest. \"auto\": the HEAD's byte count is trusted only when the answer shows restart support (AS2-Restart in its EDIINT-Features, or our ETag echoed), else everything is sent again; true: any 2xx HEAD's count is trusted (partners that do not say so); false: never (no ETag, whole resends)"),
  restartMinBytes: z.number().int().min(0).default(8 * 1024 * 1024)
    .describe("smallest message (bytes as sent) that uses AS2 Restart; below it a whole resend costs little and the extra HEAD is not worth it; 0: every message"),
  cem: cemSchema.default(() => cemSchema.parse({})).describe("certificate exchange (CEM) with this partner: how its requests are answered, where its responses come to"),
});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe("path or URL of as2rc.schema.json, for editor completion (as2 init writes it); as2 ignores it"),
    dataDir: nonEmpty.default("./as2-data").describe("folder for job records, the received-message ledger, spool files and the default inboxes (<dataDir>/inbox/<partner>); created on demand; relative to the configuration file's folder"),
    store: z
      .union([
        z.strictObject({ kind: z.literal("files").describe("local JSON files under dataDir (contract §5)") }),
        z.strictObject({
          kind: z.literal("postgres").describe("a PostgreSQL database shared by several as2 hosts (README \"Several hosts on PostgreSQL\")"),
          url: z
            .string()
            .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// connection URL")
            .optional()
            .describe("connection URL, required with kind \"postgres\", e.g. \"${AS2_DATABASE_URL}\" (postgres://user:password@host:5432/db); keep the password in the environment: it is never logged or recorded"),
        }),
      ])
      .superRefine((store, ctx) => {
        // Optional in the shape so that a missing URL is reported as such, not as a wrong kind.
        if (store.kind === "postgres" && store.url === undefined) ctx.addIssue({ code: "custom", path: ["url"], message: 'is required with kind "postgres" (a postgres:// URL, e.g. "${AS2_DATABASE_URL}")' });
      })
      .default({ kind: "files" })
      .describe("where job records, the received-message ledger and the MDN queue live: \"files\" (one host) or \"postgres\" (several hosts sharing the inbox folder)"),
    station: z.strictObject({
      as2Id: as2Id.describe("this station's AS2 ID (AS2-From when sending, the AS2-To partners address us with): 1-128 printable ASCII, quoted on the wire when needed (RFC 4130 §6.2); e.g. \"MYCO\""),
      email: z.string().optional().describe("Disposition-Notification-To of our requests (RFC 4130 §7.3: not interpreted by receivers); default: station.as2Id; e.g. \"edi@myco.example\""),
      key: keySourceSchema.describe("this station's private key and certificate: signs what we send, decrypts what we receive, signs our MDNs"),
      previousKeys: z.array(keySourceSchema).default([]).describe("older keys (same forms as station.key) still tried for decrypting after a key rollover; as2 keys new --use moves the replaced key here"),
      asyncMdnUrl: httpUrl.optional().describe("URL partners POST async MDNs to (Receipt-Delivery-Option), for partners with mdn.mode \"async\" and no mdn.url; e.g. \"https://as2.myco.example/as2\""),
    }).describe("this side of every exchange: its AS2 ID and key"),
    receive: z
      .strictObject({
        host: nonEmpty.default("0.0.0.0").describe("address as2 receive listens on: 0.0.0.0 every IPv4 interface, 127.0.0.1 this machine only, :: IPv6"),
        port: z.number().int().min(0).max(65535).default(4080).describe("TCP port as2 receive listens on; 0 picks a free one (printed at start); flag --port"),
        path: z.string().regex(/^\//, { message: "must start with /" }).default("/as2").describe("URL path AS2 messages and async MDNs are POSTed to; other paths get 404; flag --path"),
        tls: z.strictObject({
          key: nonEmpty.describe("the server's private key file (PEM)"),
          certificate: nonEmpty.describe("the server's certificate file (PEM), with its chain"),
          password: z.string().optional().describe("passphrase of an encrypted key; use ${ENV_VAR}"),
          ca: z.array(nonEmpty).default([]).describe("CA certificate files (PEM) that partners' TLS client certificates are checked against"),
          requestClientCertificate: z.boolean().default(false).describe("ask every client for a TLS certificate in the handshake; it is only required per partner (inbound.requireClientCertificate)"),
        }).optional().describe("serve HTTPS instead of HTTP; unset: plain HTTP (put it behind a TLS proxy, or set this)"),
        maxMessageBytes: positiveInt.default(10 * 1024 * 1024 * 1024).describe("largest request body accepted, in bytes; larger ones get 413 (before reading, when Content-Length says so)"),
        maxHeaderBytes: positiveInt.default(64 * 1024).describe("largest HTTP header section accepted, in bytes; more gets 431"),
        maxInflatedBytes: positiveInt.default(10 * 1024 * 1024 * 1024).describe("largest payload a compressed message may inflate to, in bytes (a zip bomb fails with decompression-failed)"),
        maxAttachments: positiveInt.max(10000).default(100).describe("most attachments one multiple-attachments message (RFC 6362 multipart/related) may carry; a message with more fails as a whole (negative MDN, no part stored)"),
        requestTimeout: z.number().positive().default(600).describe("seconds a client has to send its whole request; a body cut off by it is not stored"),
        maxConnections: positiveInt.default(1000).describe("connections beyond this get 503 with Retry-After"),
        headersTimeout: z.number().positive().default(30).describe("seconds a client has to send all its headers"),
        maxHeaderCount: positiveInt.default(200).describe("header lines per request; more get 431"),
        minFreeBytes: z.number().int().min(0).default(1024 ** 3).describe("free space kept on the inbox's file system; 0 keeps none (explicitly)"),
        workers: positiveInt.max(256).optional().describe("processes sharing the port and the store (default: the number of cores; --once uses 1)"),
        restart: restartReceiveSchema.default(() => restartReceiveSchema.parse({}))
          .describe("AS2 Restart (draft-harding-as2-restart-07, README \"AS2 Restart\"): keep partial uploads of POSTs that carry an ETag, so that a sender whose connection broke sends only the rest"),
        retention: z.strictObject({
          olderThan: z.string().refine((v) => parseDuration(v) !== undefined, { message: `must be ${DURATION_FORMS}` })
            .describe("age past which `as2 prune` removes finished jobs and what belongs to them; e.g. 90d"),
        }).optional()
          .describe("when set, `as2 receive` runs `as2 prune --older-than <olderThan>` shortly after it starts and then daily (inbox files stay)"),
      })
      .default(() => ({
        host: "0.0.0.0", port: 4080, path: "/as2", maxMessageBytes: 10 * 1024 ** 3, maxHeaderBytes: 64 * 1024, maxInflatedBytes: 10 * 1024 ** 3, maxAttachments: 100, requestTimeout: 600,
        maxConnections: 1000, headersTimeout: 30, maxHeaderCount: 200, minFreeBytes: 1024 ** 3, restart: restartReceiveSchema.parse({}),
      }))
      .describe("the server of as2 receive: where it listens and its limits (every limit is an explicit number)"),
    notify: notifySchema.optional().describe("job notifications (contract §6) for every partner without its own notify; a failed one is a warning, never a failed job"),
    smtp: smtpSchema.optional().describe("the mail relay as2 receive sends async MDNs through when a partner's Receipt-Delivery-Option is a mailto: address (RFC 4130 §7.3) that the partner's inbound.asyncMdnUrls allows; unset: mailto: receipts are refused"),
    partners: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: "partner names use letters, digits, '.', '_' and '-'" }), partnerSchema).default({})
      .describe("partner profiles by name (as2 send --partner <name>; as2 partner add writes them)"),
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
