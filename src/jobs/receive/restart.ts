/**
 * AS2 Restart on the receiving side (draft-harding-as2-restart-07; as2-reference E3-E5, E-8).
 *
 * A POST that carries a strong `ETag` is kept as a partial upload keyed by (AS2-From, ETag)
 * (store/restart-partials.ts) as it arrives, fsynced at checkpoints and when the connection
 * breaks. `HEAD` with that ETag answers how many bytes are held. A later POST with
 * `Content-Range: bytes <start>-<end>/<total>` and the same ETag goes on from `start`, which may
 * be at most what is held (a sender told "everything is held" resends the last byte, E4; bytes
 * from `start` on are the same bytes of the same message and are written again); beyond it the
 * answer is 416 with `Content-Range: bytes *\/<held>` (E5). A second transfer on an ETag being
 * written gets 500 (E5). Once all `total` bytes are held, the whole message goes through the
 * normal receive pipeline from the partial file, and this last POST gets its answer (the sync
 * MDN): the exactly-once rules, the MIC and the signature are those of any message. Its bytes
 * then go, but a marker stays until maxAge: a sender whose answer was lost is told "all held",
 * resends the last byte, and gets the recorded MDN as a duplicate (X6).
 */
import { createReadStream } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { crashPoint } from "../crash-point.js";
import { guardSpace } from "../disk-space.js";
import { Partial, PartialWriter, partialsDir, sweepPartials, type PartialMeta } from "../../store/index.js";
import type { As2Config } from "../../config/schema.js";
import { parseDuration } from "../../config/duration.js";

/** The token advertised in EDIINT-Features (the draft's IANA section names none; products use this one). */
export const RESTART_FEATURE = "AS2-Restart";

/** How long a HEAD waits for a transfer that is ending (its connection just broke) to settle its length. */
const HEAD_WAIT_MS = 3_000;

export function restartEnabled(config: As2Config): boolean {
  return config.receive.restart.enabled;
}

export function partialMaxAgeMs(config: As2Config): number {
  return parseDuration(config.receive.restart.maxAge) ?? 86_400_000;
}

/**
 * The strong entity tag of a restartable transfer (E3: `"<id>"`, never `W/`), from ETag or, as
 * some senders spell it on HEAD, If-Match (one tag, not a list or `*`). The quotes are part of it.
 */
export function transferTag(headers: IncomingHttpHeaders): string | undefined {
  for (const name of ["etag", "if-match"] as const) {
    const v = headers[name];
    if (typeof v !== "string") continue;
    const t = v.trim();
    if (/^"[\x21\x23-\x7e]{1,200}"$/.test(t)) return t;
  }
  return undefined;
}

export type RangeRequest = { etag: string; start: number; total: number } | { etag: string; problem: string };

/**
 * A POST's place in its message: Content-Range when there is one (RFC 9110 §14.4), else the
 * whole body from 0 with Content-Length as the total. Undefined when the POST is not
 * restartable (no strong ETag, or neither a range nor a length to know the total by).
 */
export function rangeOf(headers: IncomingHttpHeaders, contentLength: number | undefined): RangeRequest | undefined {
  const etag = transferTag(headers);
  if (!etag) return undefined;
  const cr = headers["content-range"];
  if (cr === undefined) return contentLength === undefined ? undefined : { etag, start: 0, total: contentLength };
  const m = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15})$/.exec(String(cr).trim());
  if (!m) return { etag, problem: `Content-Range "${String(cr).slice(0, 80)}" is not bytes <first>-<last>/<total>` };
  const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!(start <= end && end < total)) return { etag, problem: `Content-Range bytes ${start}-${end}/${total} is not a range of the message` };
  if (contentLength !== undefined && contentLength !== end - start + 1) return { etag, problem: `Content-Length ${contentLength} is not the ${end - start + 1} bytes of Content-Range ${start}-${end}` };
  return { etag, start, total };
}

export type UploadResult =
  /** Every byte is held and the message went through the pipeline (`answered` is what deliver returned). */
  | { kind: "complete" }
  /** Locked by another transfer (E5: 500). */
  | { kind: "locked"; by: string }
  /** The range does not follow what is held (E5: 416, Content-Range bytes *\/held). */
  | { kind: "bad-range"; held: number; why: string }
  /** The body ended (connection broken, or a POST of a part only): `held` bytes kept. */
  | { kind: "partial"; held: number; total: number; broken?: unknown };

