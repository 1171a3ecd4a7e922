/**
 * The `spool` step (async MDNs only, as2-reference X2): the body goes to disk and is fsynced
 * before the 200 that tells the partner we have it, and the ledger says where it is, so a crash
 * after the 200 leaves a message that recovery processes (issue 11 case 4) instead of one that
 * was accepted and forgotten.
 */
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fsyncPath, type LedgerEntry } from "../../store/index.js";
import { crashPoint } from "../crash-point.js";
import { guardSpace } from "../disk-space.js";
import { spoolPathOf, type Services } from "./services.js";

export async function spoolStep(s: Services, entry: LedgerEntry, body: AsyncIterable<Uint8Array>): Promise<LedgerEntry> {
  const spool = spoolPathOf(s.config, entry.runId);
  await mkdir(dirname(spool), { recursive: true, mode: 0o700 });
  try {
    await pipeline(Readable.from(guardSpace(body, spool, s.config.receive.minFreeBytes)), createWriteStream(spool, { mode: 0o600 }));
    await fsyncPath(spool);
  } catch (e) {
    await rm(spool, { force: true });
    throw e;
  }
  const spooled: LedgerEntry = { ...entry, step: "spooled", at: s.now().toISOString(), spool };
  await s.store.received.advance(spooled);
  crashPoint("receive:spooled");
  return spooled;
}
