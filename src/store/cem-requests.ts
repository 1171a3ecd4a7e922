/**
 * CEM requests (draft-meadors-certificate-exchange-14; as2-reference E7, E8) behind the store:
 * the ones this station sent (direction "sent") and the ones partners sent it ("received"),
 * with their state: pending -> accepted | rejected | expired (and "failed" for one of ours that
 * could not be sent). A request is keyed by (direction, partner, requestId) and registered at
 * most once (`register` is create-if-absent), so a resent request (same Message-ID, or a new
 * Message-ID with the same requestId) and a crash between steps leave one record. State changes
 * go through `update`, which applies a function under the record's lock (files) or a row lock
 * (postgres), so two `as2 cem accept` at once cannot both decide.
 */
import { link, mkdir, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFileAtomic, fsyncDir } from "./atomic-file.js";
import { withLock } from "./lock-file.js";

export type CemDirection = "sent" | "received";
export type CemState = "pending" | "accepted" | "rejected" | "expired" | "failed";
export const CEM_STATES: readonly CemState[] = ["pending", "accepted", "rejected", "expired", "failed"];

export interface CemCertificateInfo {
  pem: string;
  subject: string;
  issuerName: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
}

export interface CemResponseInfo {
  status: "Accepted" | "Rejected";
  reason?: string;
  at: string;
  /** The AS2 message that carried the response (sent: ours to the partner; received: theirs). */
  messageId?: string;
  runId?: string;
  /** Received requests: whether our response reached the partner (a positive MDN or 2xx). */
  delivered?: boolean;
  error?: string;
  /** One TrustResponse per usage (a usage as2kit does not apply is Rejected with its reason). */
  trust?: Array<{ usage: string; status: "Accepted" | "Rejected"; reason?: string }>;
}

export interface CemRequestRecord {
  requestId: string;
  direction: CemDirection;
  /** Partner name in the configuration. */
  partner: string;
  partnerAs2Id: string;
  /** The AS2 Message-ID that carried the request, and its job. */
  messageId?: string;
  runId?: string;
  state: CemState;
  createdAt: string;
  updatedAt: string;
  usages: string[];
  respondBy: string;
  responseUrl: string;
  certificate: CemCertificateInfo;
  /** Received requests: the decision's reason (reject) or the policy that decided. */
  reason?: string;
  /** Where the request's raw files are kept (received: the payload as it arrived). */
  file?: string;
  response?: CemResponseInfo;
}

export interface CemFilter {
  direction?: CemDirection;
  partner?: string;
  states?: readonly CemState[];
}

export interface CemRequestStore {
  /** Creates the record unless one with its key exists; returns the stored one either way. */
  register(record: CemRequestRecord): Promise<{ created: boolean; record: CemRequestRecord }>;
  get(direction: CemDirection, partner: string, requestId: string): Promise<CemRequestRecord | undefined>;
  /**
   * Applies `change` to the current record atomically; `change` returns the new record, or
   * undefined to leave it as it is. Returns the record as stored afterwards (undefined: none).
   */
  update(direction: CemDirection, partner: string, requestId: string, change: (r: CemRequestRecord) => CemRequestRecord | undefined): Promise<CemRequestRecord | undefined>;
  list(filter?: CemFilter): Promise<CemRequestRecord[]>;
}

export function matchesFilter(r: CemRequestRecord, f: CemFilter = {}): boolean {
  return (!f.direction || r.direction === f.direction) && (!f.partner || r.partner === f.partner) && (!f.states || f.states.includes(r.state));
}

/** A file name for any requestId: readable when it is tame, hex when not (no path tricks). */
function fileNameOf(requestId: string): string {
  return /^[A-Za-z0-9._@-]{1,120}$/.test(requestId) && !requestId.startsWith(".") ? `${requestId}.json` : `x-${Buffer.from(requestId).toString("hex").slice(0, 200)}.json`;
}

/** Local files: <dataDir>/cem/<direction>/<partner>/<requestId>.json, one JSON document each. */
export class FileCemRequestStore implements CemRequestStore {
  readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, "cem");
  }

  private path(direction: CemDirection, partner: string, requestId: string): string {
    return join(this.dir, direction, partner, fileNameOf(requestId));
  }

  async register(record: CemRequestRecord): Promise<{ created: boolean; record: CemRequestRecord }> {
    const target = this.path(record.direction, record.partner, record.requestId);
    const folder = join(this.dir, record.direction, record.partner);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    // Written whole under a temp name, then linked to its name: link(2) fails when the name
    // exists, so of two registrations (a resend racing the first copy) exactly one creates it.
    const tmp = join(folder, `.reg-${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
    await writeFileAtomic(tmp, `${JSON.stringify(record, null, 2)}\n`);
    try {
      await link(tmp, target);
      await fsyncDir(folder);
      return { created: true, record };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      return { created: false, record: (await this.get(record.direction, record.partner, record.requestId))! };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async get(direction: CemDirection, partner: string, requestId: string): Promise<CemRequestRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.path(direction, partner, requestId), "utf8")) as CemRequestRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async update(direction: CemDirection, partner: string, requestId: string, change: (r: CemRequestRecord) => CemRequestRecord | undefined): Promise<CemRequestRecord | undefined> {
    const target = this.path(direction, partner, requestId);
    return withLock(`${target}.lock`, `CEM request ${requestId}`, async () => {
      const current = await this.get(direction, partner, requestId);
      if (!current) return undefined;
      const next = change(structuredClone(current));
      if (!next) return current;
      await writeFileAtomic(target, `${JSON.stringify(next, null, 2)}\n`);
      return next;
    });
  }

  async list(filter: CemFilter = {}): Promise<CemRequestRecord[]> {
    const out: CemRequestRecord[] = [];
    for (const direction of filter.direction ? [filter.direction] : (["sent", "received"] as const)) {
      const partners = await readdir(join(this.dir, direction)).catch(() => [] as string[]);
      for (const partner of partners) {
        if (filter.partner && partner !== filter.partner) continue;
        for (const name of await readdir(join(this.dir, direction, partner)).catch(() => [] as string[])) {
          if (!name.endsWith(".json") || name.startsWith(".")) continue;
          try {
            const r = JSON.parse(await readFile(join(this.dir, direction, partner, name), "utf8")) as CemRequestRecord;
            if (matchesFilter(r, filter)) out.push(r);
          } catch { /* removed or replaced meanwhile */ }
        }
      }
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }
}

/**
 * Pending requests whose RespondByDate has passed become "expired" (they may still be accepted
 * or rejected, and a late response to one of ours is still recorded).
 */
export async function expireOverdue(store: CemRequestStore, now: Date): Promise<void> {
  for (const r of await store.list({ states: ["pending"] })) {
    if (Date.parse(r.respondBy) > now.getTime()) continue;
    await store.update(r.direction, r.partner, r.requestId, (x) => (x.state === "pending" && Date.parse(x.respondBy) <= now.getTime() ? { ...x, state: "expired", updatedAt: now.toISOString() } : undefined));
  }
}
