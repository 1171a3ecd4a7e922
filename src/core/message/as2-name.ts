/**
 * AS2-name syntax (RFC 4130 §6.2, as2-reference.md §3): atomic names go as they are; names with
 * SP, '"' or '\' are quoted with '"' and '\' escaped (N2). Unquoting also undoes escapes in an
 * unquoted value, as Mendelson sends them (N3).
 */
import { As2Error, ErrorCodes } from "../errors.js";

/** AS2-text: printable ASCII except '"' and '\' (N1). */
const ATOMIC = /^[!#-[\]-~]{1,128}$/;
/** What may appear in an ID at all: printable ASCII and space, 1-128 characters. */
const VALID = /^[ -~]{1,128}$/;

export function isValidAs2Id(id: string): boolean {
  return VALID.test(id);
}

export function formatAs2Name(id: string): string {
  if (!isValidAs2Id(id)) throw new As2Error(ErrorCodes.INVALID_ARGUMENT, `AS2 ID ${JSON.stringify(id)} must be 1-128 printable ASCII characters`);
  return ATOMIC.test(id) ? id : `"${id.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function parseAs2Name(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(["\\])/g, "$1");
  // N3: Mendelson escapes '"' and '\' without quoting names that have no blank.
  return v.replace(/\\(["\\])/g, "$1");
}

/** Message-ID without angle brackets and surrounding white space: the duplicate/correlation key (I2, I3). */
export function normalizeMessageId(id: string): string {
  return id.trim().replace(/^<\s*/, "").replace(/\s*>$/, "").trim();
}

/**
 * A new Message-ID: `<as2kit-{time}-{random}@{right}>` with no spaces or control characters (I1).
 * `random` is injected so tests can reproduce it.
 */
export function generateMessageId(date: Date, randomHex: string, rightSide: string): string {
  const stamp = date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const right = rightSide.replace(/[^A-Za-z0-9.-]/g, "_").slice(0, 64) || "as2kit";
  return `<as2kit-${stamp}-${randomHex}@${right}>`;
}

/** RFC 5322 date, e.g. "Mon, 01 Jan 2024 12:00:00 GMT" (I4). */
export function formatHttpDate(d: Date): string {
  return d.toUTCString();
}
