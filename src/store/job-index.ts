/**
 * The summary index of the job records, so that `as2 status` lists, filters and counts ten
 * million jobs without opening ten million files, and without ever reading the index as one
 * string. The index is a cache of the records (contract §5: <dataDir>/jobs/<runId>.json is the
 * truth): missing or stale, it is rebuilt or refreshed from them.
 *
 * Layout, under <dataDir>/index/jobs/:
 *
 *   <YYYYMMDDTHH>.idx  segments: one per UTC hour of the run ID (= the job's start), one line per
 *                      record save (a JSON array, job-summary.ts), the last line per job winning.
 *                      Before writing the record a save appends an intent line, `["<runId>"]`:
 *                      a save killed between the record and its summary line leaves the intent
 *                      last, and the next read that sums the segment appends the summary from
 *                      the record (the segment changed size, so every read sums it again).
 *                      A job's lines always go to the same segment, so the newest jobs are in the
 *                      newest segments, and a page reads one or two small files, not the index.
 *   catalog.json       per segment: its size and inode when summed, and its counts (jobs, jobs per
 *                      partner/type/state, earliest and latest start, an XOR of run-ID hashes).
 *                      totalRecords and every filter's count come from here; a segment is read only
 *                      when its page is shown, when --since cuts through it, or when it changed
 *                      since it was summed. Any process may rewrite it (it is only a cache: an
 *                      entry counts only while size and inode still match).
 *   .complete          written when a full build has finished; missing, the next read builds.
 *   .stamp             touched after every append: a jobs folder changed later than this was
 *                      written by something that did not append (an older as2kit, records copied
 *                      in or deleted by hand); the next read then reconciles (below).
 *   .rebuild.lock      owner lock (owner-lock.ts) of the one process rebuilding, compacting or
 *                      pruning; its owner is a live process (host, pid, start time, boot ID), so
 *                      however long a build takes the lock is never "stale", and the lock of a
 *                      SIGKILLed builder is taken over at once.
 *
 * Why files and not an embedded database: the only ones that do without a native module
 * downloaded at install time are WebAssembly builds of SQLite that keep the database in memory
 * (and write it whole), or node:sqlite, which Node 20 does not have. Append-only hour segments
 * need no lock to append to (index-segments.ts), and an hour of a busy hub is a few MB.
 *
 * Rebuild and reconcile are one procedure: the records folder is scanned (names only, streamed)
 * and counted per hour with the XOR of their run-ID hashes; each segment whose count or XOR
 * differs from its catalog entry is rebuilt from the records (finished jobs already in it are
 * trusted: a finished job's record is not written again). Each segment is committed on its own,
 * so a build that is killed resumes where it stopped.
 */
