/**
 * Human output on stderr (contract §2): chalk for colour and ora for the spinner, as the design
 * names them. A spinner per file and, for large files, a progress bar (bytes, rate), only when
 * stderr is a TTY and not --quiet; colour follows stderr (not stdout: `as2 send > out.txt` on a
 * terminal keeps its colours) unless --no-color / NO_COLOR (FORCE_COLOR forces it). Results go to
 * stdout elsewhere.
 *
 * The spinner and the bar (live-line.ts: ora, string-width) are loaded only by a command that
 * draws them, with `await output.useSpinner()`: string-width alone costs about 20 ms at start
 * (its Intl.Segmenter), a tenth of `as2 status` (issue 14).
 */
import { Chalk, type ChalkInstance } from "chalk";
import type { LiveLine } from "./live-line.js";

export interface OutputOptions {
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  stream?: NodeJS.WriteStream;
}

export function colorWanted(noColorFlag: boolean, env: NodeJS.ProcessEnv, isTty: boolean): boolean {
  if (noColorFlag) return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== "0" && env.FORCE_COLOR !== "false";
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  return isTty;
}

/** Files smaller than this finish too fast for a bar to mean anything. */
export const PROGRESS_BAR_BYTES = 4 * 1024 * 1024;

export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export class Output {
  readonly color: ChalkInstance;
  private readonly out: NodeJS.WriteStream;
  private readonly live: boolean;
  private line: LiveLine | undefined;

  constructor(private readonly o: OutputOptions) {
    this.out = o.stream ?? process.stderr;
    this.live = !o.quiet && !!this.out.isTTY;
    this.color = new Chalk({ level: o.color ? 1 : 0 });
  }

  /** Loads the spinner when stderr is a terminal and not --quiet; spin, progress and done draw nothing before. */
  async useSpinner(): Promise<void> {
    if (this.live && !this.line) this.line = new (await import("./live-line.js")).LiveLine(this.out, this.color);
  }

  /** A line on stderr that stays (the spinner, if any, is cleared first and redrawn after). */
  log(text: string): void {
    if (this.line) this.line.log(text);
    else this.out.write(`${text}\n`);
  }

  warn(text: string): void {
    this.log(`${this.color.yellow("warning:")} ${text}`);
  }

  info(text: string): void {
    if (this.o.verbose) this.log(this.color.dim(text));
  }

  /** Starts (or replaces) the spinner line. */
  spin(text: string): void {
    this.line?.spin(text);
  }

  /**
   * Updates the line with a bar for large transfers. The rate counts from the start of this
   * phase ("preparing", "sending"); at 100% of sending the line says what comes next.
   */
  progress(label: string, done: number, total: number, next?: string): void {
    this.line?.progress(label, done, total, next);
  }

  /** Ends the spinner with a final mark. */
  done(ok: boolean | "pending", text: string): void {
    this.line?.done(ok, text);
  }

  stop(): void {
    this.line?.stop();
  }
}
