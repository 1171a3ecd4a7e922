/**
 * The `recover` step: at start-up (and whenever a message is found held by a receiver that is
 * gone), every ledger entry that did not reach `answered` is finished or failed:
 *
 * | stopped at | what recovery does |
 * | --- | --- |
 * | reserved | the body was never whole: the job fails, the entry is released, a resend is processed anew |
 * | spooled  | async, 200 already sent: the spooled body is opened, committed, recorded, the MDN queued |
 * | verified | the payload is complete and verified: it is committed (found by inode if the link was made) |
 * | committed | the MDN is built and recorded |
 * | recorded | the job record is written again; async: the MDN is queued; sync: the resend gets it |
 */
import { createReadStream } from "node:fs";
import { lstat, readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ErrorCodes } from "../../core/index.js";
import { sameOwner, thisProcess, type LedgerEntry } from "../../store/index.js";
import { adoptTemp } from "../inbox.js";
import { failJob, recordEntry } from "./job-record.js";
import { finishFrom, notifierFor } from "./pipeline.js";
import { answerAsync, markAnswered } from "./record.js";
import { removeTemps, spoolPathOf, type Services } from "./services.js";

const exists = (p: string) => lstat(p).then(() => true, () => false);

/** A message that cannot be finished: its job fails and a resend starts from nothing. */
async function abandon(s: Services, entry: LedgerEntry, why: string): Promise<void> {
  await failJob(s, entry, { code: ErrorCodes.INTERRUPTED, message: why });
  if (entry.spool) await rm(entry.spool, { force: true });
  await removeTemps(entry);
  await s.store.received.release(entry.from, entry.messageId, entry.runId);
}

/** Takes the entry over from its dead owner and finishes it. */
export async function recoverEntry(s: Services, held: LedgerEntry): Promise<void> {
  let entry: LedgerEntry = { ...held, owner: thisProcess() };
  if (!(await s.store.received.replace(held.runId, entry, held.owner))) return;
  s.active.add(entry.runId);
  try {
    s.event({ event: "recovered", partner: entry.partner, messageId: entry.messageId, runId: entry.runId, detail: `stopped at "${held.step}" by its receiver (pid ${held.owner.pid})` });
    const notifier = notifierFor(s, entry);
    const partnerGone = !s.config.partners[entry.partner];
    switch (entry.step) {
      case "reserved":
        return abandon(s, entry, "as2 receive stopped before the message was complete; the partner's resend is processed anew");
      case "spooled":
        if (partnerGone || !entry.spool || !(await exists(entry.spool))) {
          return abandon(s, entry, `as2 receive stopped after accepting the message, and ${partnerGone ? `partner "${entry.partner}" is no longer configured` : "its spooled body is gone"}`);
        }
        await settle(s, await finishFrom(s, entry, createReadStream(entry.spool), undefined, notifier));
        return;
      case "verified":
        if (entry.tmp && (await exists(entry.tmp))) {
          entry = { ...entry, tmp: await adoptTemp(entry.tmp) };
          await s.store.received.advance(entry);
        }
        if (entry.parts?.length) {
          // Multiple attachments: every part's temp file is adopted (a part linked before the
          // crash keeps its inode through the rename, so commit still finds it: commit.ts).
          const parts = [];
          for (const p of entry.parts) parts.push(await exists(p.tmp) ? { ...p, tmp: await adoptTemp(p.tmp) } : p);
          entry = { ...entry, parts };
          await s.store.received.advance(entry);
        }
        await settle(s, await finishFrom(s, entry, undefined, undefined, notifier));
        return;
      case "committed":
        await settle(s, await finishFrom(s, entry, undefined, undefined, notifier));
        return;
      case "recorded": {
        await recordEntry(s, entry);
        if (entry.spool) await rm(entry.spool, { force: true });
        // The record step removes the parts' temp files after `recorded`; a crash in between leaves them.
        await removeTemps(entry);
        const url = entry.mdnRequest.wanted ? entry.mdnRequest.asyncUrl : undefined;
        if (url) await answerAsync(s, entry, url);
        else await markAnswered(s, entry, { delivered: false });
        return;
      }
      case "answered":
        return;
    }
  } finally {
    s.active.delete(entry.runId);
  }
}

/** A sync message finished by recovery: its connection is gone; the resend gets the MDN. */
async function settle(s: Services, outcome: Awaited<ReturnType<typeof finishFrom>>): Promise<void> {
  if (outcome.kind === "answer") await markAnswered(s, outcome.entry, { delivered: false });
}

/**
 * Every unfinished message whose receiver is gone (at start-up: all of them but those of other
 * live receivers on the same data folder). Returns how many were recovered.
 */
export async function recoverAll(s: Services): Promise<number> {
  const unfinished = await s.store.received.unfinished();
  let n = 0;
  for (const e of unfinished) {
    // This process's own entries count too when no request is working on them (one whose
    // record step failed on a full disk, say): nothing else would ever finish them.
    try {
      if (s.active.has(e.runId) || (!sameOwner(e.owner, thisProcess()) && (await s.store.alive(e.owner)))) continue;
      await recoverEntry(s, e);
      n++;
    } catch (err) {
      s.event({ event: "error", partner: e.partner, messageId: e.messageId, runId: e.runId, detail: `recovery failed: ${(err as Error).message}` });
    }
  }
  return n;
}

/** Spooled bodies and signed parts that no unfinished message refers to (a crash between spool and ledger write). */
export async function sweepSpool(s: Services): Promise<number> {
  const dir = dirname(spoolPathOf(s.config, "x"));
  const names = await readdir(dir).catch(() => [] as string[]);
  if (!names.length) return 0;
  const live = new Set((await s.store.received.unfinished()).map((e) => e.runId));
  let removed = 0;
  for (const name of names) {
    const m = /^(?:in-(.+)\.body|signed-(.+)-[0-9a-f]+\.part)$/.exec(name);
    const runId = m?.[1] ?? m?.[2];
    if (!runId || live.has(runId)) continue;
    await rm(join(dir, name), { force: true });
    removed++;
  }
  return removed;
}
