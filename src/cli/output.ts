/**
 * Human output on stderr: a spinner per file and a progress bar (bytes, rate) for large files,
 * only when stderr is a TTY and not --quiet; colours unless --no-color / NO_COLOR (FORCE_COLOR
 * forces them). Results go to stdout elsewhere.
 */
import { styleText } from "node:util";

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

type Style = Parameters<typeof styleText>[0];

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
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
  private readonly out: NodeJS.WriteStream;
  private readonly live: boolean;
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private line = "";
  private started = 0;

  constructor(private readonly o: OutputOptions) {
    this.out = o.stream ?? process.stderr;
    this.live = !o.quiet && !!this.out.isTTY;
  }

  paint(style: Style, text: string): string {
    return this.o.color ? styleText(style, text) : text;
  }

  /** A line on stderr that stays (clears a spinner first). */
  log(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
    this.draw();
  }

  warn(text: string): void {
    this.log(`${this.paint("yellow", "warning:")} ${text}`);
  }

  info(text: string): void {
    if (this.o.verbose) this.log(this.paint("dim", text));
  }

  /** Starts (or replaces) the spinner line. */
  spin(text: string): void {
    if (!this.live) return;
    this.line = text;
    this.started = Date.now();
    this.timer ??= setInterval(() => { this.frame++; this.draw(); }, 100);
    this.timer.unref();
    this.draw();
  }

  /** Updates the spinner with a bar for large transfers. */
  progress(label: string, done: number, total: number): void {
    if (!this.live) return;
    if (total < PROGRESS_BAR_BYTES) { this.line = label; return; }
    const width = 24;
    const ratio = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(ratio * width);
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? `${formatBytes(done / secs)}/s` : "";
    this.line = `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)} ${rate}`;
  }

  /** Ends the spinner with a final mark. */
  done(ok: boolean | "pending", text: string): void {
    this.stopTimer();
    this.clear();
    this.line = "";
    if (!this.live) return;
    const mark = ok === true ? this.paint("green", "✔") : ok === "pending" ? this.paint("cyan", "…") : this.paint("red", "✖");
    this.out.write(`${mark} ${text}\n`);
  }

  stop(): void {
    this.stopTimer();
    this.clear();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private clear(): void {
    if (this.live && this.line) this.out.write("\r\x1b[2K");
  }

  private draw(): void {
    if (!this.live || !this.line) return;
    const cols = this.out.columns || 80;
    const text = `${this.paint("cyan", FRAMES[this.frame % FRAMES.length]!)} ${this.line}`;
    this.out.write(`\r\x1b[2K${text.length > cols + 20 ? text.slice(0, cols - 1) : text}`);
  }
}
