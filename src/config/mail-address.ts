/**
 * The e-mail addresses as2kit puts on the wire (issue 17, e-mail receipts): a Receipt-Delivery-Option
 * `mailto:` chosen by whoever sent the message, and smtp.from. Deliberately narrower than RFC 5322
 * addr-spec: a dot-atom local part and a host name, no quoted strings, comments, route syntax,
 * white space or line breaks, so that an address copied into RCPT TO and a To: header can never
 * carry a second command or header (CR/LF), a second recipient (",") or a source route ("@a:b@c").
 */
const LOCAL = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*";
const DOMAIN = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*";
export const MAIL_ADDRESS = new RegExp(`^${LOCAL}@${DOMAIN}$`);

/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an address at most 254. */
export const MAX_ADDRESS_LENGTH = 254;

export function isMailAddress(s: string): boolean {
  return s.length <= MAX_ADDRESS_LENGTH && MAIL_ADDRESS.test(s);
}

/**
 * smtp.from: `edi@myco.example` or `MYCO EDI <edi@myco.example>` (a display name of printable
 * ASCII without angle brackets or line breaks; its quotes are dropped and it is quoted anew). Returns the bare address for MAIL FROM and
 * the header text, or undefined when it is neither form.
 */
export function parseFromAddress(s: string): { address: string; header: string } | undefined {
  if (isMailAddress(s)) return { address: s, header: s };
  const m = /^([ -;=?-~]*?)\s*<([^<>\s]+)>$/.exec(s);
  if (!m || !isMailAddress(m[2]!)) return undefined;
  const name = m[1]!.trim();
  return { address: m[2]!, header: name ? `"${name.replace(/["\\]/g, "")}" <${m[2]}>` : m[2]! };
}
