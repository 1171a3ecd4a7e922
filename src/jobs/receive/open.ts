/**
 * The `open` step: decrypt -> inflate -> verify (src/core openMessage) while the payload streams
 * into a temp file in the inbox's temp folder; only a message whose signature checked out reaches
 * `verified`, with the temp file complete and fsynced and the name it asks for in the ledger.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MAX_CEM_PAYLOAD_BYTES, isCemContentType, limitSize, openMessage, type DigestAlgorithm, type OpenedMessage, type Spooled } from "../../core/index.js";
import { signersAt } from "../../config/keys.js";
import { cemFilesDir, safeName } from "../cem/records.js";
import { takeCemPayload, type CemTaken } from "../cem/receive-cem.js";
import { guardSpace } from "../disk-space.js";
import type { LedgerEntry, OpenedSummary } from "../../store/index.js";
import { crashPoint } from "../crash-point.js";
import { InboxWriter, sanitizeFilename } from "../inbox.js";
import { inboxOf, spoolPathOf, type Services } from "./services.js";

function summary(o: OpenedMessage): OpenedSummary {
  return {
    ...(o.payload.filename !== undefined ? { filename: o.payload.filename } : {}),
    size: o.payload.size,
    mic: { base64: o.mic.base64, algorithm: o.mic.algorithm },
    signed: o.signed, encrypted: o.encrypted, compressed: o.compressed !== false,
    ...(o.encryption ? { cipher: o.encryption.cipher } : {}),
    ...(o.signature ? { signature: `${o.signature.digest}${o.signature.scheme === "rsassa-pss" ? " (RSASSA-PSS)" : ""}` } : {}),
    warnings: o.warnings,
  };
}

/** A compressed signed part kept in the spool folder while its signature is checked. */
async function diskSpool(s: Services, entry: LedgerEntry, source: AsyncIterable<Uint8Array>): Promise<Spooled> {
  const path = join(dirname(spoolPathOf(s.config, entry.runId)), `signed-${entry.runId}-${randomBytes(4).toString("hex")}.part`);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await pipeline(Readable.from(guardSpace(source, path, s.config.receive.minFreeBytes)), createWriteStream(path, { mode: 0o600 }));
  } catch (e) {
    await rm(path, { force: true });
    throw e;
  }
  return { open: () => createReadStream(path), dispose: () => rm(path, { force: true }) };
}

/** Throws what openMessage throws (an As2Error with its MDN disposition); leaves no temp file then. */
export async function openStep(s: Services, entry: LedgerEntry, source: AsyncIterable<Uint8Array>): Promise<LedgerEntry> {
  // A certificate accepted meanwhile (as2 cem accept, another process) is in force for this message.
  await s.refreshCertificates?.();
  const partner = s.config.partners[entry.partner]!;
  let writer: InboxWriter | undefined;
  // Multiple attachments (RFC 6362): one temp file per part, all kept or all discarded.
  const parts: Array<{ writer: InboxWriter; name: string; contentType: string }> = [];
  let cem: { dir: string; contentType: string } | undefined;
  try {
    const opened = await openMessage({
      headers: entry.headers ?? {}, body: source,
      decryptionKeys: s.keys.decryptionKeys,
      // Only the certificates in their window now (CEM rollover: the old one until RespondByDate).
      signerCertificates: signersAt(s.keys.partners[entry.partner], s.now()),
      micAlgorithm: entry.mdnRequest.micAlgorithm as DigestAlgorithm | undefined,
      requireSigned: partner.inbound.requireSigned,
      requireEncrypted: partner.inbound.requireEncrypted,
      limits: { maxInflatedBytes: s.config.receive.maxInflatedBytes, maxAttachments: s.config.receive.maxAttachments },
      rc2WithoutVersion: partner.quirks.rc2WithoutVersion,
      micIncludesHeaders: partner.quirks.compressedMicIncludesHeaders,
      signerValidity: { now: s.now(), messageDate: entry.mdnRequest.date ? new Date(entry.mdnRequest.date) : undefined, enforce: partner.inbound.signerCertificateValidity === "enforce" },
      onPayload: async (info, payload) => {
        // A CEM document (as2-reference E7, E8) is as2kit's own business, not the inbox's: kept
        // under dataDir and read by jobs/cem/receive-cem.ts once the signature has verified.
        if (isCemContentType(info.contentType)) cem = { dir: cemFilesDir(s.config.dataDir, "received", entry.partner), contentType: info.contentType };
        const inbox = cem?.dir ?? inboxOf(s.config, entry.partner);
        writer = await InboxWriter.create(inbox);
        // A CEM document is small: more than MAX_CEM_PAYLOAD_BYTES is refused as it streams, not after it is on disk.
        const source = cem ? limitSize(payload, MAX_CEM_PAYLOAD_BYTES, "a CEM payload") : payload;
        await writer.write(guardSpace(source, inbox, s.config.receive.minFreeBytes));
      },
      onAttachments: async (_info, attachments) => {
        const inbox = inboxOf(s.config, entry.partner);
        for await (const part of attachments) {
          const w = await InboxWriter.create(inbox);
          // A part without a file name is named after the Message-ID and its position.
          parts.push({ writer: w, name: sanitizeFilename(part.filename, `${entry.messageId.replace(/^<|>$/g, "")}-${part.index + 1}`), contentType: part.contentType });
          await w.write(guardSpace(part.body, inbox, s.config.receive.minFreeBytes));
          // Closed (and fsynced) at once: thousands of parts must not hold thousands of descriptors.
          await w.finish();
        }
      },
      // Compress-before-signing waits on disk, not in memory, until its signature is checked.
      spool: (source) => diskSpool(s, entry, source),
    });
    let verified: LedgerEntry;
    let taken: CemTaken | undefined;
    if (parts.length) {
      verified = {
        ...entry, step: "verified", at: s.now().toISOString(), opened: summary(opened),
        parts: parts.map((p) => ({ tmp: p.writer.tmpPath, name: p.name, size: p.writer.size, contentType: p.contentType })),
      };
    } else {
      await writer!.finish();
      if (cem) taken = await takeCemPayload(s, entry, cem.contentType, writer!.tmpPath, opened.signed);
      verified = {
        ...entry, step: "verified", at: s.now().toISOString(),
        tmp: writer!.tmpPath, name: taken ? `${taken.kind}-${safeName(taken.requestId)}.mime` : sanitizeFilename(opened.payload.filename, entry.messageId), opened: summary(opened),
        ...(cem ? { dir: cem.dir } : {}),
      };
    }
    await s.store.received.advance(verified);
    crashPoint("receive:opened");
    if (taken) s.cemTaken?.(taken.kind, entry.partner, taken.requestId);
    return verified;
  } catch (e) {
    await writer?.discard();
    for (const p of parts) await p.writer.discard();
    throw e;
  }
}
