/**
 * `as2 send` (contract §2): parse the flags, resolve files and profile, run the send job, render.
 * Exit codes (contract §3): 0 all confirmed (or accepted, async), 1 failed, 2 usage/config,
 * 3 partial, 130/143 interrupted.
 */
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { mkdir, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { randomBytes } from "node:crypto";
import { Headers, ascii, buildMessage, buildRelated, chain, formatHeaderBlock, generateMessageId, relatedBoundaryToken } from "../core/index.js";
import type { PostSpec } from "../transport/index.js";
import { loadKeyMaterial } from "../config/keys.js";
import { describeOwner, isRunId, newRunId, openStore, type JobRecord, type JobRecordStore } from "../store/index.js";
import { settleDeadSendJobs } from "../jobs/send-recovery.js";
import { expiryWarnings } from "../jobs/cert-expiry.js";
import { applyOverrides, buildOptionsFor, postSpecFor, type MessageOptions, type SendOverrides } from "../jobs/send-profile.js";
import { checkReadable, contentTypeFor, filesInDir } from "../jobs/source-files.js";
import { runSendJob, waitForMdns, type SendFile } from "../jobs/send-job.js";
import { partnerTakesAttachments } from "../jobs/multiple-attachments.js";
import { Output, formatBytes } from "./output.js";
import { EXIT, UsageError, loadContext, type GlobalOptions } from "./context.js";

export interface SendFlags extends SendOverrides {
  partner?: string;
  dir?: string;
  pattern?: string;
  deleteSource?: boolean;
  archiveDir?: string;
  compress?: string | false;
  waitMdn?: string;
  rerun?: string;
  restart?: string;
  dryRun?: boolean;
  out?: string;
  multipleAttachments?: boolean;
}

function seconds(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} takes a number of seconds greater than 0, not "${v}"`);
  return n;
}

async function selectFiles(args: string[], flags: SendFlags, cwd: string): Promise<SendFile[]> {
  const files: SendFile[] = args.map((f) => ({ path: resolve(cwd, f) }));
  if (flags.pattern !== undefined && flags.dir === undefined) throw new UsageError("--pattern needs --dir");
  if (flags.dir !== undefined) files.push(...(await filesInDir(resolve(cwd, flags.dir), flags.pattern ?? "*")).map((path) => ({ path })));
  return files;
}

async function fromEarlierJob(store: JobRecordStore, where: string, flags: SendFlags): Promise<{ record: JobRecord; files: SendFile[] }> {
  const runId = (flags.rerun ?? flags.restart)!;
  const flag = flags.rerun ? "--rerun" : "--restart";
  let record: JobRecord | undefined;
  try {
    record = await store.load(runId);
  } catch (e) {
    throw new UsageError(`${flag} ${runId}: ${(e as Error).message}`);
  }
  if (!record) throw new UsageError(`${flag} ${runId}: no such job in ${where}`);
  if (record.type !== "AS2 Send") throw new UsageError(`${flag} ${runId}: that job is an ${record.type}, not a send`);
  if (flags.partner && flags.partner !== record.partner) throw new UsageError(`${flag} ${runId}: that job sent to ${record.partner}, not ${flags.partner}`);
  const files = flags.rerun
    ? record.files.map((f) => ({ path: f.name }))
    // Restart: only what did not succeed, under its original Message-ID (contract §2).
    : record.files.filter((f) => f.status !== "SUCCESS").map((f) => {
      // A transfer the dead job began with AS2 Restart: resumed from its kept message.
      const resume = f.as2MessageId ? record.sendDetails?.find((d) => d.as2MessageId === f.as2MessageId)?.resume : undefined;
      return { path: f.name, messageId: f.as2MessageId, ...(resume ? { resume } : {}) };
    });
  return { record, files };
}

const COMPRESSION_ORDERS = ["before-signing", "after-signing"];

/** Signals closer together than this count as one (see the SIGINT/SIGTERM handler). */
const SIGNAL_BURST_MS = 500;

/**
 * --compress takes an optional order; commander would take a file name after it for the order,
 * so anything that is not an order goes back to the files.
 */
function compressFlag(v: string | boolean | undefined, args: string[]): string | false | undefined {
  if (v === undefined || v === false) return v;
  if (v === true) return "before-signing";
  if (COMPRESSION_ORDERS.includes(v) || !existsSync(v)) return v; // a misspelt order gets the schema's message
  args.unshift(v);
  return "before-signing";
}

export async function sendCommand(args: string[], flags: SendFlags, g: GlobalOptions): Promise<number> {
  const ctx = await loadContext(g);
  const out = ctx.output;
  const shared = openStore(ctx.config);
  const store = shared.jobs;
  // Jobs whose process died mid-run are recorded INTERRUPTED before anything reads them.
  for (const id of await settleDeadSendJobs(shared, ctx.config.dataDir)) out.warn(`job ${id} had stopped without finishing (its process is gone): recorded INTERRUPTED`);
  const compress = compressFlag(flags.compress, args);
  if ((flags.rerun || flags.restart) && args.length + (flags.dir ? 1 : 0) > 0) throw new UsageError("--rerun/--restart send the files of the earlier job; do not name files as well");
  if (flags.rerun && flags.restart) throw new UsageError("use --rerun or --restart, not both");
  if (flags.out && !flags.dryRun) throw new UsageError("--out goes with --dry-run");
  if (flags.deleteSource && flags.archiveDir) throw new UsageError("use --delete-source or --archive-dir, not both");

  let files: SendFile[];
  let partnerName = flags.partner;
  let earlier: JobRecord | undefined;
  const runId = newRunId(new Date());
  const locks: Array<() => Promise<void>> = [];
  if (!flags.dryRun) {
    const own = await shared.locks.acquire(runId, "run");
    if (own.acquired) locks.push(own.release);
  }
  try {
    if (flags.rerun || flags.restart) {
      // The earlier job's lock first, so that two restarts of one job never both send its files
      // (issue 11 case 2): the second one finds the lock held and exits 2.
      const earlierId = (flags.rerun ?? flags.restart)!;
      const flag = flags.rerun ? "--rerun" : "--restart";
      if (!isRunId(earlierId)) throw new UsageError(`${flag} ${earlierId}: not a run ID`);
      if (!flags.dryRun) {
        const held = await shared.locks.acquire(earlierId, `${flags.rerun ? "rerun" : "restart"} ${runId}`);
        if (!held.acquired) {
          const h = held.holder;
          const by = h.what?.startsWith("re") ? `being ${h.what.startsWith("rerun") ? "rerun" : "restarted"} by ${describeOwner(h.owner)} (job ${h.what.split(" ")[1]})` : `being run by ${describeOwner(h.owner)}`;
          throw new UsageError(`${flag} ${earlierId}: that job is ${by} since ${h.since}; wait for it to end (as2 status ${earlierId} --wait <seconds>)`);
        }
        locks.push(held.release);
      }
      const e = await fromEarlierJob(store, shared.where, flags);
      earlier = e.record;
      files = e.files;
      partnerName ??= e.record.partner;
      if (!files.length) {
        out.log(`nothing to restart: every file of ${e.record.runId} succeeded`);
        if (g.json) process.stdout.write(`${JSON.stringify({ restartOf: e.record.runId, files: [] }, null, 2)}\n`);
        return EXIT.OK;
      }
    } else {
      files = await selectFiles(args, flags, process.cwd());
      if (!files.length) throw new UsageError(flags.dir ? `no file in ${flags.dir} matches ${flags.pattern ?? "*"}` : "name the files to send, or --dir and --pattern");
    }
    if (!partnerName) throw new UsageError("--partner is required");
    const unreadable = await checkReadable(files.map((f) => f.path));
    if (unreadable.length) throw new UsageError(`cannot send:\n  ${unreadable.join("\n  ")}`);

    const partner = applyOverrides(ctx.config, partnerName, {
      sign: flags.sign, encrypt: flags.encrypt, compress, mdn: flags.mdn, mdnMode: flags.mdnMode,
      micAlg: flags.micAlg, subject: flags.subject, contentType: flags.contentType,
    });
    if (flags.micAlg !== undefined && partner.sign !== false && partner.mdn.request !== "none" && flags.micAlg !== partner.sign) {
      // as2-reference M2 (RFC 4130 §7.3.1): a signed message's MIC uses the signing digest.
      throw new UsageError(`--mic-alg ${flags.micAlg}: a signed message's MIC uses its signing digest (${partner.sign}); use --sign ${flags.micAlg}, or --no-sign`);
    }
    // RFC 6362: a --rerun/--restart of a multiple-attachments job sends its files as one message again.
    const earlierMultiple = !!earlier?.sendDetails?.some((d) => d.files?.length);
    if (flags.restart && flags.multipleAttachments && !earlierMultiple) {
      // Its files went as separate messages, each with its own Message-ID: one message under the
      // first ID would be taken for a resend of that file alone (RFC 6017 duplicate check).
      throw new UsageError(`--restart ${flags.restart} resends each message as it was sent; its files were separate messages, so --multiple-attachments cannot group them (use --rerun, which gives new Message-IDs)`);
    }
    const multiple = !!flags.multipleAttachments || earlierMultiple;
    if (multiple) {
      const verdict = await partnerTakesAttachments(store, partnerName, partner);
      if (!verdict.allowed) {
        throw new UsageError(`--multiple-attachments: ${partnerName} is not known to take several files in one message (${verdict.reason}); set partners.${partnerName}.multipleAttachments to true if it does (RFC 6362), or send the files as separate messages`);
      }
    }
    const waitMdn = seconds(flags.waitMdn, "--wait-mdn");
    if (waitMdn !== undefined && partner.mdn.request !== "none" && partner.mdn.destination === "email") {
      throw new UsageError("--wait-mdn: this partner's MDNs go to an email address (mdn.destination \"email\"), which as2 cannot watch");
    }
    if (waitMdn !== undefined && (partner.mdn.request === "none" || partner.mdn.mode === "sync")) out.warn(`--wait-mdn has no effect: ${partner.mdn.request === "none" ? "no MDN is requested" : "the MDN comes synchronously, in the HTTP response"}`);
    const keys = loadKeyMaterial(ctx.config, new Date(), [partnerName]);
    for (const w of keys.warnings) out.warn(w);
  // Certificates about to expire (issue 16): said before anything is sent, once per run.
  for (const w of await expiryWarnings(ctx.config, new Date(), { partners: [partnerName], receiveTls: false, includeInvalid: false })) out.warn(w);

    if (flags.dryRun) return dryRun(files, flags, ctx.config.dataDir, runId, g, out, buildOptionsFor(ctx.config, partnerName, partner, keys), postSpecFor(partnerName, partner), partner.contentType, multiple);

    await out.useSpinner();
    const controller = new AbortController();
    let firstSignalAt = 0;
    const signals: Array<[NodeJS.Signals, () => void]> = (["SIGINT", "SIGTERM"] as const).map((sig) => [sig, () => {
      // A second signal stops at once; one within SIGNAL_BURST_MS of the first is the same signal
      // arriving twice (from the terminal's process group and from bin/as2.js, which passes it on).
      if (controller.signal.aborted && Date.now() - firstSignalAt < SIGNAL_BURST_MS) return;
      if (controller.signal.aborted) process.exit(sig === "SIGINT" ? EXIT.SIGINT : EXIT.SIGTERM);
      firstSignalAt = Date.now();
      out.warn(`${sig}: abandoning the current file and recording the job as INTERRUPTED (send ${sig} again to quit at once)`);
      controller.abort(sig);
    }]);
    for (const [sig, fn] of signals) process.on(sig, fn);
    let record: JobRecord;
    try {
      const deleteSource = flags.deleteSource ?? partner.deleteSourceFiles;
      ({ record } = await runSendJob({
        config: ctx.config, partnerName, partner, keys, files,
        deleteSource: !!deleteSource && !flags.archiveDir,
        archiveDir: flags.archiveDir ? resolve(flags.archiveDir) : undefined,
        runId,
        rerunOf: flags.rerun ? earlier?.runId : undefined,
        restartOf: flags.restart ? earlier?.runId : undefined,
        signal: controller.signal,
        multipleAttachments: multiple,
        events: {
          fileStarted: (_i, file, size) => { out.spin(`${basename(file)} (${formatBytes(size)})`); },
          progress: (_i, phase, n, total) => out.progress(`${phase === "build" ? "preparing" : "sending"} ${basename(files[_i]!.path)}`, n, total,
            phase === "send" && partner.mdn.request !== "none" && partner.mdn.mode === "sync" ? `${basename(files[_i]!.path)}: sent; waiting for the MDN from ${partnerName}` : undefined),
          attempt: (_i, n, prev) => { if (n > 1) out.warn(`${basename(files[_i]!.path)}: attempt ${n} after: ${prev?.message ?? "?"}`); },
          fileFinished: (_i, entry, error) => out.done(entry.status === "SUCCESS" ? true : entry.status === "AWAITING_MDN" ? "pending" : false, `${basename(entry.name)} ${entry.status}${error ? `: ${error.message}` : ""}`),
          warning: (w) => out.warn(w),
          exchange: g.verbose ? (_i, e) => {
            const lines = [
              `> ${e.request.method} ${e.request.url}`,
              ...Object.entries(e.request.headers).map(([k, v]) => `> ${k}: ${v}`),
              `< ${e.response.status} ${e.response.statusText}${e.response.url !== e.request.url ? ` (from ${e.response.url})` : ""}`,
              ...Object.entries(e.response.headers).map(([k, v]) => `< ${k}: ${v}`),
              ...Object.entries(e.mdn ?? {}).map(([k, v]) => `  MDN ${k}: ${v}`),
            ];
            for (const l of lines) out.log(out.color.dim(l));
          } : undefined,
        },
      }));
      if (waitMdn !== undefined && record.state === "AWAITING_MDN") {
        out.spin(`waiting up to ${waitMdn} s for the MDN${record.files.length > 1 ? "s" : ""}`);
        const waited = await waitForMdns(ctx.config, runId, waitMdn, controller.signal);
        out.stop();
        record = waited.record;
        if (waited.timedOut) {
          out.warn(`no MDN within ${waitMdn} s for ${record.files.filter((f) => f.status === "AWAITING_MDN").length} file(s); the job stays AWAITING_MDN (as2 status ${runId})`);
          printResult(record, g);
          return EXIT.FAILED;
        }
      }
    } finally {
      out.stop();
      for (const [sig, fn] of signals) process.off(sig, fn);
    }
    printResult(record, g);
    return exitFor(record, controller.signal);
  } finally {
    for (const release of locks.reverse()) await release();
  }
}

