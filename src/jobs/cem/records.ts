/**
 * Shared pieces of the CEM jobs (issue 17): the certificate summary kept in a record, usage
 * names (flag words <-> CertUsage, as2-reference E7), and where raw CEM files live.
 */
import { join } from "node:path";
import { certificateIdentifierOf, type Certificate, type CertUsage } from "../../core/index.js";
import type { CemCertificateInfo, CemDirection, CemRequestRecord, CemRequestStore } from "../../store/index.js";

/** --usage words and the CertUsage values they stand for. */
export const USAGE_WORDS: Record<string, CertUsage[]> = {
  signing: ["digitalSignature"],
  encryption: ["keyEncipherment"],
  tls: ["tlsServer", "tlsClient"],
};

export function certificateInfo(cert: Certificate): CemCertificateInfo {
  const id = certificateIdentifierOf(cert);
  return {
    pem: cert.toPem(), subject: cert.subject, issuerName: id.issuerName, serialNumber: id.serialNumber,
    notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString(),
  };
}

/**
 * Raw CEM files (the request as sent, the payload as received): under dataDir, not in the
 * partner's inbox, because they are protocol traffic for as2kit, not business documents for
 * whatever reads the inbox (and the multiple-attachments splitter must not see them).
 */
export function cemFilesDir(dataDir: string, direction: CemDirection, partner: string): string {
  return join(dataDir, "cem", "files", direction, partner);
}

export function safeName(requestId: string): string {
  return requestId.replace(/[^A-Za-z0-9._@-]/g, "_").slice(0, 120);
}

/** A received request by ID (any partner, or the one named). */
export async function findReceived(store: CemRequestStore, requestId: string, partner?: string): Promise<CemRequestRecord[]> {
  return (await store.list({ direction: "received", ...(partner ? { partner } : {}) })).filter((r) => r.requestId === requestId);
}
