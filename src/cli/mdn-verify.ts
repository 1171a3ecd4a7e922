/**
 * `as2 mdn-verify <mdn-file>` (contract §2): prints each check of a saved MDN with its verdict;
 * exit 0 only when none failed (contract §3: 1 for a failed verification, 2 for bad flags).
 */
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { DIGEST_ALGORITHMS, normalizeMicAlgorithm } from "../core/index.js";
import { CHECK_LABELS, checkMdnFile, type MdnCheckReport } from "../jobs/mdn-check.js";
import { isRunId } from "../store/index.js";
import { EXIT, UsageError, loadContext, type GlobalOptions } from "./context.js";

export interface MdnVerifyFlags {
  partner?: string;
  run?: string;
  messageId?: string;
  mic?: string;
  micAlg?: string;
  original?: string;
  headers?: string;
}

async function readInput(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "it is a folder" : err.code === "EACCES" ? "permission denied" : err.message;
    throw new UsageError(`${flag}: cannot read ${path}: ${why}`);
  }
}

/**
 * The original MIC comes from one place: the job (--run, or the job --message-id finds), --mic,
 * or --original. --message-id may go with --mic or --original: then it names the message only.
 */
export function checkFlags(f: MdnVerifyFlags): void {
  const sources = [f.run && "--run", f.mic && "--mic", f.original && "--original"].filter(Boolean);
  if (sources.length > 1) throw new UsageError(`${sources.join(" and ")} exclude each other: each gives the original MIC`);
  if (f.run && f.messageId) throw new UsageError("--run and --message-id exclude each other: the MDN's Original-Message-ID picks the message of the job");
  if (f.run !== undefined && !isRunId(f.run)) throw new UsageError(`--run: "${f.run}" is not a run ID (they look like 20261122T163120123Z-1a2b3c4d5e6f)`);
  if (f.mic !== undefined && f.micAlg === undefined) throw new UsageError("--mic needs --mic-alg (the algorithm the MIC was computed with)");
  if (f.micAlg !== undefined && !normalizeMicAlgorithm(f.micAlg)) throw new UsageError(`--mic-alg: "${f.micAlg}" is not a MIC algorithm (allowed: ${DIGEST_ALGORITHMS.join(", ")}, in any of the spellings sha-256, SHA256, sha2_256)`);
  if (f.micAlg !== undefined && f.mic === undefined && !f.original) throw new UsageError("--mic-alg goes with --mic or --original");
  if (f.mic !== undefined && !/^[A-Za-z0-9+/]+={0,2}$/.test(f.mic.replace(/\s+/g, ""))) throw new UsageError(`--mic: "${f.mic}" is not base64`);
}

export function renderReport(file: string, r: MdnCheckReport): string {
  const out: string[] = [];
  const m = r.mdn;
  out.push(`MDN        ${file}: ${m.signed ? "signed" : "unsigned"}, ${m.form}${m.from || m.to ? `, from ${m.from ?? "?"} to ${m.to ?? "?"}` : ""}`);
  if (m.reportingUa) out.push(`Sent by    ${m.reportingUa}`);
  out.push(`Partner    ${r.signer ?? "unknown (no --partner, and no partner has the MDN's AS2-From)"}`);
  out.push(`Compared   ${r.expected.source === "none" ? "with no original MIC" : `with ${r.expected.detail}`}`);
  out.push("");
  const width = Math.max(...CHECK_LABELS.map(([, l]) => l.length));
  for (const [key, label] of CHECK_LABELS) {
    const c = r.checks[key];
    out.push(`${c.verdict.toUpperCase().padEnd(4)}  ${label.padEnd(width)}  ${c.detail}`);
  }
  const failed = CHECK_LABELS.filter(([k]) => r.checks[k].verdict === "fail").map(([, l]) => l);
  out.push("");
  out.push(r.ok ? "verified: every applicable check passed" : `NOT verified: ${failed.join(", ")} failed`);
  return out.join("\n");
}

export async function mdnVerifyCommand(file: string, flags: MdnVerifyFlags, g: GlobalOptions): Promise<number> {
  checkFlags(flags);
  const ctx = await loadContext(g);
  const mdn = await readInput(file, "<mdn-file>");
  const mdnHeaders = flags.headers ? await readInput(flags.headers, "--headers") : undefined;
  const original = flags.original ? { bytes: await readInput(flags.original, "--original"), name: basename(flags.original) } : undefined;
  const report = await checkMdnFile({
    config: ctx.config, mdn, mdnHeaders, partner: flags.partner, runId: flags.run, messageId: flags.messageId,
    mic: flags.mic ? { base64: flags.mic.replace(/\s+/g, ""), algorithm: flags.micAlg! } : undefined,
    original, micAlgorithm: flags.micAlg, now: new Date(),
  });
  for (const n of report.mdn.notes) ctx.output.warn(n);
  if (g.json) process.stdout.write(`${JSON.stringify({ file, ...report }, null, 2)}\n`);
  else process.stdout.write(`${renderReport(basename(file), report)}\n`);
  return report.ok ? EXIT.OK : EXIT.FAILED;
}
