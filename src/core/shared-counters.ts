/**
 * Dense per-block counters over a SharedArrayBuffer. Every access is an
 * Atomics operation on one 32-bit cell: a reader in another thread sees
 * each cell either before or after a write, never torn; a range update is
 * not atomic as a whole (readers may see it half done, as in the kernel).
 */
import type { CounterArray } from './counter-array.js';
import { sharedAccessRecorder } from './shared-access.js';

export class SharedCounters implements CounterArray {
  readonly length: number;
  readonly buffer: SharedArrayBuffer;
  readonly #cells: Uint32Array;

  constructor(length: number, buffer?: SharedArrayBuffer) {
    this.length = length;
    this.buffer = buffer ?? new SharedArrayBuffer(Math.max(4, length * 4));
    if (this.buffer.byteLength < length * 4) throw new RangeError(`buffer holds ${this.buffer.byteLength / 4} counters, need ${length}`);
    this.#cells = new Uint32Array(this.buffer, 0, length);
  }

  get(i: number): number {
    sharedAccessRecorder?.access(this.buffer, false, i, i);
    return Atomics.load(this.#cells, i);
  }

  set(i: number, v: number): void {
    sharedAccessRecorder?.access(this.buffer, true, i, i);
    Atomics.store(this.#cells, i, v);
  }

  add(i: number, delta: number): number {
    sharedAccessRecorder?.access(this.buffer, true, i, i);
    // Atomics.add on a Uint32Array wraps modulo 2^32, so a negative delta subtracts.
    return (Atomics.add(this.#cells, i, delta) + delta) >>> 0;
  }

  setRange(start: number, count: number, v: number): void {
    if (count > 0) sharedAccessRecorder?.access(this.buffer, true, start, start + count - 1);
    for (let i = start; i < start + count; i++) Atomics.store(this.#cells, i, v);
  }

  maxInRange(start: number, count: number): number {
    if (count > 0) sharedAccessRecorder?.access(this.buffer, false, start, start + count - 1);
    let max = 0;
    for (let i = start; i < start + count; i++) {
      const v = Atomics.load(this.#cells, i);
      if (v > max) max = v;
    }
    return max;
  }

  anyNonZero(start: number, count: number): boolean {
    if (count > 0) sharedAccessRecorder?.access(this.buffer, false, start, start + count - 1);
    for (let i = start; i < start + count; i++) {
      if (Atomics.load(this.#cells, i) !== 0) return true;
    }
    return false;
  }
}
