/**
 * A bounded buffer that keeps a whole run represented: the most recent
 * items in full (a ring holding half the budget), and of the older ones an
 * evenly decimated sample (1 in `stride`, the stride doubling whenever the
 * sample fills the other half). Items are groups of events kept or dropped
 * together (a slice and the end of its flow arrow).
 */

/** What a {@link WholeRunBuffer} kept, for the note that says so. */
export interface BufferCoverage {
  /** Items offered. */
  readonly offered: number;
  /** Events dropped (by decimation). */
  readonly droppedEvents: number;
  /** 1 in `stride` of the older items is kept (1: nothing dropped yet). */
  readonly stride: number;
  /** Time (µs) from which every item is kept; undefined when nothing was dropped. */
  readonly fullFromUs: number | undefined;
}

/** Groups at the start of a run that every sample keeps. */
const ALWAYS_KEPT = 8;

export class WholeRunBuffer<T extends { readonly ts: number }> {
  readonly #half: number;
  #recent: T[][] = [];
  #head = 0;
  #recentEvents = 0;
  #older: Array<{ readonly group: T[]; readonly key: number }> = [];
  #olderEvents = 0;
  #stride = 1;
  #evicted = 0;
  #offered = 0;
  #dropped = 0;

  /** @param limit most events kept (at least 2). */
  constructor(limit: number) {
    this.#half = Math.max(1, Math.floor(limit / 2));
  }

  /** Offer a group of events (kept or dropped together). */
  push(group: T[]): void {
    this.#offered++;
    this.#recent.push(group);
    this.#recentEvents += group.length;
    while (this.#recentEvents > this.#half && this.#head < this.#recent.length - 1) {
      const oldest = this.#recent[this.#head]!;
      this.#recent[this.#head++] = [];
      this.#recentEvents -= oldest.length;
      this.#keepOlder(oldest);
    }
    // Compact the ring's dead prefix now and then (amortised O(1)).
    if (this.#head > 1024 && this.#head * 2 > this.#recent.length) {
      this.#recent = this.#recent.slice(this.#head);
      this.#head = 0;
    }
  }

  #keepOlder(group: T[]): void {
    // A hashed key, not the index: every other index would keep only one kind of a strictly
    // alternating pattern (send, slice, send, ...). key % 2s === 0 implies key % s === 0, so
    // halving keeps a subset of what was kept.
    // The first few groups are always kept (key 0): the track shows where it starts, even when its
    // first group is a flow start whose other end was sampled out elsewhere.
    const index = this.#evicted++;
    const key = index < ALWAYS_KEPT ? 0 : mix(index);
    if (key % this.#stride !== 0) {
      this.#dropped += group.length;
      return;
    }
    this.#older.push({ group, key });
    this.#olderEvents += group.length;
    while (this.#olderEvents > this.#half && this.#stride < 2 ** 30) {
      // Halve the sample: it stays even over time, at half the density.
      this.#stride *= 2;
      const stride = this.#stride;
      const kept = this.#older.filter((g) => g.key % stride === 0);
      const events = kept.reduce((n, g) => n + g.group.length, 0);
      this.#dropped += this.#olderEvents - events;
      this.#older = kept;
      this.#olderEvents = events;
    }
  }

  /** Every event kept, oldest first. */
  events(): T[] {
    const out: T[] = [];
    for (const g of this.#older) out.push(...g.group);
    for (let i = this.#head; i < this.#recent.length; i++) out.push(...this.#recent[i]!);
    return out;
  }

  get dropped(): number {
    return this.#dropped;
  }

  coverage(): BufferCoverage {
    const first = this.#recent[this.#head]?.[0];
    return {
      offered: this.#offered,
      droppedEvents: this.#dropped,
      stride: this.#stride,
      fullFromUs: this.#evicted === 0 || first === undefined ? undefined : first.ts,
    };
  }
}

/** A 32-bit integer hash (splitmix-style finaliser), as a non-negative number. */
function mix(n: number): number {
  let x = n | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}
