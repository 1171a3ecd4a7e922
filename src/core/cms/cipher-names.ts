/**
 * The content-encryption algorithms by name, without their implementations, so that the
 * configuration schema can list them without loading node-forge and asn1js.
 */
export type ContentCipher =
  | "3des" | "aes128-cbc" | "aes192-cbc" | "aes256-cbc"
  | "rc2-40" | "rc2-64" | "rc2-128" | "cast5" | "idea"
  | "aes128-gcm" | "aes192-gcm" | "aes256-gcm";

export const CONTENT_CIPHERS: readonly ContentCipher[] = [
  "3des", "aes128-cbc", "aes192-cbc", "aes256-cbc", "rc2-40", "rc2-64", "rc2-128", "cast5", "idea", "aes128-gcm", "aes192-gcm", "aes256-gcm",
];

/** Ciphers accepted for interop with legacy connectors but weak today (warn when used). */
export const WEAK_CIPHERS: ReadonlySet<ContentCipher> = new Set(["rc2-40", "rc2-64", "rc2-128", "cast5", "idea", "3des"]);
