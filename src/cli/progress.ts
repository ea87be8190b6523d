/**
 * Progress on stderr: on a terminal a one-line bar redrawn in place (done,
 * rate, elapsed, ETA); elsewhere (a log file, CI) one plain line every
 * 10 s, so a long run still shows it is alive. A phase of unknown length
 * (shrinking) shows what is known instead of a bar ({@link ProgressLine.status}).
 */

/** Seconds between progress lines when stderr is not a terminal. */
const PLAIN_EVERY_MS = 10_000;
/** A phase of unknown length draws nothing on a terminal before this (short phases stay quiet). */
const QUIET_FIRST_MS = 1000;
/** Least time between two redraws of a status on a terminal. */
const REDRAW_EVERY_MS = 100;

/** Where progress goes and what clock it reads (stderr and `performance.now` unless a test injects them). */
export interface ProgressOptions {
  /** Whether the output is a terminal (default: whether stderr is one). */
  readonly tty?: boolean;
  /** Printed first on every line. */
  readonly label?: string;
  readonly write?: (text: string) => void;
  /** Milliseconds, monotonic. */
  readonly now?: () => number;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${String(Math.round(seconds % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class ProgressLine {
  readonly #total: number;
  readonly #tty: boolean;
  readonly #label: string;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #started: number;
  #lastPlain: number;
  #lastDraw = -Infinity;
  #drawn = false;

  /**
   * @param total the amount that means done (any number for {@link status} alone)
   * @param options `tty` (default: whether stderr is a terminal), `label` printed first
   */
  constructor(total: number, options: ProgressOptions = {}) {
    this.#total = total;
    this.#tty = options.tty ?? process.stderr.isTTY === true;
    this.#label = options.label === undefined ? '' : `${options.label} `;
    this.#write = options.write ?? ((text) => process.stderr.write(text));
    this.#now = options.now ?? (() => performance.now());
    this.#started = this.#now();
    this.#lastPlain = this.#started;
  }

  /**
   * A phase of unknown length: what is known so far (`text`) and the time
   * elapsed. On a terminal, redrawn in place once the phase has lasted a
   * second; elsewhere, a plain line every 10 s.
   */
  status(text: string): void {
    const now = this.#now();
    const elapsed = now - this.#started;
    const line = `${this.#label}${text}, ${duration(elapsed / 1000)} elapsed`;
    if (this.#tty) {
      if (elapsed < QUIET_FIRST_MS || now - this.#lastDraw < REDRAW_EVERY_MS) return;
      this.#lastDraw = now;
      this.#drawn = true;
      this.#write(`\r${line} \x1b[K`);
    } else if (now - this.#lastPlain >= PLAIN_EVERY_MS) {
      this.#lastPlain = now;
      this.#write(`progress: ${line}\n`);
    }
  }

  /** Redraw: `done` of the total, the rate, elapsed and ETA, and `violations` so far when given. */
  update(done: number, violations?: number): void {
    const now = this.#now();
    const fraction = Math.min(1, done / this.#total);
    const seconds = (now - this.#started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? (this.#total - done) / rate : Infinity;
    const found = violations === undefined ? '' : violations === 0 ? ', no violation' : `, ${violations} violation${violations === 1 ? '' : 's'}`;
    const text = `${this.#label}${done}/${this.#total} ${rate.toFixed(0)}/s, ${duration(seconds)} elapsed, ETA ${duration(eta)}${found}`;
    if (this.#tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      this.#drawn = true;
      this.#write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text} \x1b[K`);
    } else if (now - this.#lastPlain >= PLAIN_EVERY_MS) {
      this.#lastPlain = now;
      this.#write(`progress: ${text}\n`);
    }
  }

  /** Erase the line drawn on a terminal (nothing when nothing was drawn). */
  clear(): void {
    if (this.#tty && this.#drawn) this.#write('\r\x1b[K');
    this.#drawn = false;
  }
}

/**
 * Progress of work without a known total (a systematic search): the count,
 * the rate and the elapsed time, and against a time budget when there is
 * one. Same output rules as {@link ProgressLine}.
 */
export class OpenProgressLine {
  readonly #tty: boolean;
  readonly #label: string;
  readonly #budgetMs: number | undefined;
  readonly #started = performance.now();
  #lastPlain = performance.now();

  constructor(options: { tty?: boolean; label: string; budgetMs?: number }) {
    this.#tty = options.tty ?? process.stderr.isTTY === true;
    this.#label = options.label;
    this.#budgetMs = options.budgetMs;
  }

  /** `detail` follows the count, e.g. "412 distinct traces". */
  update(done: number, detail: string): void {
    const now = performance.now();
    const seconds = (now - this.#started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const budget = this.#budgetMs === undefined ? '' : ` of a ${duration(this.#budgetMs / 1000)} budget`;
    const text = `${done} ${this.#label} (${detail}), ${rate.toFixed(0)}/s, ${duration(seconds)} elapsed${budget}`;
    if (this.#tty) process.stderr.write(`\r${text} \x1b[K`);
    else if (now - this.#lastPlain >= PLAIN_EVERY_MS) {
      this.#lastPlain = now;
      process.stderr.write(`progress: ${text}\n`);
    }
  }

  clear(): void {
    if (this.#tty) process.stderr.write('\r\x1b[K');
  }
}
