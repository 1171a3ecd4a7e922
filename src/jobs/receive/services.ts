/**
 * What every step of the receive pipeline works with: the configuration and keys, the store,
 * a clock, the event sink, and the set of messages this process is working on right now (so
 * that periodic recovery leaves them alone).
 */
import type { As2Config, PartnerConfig } from "../../config/schema.js";
import type { KeyMaterial } from "../../config/keys.js";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { As2Store, LedgerEntry } from "../../store/index.js";

export interface ReceiveEvent {
  time: string;
  event: "message" | "mdn" | "duplicate" | "rejected" | "error" | "mdn-sent" | "mdn-failed" | "recovered" | "partial" | "cem";
  remote?: string;
  partner?: string;
  messageId?: string;
  runId?: string;
  file?: string;
  /** Multiple attachments (RFC 6362): every stored part, `file` being the first. */
  files?: string[];
  bytes?: number;
  disposition?: string;
  status?: number;
  detail?: string;
}

export interface Services {
  config: As2Config;
  keys: KeyMaterial;
  store: As2Store;
  now: () => Date;
  event(e: Omit<ReceiveEvent, "time">): void;
  /** Run IDs this process is working on. */
  active: Set<string>;
  /** Hands an outbound MDN to the delivery loop (after it is persisted). */
  deliver(id: string): Promise<void>;
  /** Before a message is verified: picks up partner certificates changed in the configuration file (CEM, issue 17). */
  refreshCertificates?(): Promise<void>;
  /** A CEM request or response was taken (jobs/cem/receive-cem.ts): the receiver answers by policy. */
  cemTaken?(kind: "request" | "response", partner: string, requestId: string): void;
}

/** The partner's inbox: inbound.inbox, else <dataDir>/inbox/<partner>. */
export function inboxOf(config: As2Config, partnerName: string): string {
  return config.partners[partnerName]?.inbound.inbox ?? join(config.dataDir, "inbox", partnerName);
}

export function partnerOf(s: Services, entry: LedgerEntry): PartnerConfig | undefined {
  return s.config.partners[entry.partner];
}

/** Where an async message's body waits between the 200 and its processing. */
export function spoolPathOf(config: As2Config, runId: string): string {
  return join(config.dataDir, "spool", `in-${runId}.body`);
}

/** Removes an entry's verified temp file(s): the single payload's, and each part's (multiple attachments). */
export async function removeTemps(entry: LedgerEntry): Promise<void> {
  if (entry.tmp) await rm(entry.tmp, { force: true });
  for (const p of entry.parts ?? []) if (p.tmp) await rm(p.tmp, { force: true });
}
