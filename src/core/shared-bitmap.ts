/**
 * A bitmap over a `SharedArrayBuffer`, written by one thread and read
 * concurrently by others.
 *
 * Layout: bit `b` lives in 32-bit word `Math.floor(b / 32)` at position
 * `b % 32` (least significant bit first), i.e. the same layout as a Linux
 * `unsigned long` bitmap on a little-endian 32-bit machine.
 *
 * Bit indices are plain JS numbers and may exceed 2^31 (a 1 TiB guest at
 * 4 KiB blocks needs 2^28 bits; larger bitmaps work up to the typed-array
 * length limit). Word indices are therefore computed with division, and bit
 * operators are used only on within-word values (< 2^32).
 *
 * ## Concurrency
 *
 * Every word access goes through `Atomics` (`Atomics.load` for readers,
 * `Atomics.store` / `Atomics.or` / `Atomics.and` for the writer), so each
 * *word* is read and written atomically. Multi-word operations are **not**
 * atomic: a concurrent reader may observe a range update half done (some
 * words already updated, others not yet), and a multi-word query
 * (`findNextBit`, `isRangeSet`, `countSet`, `setRuns`, ...) may see a mixture
 * of states. This is intended: it models QEMU's unlocked
 * `RamBlockAttributes` bitmap, where readers race the updater and the
 * protocol (not the bitmap) must make that safe.
 *
 * Only one thread may write at a time (the edge-word `Atomics.or`/`and`
 * would tolerate concurrent writers on disjoint bits, but full-word
 * `Atomics.store` would not).
 *
 * @module
 */
import { sharedAccessRecorder } from './shared-access.js';

const ALL_ONES = -1; // 0xffffffff as an Int32Array element

