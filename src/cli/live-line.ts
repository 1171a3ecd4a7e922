/**
 * The live line on a terminal's stderr (issue 16): ora's spinner per file and, for large files, a
 * progress bar that always fits the terminal's width. Loaded by Output.useSpinner() only, so that
 * commands that draw no spinner start without ora and string-width (issue 14).
 */
import type { ChalkInstance } from "chalk";
import ora, { type Ora } from "ora";
import stringWidth from "string-width";
import { PROGRESS_BAR_BYTES, formatBytes } from "./output.js";

/** Cuts `text` to `width` terminal columns (wide characters count double; escape codes count nothing). */
export function fitWidth(text: string, width: number): string {
  if (stringWidth(text) <= width) return text;
  let out = "";
  for (const ch of text) {
    if (stringWidth(`${out}${ch}…`) > width) break;
    out += ch;
  }
  return `${out}…`;
}

/**
 * The stream as ora sees it, with a usable width: a pseudo-terminal without a size reports 0
 * columns, and ora then counts every line as infinitely many to clear.
 */
function withColumns(stream: NodeJS.WriteStream): NodeJS.WriteStream {
  return new Proxy(stream, {
    get(target, prop) {
      if (prop === "columns") return target.columns || 80;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

export class LiveLine {
  private spinner: Ora | undefined;
  /** The current phase ("preparing x", "sending x") and when it started: the rate is per phase. */
  private phase = "";
  private phaseStarted = 0;

  constructor(private readonly out: NodeJS.WriteStream, private readonly color: ChalkInstance) {}

  /** A line that stays: the spinner, if any, is cleared first and redrawn after. */
  log(text: string): void {
    if (this.spinner?.isSpinning) {
      this.spinner.clear();
      this.out.write(`${text}\n`);
      this.spinner.render();
      return;
    }
    this.out.write(`${text}\n`);
  }

  spin(text: string): void {
    this.phase = "";
    this.setText(text);
  }

  progress(label: string, done: number, total: number, next?: string): void {
    if (label !== this.phase) {
      this.phase = label;
      this.phaseStarted = Date.now();
    }
    if (total < PROGRESS_BAR_BYTES) { this.setText(label); return; }
    if (done >= total && next) { this.setText(next); return; }
    const ratio = total > 0 ? Math.min(1, done / total) : 0;
    const secs = (Date.now() - this.phaseStarted) / 1000;
    const rate = secs > 0.2 ? ` ${formatBytes(done / secs)}/s` : "";
    const tail = ` ${(ratio * 100).toFixed(0).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)}${rate}`;
    // The bar takes what the terminal leaves after the label and the figures, so a narrow
    // terminal never wraps the line (a wrapped line cannot be redrawn in place).
    const cols = (this.out.columns || 80) - 3;
    const room = cols - stringWidth(label) - stringWidth(tail) - 3;
    const width = Math.max(0, Math.min(24, room));
    const filled = Math.round(ratio * width);
    this.setText(width >= 6 ? `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}]${tail}` : `${label}${tail}`);
  }

  /** Ends the spinner with a final mark. */
  done(ok: boolean | "pending", text: string): void {
    const spinner = this.spinner;
    this.spinner = undefined;
    if (!spinner) return;
    const line = fitWidth(text, (this.out.columns || 80) - 3);
    // Our own symbols through our chalk: ora's default ones are coloured by stdout's terminal.
    const symbol = ok === true ? this.color.green("✔") : ok === "pending" ? this.color.cyan("…") : this.color.red("✖");
    spinner.stopAndPersist({ symbol, text: line });
  }

  stop(): void {
    this.spinner?.stop();
    this.spinner = undefined;
  }

  private setText(text: string): void {
    const fitted = fitWidth(text, (this.out.columns || 80) - 3);
    if (!this.spinner) {
      // ora colours its frames with the global chalk, which follows stdout; frames are coloured
      // here instead, with the instance that follows stderr.
      this.spinner = ora({ text: fitted, stream: withColumns(this.out), color: false, isEnabled: true, discardStdin: false, hideCursor: false });
      this.spinner.spinner = { interval: 80, frames: ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"].map((f) => this.color.cyan(f)) };
      this.spinner.start();
    } else {
      this.spinner.text = fitted;
    }
  }
}
