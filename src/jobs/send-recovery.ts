/**
 * What the send side does about jobs whose process is gone (issue 11 case 6): a job killed
 * mid-send held its run lock until it died; the next `as2 send`, `as2 status` or `as2 receive`
 * finds the lock's owner dead, records the job INTERRUPTED (the file in flight INTERRUPTED, the
 * others as they were) and removes its spool files. And when a `--restart` ends, the job it
 * restarted takes over the outcomes of the files it resent, with a pointer to the restart, so
 * the original record tells the truth too.
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCodes } from "../core/errors.js";
import { replayJournal, removeJournal } from "./send-journal.js";
import { addWarnings, jobStateOf, setFileStatus, type As2Store, type JobRecord } from "../store/index.js";

/** Spool files of a send job: <dataDir>/spool/<runId>.<i>.body, but those in `keep`. */
async function removeSpool(dataDir: string, runId: string, keep: ReadonlySet<string> = new Set()): Promise<void> {
  const dir = join(dataDir, "spool");
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(`${runId}.`) && !keep.has(join(dir, n))).map((n) => rm(join(dir, n), { force: true })));
}

/**
 * AS2 Restart: the built messages of files a dead job was sending with restart, kept for
 * `as2 send --restart`, which resumes them (send-job.ts resumedMessage); as2 prune removes them
 * with the job's other spool leftovers.
 */
function resumable(r: JobRecord | undefined): Set<string> {
  const open = new Set((r?.files ?? []).filter((f) => f.status !== "SUCCESS").map((f) => f.as2MessageId));
  return new Set((r?.sendDetails ?? []).filter((d) => d.resume && open.has(d.as2MessageId)).map((d) => d.resume!.spool));
}

/** Settles every send job whose process died while running it; returns their run IDs. */
export async function settleDeadSendJobs(store: As2Store, dataDir: string, now = new Date()): Promise<string[]> {
  const settled: string[] = [];
  for (const runId of await store.locks.staleRuns()) {
    const record = await store.jobs.load(runId);
    if (record?.type === "AS2 Send" && (record.state === "ONGOING" || record.state === "NOT_STARTED")) {
      await store.jobs.update(runId, async (r) => {
        // Marks that reached the journal but not the record (a power loss: send-journal.ts).
        await replayJournal(dataDir, r);
        const why = `the as2 send process (pid ${r.pid} on ${r.host}) ended without finishing the job`;
        for (const f of r.files) {
          if (f.status !== "ONGOING") continue;
          setFileStatus(f, "INTERRUPTED");
          f.error = { code: ErrorCodes.ABORTED, message: why };
        }
        r.state = jobStateOf(r.files);
        if (r.state === "ONGOING") r.state = "INTERRUPTED"; // files NOT_STARTED only: the job still did not finish
        // Killed after its last file was recorded: every file has its outcome; only the job was not settled.
        if (r.state !== "SUCCESS" && r.state !== "AWAITING_MDN") r.error = { code: ErrorCodes.ABORTED, message: why };
        r.endTime = now.toISOString();
        r.durationMs = now.getTime() - Date.parse(r.startTime);
        addWarnings(r, `${why}; recorded INTERRUPTED at ${now.toISOString()} (as2 send --restart ${runId} sends what did not succeed)`);
      });
      settled.push(runId);
    }
    await removeSpool(dataDir, runId, resumable(await store.jobs.load(runId).catch(() => undefined)));
    await removeJournal(dataDir, runId);
    await store.locks.clear(runId);
  }
  return settled;
}

/**
 * A restart's outcomes, carried back into the job it restarted: each file it resent takes the
 * restart's state, and the original job's state follows from its files.
 */
export async function settleOriginal(store: As2Store, restart: JobRecord, now = new Date()): Promise<void> {
  if (!restart.restartOf || !(await store.jobs.load(restart.restartOf))) return;
  await store.jobs.update(restart.restartOf, (r) => {
    // The restart resent each file under its Message-ID; a file the original never started had
    // none, and is matched by its path (one to one: a job may name the same file twice).
    const unmatched = [...restart.files];
    for (const f of r.files) {
      if (f.status === "SUCCESS") continue;
      const at = unmatched.findIndex((x) => x.name === f.name && (!f.as2MessageId || x.as2MessageId === f.as2MessageId));
      if (at < 0) continue;
      const again = unmatched.splice(at, 1)[0]!;
      if (again.status === "NOT_STARTED") continue;
      if (!f.as2MessageId && again.as2MessageId) f.as2MessageId = again.as2MessageId;
      setFileStatus(f, again.status);
      if (again.error) f.error = again.error;
      else delete f.error;
    }
    r.restartedBy = restart.runId;
    r.state = jobStateOf(r.files);
    if (r.state === "ONGOING") r.state = "INTERRUPTED";
    if (r.state === "SUCCESS" || r.state === "AWAITING_MDN") delete r.error;
    r.endTime = now.toISOString();
    r.durationMs = now.getTime() - Date.parse(r.startTime);
  });
}
