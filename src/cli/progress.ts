/**
 * Progress on stderr: on a terminal a one-line bar redrawn in place (done,
 * rate, elapsed, ETA); elsewhere (a log file, CI) one plain line every
 * 10 s, so a long run still shows it is alive.
 */

/** Seconds between progress lines when stderr is not a terminal. */
const PLAIN_EVERY_MS = 10_000;

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
  readonly #started = performance.now();
  #lastPlain = performance.now();

  /**
   * @param total the amount that means done
   * @param options `tty` (default: whether stderr is a terminal), `label` printed first
   */
  constructor(total: number, options: { tty?: boolean; label?: string } = {}) {
    this.#total = total;
    this.#tty = options.tty ?? process.stderr.isTTY === true;
    this.#label = options.label === undefined ? '' : `${options.label} `;
  }

  /** Redraw: `done` of the total, the rate, elapsed and ETA, and `violations` so far when given. */
  update(done: number, violations?: number): void {
    const now = performance.now();
    const fraction = Math.min(1, done / this.#total);
    const seconds = (now - this.#started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? (this.#total - done) / rate : Infinity;
    const found = violations === undefined ? '' : violations === 0 ? ', no violation' : `, ${violations} violation${violations === 1 ? '' : 's'}`;
    const text = `${this.#label}${done}/${this.#total} ${rate.toFixed(0)}/s, ${duration(seconds)} elapsed, ETA ${duration(eta)}${found}`;
    if (this.#tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text} \x1b[K`);
    } else if (now - this.#lastPlain >= PLAIN_EVERY_MS) {
      this.#lastPlain = now;
      process.stderr.write(`progress: ${text}\n`);
    }
  }

  clear(): void {
    if (this.#tty) process.stderr.write('\r\x1b[K');
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
