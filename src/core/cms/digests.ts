/**
 * Digest algorithms and the MIC algorithm names seen on the wire (as2-reference.md §7 table, M5, Q6).
 */
import { OID } from "./oids.js";

export type DigestAlgorithm = "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512";
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

interface DigestInfo {
  oid: string;
  /** Node/OpenSSL name. */
  node: string;
  /** RFC 5751 §3.4.3.2 name (sha-256) and RFC 3851 name (sha256). */
  rfc5751: string;
  rfc3851: string;
  /** signatureAlgorithm OID for RSA PKCS#1 v1.5 with this hash. */
  rsaOid: string;
  length: number;
}

export const DIGESTS: Record<DigestAlgorithm, DigestInfo> = {
  md5: { oid: OID.md5, node: "md5", rfc5751: "md5", rfc3851: "md5", rsaOid: OID.md5WithRSA, length: 16 },
  sha1: { oid: OID.sha1, node: "sha1", rfc5751: "sha-1", rfc3851: "sha1", rsaOid: OID.sha1WithRSA, length: 20 },
  sha224: { oid: OID.sha224, node: "sha224", rfc5751: "sha-224", rfc3851: "sha224", rsaOid: OID.sha224WithRSA, length: 28 },
  sha256: { oid: OID.sha256, node: "sha256", rfc5751: "sha-256", rfc3851: "sha256", rsaOid: OID.sha256WithRSA, length: 32 },
  sha384: { oid: OID.sha384, node: "sha384", rfc5751: "sha-384", rfc3851: "sha384", rsaOid: OID.sha384WithRSA, length: 48 },
  sha512: { oid: OID.sha512, node: "sha512", rfc5751: "sha-512", rfc3851: "sha512", rsaOid: OID.sha512WithRSA, length: 64 },
};

export function digestByOid(oid: string): DigestAlgorithm | undefined {
  return DIGEST_ALGORITHMS.find((d) => DIGESTS[d].oid === oid);
}

/** RSA PKCS#1 v1.5 signature OIDs name their hash; plain rsaEncryption does not (K13). */
export function digestOfRsaSignatureOid(oid: string): DigestAlgorithm | undefined {
  return DIGEST_ALGORITHMS.find((d) => DIGESTS[d].rsaOid === oid);
}

/**
 * Normalises any MIC/micalg spelling to our digest name: sha-256, sha256, SHA256, sha2_256,
 * rsa-sha1, sha (= SHA-1), rsa-md5 ... Unknown names give undefined (as2-reference.md §7 table).
 */
export function normalizeMicAlgorithm(name: string): DigestAlgorithm | undefined {
  const n = name.trim().replace(/^"|"$/g, "").toLowerCase().replace(/^rsa-/, "");
  if (n === "sha" || n === "sha-1" || n === "sha1") return "sha1";
  if (n === "md5") return "md5";
  const m = /^sha(?:-|_|2_|2-)?(224|256|384|512)$/.exec(n);
  return m ? (`sha${m[1]}` as DigestAlgorithm) : undefined;
}

export type MicNaming = "rfc5751" | "rfc3851";

/**
 * The token to emit. RFC 5751 names (sha-256) by default; Drummond consensus emits sha1 without the
 * hyphen for SHA-1 (as2-reference.md §7, DGI-3Q12 #1), so sha-1 is written as sha1 in both styles.
 */
export function micAlgorithmName(alg: DigestAlgorithm, naming: MicNaming = "rfc5751"): string {
  if (alg === "sha1") return "sha1";
  return DIGESTS[alg][naming];
}