export interface Upload {
  config: As2Config;
  now: () => Date;
  from: string;
  messageId: string;
  range: { etag: string; start: number; total: number };
  body: AsyncIterable<Uint8Array>;
  /**
   * Runs the pipeline on the whole message and answers the request; true when the message has
   * an outcome on record (the partial has done its work and goes), false to keep it (busy).
   */
  deliver(whole: AsyncIterable<Uint8Array>, total: number): Promise<boolean>;
}

/** Appends a POST's bytes to its partial; runs the whole message once complete (see the file comment). */
export async function upload(u: Upload): Promise<UploadResult> {
  const p = new Partial(partialsDir(u.config.dataDir), u.from, u.range.etag);
  const lock = await p.tryLock();
  if ("holder" in lock) return { kind: "locked", by: `pid ${lock.holder.owner.pid} on ${lock.holder.owner.host}` };
  try {
    let meta: PartialMeta | undefined = await p.settle();
    if (meta && expired(u.config, meta, u.now())) meta = undefined;
    // A done marker whose message the ledger does not hold as taken (it failed, and is to be
    // processed anew): nothing is held any more; the sender is told so (416, then HEAD: 0).
    if (meta?.done) {
      await p.remove();
      meta = undefined;
    }
    const { start, total } = u.range;
    if (meta && (meta.total !== total || meta.messageId !== u.messageId) && start !== 0) {
      return { kind: "bad-range", held: meta.durable, why: meta.total !== total ? `the transfer is ${meta.total} bytes, not ${total}` : `the transfer is message ${meta.messageId}` };
    }
    const held = meta && meta.total === total && meta.messageId === u.messageId ? meta.durable : 0;
    if (start > held) return { kind: "bad-range", held, why: `bytes from ${start} on, but ${held} are held` };
    const body = guardSpace(u.body, p.part, u.config.receive.minFreeBytes);
    const writer = await PartialWriter.open(p, { from: u.from, etag: u.range.etag, messageId: u.messageId, total, ...(start > 0 && meta ? { created: meta.created } : {}) }, start, u.now());
    let broken: unknown;
    try {
      for await (const chunk of body) {
        if (writer.held + chunk.byteLength > total) throw new Error(`the body goes beyond the ${total} bytes of Content-Range`);
        await writer.write(chunk, u.now);
      }
    } catch (e) {
      broken = e;
    }
    const now = await writer.close(u.now());
    if (broken !== undefined || now < total) return { kind: "partial", held: now, total, ...(broken !== undefined ? { broken } : {}) };
    crashPoint("receive:restart-whole");
    if (await u.deliver(createReadStream(p.part, { highWaterMark: 256 * 1024 }), total)) {
      const m = await p.meta();
      if (m) await p.finish(m, u.now());
    }
    return { kind: "complete" };
  } finally {
    await lock.release();
  }
}

function expired(config: As2Config, m: PartialMeta, now: Date): boolean {
  return Date.parse(m.updated) < now.getTime() - partialMaxAgeMs(config);
}

/**
 * E4: how many bytes of (from, etag) are held, fsynced before they are reported. 0 when none, or
 * when the partial has expired (it is removed then, E5). A transfer still ending (its connection
 * broke a moment ago) is given HEAD_WAIT_MS to settle; one still running reports its last
 * durable mark.
 */
export async function heldBytes(config: As2Config, from: string, etag: string, now: Date): Promise<number> {
  const p = new Partial(partialsDir(config.dataDir), from, etag);
  const first = await p.meta();
  if (!first) return 0;
  const deadline = Date.now() + HEAD_WAIT_MS;
  while ((await p.holder()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const lock = await p.tryLock();
  if ("holder" in lock) return (await p.meta())?.durable ?? 0;
  try {
    const m = await p.settle();
    if (!m) return 0;
    if (expired(config, m, now)) {
      await p.remove();
      return 0;
    }
    return m.durable;
  } finally {
    await lock.release();
  }
}

/** Garbage collection of expired partials (E5); returns how many went. */
export async function collectPartials(config: As2Config, now: Date): Promise<number> {
  return (await sweepPartials(config.dataDir, now.getTime() - partialMaxAgeMs(config))).count;
}

/** EDIINT-Features with AS2-Restart added (RFC 6017 §3: a comma-separated list; other tokens kept). */
export function withRestartFeature(value: string | undefined): string {
  const tokens = (value ?? "").split(",").map((t) => t.trim()).filter(Boolean);
  if (!tokens.includes(RESTART_FEATURE)) tokens.push(RESTART_FEATURE);
  return tokens.join(", ");
}