function exitFor(record: JobRecord, signal: AbortSignal): number {
  switch (record.state) {
    case "SUCCESS":
    case "AWAITING_MDN":
      return EXIT.OK;
    case "PARTIAL":
      return EXIT.PARTIAL;
    case "INTERRUPTED":
      return signal.reason === "SIGTERM" ? EXIT.SIGTERM : EXIT.SIGINT;
    default:
      return EXIT.FAILED;
  }
}

function printResult(record: JobRecord, g: GlobalOptions): void {
  if (g.json) {
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    return;
  }
  const lines = [`${record.runId}  ${record.state}  ${record.files.length} file${record.files.length === 1 ? "" : "s"} to ${record.partner} (${record.receiverId})`];
  for (const f of record.files) {
    const m = record.messages.find((x) => x.as2MessageId === f.as2MessageId);
    const mdn = m?.mdnMessage?.disposition ?? m?.mdnStatus ?? "";
    lines.push(`  ${f.status.padEnd(12)} ${basename(f.name)}  ${f.as2MessageId ?? "-"}  ${f.error ? `${f.error.code}: ${f.error.message}` : mdn}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * --dry-run: the exact bytes that would be posted - request line, HTTP headers, blank line, body -
 * with nothing sent. Only the Authorization header is left out (secrets never go to files we
 * write for inspection).
 */
async function dryRun(files: SendFile[], flags: SendFlags, dataDir: string, runId: string, g: GlobalOptions, out: Output, options: MessageOptions, spec: PostSpec, profileType: string | undefined, multiple: boolean): Promise<number> {
  const outArg = flags.out ? resolve(flags.out) : undefined;
  const asDir = !outArg || (files.length > 1 && !multiple) || (await stat(outArg).then((s) => s.isDirectory(), () => false));
  const dir = outArg && asDir ? outArg : outArg ? dirname(outArg) : join(dataDir, "dry-run", runId);
  await mkdir(dir, { recursive: true });
  const url = new URL(spec.url);
  const results = [];
  // Multiple attachments (RFC 6362): one message holding every file, named after the first.
  for (const f of multiple ? files.slice(0, 1) : files) {
    const types = multiple ? await Promise.all(files.map(async (x, j) => (j === 0 && profileType) || contentTypeFor(x.path))) : [];
    const id = multiple ? f.messageId ?? generateMessageId(new Date(), randomBytes(8).toString("hex"), options.from) : undefined;
    const related = multiple
      ? buildRelated(files.map((x, j) => ({ contentType: types[j]!, filename: basename(x.path), body: () => createReadStream(x.path) })), relatedBoundaryToken(id!), options.quoteFilename)
      : undefined;
    const built = related
      ? buildMessage({ ...options, payload: related.body(), contentType: related.contentType, messageId: id })
      : buildMessage({ ...options, payload: createReadStream(f.path), contentType: profileType ?? await contentTypeFor(f.path), filename: basename(f.path), messageId: f.messageId });
    const target = outArg && !asDir ? outArg : join(dir, `${basename(f.path)}.as2`);
    const bodyFile = `${target}.body.tmp`;
    try {
      await pipeline(Readable.from(built.body), createWriteStream(bodyFile, { mode: 0o600 }));
      const { mic, bodyBytes } = await built.done;
      const head = new Headers([{ name: "Host", value: url.host }, ...built.headers.list]);
      if (spec.userAgent) head.set("User-Agent", spec.userAgent);
      if (spec.chunked) head.set("Transfer-Encoding", "chunked");
      else head.set("Content-Length", String(bodyBytes));
      await pipeline(Readable.from(chain(ascii(`POST ${url.pathname}${url.search} HTTP/1.1\r\n${formatHeaderBlock(head)}\r\n`), createReadStream(bodyFile))), createWriteStream(target, { mode: 0o600 }));
      results.push({ file: f.path, out: target, as2MessageId: built.messageId, bodyBytes, mic: mic.base64, micAlgorithm: mic.algorithm });
      out.log(`${basename(f.path)} -> ${target} (${formatBytes(bodyBytes)} body, ${built.messageId})`);
    } finally {
      await rm(bodyFile, { force: true });
    }
  }
  if (g.json) process.stdout.write(`${JSON.stringify({ dryRun: true, runId, url: spec.url, messages: results }, null, 2)}\n`);
  else process.stdout.write(`${results.map((r) => r.out).join("\n")}\n`);
  return EXIT.OK;
}
