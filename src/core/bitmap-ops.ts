/**
 * `ram_block_attributes_state_change`'s bitmap accesses at QEMU's grain:
 * every access another thread could come between is one {@link BitmapStep},
 * yielded by the state change's generator and carried out by whoever stands
 * for the converting vCPU thread (a {@link BitmapExecutor}).
 *
 * QEMU's bitmap is an array of 64-bit `unsigned long`s (`BITS_PER_LONG`):
 * word `w` holds blocks `64w .. 64w+63`, 256 KiB of guest at 4 KiB blocks.
 * The shared bitmap here is 32-bit words; QEMU word `w` is its words `2w`
 * (low half) and `2w+1` (high half); a load, store or atomic step is one
 * 64-bit `Atomics` operation on both (never torn, as an aligned 8-byte access
 * on x86-64). The scans read 32-bit words one at a time (a scan is not atomic
 * in QEMU either, but on real threads a scan could see the two halves of
 * one word at different times, which no 64-bit load would: at worst a range
 * is classified a mixture and takes the block-by-block path).
 *
 * The bitmap-ops policy ({@link BitmapOps}) lives here and only here:
 * - `nonatomic` (merged): `set_bit`, `clear_bit`, `bitmap_set` and
 *   `bitmap_clear` (include/qemu/bitops.h, util/bitmap.c) do `*p |= mask` /
 *   `*p &= ~mask` per word: a load, then a store. They are two steps, so a
 *   store of another thread can fall between them and be overwritten.
 * - `atomic`: one `qatomic_or`/`qatomic_and` per word, one step (what
 *   `set_bit_atomic`, `clear_bit_atomic` and `bitmap_set_atomic` do; there is
 *   no `bitmap_clear_atomic` in QEMU, a fix would add one).
 *
 * @module
 */
import type { BitmapOps } from './protocol-policy.js';

/** Bits per QEMU bitmap word (`BITS_PER_LONG` on a 64-bit host). */
export const BITS_PER_LONG = 64;

/** `BIT_WORD(bit)`: the QEMU word holding a bit. */
export function bitWord(bit: number): number {
  return Math.floor(bit / BITS_PER_LONG);
}

/** One bitmap access of a state change, made on the converting vCPU's thread. */
export type BitmapStep =
  /**
   * `find_next_bit` (`zero` false) or `find_next_zero_bit` from `from`,
   * stopping at `limit`: the state change's classification reads, and the
   * mixture loop's `test_bit`s up to the next block to change. Resumed with
   * the index found (`limit` when none).
   */
  | { readonly kind: 'find'; readonly zero: boolean; readonly from: number; readonly limit: number }
  /** The load of a non-atomic read-modify-write: word `word` into the thread's register. */
  | { readonly kind: 'load'; readonly word: number }
  /**
   * The store of a non-atomic read-modify-write: the register with `mask`
   * set (`set`) or cleared, stored whole. `lo`/`hi` are the mask's halves.
   */
  | { readonly kind: 'store'; readonly word: number; readonly set: boolean; readonly lo: number; readonly hi: number }
  /** `qatomic_or` / `qatomic_and(~mask)` on word `word`. */
  | { readonly kind: 'atomic'; readonly word: number; readonly set: boolean; readonly lo: number; readonly hi: number };

/** Steps, resumed with each step's result (a found index, else 0). */
export type BitmapSteps = Generator<BitmapStep, void, number>;

/** The halves of the mask of bits `from..to` (inclusive) of one QEMU word, as int32s. */
function wordMask(word: number, from: number, to: number): { lo: number; hi: number } {
  const base = word * BITS_PER_LONG;
  const a = from - base;
  const b = to - base;
  const half = (lo: number, hi: number): number => {
    const x = Math.max(a, lo);
    const y = Math.min(b, hi);
    if (x > y) return 0;
    return ((-1 >>> (31 - (y - lo))) & (-1 << (x - lo))) | 0;
  };
  return { lo: half(0, 31), hi: half(32, 63) };
}

/** The bitmap writes of a state change, under one {@link BitmapOps} policy. */
export interface BitmapWriter {
  /** `bitmap_set` (`set`) or `bitmap_clear` of `count` bits from `first`, word by word, ascending. */
  range(first: number, count: number, set: boolean): BitmapSteps;
  /** `set_bit` / `clear_bit`. */
  bit(bit: number, set: boolean): BitmapSteps;
}

/** Non-atomic: every word a load, then a store (the merged code). */
const NONATOMIC: BitmapWriter = {
  *range(first, count, set) {
    const last = first + count - 1;
    for (let word = bitWord(first); word <= bitWord(last); word++) {
      const { lo, hi } = wordMask(word, first, last);
      yield { kind: 'load', word };
      yield { kind: 'store', word, set, lo, hi };
    }
  },
  *bit(bit, set) {
    yield* NONATOMIC.range(bit, 1, set);
  },
};

/** Atomic: every word one atomic or / and-not. */
const ATOMIC: BitmapWriter = {
  *range(first, count, set) {
    const last = first + count - 1;
    for (let word = bitWord(first); word <= bitWord(last); word++) {
      const { lo, hi } = wordMask(word, first, last);
      yield { kind: 'atomic', word, set, lo, hi };
    }
  },
  *bit(bit, set) {
    yield* ATOMIC.range(bit, 1, set);
  },
};

/** The writer of a bitmap-ops policy. */
export function bitmapWriter(ops: BitmapOps): BitmapWriter {
  return ops === 'atomic' ? ATOMIC : NONATOMIC;
}

/** Blocks of a QEMU word set in a mask (ascending). */
export function maskBits(word: number, lo: number, hi: number): number[] {
  const bits: number[] = [];
  for (let i = 0; i < 32; i++) if (((lo >>> i) & 1) !== 0) bits.push(word * BITS_PER_LONG + i);
  for (let i = 0; i < 32; i++) if (((hi >>> i) & 1) !== 0) bits.push(word * BITS_PER_LONG + 32 + i);
  return bits;
}
