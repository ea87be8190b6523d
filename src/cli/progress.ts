/** A one-line progress bar on stderr, for terminals only. */
export class ProgressLine {
  readonly #total: number;
  readonly #started = performance.now();

  constructor(total: number) {
    this.#total = total;
  }

  /** Redraw: `done` of the total, the rate, and `violations` so far when given. */
  update(done: number, violations?: number): void {
    const fraction = Math.min(1, done / this.#total);
    const width = 30;
    const filled = Math.round(fraction * width);
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const found = violations === undefined ? '' : violations === 0 ? ', no violation' : `, ${violations} violation${violations === 1 ? '' : 's'}`;
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.#total} ${rate.toFixed(0)}/s${found} \x1b[K`);
  }

  clear(): void {
    process.stderr.write('\r\x1b[K');
  }
}