function checkNonNegInt(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${String(v)}`);
  }
}

/** Number of trailing zeros of a non-zero int32 value. */
function ctz32(w: number): number {
  return 31 - Math.clz32(w & -w);
}

/** Population count of a 32-bit value. */
function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Mask (as int32) with bits lo..hi inclusive set, 0 <= lo <= hi <= 31. */
function wordMask(lo: number, hi: number): number {
  return (ALL_ONES >>> (31 - hi)) & (ALL_ONES << lo);
}

export class SharedBitmap {
  /** Bytes of `SharedArrayBuffer` needed for `nbits` bits (whole 32-bit words). */
  static byteLengthFor(nbits: number): number {
    checkNonNegInt('nbits', nbits);
    // Whole 64-bit words, as QEMU's `unsigned long` bitmaps: a word's two halves always exist.
    return Math.ceil(nbits / 64) * 8;
  }

  /** Number of bits. */
  readonly size: number;
  /** The shared storage; pass it to another thread and wrap it with `new SharedBitmap(size, buffer)`. */
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly nwords: number;

  /**
   * @param nbits number of bits (non-negative safe integer).
   * @param buffer existing shared storage to wrap (e.g. received from another
   *   thread); must be at least `byteLengthFor(nbits)` bytes. When absent a
   *   zeroed buffer is allocated.
   */
  constructor(nbits: number, buffer?: SharedArrayBuffer) {
    const bytes = SharedBitmap.byteLengthFor(nbits);
    if (buffer === undefined) {
      buffer = new SharedArrayBuffer(bytes);
    } else {
      if (!(buffer instanceof SharedArrayBuffer)) {
        throw new TypeError('buffer must be a SharedArrayBuffer');
      }
      if (buffer.byteLength < bytes) {
        throw new RangeError(
          `buffer too small: ${buffer.byteLength} bytes, need ${bytes} for ${nbits} bits`,
        );
      }
    }
    this.size = nbits;
    this.buffer = buffer;
    this.nwords = bytes / 4;
    this.words = new Int32Array(buffer, 0, this.nwords);
  }

  // ---------------------------------------------------------------- validation

  private checkBit(bit: number): void {
    if (!Number.isSafeInteger(bit) || bit < 0 || bit >= this.size) {
      throw new RangeError(`bit ${String(bit)} out of range [0, ${this.size})`);
    }
  }

  private checkRange(start: number, count: number): void {
    checkNonNegInt('start', start);
    checkNonNegInt('count', count);
    if (start + count > this.size) {
      throw new RangeError(
        `range start=${start} count=${count} exceeds bitmap size ${this.size}`,
      );
    }
  }

  private checkFromLimit(from: number, limit: number): void {
    checkNonNegInt('from', from);
    if (!Number.isSafeInteger(limit) || limit < 0 || limit > this.size) {
      throw new RangeError(`limit ${String(limit)} out of range [0, ${this.size}]`);
    }
  }

  // ------------------------------------------------------------------- single

  /** Whether `bit` is set (one `Atomics.load`). */
  test(bit: number): boolean {
    this.checkBit(bit);
    const w = Math.floor(bit / 32);
    sharedAccessRecorder?.access(this.buffer, false, w, w);
    return ((Atomics.load(this.words, w) >>> (bit - w * 32)) & 1) !== 0;
  }

  set(bit: number): void {
    this.checkBit(bit);
    const w = Math.floor(bit / 32);
    sharedAccessRecorder?.access(this.buffer, true, w, w);
    Atomics.or(this.words, w, 1 << (bit - w * 32));
  }

  clear(bit: number): void {
    this.checkBit(bit);
    const w = Math.floor(bit / 32);
    sharedAccessRecorder?.access(this.buffer, true, w, w);
    Atomics.and(this.words, w, ~(1 << (bit - w * 32)));
  }

  // ------------------------------------------------------------- 32-bit words

  /**
   * One 32-bit word (`Atomics.load`): half of a QEMU `unsigned long`, the
   * low half at the even index. For the bitmap-ops executor, which models
   * QEMU's word loads and stores one by one.
   */
  loadWord32(index: number): number {
    sharedAccessRecorder?.access(this.buffer, false, index, index);
    return Atomics.load(this.words, index);
  }

  /** Store a whole 32-bit word (`Atomics.store`): a non-atomic RMW's store half. */
  storeWord32(index: number, value: number): void {
    sharedAccessRecorder?.access(this.buffer, true, index, index);
    Atomics.store(this.words, index, value);
  }

  /**
   * One QEMU word (`unsigned long`, 64 bits: 32-bit words `2w` and `2w+1`)
   * with a single `Atomics.load`, as an aligned 8-byte load is on x86-64:
   * never half old, half new.
   */
  loadWord64(word: number): bigint {
    sharedAccessRecorder?.access(this.buffer, false, 2 * word, 2 * word + 1);
    return Atomics.load(this.#words64(), word);
  }

  /** Store a whole QEMU word with a single `Atomics.store`. */
  storeWord64(word: number, value: bigint): void {
    sharedAccessRecorder?.access(this.buffer, true, 2 * word, 2 * word + 1);
    Atomics.store(this.#words64(), word, value);
  }

  /** `qatomic_or` on a QEMU word. */
  orWord64(word: number, mask: bigint): void {
    sharedAccessRecorder?.access(this.buffer, true, 2 * word, 2 * word + 1);
    Atomics.or(this.#words64(), word, mask);
  }

  /** `qatomic_and` on a QEMU word. */
  andWord64(word: number, mask: bigint): void {
    sharedAccessRecorder?.access(this.buffer, true, 2 * word, 2 * word + 1);
    Atomics.and(this.#words64(), word, mask);
  }

  #view64: BigInt64Array | undefined;

  #words64(): BigInt64Array {
    this.#view64 ??= new BigInt64Array(this.buffer, 0, this.nwords / 2);
    return this.#view64;
  }

  /** `Atomics.or` on one 32-bit word. */
  orWord32(index: number, mask: number): void {
    sharedAccessRecorder?.access(this.buffer, true, index, index);
    Atomics.or(this.words, index, mask);
  }

  /** `Atomics.and` on one 32-bit word. */
  andWord32(index: number, mask: number): void {
    sharedAccessRecorder?.access(this.buffer, true, index, index);
    Atomics.and(this.words, index, mask);
  }

  // -------------------------------------------------------------------- range

  /**
   * Set bits `[start, start+count)`. Full words are written with
   * `Atomics.store`, partial edge words with `Atomics.or`. Not atomic as a
   * whole: readers may see it half done.
   */
  setRange(start: number, count: number): void {
    this.checkRange(start, count);
    if (count === 0) return;
    const words = this.words;
    const end = start + count; // exclusive
    const fw = Math.floor(start / 32);
    const lw = Math.floor((end - 1) / 32);
    const lo = start - fw * 32;
    const hi = end - 1 - lw * 32;
    sharedAccessRecorder?.access(this.buffer, true, fw, lw);
    if (fw === lw) {
      const m = wordMask(lo, hi);
      if (m === ALL_ONES) Atomics.store(words, fw, ALL_ONES);
      else Atomics.or(words, fw, m);
      return;
    }
    if (lo === 0) Atomics.store(words, fw, ALL_ONES);
    else Atomics.or(words, fw, ALL_ONES << lo);
    for (let w = fw + 1; w < lw; w++) Atomics.store(words, w, ALL_ONES);
    if (hi === 31) Atomics.store(words, lw, ALL_ONES);
    else Atomics.or(words, lw, ALL_ONES >>> (31 - hi));
  }

  /**
   * Clear bits `[start, start+count)`. Full words are written with
   * `Atomics.store(0)`, partial edge words with `Atomics.and`. Not atomic as a
   * whole: readers may see it half done.
   */
  clearRange(start: number, count: number): void {
    this.checkRange(start, count);
    if (count === 0) return;
    const words = this.words;
    const end = start + count;
    const fw = Math.floor(start / 32);
    const lw = Math.floor((end - 1) / 32);
    const lo = start - fw * 32;
    const hi = end - 1 - lw * 32;
    sharedAccessRecorder?.access(this.buffer, true, fw, lw);
    if (fw === lw) {
      const m = wordMask(lo, hi);
      if (m === ALL_ONES) Atomics.store(words, fw, 0);
      else Atomics.and(words, fw, ~m);
      return;
    }
    if (lo === 0) Atomics.store(words, fw, 0);
    else Atomics.and(words, fw, ~(ALL_ONES << lo));
    for (let w = fw + 1; w < lw; w++) Atomics.store(words, w, 0);
    if (hi === 31) Atomics.store(words, lw, 0);
    else Atomics.and(words, lw, ~(ALL_ONES >>> (31 - hi)));
  }

  // ------------------------------------------------------------------ search

  /**
   * First set bit in `[from, limit)`, or `limit` if there is none (Linux
   * `find_next_bit` convention; `from >= limit` returns `limit`).
   * Scans a word at a time, skipping zero words.
   * @param limit defaults to `size`; must be `<= size`.
   */
  findNextBit(from: number, limit: number = this.size): number {
    this.checkFromLimit(from, limit);
    return this.findNext(from, limit, 0);
  }

  /**
   * First clear bit in `[from, limit)`, or `limit` if there is none.
   * Scans a word at a time, skipping all-ones words.
   */
  findNextZeroBit(from: number, limit: number = this.size): number {
    this.checkFromLimit(from, limit);
    return this.findNext(from, limit, ALL_ONES);
  }

  /** Unchecked search; `invert` is 0 (find set) or -1 (find clear). */
  private findNext(from: number, limit: number, invert: number): number {
    if (from >= limit) return limit;
    const words = this.words;
    let w = Math.floor(from / 32);
    const lastWord = Math.floor((limit - 1) / 32);
    const firstWord = w;
    let v = (Atomics.load(words, w) ^ invert) & (ALL_ONES << (from - w * 32));
    while (v === 0) {
      if (++w > lastWord) {
        sharedAccessRecorder?.access(this.buffer, false, firstWord, lastWord);
        return limit;
      }
      v = Atomics.load(words, w) ^ invert;
    }
    sharedAccessRecorder?.access(this.buffer, false, firstWord, w);
    const bit = w * 32 + ctz32(v);
    return bit < limit ? bit : limit;
  }

  /** True if every bit in `[start, start+count)` is set (vacuously true for count 0). */
  isRangeSet(start: number, count: number): boolean {
    this.checkRange(start, count);
    return this.rangeAll(start, count, 0);
  }

  /** True if every bit in `[start, start+count)` is clear (vacuously true for count 0). */
  isRangeClear(start: number, count: number): boolean {
    this.checkRange(start, count);
    return this.rangeAll(start, count, ALL_ONES);
  }

  /** Whether all bits of the range equal 1 (invert=0) or 0 (invert=-1). */
  private rangeAll(start: number, count: number, invert: number): boolean {
    if (count === 0) return true;
    const words = this.words;
    const end = start + count;
    const fw = Math.floor(start / 32);
    const lw = Math.floor((end - 1) / 32);
    const lo = start - fw * 32;
    const hi = end - 1 - lw * 32;
    sharedAccessRecorder?.access(this.buffer, false, fw, lw);
    if (fw === lw) {
      const m = wordMask(lo, hi);
      return ((Atomics.load(words, fw) ^ invert) & m) === m;
    }
    const m0 = ALL_ONES << lo;
    if (((Atomics.load(words, fw) ^ invert) & m0) !== m0) return false;
    for (let w = fw + 1; w < lw; w++) {
      if ((Atomics.load(words, w) ^ invert) !== ALL_ONES) return false;
    }
    const m1 = ALL_ONES >>> (31 - hi) | 0;
    return ((Atomics.load(words, lw) ^ invert) & m1) === m1;
  }

  /**
   * Number of set bits in `[start, start+count)` (default: the whole bitmap).
   * Word-at-a-time popcount.
   */
  countSet(start = 0, count: number = this.size - start): number {
    this.checkRange(start, count);
    if (count === 0) return 0;
    const words = this.words;
    const end = start + count;
    const fw = Math.floor(start / 32);
    const lw = Math.floor((end - 1) / 32);
    const lo = start - fw * 32;
    const hi = end - 1 - lw * 32;
    sharedAccessRecorder?.access(this.buffer, false, fw, lw);
    if (fw === lw) return popcount32(Atomics.load(words, fw) & wordMask(lo, hi));
    let n = popcount32(Atomics.load(words, fw) & (ALL_ONES << lo));
    for (let w = fw + 1; w < lw; w++) {
      const v = Atomics.load(words, w);
      if (v !== 0) n += popcount32(v);
    }
    n += popcount32(Atomics.load(words, lw) & (ALL_ONES >>> (31 - hi)));
    return n;
  }

  /**
   * Maximal runs of set bits within `[start, start+count)` (default: the whole
   * bitmap) as `[firstBit, nbits]` pairs, ascending. Runs are clipped to the
   * queried range.
   */
  setRuns(start = 0, count: number = this.size - start): Array<[number, number]> {
    this.checkRange(start, count);
    const runs: Array<[number, number]> = [];
    const end = start + count;
    let b = this.findNext(start, end, 0);
    while (b < end) {
      const z = this.findNext(b + 1, end, ALL_ONES);
      runs.push([b, z - b]);
      if (z >= end) break;
      b = this.findNext(z + 1, end, 0);
    }
    return runs;
  }
}
