/**
 * A log-linear latency histogram in the manner of HdrHistogram: values are
 * grouped by power of two, each power split into 32 linear sub-buckets, so
 * a recorded value is off by at most 1/32 (~3%) of itself. Recording is an
 * index computation and an increment (cheap enough to leave on); histograms
 * merge by adding counts, so each thread keeps its own and the host merges.
 * Pure: no clock here, callers pass nanoseconds.
 */

/** Sub-buckets per power of two (precision 1/32). */
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
/** Powers of two covered: up to 2^47 ns (~39 hours). */
const POWERS = 48;

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export class LatencyHistogram {
  readonly counts: Float64Array;
  #count = 0;
  #max = 0;
  #sum = 0;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Float64Array(POWERS * SUB);
    if (counts !== undefined) {
      this.counts.set(counts);
      for (let i = 0; i < this.counts.length; i++) {
        const c = this.counts[i]!;
        if (c === 0) continue;
        this.#count += c;
        const v = LatencyHistogram.valueAt(i);
        this.#sum += c * v;
        if (v > this.#max) this.#max = v;
      }
    }
  }

  /** Bucket of a value: exact below 32, then 32 linear steps per power of two. */
  static indexOf(value: number): number {
    const v = Math.max(0, Math.floor(value));
    if (v < SUB) return v;
    let shift = Math.floor(Math.log2(v)) - SUB_BITS;
    let m = Math.floor(v / 2 ** shift);
    // log2 may round at the edge of a power of two: bring the mantissa into [SUB, 2 SUB).
    if (m < SUB) m = Math.floor(v / 2 ** --shift);
    else if (m >= 2 * SUB) m = Math.floor(v / 2 ** ++shift);
    return Math.min(POWERS * SUB - 1, (shift + 1) * SUB + (m - SUB));
  }

  /** The highest value that falls into bucket `index` (the value reported for it). */
  static valueAt(index: number): number {
    if (index < SUB) return index;
    const shift = Math.floor(index / SUB) - 1;
    const m = SUB + (index % SUB);
    return (m + 1) * 2 ** shift - 1;
  }

  record(nanoseconds: number): void {
    this.counts[LatencyHistogram.indexOf(nanoseconds)]!++;
    this.#count++;
    this.#sum += nanoseconds;
    if (nanoseconds > this.#max) this.#max = nanoseconds;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.#count += other.#count;
    this.#sum += other.#sum;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  get count(): number {
    return this.#count;
  }

  /** The value at quantile q (0..1), as the top of its bucket. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(LatencyHistogram.valueAt(i), this.#max);
    }
    return this.#max;
  }

  summary(): LatencySummary {
    return {
      count: this.#count,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.#max,
      mean: this.#count === 0 ? 0 : this.#sum / this.#count,
    };
  }

  /** Compact, structured-clone-friendly form (non-zero buckets), to send across threads. */
  toSparse(): SparseHistogram {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { buckets, max: this.#max, sum: this.#sum };
  }

  static fromSparse(sparse: SparseHistogram): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [i, c] of sparse.buckets) {
      h.counts[i] = c;
      h.#count += c;
    }
    h.#max = sparse.max;
    h.#sum = sparse.sum;
    return h;
  }
}

export interface SparseHistogram {
  readonly buckets: ReadonlyArray<readonly [number, number]>;
  readonly max: number;
  readonly sum: number;
}
