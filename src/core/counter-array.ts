/**
 * Per-block unsigned 32-bit counters (page generations, pin counts, page
 * contents). Two implementations: {@link PagedCounters} (sparse, one
 * thread, scales to 2^28 blocks) and {@link SharedCounters} (dense, over a
 * SharedArrayBuffer, read and written by several threads with Atomics).
 */
export interface CounterArray {
  readonly length: number;
  get(i: number): number;
  set(i: number, v: number): void;
  /** Adds `delta` (may be negative) and returns the new value. */
  add(i: number, delta: number): number;
  setRange(start: number, count: number, v: number): void;
  maxInRange(start: number, count: number): number;
  anyNonZero(start: number, count: number): boolean;
}
