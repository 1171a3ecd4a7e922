/**
 * One error class for the whole library. Every error carries a stable string code (AS2_ERR_*)
 * that scripts and tests can match on, and protocol errors carry the MDN disposition modifier a
 * receiver must answer with (RFC 4130 §7.4.3, §7.5; as2-reference.md §10).
 */

/** Disposition modifiers of RFC 4130 §7.4.3 / §7.5.4 (plus RFC 5402 §5 decompression-failed). */
export type DispositionError =
  | "decryption-failed"
  | "authentication-failed"
  | "integrity-check-failed"
  | "decompression-failed"
  | "insufficient-message-security"
  | "unexpected-processing-error";

export const ErrorCodes = {
  MALFORMED_BER: "AS2_ERR_MALFORMED_BER",
  TRUNCATED: "AS2_ERR_TRUNCATED",
  LIMIT_EXCEEDED: "AS2_ERR_LIMIT_EXCEEDED",
  MALFORMED_MIME: "AS2_ERR_MALFORMED_MIME",
  MALFORMED_CMS: "AS2_ERR_MALFORMED_CMS",
  UNSUPPORTED_ALGORITHM: "AS2_ERR_UNSUPPORTED_ALGORITHM",
  DECRYPTION_FAILED: "AS2_ERR_DECRYPTION_FAILED",
  NO_MATCHING_RECIPIENT: "AS2_ERR_NO_MATCHING_RECIPIENT",
  SIGNATURE_INVALID: "AS2_ERR_SIGNATURE_INVALID",
  SIGNER_UNKNOWN: "AS2_ERR_SIGNER_UNKNOWN",
  DIGEST_MISMATCH: "AS2_ERR_DIGEST_MISMATCH",
  DECOMPRESSION_FAILED: "AS2_ERR_DECOMPRESSION_FAILED",
  INSUFFICIENT_SECURITY: "AS2_ERR_INSUFFICIENT_SECURITY",
  BAD_KEY: "AS2_ERR_BAD_KEY",
  BAD_CERTIFICATE: "AS2_ERR_BAD_CERTIFICATE",
  BAD_PASSWORD: "AS2_ERR_BAD_PASSWORD",
  INVALID_ARGUMENT: "AS2_ERR_INVALID_ARGUMENT",
  MALFORMED_MDN: "AS2_ERR_MALFORMED_MDN",
  // Transport (send side): what went wrong on the way to the partner.
  CONNECT_FAILED: "AS2_ERR_CONNECT_FAILED",
  TIMEOUT: "AS2_ERR_TIMEOUT",
  TLS_FAILED: "AS2_ERR_TLS_FAILED",
  PROXY_FAILED: "AS2_ERR_PROXY_FAILED",
  HTTP_STATUS: "AS2_ERR_HTTP_STATUS",
  ABORTED: "AS2_ERR_ABORTED",
  // An MDN that arrived but says no, or does not match what we sent.
  MDN_NEGATIVE: "AS2_ERR_MDN_NEGATIVE",
  MDN_VERIFICATION_FAILED: "AS2_ERR_MDN_VERIFICATION_FAILED",
  // Receive side: the receiver stopped mid-message, or could not store what it verified.
  INTERRUPTED: "AS2_ERR_INTERRUPTED",
  STORE_FAILED: "AS2_ERR_STORE_FAILED",
  // A key or certificate file that cannot be read at all (missing, a folder, no permission).
  FILE_UNREADABLE: "AS2_ERR_FILE_UNREADABLE",
  /** The shared store (PostgreSQL) cannot be reached right now: try again later (HTTP 503). */
  STORE_UNAVAILABLE: "AS2_ERR_STORE_UNAVAILABLE",
  /** A CEM document (draft-meadors-certificate-exchange) that is malformed, hostile or does not fit what it answers. */
  CEM_INVALID: "AS2_ERR_CEM_INVALID",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The disposition each code maps to when it ends a receive (as2-reference.md §10 table). */
const DISPOSITION_OF: Record<ErrorCode, DispositionError> = {
  AS2_ERR_MALFORMED_BER: "unexpected-processing-error",
  AS2_ERR_TRUNCATED: "unexpected-processing-error",
  AS2_ERR_LIMIT_EXCEEDED: "unexpected-processing-error",
  AS2_ERR_MALFORMED_MIME: "unexpected-processing-error",
  AS2_ERR_MALFORMED_CMS: "unexpected-processing-error",
  AS2_ERR_UNSUPPORTED_ALGORITHM: "unexpected-processing-error",
  AS2_ERR_DECRYPTION_FAILED: "decryption-failed",
  AS2_ERR_NO_MATCHING_RECIPIENT: "decryption-failed",
  AS2_ERR_SIGNATURE_INVALID: "authentication-failed",
  AS2_ERR_SIGNER_UNKNOWN: "authentication-failed",
  AS2_ERR_DIGEST_MISMATCH: "integrity-check-failed",
  AS2_ERR_DECOMPRESSION_FAILED: "decompression-failed",
  AS2_ERR_INSUFFICIENT_SECURITY: "insufficient-message-security",
  AS2_ERR_BAD_KEY: "unexpected-processing-error",
  AS2_ERR_BAD_CERTIFICATE: "unexpected-processing-error",
  AS2_ERR_BAD_PASSWORD: "unexpected-processing-error",
  AS2_ERR_INVALID_ARGUMENT: "unexpected-processing-error",
  AS2_ERR_MALFORMED_MDN: "unexpected-processing-error",
  AS2_ERR_CEM_INVALID: "unexpected-processing-error",
  AS2_ERR_CONNECT_FAILED: "unexpected-processing-error",
  AS2_ERR_TIMEOUT: "unexpected-processing-error",
  AS2_ERR_TLS_FAILED: "unexpected-processing-error",
  AS2_ERR_PROXY_FAILED: "unexpected-processing-error",
  AS2_ERR_HTTP_STATUS: "unexpected-processing-error",
  AS2_ERR_ABORTED: "unexpected-processing-error",
  AS2_ERR_MDN_NEGATIVE: "unexpected-processing-error",
  AS2_ERR_MDN_VERIFICATION_FAILED: "unexpected-processing-error",
  AS2_ERR_INTERRUPTED: "unexpected-processing-error",
  AS2_ERR_STORE_FAILED: "unexpected-processing-error",
  AS2_ERR_FILE_UNREADABLE: "unexpected-processing-error",
  AS2_ERR_STORE_UNAVAILABLE: "unexpected-processing-error",
};

export interface As2ErrorOptions {
  cause?: unknown;
  /** What the user can do about it, shown by the CLI under the message. */
  suggestion?: string;
  /** Override of the default disposition for the code (e.g. a truncated ciphertext is decryption-failed). */
  disposition?: DispositionError;
}

export class As2Error extends Error {
  readonly code: ErrorCode;
  readonly disposition: DispositionError;
  readonly suggestion: string | undefined;

  constructor(code: ErrorCode, message: string, options: As2ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "As2Error";
    this.code = code;
    this.disposition = options.disposition ?? DISPOSITION_OF[code];
    this.suggestion = options.suggestion;
  }
}

export function isAs2Error(e: unknown): e is As2Error {
  return e instanceof As2Error;
}

/** Wraps an unknown failure, keeping an As2Error as it is. */
export function asAs2Error(e: unknown, code: ErrorCode, message: string, disposition?: DispositionError): As2Error {
  if (e instanceof As2Error) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new As2Error(code, `${message}: ${detail}`, { cause: e, disposition });
}