import { existsSync, mkdirSync, opendirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { JobRecord } from "./records.js";
import { isRunId } from "./records.js";
import { UNFINISHED_STATES, type JobPage, type JobQuery } from "./job-query.js";
import { summaryOf, toLine, type JobSummary } from "./job-summary.js";
import {
  SEGMENT_RE, appendLine, fileId, intentLine, idHash, readJson, readSegment, replaceSegment, segmentKeyOf, segmentName, segmentStart, summarise,
} from "./index-segments.js";
import { liveHolder, tryOwnerLock } from "./owner-lock.js";
import { Catalog, type CatalogEntry } from "./index-catalog.js";

export { summaryOf, type JobSummary } from "./job-summary.js";

/** Record names kept in memory at once while rebuilding (more: the folder is scanned again per batch). */
const REBUILD_NAME_BUDGET = 1_000_000;
/** How long a reader waits for in-flight saves to touch the stamp before it reconciles. */
const STAMP_GRACE_MS = 200;

export interface PruneVictim {
  record: JobRecord | undefined;
  runId: string;
  bytes: number;
}

export interface JobIndexOptions {
  /** Lines tolerated in a segment beyond four per job (a save is an intent and a summary; a job saves two or three times) before it is compacted. */
  compactSlack?: number;
  /** Called when this process starts a build, and per segment (for progress output). */
  onRebuild?: (e: { segments: number; done: number }) => void;
}

export class JobIndex {
  readonly root: string;
  private readonly catalogFile: string;
  private readonly stampFile: string;
  private readonly completeFile: string;
  private readonly lockFile: string;
  private readonly compactSlack: number;
  private ready = false;

  constructor(indexDir: string, private readonly jobsDir: string, private readonly options: JobIndexOptions = {}) {
    this.root = join(indexDir, "jobs");
    this.catalogFile = join(this.root, "catalog.json");
    this.stampFile = join(this.root, ".stamp");
    this.completeFile = join(this.root, ".complete");
    this.lockFile = join(this.root, ".rebuild.lock");
    this.compactSlack = options.compactSlack ?? 1000;
  }

  /** Made once per process on the write path; again when the folder was deleted meanwhile. */
  private ensureDirs(again = false): void {
    if (!this.ready || again) mkdirSync(this.root, { recursive: true, mode: 0o700 });
    this.ready = true;
  }

  /** Runs a write; when the index folder was deleted meanwhile (to have it rebuilt), makes it again. */
  private writing<T>(fn: () => T): T {
    this.ensureDirs();
    try {
      return fn();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      this.ensureDirs(true);
      return fn();
    }
  }

  private segmentPath(key: string): string {
    return join(this.root, segmentName(key));
  }

  private recordPath(runId: string): string {
    return join(this.jobsDir, `${runId}.json`);
  }

  // ---------------------------------------------------------------- writing

  /**
   * Before a record is written: an intent line in its segment. A save that dies between writing
   * the record and appending its summary (SIGKILL) leaves the intent as its job's last line, and
   * the next read that sums the segment appends the summary from the record. One more short
   * append, not a marker file: creating and removing a file per save cost ten times as much.
   */
  beginSave(runId: string): void {
    this.writing(() => appendLine(this.segmentPath(segmentKeyOf(runId)), intentLine(runId)));
    this.touchStamp();
  }

  /**
   * After the record is written: its summary line, with the stamp touched before and after. A
   * reader that checked every segment trusts the catalog while the stamp has not moved since
   * (query); an append landing after its check moves the stamp after it. (Before as well: so
   * that only a reader checking in the microseconds between the two, and this process dying in
   * them too, could miss the line; and then only until the next save anywhere moves the stamp.)
   */
  append(summary: JobSummary): void {
    this.touchStamp();
    this.writing(() => appendLine(this.segmentPath(segmentKeyOf(summary.runId)), toLine(summary)));
    this.touchStamp();
  }

  /**
   * Appends many summaries, one write per segment and batch (an import, the status benchmark):
   * the same lines as one append() each, without the intent lines. Summaries in run-ID order
   * make the fewest writes.
   */
  appendMany(summaries: Iterable<JobSummary>): void {
    let key = "";
    let lines: string[] = [];
    const flush = () => {
      if (lines.length) this.writing(() => appendLine(this.segmentPath(key), lines.join("")));
      lines = [];
    };
    for (const s of summaries) {
      const k = segmentKeyOf(s.runId);
      if (k !== key || lines.length >= 4096) {
        flush();
        key = k;
      }
      lines.push(toLine(s));
    }
    flush();
    this.touchStamp();
  }

  /**
   * The stamp's mtime, finer than a millisecond (the sub-millisecond part from the monotonic
   * clock): two appends in one millisecond still leave different stamps, which the catalog's
   * "nothing appended since I checked" test relies on.
   */
  private touchStamp(at = Date.now()): void {
    const t = (at + Number(process.hrtime.bigint() % 1_000_000n) / 1e6) / 1000;
    try {
      utimesSync(this.stampFile, t, t);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      writeFileSync(this.stampFile, "", { mode: 0o600 });
      utimesSync(this.stampFile, t, t);
    }
  }

  /**
   * Appends the job's current summary from its record, and again while the record changed
   * meanwhile: the last line is then from a read after every save that came before it.
   */
  private reappend(runId: string): void {
    let record = readJson<JobRecord>(this.recordPath(runId));
    for (let i = 0; record && i < 5; i++) {
      const line = toLine(summaryOf(record));
      appendLine(this.segmentPath(segmentKeyOf(runId)), line);
      const again = readJson<JobRecord>(this.recordPath(runId));
      if (!again || toLine(summaryOf(again)) === line) return;
      record = again;
    }
  }

  // ---------------------------------------------------------------- keeping it fresh

  /** Brings the index up to date: built when missing, dead saves repaired, foreign writes reconciled. */
  async refresh(): Promise<boolean> {
    if (!existsSync(this.jobsDir)) return false;
    this.ensureDirs(true);
    if (!existsSync(this.completeFile)) {
      await this.rebuild(true);
      return true;
    }
    const dirTime = statSync(this.jobsDir).mtimeMs;
    const deadline = Date.now() + STAMP_GRACE_MS;
    // Saves in flight touch the stamp a moment after their record: give them that moment.
    while (this.stampTime() < dirTime) {
      if (Date.now() >= deadline) {
        await this.rebuild(false);
        return true;
      }
      await sleep(5);
    }
    return true;
  }

  private stampTime(): number {
    try {
      return statSync(this.stampFile).mtimeMs;
    } catch {
      return 0;
    }
  }

  /**
   * Runs `fn` holding the rebuild lock. A live holder is waited for (never taken over, however
   * long it takes); a dead one's lock is taken over. `wait: false`: undefined when it is held.
   */
  private async withRebuildLock<T>(fn: () => Promise<T> | T, wait = true): Promise<{ value: T } | undefined> {
    this.ensureDirs();
    for (;;) {
      const lock = await tryOwnerLock(this.lockFile, "rebuilding the job index");
      if (lock.acquired) {
        try {
          return { value: await fn() };
        } finally {
          await lock.release();
        }
      }
      if (!wait) return undefined;
      while (await liveHolder(this.lockFile)) await sleep(100);
    }
  }

  /**
   * Brings every segment in line with the records (see the module comment). `full`: the index was
   * missing or incomplete; otherwise unfinished jobs whose record changed since the stamp are
   * re-read as well.
   */
  async rebuild(full: boolean): Promise<void> {
    await this.withRebuildLock(async () => {
      // Someone else may have done it while this process waited for the lock.
      if (full && existsSync(this.completeFile)) return;
      if (!full && this.stampTime() >= statSync(this.jobsDir).mtimeMs) return;
      const startedAt = Date.now();
      const since = this.stampTime();
      const scan = this.scanRecords();
      const catalog = this.loadCatalog();
      const keys = new Set([...scan.keys.keys(), ...this.segmentKeys()]);
      const stale: string[] = [];
      for (const key of [...keys].sort().reverse()) {
        const sums = this.sumsOf(key, catalog).sums;
        const want = scan.keys.get(key);
        if (!want || !sums || want.n !== sums.n || want.xor !== sums.xor) stale.push(key);
        else if (!full && sums.unfinished) this.rereadChanged(key, since);
      }
      this.options.onRebuild?.({ segments: stale.length, done: 0 });
      let done = 0;
      for (const batch of this.batches(stale, scan)) {
        const names = batch.names ?? this.namesOf(new Set(batch.keys));
        for (const key of batch.keys) {
          this.rebuildSegment(key, names.get(key) ?? [], catalog);
          this.options.onRebuild?.({ segments: stale.length, done: ++done });
          if (done % 64 === 0) {
            this.saveCatalog(catalog);
            await new Promise((r) => setImmediate(r)); // let timers (a receive server's) run
          }
        }
      }
      this.saveCatalog(catalog);
      writeFileSync(this.completeFile, new Date(startedAt).toISOString(), { mode: 0o600 });
      this.touchStamp(startedAt);
      // The single-file index of earlier versions, if any: replaced by this one.
      rmSync(join(this.root, "..", "jobs.idx"), { force: true });
    });
  }

  /** Record names per hour: counted always, kept too while they fit in the budget. */
  private scanRecords(): { keys: Map<string, { n: number; xor: number }>; names?: Map<string, string[]> } {
    const keys = new Map<string, { n: number; xor: number }>();
    let names: Map<string, string[]> | undefined = new Map();
    let kept = 0;
    this.eachRecordName((runId) => {
      const key = segmentKeyOf(runId);
      const k = keys.get(key) ?? { n: 0, xor: 0 };
      k.n++;
      k.xor = (k.xor ^ idHash(runId)) >>> 0;
      keys.set(key, k);
      if (names && ++kept <= REBUILD_NAME_BUDGET) {
        const list = names.get(key);
        if (list) list.push(runId);
        else names.set(key, [runId]);
      } else {
        names = undefined;
      }
    });
    return { keys, names };
  }

  /** The stale segments in batches whose record names fit in the budget. */
  private *batches(stale: string[], scan: ReturnType<JobIndex["scanRecords"]>): Generator<{ keys: string[]; names?: Map<string, string[]> }> {
    if (scan.names) {
      yield { keys: stale, names: scan.names };
      return;
    }
    let batch: string[] = [];
    let count = 0;
    for (const key of stale) {
      const n = scan.keys.get(key)?.n ?? 0;
      if (batch.length && count + n > REBUILD_NAME_BUDGET) {
        yield { keys: batch };
        batch = [];
        count = 0;
      }
      batch.push(key);
      count += n;
    }
    if (batch.length) yield { keys: batch };
  }

  private namesOf(keys: Set<string>): Map<string, string[]> {
    const names = new Map<string, string[]>();
    this.eachRecordName((runId) => {
      const key = segmentKeyOf(runId);
      if (!keys.has(key)) return;
      const list = names.get(key);
      if (list) list.push(runId);
      else names.set(key, [runId]);
    });
    return names;
  }

  /** Streams the record folder's names (never the whole listing as one array). */
  private eachRecordName(visit: (runId: string) => void): void {
    let dir;
    try {
      dir = opendirSync(this.jobsDir, { bufferSize: 1024 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    try {
      for (let d = dir.readSync(); d; d = dir.readSync()) {
        const name = d.name;
        if (name.charCodeAt(0) === 46 || !name.endsWith(".json")) continue; // dot files: temp files, .locks
        const runId = name.slice(0, -5);
        if (isRunId(runId)) visit(runId);
      }
    } finally {
      dir.closeSync();
    }
  }

  /** Unfinished jobs of a segment whose record changed after `since`: appended from the record. */
  private rereadChanged(key: string, since: number): void {
    const seg = readSegment(this.segmentPath(key));
    if (!seg) return;
    for (const s of summarise(seg).summaries) {
      if (!UNFINISHED_STATES.includes(s.state)) continue;
      const m = fileId(this.recordPath(s.runId)) && statSync(this.recordPath(s.runId)).mtimeMs;
      if (m && m >= since) this.reappend(s.runId);
    }
  }

  /** Rewrites a segment from its records (trusting the finished jobs it already holds). */
  private rebuildSegment(key: string, runIds: string[], catalog: Catalog): void {
    const path = this.segmentPath(key);
    replaceSegment(path, (old) => {
      const known = new Map(summarise(old).summaries.map((s) => [s.runId, s]));
      const lines: string[] = [];
      for (const id of runIds.sort()) {
        const k = known.get(id);
        if (k && !UNFINISHED_STATES.includes(k.state)) {
          lines.push(toLine(k));
          continue;
        }
        const r = readJson<JobRecord>(this.recordPath(id));
        if (r && r.runId === id && typeof r.startTime === "string") lines.push(toLine(summaryOf(r)));
      }
      return lines;
    }, (id) => this.reappend(id));
    this.resum(key, catalog);
  }

  private resum(key: string, catalog: Catalog): void {
    const seg = readSegment(this.segmentPath(key));
    if (seg) catalog.set(key, summarise(seg).sums);
    else catalog.delete(key);
  }

  // ---------------------------------------------------------------- the catalog

  private segmentKeys(): string[] {
    const keys: string[] = [];
    for (const name of readdirSync(this.root)) {
      const m = SEGMENT_RE.exec(name);
      if (m) keys.push(m[1]!);
    }
    return keys.sort();
  }

  private loadCatalog(): Catalog {
    return Catalog.load(this.catalogFile);
  }

  private saveCatalog(catalog: Catalog, checkedAt?: number): void {
    catalog.save(checkedAt);
  }

  /**
   * The segment's sums, from the catalog while its size and inode match, else summed now.
   */
  private sumsOf(key: string, catalog: Catalog): { sums?: CatalogEntry; changed: boolean } {
    const id = fileId(this.segmentPath(key));
    if (!id) {
      const had = catalog.delete(key);
      return { changed: had };
    }
    const known = catalog.get(key);
    if (known && known.size === id.size && known.ino === id.ino) return { sums: known, changed: false };
    let seg = readSegment(this.segmentPath(key));
    if (seg?.intents.length) {
      // Saves begun and not finished: in flight (the repair then appends what the save is about
      // to append anyway), or dead between record and index line (the repair is the line).
      for (const id of seg.intents) this.reappend(id);
      seg = readSegment(this.segmentPath(key));
    }
    if (!seg) return { changed: catalog.delete(key) };
    return { sums: catalog.set(key, summarise(seg).sums), changed: true };
  }

  private summariesOf(key: string, cache: Map<string, JobSummary[]>): JobSummary[] {
    let list = cache.get(key);
    if (!list) {
      const seg = readSegment(this.segmentPath(key));
      list = seg ? summarise(seg).summaries : [];
      cache.set(key, list);
    }
    return list;
  }

  // ---------------------------------------------------------------- reading

  /**
   * One page of the list (contract §2 `as2 status`), newest first, with the number of jobs that
   * match. Counts come from the catalog; only the segments that hold the page are read, and
   * those that --since cuts through.
   */
  async query(q: JobQuery): Promise<JobPage> {
    if (!(await this.refresh())) return { totalRecords: 0, records: [] };
    // Read before the segments are checked: an append after this moves the stamp on.
    const stamp = this.stampTime();
    const catalog = this.loadCatalog();
    const cache = new Map<string, JobSummary[]>();
    // Nothing appended or rewritten since a reader checked every segment against the catalog:
    // trust it without a stat per segment (10,000 of them at ten million jobs).
    const trusted = catalog.checkedAt === stamp && stamp > 0;
    const keys = trusted ? catalog.segments().sort().reverse() : this.segmentKeys().reverse();
    const matches = matcher(q);
    const since = q.since?.getTime();
    let changed = false;
    const compact: string[] = [];
    let taken: boolean[] | undefined;
    const counts = keys.map((key) => {
      let s: CatalogEntry | undefined;
      if (trusted) s = catalog.get(key);
      else {
        // Not kept: a first listing after an import sums every segment, and memory stays flat.
        const r = this.sumsOf(key, catalog);
        changed ||= r.changed;
        s = r.sums;
      }
      if (!s || !s.n) return 0;
      if (s.lines > 4 * s.n + this.compactSlack) compact.push(key);
      if (since !== undefined && Date.parse(s.minStart) < since) {
        if (Date.parse(s.maxStart) < since) return 0;
        return this.summariesOf(key, cache).filter(matches).length; // --since cuts through this hour
      }
      if (q.partner === undefined && q.direction === undefined && q.state === undefined) return s.n;
      // Again when a segment summed in this pass brought a new (partner, type, state) key: a
      // filter computed before it would not count that segment's jobs of the new key.
      if (!taken || taken.length < catalog.keyCount) taken = catalog.keyFilter(matches);
      return Catalog.count(s, taken);
    });
    const records: JobSummary[] = [];
    let skip = q.offset;
    for (let i = 0; i < keys.length && records.length < q.length; i++) {
      const n = counts[i]!;
      if (skip >= n) {
        skip -= n;
        continue;
      }
      const rows = this.summariesOf(keys[i]!, cache).filter(matches);
      records.push(...rows.slice(skip, skip + q.length - records.length));
      skip = 0;
    }
    if (changed || (!trusted && catalog.checkedAt !== stamp)) this.saveCatalog(catalog, stamp);
    if (compact.length) await this.compact(compact, catalog);
    return { totalRecords: counts.reduce((a, b) => a + b, 0), records };
  }

  /** Every job's summary, newest first (for small stores and tests: it holds them all). */
  async all(): Promise<JobSummary[]> {
    if (!(await this.refresh())) return [];
    const cache = new Map<string, JobSummary[]>();
    return this.segmentKeys().reverse().flatMap((key) => this.summariesOf(key, cache));
  }

  /** Rewrites segments without their superseded lines, when no one else holds the lock. */
  private async compact(keys: string[], catalog: Catalog): Promise<void> {
    await this.withRebuildLock(() => {
      for (const key of keys) {
        replaceSegment(this.segmentPath(key), (old) => summarise(old).summaries.reverse().map(toLine), (id) => this.reappend(id));
        this.resum(key, catalog);
      }
      this.saveCatalog(catalog);
      this.touchStamp(); // a rewrite: catalogs that trust the old stamp are checked again
    }, false);
  }

  // ---------------------------------------------------------------- pruning

  /**
   * Finished jobs that ended (or, without an end, started) before `cutoff`: each is confirmed
   * from its record (the truth), handed to `visit` (which removes what belongs to it), and then
   * its record and its index line are removed. `dryRun`: visited, nothing removed. Runs under the
   * rebuild lock, one hour at a time.
   */
  async prune(cutoff: number, dryRun: boolean, visit: (v: PruneVictim) => Promise<void>): Promise<void> {
    if (!(await this.refresh())) return;
    const old = (s: { state: JobRecord["state"]; endTime?: string; startTime: string }) =>
      !UNFINISHED_STATES.includes(s.state) && Date.parse(s.endTime ?? s.startTime) < cutoff;
    await this.withRebuildLock(async () => {
      const catalog = this.loadCatalog();
      for (const key of this.segmentKeys()) {
        if (segmentStart(key) >= cutoff) break;
        const seg = readSegment(this.segmentPath(key));
        if (!seg) continue;
        const gone = new Set<string>();
        for (const s of summarise(seg).summaries.filter(old)) {
          const path = this.recordPath(s.runId);
          const record = readJson<JobRecord>(path);
          if (record && !old(record)) continue; // the record says otherwise: it wins
          const bytes = fileId(path)?.size ?? 0;
          await visit({ record, runId: s.runId, bytes });
          if (!dryRun) {
            rmSync(path, { force: true });
            gone.add(s.runId);
          }
        }
        if (gone.size) {
          replaceSegment(this.segmentPath(key), (o) => [...o.rows].filter(([id]) => !gone.has(id)).map(([, row]) => `${row}\n`), (id) => this.reappend(id));
          this.resum(key, catalog);
          this.saveCatalog(catalog);
          this.touchStamp(); // the records folder changed by our hand, not behind the index's back
        }
        await new Promise((r) => setImmediate(r));
      }
    });
  }
}

/** The query's filter as a predicate (queryJobs in job-query.ts is the same, over a list). */
function matcher(q: JobQuery): (s: Pick<JobSummary, "partner" | "type" | "state"> & { startTime?: string }) => boolean {
  const since = q.since?.getTime();
  const type = q.direction === "send" ? "AS2 Send" : q.direction === "receive" ? "AS2 Receive" : undefined;
  return (s) => (q.partner === undefined || s.partner === q.partner)
    && (type === undefined || s.type === type)
    && (q.state === undefined || s.state === q.state)
    && (since === undefined || s.startTime === undefined || Date.parse(s.startTime) >= since);
}
