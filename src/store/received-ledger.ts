/**
 * The received-message ledger: one entry per (AS2-From, normalised Message-ID), taken before any
 * work is done on a message and moved through the receive pipeline's named steps. It is at once
 * the reservation (a concurrent copy finds it and waits), the duplicate index (a resend finds the
 * MDN that was answered, RFC 4130 §5.5 / as2-reference X6) and the recovery log (a restart finds
 * every message that did not reach `answered`, and where it stopped).
 *
 * The invariant the ordering protects: an entry at `recorded` or later with outcome "stored"
 * implies the file is committed in the inbox; a file committed in the inbox implies an entry that
 * a resend finds (at `verified`, `committed` or later, which recovery completes before answering
 * anything).
 */
import { createHash, randomBytes } from "node:crypto";
import { link, mkdir, open, opendir, readFile, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { normalizeMessageId } from "../core/message/as2-name.js";
import { fsyncDir, writeFileAtomic } from "./atomic-file.js";
import { withLock } from "./lock-file.js";
import { isAlive, sameOwner, type Owner } from "./process-owner.js";

/** The pipeline's durable marks, in order (README "Receive pipeline"). */
export const LEDGER_STEPS = ["reserved", "spooled", "verified", "committed", "recorded", "answered"] as const;
export type LedgerStep = (typeof LEDGER_STEPS)[number];

export function stepIndex(s: LedgerStep): number {
  return LEDGER_STEPS.indexOf(s);
}

/** The MDN as answered: header list and base64 body (the exact bytes a resend gets back). */
export interface StoredMdn {
  headers: Array<{ name: string; value: string }>;
  body: string;
}

/** What the MDN must say, fixed at arrival so that recovery can still build it. */
export interface MdnRequest {
  /** Disposition-Notification-To was present. */
  wanted: boolean;
  signed: boolean;
  /** Receipt-Delivery-Option: async. */
  asyncUrl?: string;
  micAlgorithm?: string;
  micToken?: string;
  subject?: string;
  date?: string;
  to: string;
}

/** What opening the message found, kept for the MDN and the job record. */
export interface OpenedSummary {
  filename?: string;
  size: number;
  mic: { base64: string; algorithm: string };
  signed: boolean;
  encrypted: boolean;
  compressed: boolean;
  cipher?: string;
  signature?: string;
  warnings: string[];
}

/** One attachment of a multiple-attachments message (LedgerEntry.parts). */
export interface LedgerPart {
  tmp: string;
  name: string;
  size: number;
  contentType: string;
  /** committed: where the part is; absent when whenExists "skip" kept an existing file. */
  file?: string;
  /** append mode: the target's size before this part was appended (see LedgerEntry.appendAt). */
  appendAt?: number;
}

export interface LedgerEntry {
  from: string;
  messageId: string;
  runId: string;
  partner: string;
  owner: Owner;
  step: LedgerStep;
  /** When the step was reached. */
  at: string;
  mdnRequest: MdnRequest;
  /** spooled: the body on disk, and the request headers (without credentials) to open it again. */
  spool?: string;
  headers?: Record<string, string>;
  /** verified: the complete, verified payload in the inbox temp folder, and the name it asks for. */
  tmp?: string;
  name?: string;
  /** verified: the folder the payload is committed to, when not the partner's inbox (a CEM document, issue 17). */
  dir?: string;
  opened?: OpenedSummary;
  /**
   * verified, multiple attachments (RFC 6362): every part's temp file and the name it asks for,
   * in message order (then `tmp` and `name` are unset). committed: each stored part's `file`.
   * All parts are stored or none (receive/commit.ts).
   */
  parts?: LedgerPart[];
  /** append mode: the target's size before the append, so recovery can redo it exactly. */
  appendAt?: number;
  /** committed: where the payload is; absent when whenExists "skip" kept an existing file. */
  file?: string;
  /** recorded: the outcome and the MDN answered (absent when none was requested). */
  outcome?: "stored" | "skipped" | "failed";
  error?: { code: string; message: string; disposition?: string };
  mdn?: StoredMdn;
}

export type Reservation = { reserved: true; entry: LedgerEntry } | { reserved: false; entry: LedgerEntry };

/**
 * The ledger as the pipeline sees it. The files backend below is the default; a shared database
 * implements the same contract (a unique key on (from, messageId), compare-and-set on runId).
 */
export interface ReceivedLedger {
  /** Takes (from, messageId) atomically for a new entry; or returns the entry that holds it. */
  reserve(entry: LedgerEntry): Promise<Reservation>;
  get(from: string, messageId: string): Promise<LedgerEntry | undefined>;
  /**
   * Writes the entry's new step; only the run that holds the entry calls this. `durable: false`
   * for marks recovery can do without (`committed`, `answered`: see the pipeline's steps).
   */
  advance(entry: LedgerEntry, options?: { durable?: boolean }): Promise<void>;
  /**
   * Replaces the entry held by `expectRunId` (a failed message being sent again, or a dead
   * owner's work taken over), atomically; false when someone else changed it first. Taking a run
   * over (the same runId, another owner) succeeds only while the current owner is not alive: of
   * several processes that found the same dead receiver's entry (the workers of one server,
   * receive.workers), exactly one recovers it, and a live one's work is never taken. With
   * `expectOwner`, also only while that owner holds it: two nodes taking over one dead node's
   * entry (same run ID) cannot both succeed.
   */
  replace(expectRunId: string, entry: LedgerEntry, expectOwner?: Owner): Promise<boolean>;
  /** Removes the entry if `runId` still holds it: the message left nothing behind, a resend starts anew. */
  release(from: string, messageId: string, runId: string): Promise<void>;
  /** Entries that have not reached `answered`, for recovery. */
  unfinished(): Promise<LedgerEntry[]>;
  /**
   * Retention: removes the entries of messages answered before `before` (ms); never one that has
   * not reached `answered`. The caller keeps them for the partners' resend window. `dryRun`: only counted.
   */
  pruneAnswered(before: number, dryRun?: boolean): Promise<{ count: number; bytes: number }>;
}

/** How long a marker without its entry is left alone (see `unfinished`). */
const MARKER_GRACE_MS = 60_000;

async function youngerThan(path: string, ms: number): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  return !!st && Date.now() - st.mtimeMs < ms;
}

