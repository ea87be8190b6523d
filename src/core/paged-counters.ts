/**
 * A sparse array of unsigned 32-bit counters, allocated lazily in pages.
 *
 * Used for per-block page generations and pin counts over a whole guest:
 * `length` may be 2^28 (1 TiB at 4 KiB blocks) or more, and an untouched
 * guest costs only the (empty) page map. A page is allocated on the first
 * non-zero write into it; writing zeros never allocates, and `setRange(..., 0)`
 * frees pages it covers completely.
 *
 * Not thread-safe (plain typed arrays, owned by one actor).
 *
 * @module
 */

const MAX_U32 = 0xffffffff;

export class PagedCounters {
  /** Number of counters. */
  readonly length: number;
  /** Counters per page. */
  readonly pageSize: number;
  private readonly pages = new Map<number, Uint32Array>();

  /**
   * @param length number of counters (non-negative safe integer).
   * @param pageSize counters per lazily allocated page (default 4096).
   */
  constructor(length: number, pageSize = 4096) {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`length must be a non-negative safe integer, got ${String(length)}`);
    }
    if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > 1 << 26) {
      throw new RangeError(`pageSize must be an integer in [1, 2^26], got ${String(pageSize)}`);
    }
    this.length = length;
    this.pageSize = pageSize;
  }

  private checkIndex(i: number): void {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.length) {
      throw new RangeError(`index ${String(i)} out of range [0, ${this.length})`);
    }
  }

  private checkRange(start: number, count: number): void {
    if (!Number.isSafeInteger(start) || start < 0) {
      throw new RangeError(`start must be a non-negative safe integer, got ${String(start)}`);
    }
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new RangeError(`count must be a non-negative safe integer, got ${String(count)}`);
    }
    if (start + count > this.length) {
      throw new RangeError(`range start=${start} count=${count} exceeds length ${this.length}`);
    }
  }

  private static checkValue(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > MAX_U32) {
      throw new RangeError(`value ${String(v)} is not an unsigned 32-bit integer`);
    }
  }

  private page(p: number): Uint32Array {
    let pg = this.pages.get(p);
    if (pg === undefined) {
      pg = new Uint32Array(this.pageSize);
      this.pages.set(p, pg);
    }
    return pg;
  }

  get(i: number): number {
    this.checkIndex(i);
    const p = Math.floor(i / this.pageSize);
    const pg = this.pages.get(p);
    return pg === undefined ? 0 : (pg[i - p * this.pageSize] as number);
  }

  set(i: number, v: number): void {
    this.checkIndex(i);
    PagedCounters.checkValue(v);
    const p = Math.floor(i / this.pageSize);
    const pg = v === 0 ? this.pages.get(p) : this.page(p);
    if (pg !== undefined) pg[i - p * this.pageSize] = v;
  }

  /**
   * Add `delta` (may be negative) to counter `i` and return the new value.
   * Throws RangeError (changing nothing) if the result leaves [0, 2^32-1].
   */
  add(i: number, delta: number): number {
    this.checkIndex(i);
    if (!Number.isSafeInteger(delta)) {
      throw new RangeError(`delta must be a safe integer, got ${String(delta)}`);
    }
    const p = Math.floor(i / this.pageSize);
    const off = i - p * this.pageSize;
    const existing = this.pages.get(p);
    const old = existing === undefined ? 0 : (existing[off] as number);
    const nv = old + delta;
    if (nv < 0 || nv > MAX_U32) {
      throw new RangeError(`counter ${i}: ${old} + ${delta} = ${nv} leaves the uint32 range`);
    }
    if (existing !== undefined) existing[off] = nv;
    else if (nv !== 0) this.page(p)[off] = nv;
    return nv;
  }

  /** Set counters `[start, start+count)` to `v`. Setting 0 frees fully covered pages. */
  setRange(start: number, count: number, v: number): void {
    this.checkRange(start, count);
    PagedCounters.checkValue(v);
    if (count === 0) return;
    const ps = this.pageSize;
    const end = start + count;
    const fp = Math.floor(start / ps);
    const lp = Math.floor((end - 1) / ps);
    if (v === 0 && lp - fp + 1 > this.pages.size) {
      // Sparse clear: visit only allocated pages.
      for (const [p, pg] of this.pages) {
        if (p < fp || p > lp) continue;
        this.clearInPage(p, pg, start, end);
      }
      return;
    }
    for (let p = fp; p <= lp; p++) {
      if (v === 0) {
        const pg = this.pages.get(p);
        if (pg !== undefined) this.clearInPage(p, pg, start, end);
      } else {
        const base = p * ps;
        const lo = Math.max(start, base) - base;
        const hi = Math.min(end, base + ps) - base;
        this.page(p).fill(v, lo, hi);
      }
    }
  }

  private clearInPage(p: number, pg: Uint32Array, start: number, end: number): void {
    const base = p * this.pageSize;
    const lo = Math.max(start, base) - base;
    const hi = Math.min(end, base + this.pageSize) - base;
    if (lo === 0 && hi === this.pageSize) this.pages.delete(p);
    else pg.fill(0, lo, hi);
  }

  /**
   * Visit the allocated pages intersecting `[start, end)` with the in-page
   * sub-range; stops when `fn` returns true. Returns whether it stopped.
   */
  private someAllocated(
    start: number,
    end: number,
    fn: (pg: Uint32Array, lo: number, hi: number) => boolean,
  ): boolean {
    const ps = this.pageSize;
    const fp = Math.floor(start / ps);
    const lp = Math.floor((end - 1) / ps);
    if (lp - fp + 1 > this.pages.size) {
      for (const [p, pg] of this.pages) {
        if (p < fp || p > lp) continue;
        const base = p * ps;
        if (fn(pg, Math.max(start, base) - base, Math.min(end, base + ps) - base)) return true;
      }
      return false;
    }
    for (let p = fp; p <= lp; p++) {
      const pg = this.pages.get(p);
      if (pg === undefined) continue;
      const base = p * ps;
      if (fn(pg, Math.max(start, base) - base, Math.min(end, base + ps) - base)) return true;
    }
    return false;
  }

  /** Largest counter in `[start, start+count)`; 0 for an empty range. */
  maxInRange(start: number, count: number): number {
    this.checkRange(start, count);
    if (count === 0) return 0;
    let max = 0;
    this.someAllocated(start, start + count, (pg, lo, hi) => {
      for (let k = lo; k < hi; k++) {
        const x = pg[k] as number;
        if (x > max) max = x;
      }
      return max === MAX_U32;
    });
    return max;
  }

  /** Whether any counter in `[start, start+count)` is non-zero; unallocated pages are skipped. */
  anyNonZero(start: number, count: number): boolean {
    this.checkRange(start, count);
    if (count === 0) return false;
    return this.someAllocated(start, start + count, (pg, lo, hi) => {
      for (let k = lo; k < hi; k++) if (pg[k] !== 0) return true;
      return false;
    });
  }

  /** Bytes of typed-array storage currently allocated. */
  bytesAllocated(): number {
    return this.pages.size * this.pageSize * 4;
  }
}
