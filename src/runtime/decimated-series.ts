/**
 * A bounded series that keeps an even spread over a run of unknown length:
 * when full it drops every other kept item and from then on keeps only
 * every other offered one (the stride doubles). Memory stays at most
 * `capacity` items, the kept items stay evenly spaced.
 */
export class DecimatedSeries<T> {
  readonly #capacity: number;
  readonly #items: T[] = [];
  #stride = 1;
  #offered = 0;

  /** @param capacity most items kept (at least 2). */
  constructor(capacity: number) {
    this.#capacity = Math.max(2, capacity);
  }

  /** Offer the next item; it is kept when it falls on the current stride. */
  push(item: T): void {
    if (this.#offered++ % this.#stride !== 0) return;
    this.#items.push(item);
    if (this.#items.length >= this.#capacity) {
      let j = 0;
      for (let i = 0; i < this.#items.length; i += 2) this.#items[j++] = this.#items[i]!;
      this.#items.length = j;
      this.#stride *= 2;
    }
  }

  /** Items offered in all. */
  get offered(): number {
    return this.#offered;
  }

  /** One item kept for every `stride` offered. */
  get stride(): number {
    return this.#stride;
  }

  /** The kept items, oldest first. */
  toArray(): T[] {
    return [...this.#items];
  }
}