export class FileReceivedLedger implements ReceivedLedger {
  private readonly dir: string;
  private readonly pendingDir: string;
  private ready: Promise<void> | undefined;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "index", "received");
    this.pendingDir = join(dataDir, "index", "pending");
  }

  private ensureDirs(): Promise<void> {
    return (this.ready ??= Promise.all([
      mkdir(this.dir, { recursive: true, mode: 0o700 }),
      mkdir(this.pendingDir, { recursive: true, mode: 0o700 }),
    ]).then(() => undefined));
  }

  private key(from: string, messageId: string): string {
    return createHash("sha256").update(`${from}\u0000${normalizeMessageId(messageId)}`).digest("hex");
  }

  private path(from: string, messageId: string): string {
    return join(this.dir, this.key(from, messageId));
  }

  /** A marker per unfinished run, so that recovery lists only the work in flight. */
  private marker(e: Pick<LedgerEntry, "from" | "messageId" | "runId">): string {
    return join(this.pendingDir, `${this.key(e.from, e.messageId)}.${e.runId}`);
  }

  async get(from: string, messageId: string): Promise<LedgerEntry | undefined> {
    return this.read(this.path(from, messageId));
  }

  private async read(path: string): Promise<LedgerEntry | undefined> {
    try {
      return JSON.parse(await readFile(path, "utf8")) as LedgerEntry;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  /** The entry, complete (and fsynced when `durable`), in a temp file beside its place. */
  private async staged(entry: LedgerEntry, durable = true): Promise<string> {
    const tmp = join(this.dir, `.${this.key(entry.from, entry.messageId)}.${randomBytes(6).toString("hex")}.tmp`);
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(JSON.stringify(entry));
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  }

  async reserve(entry: LedgerEntry): Promise<Reservation> {
    await this.ensureDirs();
    const path = this.path(entry.from, entry.messageId);
    // The marker first: a reservation without a marker would be invisible to recovery.
    await (await open(this.marker(entry), "w", 0o600)).close();
    // Not fsynced (issue 14: two fsyncs per message saved): a reservation lost in a crash is a
    // message that had no effect yet - no file, no answer - and its resend is simply new. The
    // first mark that matters outside (`spooled` before an async 200, `verified` before the
    // inbox name) is durable, and replaces this entry whole.
    const tmp = await this.staged(entry, false);
    try {
      // link() fails with EEXIST when the name is taken: an atomic test-and-set that also never
      // shows a reader an empty or half-written entry (an O_EXCL create would, until written).
      await link(tmp, path);
      return { reserved: true, entry };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      await rm(this.marker(entry), { force: true });
      const holder = await this.read(path);
      // Released between our link and our read: try again.
      return holder ? { reserved: false, entry: holder } : this.reserve(entry);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async advance(entry: LedgerEntry, options: { durable?: boolean } = {}): Promise<void> {
    await writeFileAtomic(this.path(entry.from, entry.messageId), JSON.stringify(entry), 0o600, options.durable !== false);
    if (entry.step === "answered") await rm(this.marker(entry), { force: true });
  }

  async replace(expectRunId: string, entry: LedgerEntry, expectOwner?: Owner): Promise<boolean> {
    await this.ensureDirs();
    const path = this.path(entry.from, entry.messageId);
    return withLock(`${path}.lock`, `the ledger entry of ${entry.messageId}`, async () => {
      const current = await this.read(path);
      if (current && current.runId !== expectRunId) return false;
      if (current && expectOwner && !sameOwner(current.owner, expectOwner)) return false;
      if (current && current.runId === entry.runId && !sameOwner(current.owner, entry.owner) && isAlive(current.owner)) return false;
      if (entry.step !== "answered") await (await open(this.marker(entry), "w", 0o600)).close();
      const tmp = await this.staged(entry);
      await rename(tmp, path);
      await fsyncDir(this.dir);
      if (current && current.runId !== entry.runId) await rm(this.marker(current), { force: true });
      return true;
    });
  }

  async release(from: string, messageId: string, runId: string): Promise<void> {
    const path = this.path(from, messageId);
    await withLock(`${path}.lock`, `the ledger entry of ${messageId}`, async () => {
      const current = await this.read(path);
      if (current?.runId === runId) {
        await rm(path, { force: true });
        await fsyncDir(this.dir);
      }
    });
    await rm(this.marker({ from, messageId, runId }), { force: true });
  }

  async unfinished(): Promise<LedgerEntry[]> {
    await this.ensureDirs();
    const out: LedgerEntry[] = [];
    for (const name of await readdir(this.pendingDir)) {
      const m = /^([0-9a-f]{64})\.(.+)$/.exec(name);
      if (!m) continue;
      const entry = await this.read(join(this.dir, m[1]!));
      // A marker whose run no longer holds the entry (released, or replaced by a resend) is stale.
      if (!entry || entry.runId !== m[2] || entry.step === "answered") {
        // A marker is made just before its entry (reserve, replace): another process's marker
        // that is young may belong to a reservation in progress, and must stay.
        if (!entry && (await youngerThan(join(this.pendingDir, name), MARKER_GRACE_MS))) continue;
        await rm(join(this.pendingDir, name), { force: true });
        continue;
      }
      out.push(entry);
    }
    return out;
  }

  /**
   * Duplicate entries of messages answered before `before` (ms), removed (retention, `as2
   * prune`): a resend of one of them would be taken as a new message, so the caller keeps them
   * for at least the partners' resend window. Never an entry that has not reached `answered` (its
   * message is in progress or waits for recovery). `dryRun`: only counted.
   */
  async pruneAnswered(before: number, dryRun = false): Promise<{ count: number; bytes: number }> {
    const out = { count: 0, bytes: 0 };
    let dir;
    try {
      dir = await opendir(this.dir, { bufferSize: 1024 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
      throw e;
    }
    for await (const d of dir) {
      if (!/^[0-9a-f]{64}$/.test(d.name)) continue;
      const path = join(this.dir, d.name);
      const entry = await this.read(path).catch(() => undefined);
      if (!entry || entry.step !== "answered" || !(Date.parse(entry.at) < before)) continue;
      // Under the entry's lock, re-read: a resend may have replaced it meanwhile.
      const removed = await withLock(`${path}.lock`, `the ledger entry of ${entry.messageId}`, async () => {
        const again = await this.read(path);
        if (!again || again.runId !== entry.runId || again.step !== "answered") return 0;
        const { size } = await stat(path);
        if (!dryRun) await rm(path, { force: true });
        return size;
      });
      if (removed) {
        out.count++;
        out.bytes += removed;
      }
    }
    return out;
  }
}
