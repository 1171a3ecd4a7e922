/**
 * An async MDN by e-mail (issue 17): RFC 4130 §7.3 lets Receipt-Delivery-Option be a mailto:
 * address, and the MDN then travels as RFC 3335 (AS1) does it, as a mail whose body is the MDN
 * entity (as2-reference, the Receipt-Delivery-Option row). The mail goes through the configured
 * relay (`smtp`) with nodemailer, handed over as a raw message with an explicit envelope, so the
 * MDN's bytes are exactly those that were signed: nodemailer only dot-stuffs them on the wire
 * (RFC 5321 §4.5.2), which the relay undoes.
 *
 * SMTP carries 7-bit lines of at most 998 characters (RFC 5321 §4.5.3.1.6). The MDN builder writes
 * only such lines (the report in 7bit, the signature part in base64: core/mdn/mdn.ts and
 * signature-part.ts; the signature covers only the report part, so the encoding of the signature
 * part is free), and toMail checks it rather than trusting it: a multipart entity may not be
 * base64-encoded as a whole (RFC 2045 §6.4), and re-encoding the signed report would break the
 * signature, so an MDN that is not 7-bit clean is not mailed (a permanent failure, recorded).
 */
import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import type { As2Config } from "../config/schema.js";
import { parseFromAddress } from "../config/mail-address.js";
import type { StoredMdn } from "../store/index.js";

export type SmtpSettings = NonNullable<As2Config["smtp"]>;

/** What one delivery attempt learnt; `permanent` failures are not tried again. */
export class MailFailure extends Error {
  constructor(message: string, readonly permanent: boolean, readonly response?: string) {
    super(message);
  }
}

/** Seconds an attempt may take to connect, and to hear from the relay. */
const CONNECT_TIMEOUT_MS = 30_000;
const SOCKET_TIMEOUT_MS = 60_000;

/** RFC 5321 §4.5.3.1.6: 1000 octets with the CRLF. */
const MAX_LINE = 998;

/** Why `raw` cannot go over SMTP as it is, or undefined. */
export function notSevenBitSafe(raw: Buffer): string | undefined {
  let line = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x0d) {
      if (raw[i + 1] !== 0x0a) return `a bare CR at byte ${i}`;
      i++;
      line = 0;
      continue;
    }
    if (b === 0x0a) return `a bare LF at byte ${i}`;
    if (b === 0 || b > 0x7f) return `an 8-bit or NUL byte (0x${b.toString(16)}) at byte ${i}`;
    if (++line > MAX_LINE) return `a line longer than ${MAX_LINE} characters near byte ${i}`;
  }
  return undefined;
}

/**
 * The mail: From and To, the MDN's own headers (Message-ID, Subject, MIME-Version, Content-Type,
 * and AS2-From/AS2-To, which let `as2 mdn-verify` find the signer), the Date in RFC 5322 form, then
 * the MDN body unchanged.
 */
export function toMail(smtp: SmtpSettings, to: string, mdn: StoredMdn): { from: string; raw: Buffer } {
  const from = parseFromAddress(smtp.from);
  if (!from) throw new MailFailure(`smtp.from "${smtp.from}" is not an e-mail address`, true);
  const lines = [`From: ${from.header}`, `To: ${to}`];
  for (const h of mdn.headers) {
    if (/^(from|to|cc|bcc|content-length|connection|host)$/i.test(h.name)) continue;
    // HTTP's IMF-fixdate (…GMT) is RFC 5322's obsolete zone; write the numeric one.
    lines.push(`${h.name}: ${/^date$/i.test(h.name) ? h.value.replace(/ GMT$/, " +0000") : h.value}`);
  }
  const raw = Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), Buffer.from(mdn.body, "base64")]);
  const unsafe = notSevenBitSafe(raw);
  if (unsafe) throw new MailFailure(`the MDN cannot be mailed unchanged: SMTP needs 7-bit lines of at most ${MAX_LINE} characters, and it has ${unsafe}`, true);
  return { from: from.address, raw };
}

/** Never let the relay's password into a message that is logged or recorded. */
function scrub(text: string, smtp: SmtpSettings): string {
  return smtp.password ? text.split(smtp.password).join("***") : text;
}

async function trustedCas(smtp: SmtpSettings): Promise<Buffer[] | undefined> {
  if (!smtp.ca.length) return undefined;
  try {
    return await Promise.all(smtp.ca.map((f) => readFile(f)));
  } catch (e) {
    throw new MailFailure(`smtp.ca: ${(e as Error).message}`, false);
  }
}

/**
 * One attempt: connects to the relay (implicit TLS with `secure`, else STARTTLS when offered, and
 * required when there is a password to send), authenticates when a username is set, and hands
 * over the mail for `to`. Resolves with the
 * relay's final reply; throws MailFailure, permanent for a 5xx reply to the mail transaction
 * (RFC 5321 §4.2.1: "the SMTP client SHOULD NOT repeat the exact request") and for a mail that
 * cannot be built.
 */
export async function mailMdn(smtp: SmtpSettings, to: string, mdn: StoredMdn): Promise<{ response: string }> {
  const mail = toMail(smtp, to, mdn);
  const ca = await trustedCas(smtp);
  // Loaded on first use: most receivers never mail a receipt.
  const nodemailer = await import("nodemailer");
  const transport = nodemailer.createTransport({
    host: smtp.host, port: smtp.port, secure: smtp.secure,
    // The password never goes over a plain connection: with a username, STARTTLS is required
    // (a relay that does not offer it, or a man in the middle who strips the offer, gets nothing).
    requireTLS: !smtp.secure && smtp.username !== undefined,
    ...(smtp.username !== undefined ? { auth: { user: smtp.username, pass: smtp.password ?? "" } } : {}),
    tls: { minVersion: "TLSv1.2", ...(ca ? { ca } : {}) },
    connectionTimeout: CONNECT_TIMEOUT_MS, greetingTimeout: CONNECT_TIMEOUT_MS, socketTimeout: SOCKET_TIMEOUT_MS,
    logger: false, debug: false, disableFileAccess: true, disableUrlAccess: true,
  });
  try {
    const info = await transport.sendMail({ envelope: { from: mail.from, to: [to] }, raw: mail.raw });
    if (info.rejected?.length) throw new MailFailure(`the relay refused ${to}`, true, scrub(String(info.response ?? ""), smtp));
    return { response: scrub(String(info.response ?? ""), smtp) };
  } catch (e) {
    if (e instanceof MailFailure) throw e;
    const err = e as Error & { responseCode?: number; response?: string; code?: string };
    // Final: a 5xx reply to the mail transaction (MAIL FROM, RCPT TO, DATA). A 5xx to the login or
    // STARTTLS says our configuration (or the relay's) is wrong, which an operator can fix while the
    // queue still tries: retried like a connection failure.
    const permanent = typeof err.responseCode === "number" && err.responseCode >= 500 && err.responseCode < 600 && (err.code === "EENVELOPE" || err.code === "EMESSAGE");
    throw new MailFailure(scrub(`${err.code ? `${err.code}: ` : ""}${err.message}`, smtp), permanent, err.response ? scrub(err.response, smtp) : undefined);
  } finally {
    transport.close();
  }
}
