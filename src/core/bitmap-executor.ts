/**
 * Carries out a state change's {@link BitmapStep}s on the shared bitmap, as
 * the converting vCPU's thread does in QEMU, and checks at every store that
 * no update was lost.
 *
 * A non-atomic read-modify-write is a `load` into this executor's register
 * and, later, a `store` of the register with the mask applied: the store
 * writes the whole 64-bit word, so a bit another thread changed between the
 * two goes back to what the load saw. One executor per vCPU: a vCPU thread
 * runs one conversion at a time, so one register suffices.
 *
 * ## The `lost-update` check
 * Beside the bitmap lives a second bitmap of *intended* values: for every
 * block, the value the last write that meant to change that block wrote
 * (the bits of its mask). At every store the executor records its mask in
 * it and compares the whole stored word with it: a bit that differs was
 * changed by a store that did not mean to touch it, an update was lost.
 * The store, the record and the comparison are one critical section under
 * a tiny spin lock in shared memory; it is the checker's bookkeeping, not
 * QEMU's (without it two threads storing the same word could record their
 * intents in the other order than their stores and report a loss that did
 * not happen). The stale value itself comes from the load, outside it.
 *
 * @module
 */
import { maskBits, type BitmapStep } from './bitmap-ops.js';
import type { Violation } from './invariants.js';
import type { SharedBitmap } from './shared-bitmap.js';

/** Spins before a waiter sleeps on the check lock (the critical section is a few loads and stores). */
const SPINS = 64;

/** The shared state every executor of a run uses. */
export interface BitmapExecutorState {
  readonly bitmap: SharedBitmap;
  /** Per block, the value the last write meaning to change it wrote. Starts equal to the bitmap. */
  readonly intended: SharedBitmap;
  /** One Int32 word: the store-record-compare lock (0 free, 1 held). */
  readonly lock: Int32Array;
  readonly blockSize: number;
}

/** A mask from its int32 halves, as a signed 64-bit value (the element type of a BigInt64Array). */
function mask64(lo: number, hi: number): bigint {
  return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
}

export class BitmapExecutor {
  readonly #state: BitmapExecutorState;
  readonly #found: Violation[];
  /** The thread's register: the 64-bit word its last `load` read (one load, as on x86-64). */
  #register = 0n;
  #loadedWord = -1;
  /** Stores checked (for the summary's `checked:` counters). */
  checked = 0;

  constructor(state: BitmapExecutorState, found: Violation[]) {
    this.#state = state;
    this.#found = found;
  }

  /** Do one step; returns the index a `find` found, else 0. */
  execute(step: BitmapStep): number {
    const bitmap = this.#state.bitmap;
    switch (step.kind) {
      case 'find':
        return step.zero ? bitmap.findNextZeroBit(step.from, step.limit) : bitmap.findNextBit(step.from, step.limit);
      case 'load':
        this.#register = bitmap.loadWord64(step.word);
        this.#loadedWord = step.word;
        return 0;
      case 'store': {
        if (this.#loadedWord !== step.word) throw new Error(`store of word ${step.word} without its load (register holds ${this.#loadedWord})`);
        const mask = mask64(step.lo, step.hi);
        const value = step.set ? this.#register | mask : this.#register & ~mask;
        this.#loadedWord = -1;
        this.#write(step.word, step.set, step.lo, step.hi, () => bitmap.storeWord64(step.word, value));
        return 0;
      }
      case 'atomic': {
        const mask = mask64(step.lo, step.hi);
        this.#write(step.word, step.set, step.lo, step.hi, () => {
          if (step.set) bitmap.orWord64(step.word, mask);
          else bitmap.andWord64(step.word, ~mask);
        });
        return 0;
      }
      default: {
        const unreachable: never = step;
        throw new Error(`unknown bitmap step ${String(unreachable)}`);
      }
    }
  }

  /** Store, record the intent of `mask`, and compare the word with the intents: one critical section. */
  #write(word: number, set: boolean, maskLo: number, maskHi: number, store: () => void): void {
    const { bitmap, intended, lock } = this.#state;
    this.#acquire(lock);
    try {
      store();
      if (set) {
        intended.orWord32(2 * word, maskLo);
        intended.orWord32(2 * word + 1, maskHi);
      } else {
        intended.andWord32(2 * word, ~maskLo);
        intended.andWord32(2 * word + 1, ~maskHi);
      }
      this.checked++;
      const diffLo = bitmap.loadWord32(2 * word) ^ intended.loadWord32(2 * word);
      const diffHi = bitmap.loadWord32(2 * word + 1) ^ intended.loadWord32(2 * word + 1);
      if ((diffLo | diffHi) === 0) return;
      const blocks = maskBits(word, diffLo, diffHi);
      const size = this.#state.blockSize;
      const first = blocks[0]!;
      const wrong = bitmap.test(first);
      this.#found.push({
        invariant: 'lost-update',
        message: `a non-atomic store of bitmap word ${word} (blocks ${word * 64}-${word * 64 + 63}) wrote back a stale value: block ${first} (offset 0x${(first * size).toString(16)})${blocks.length > 1 ? ` and ${blocks.length - 1} more` : ''} is ${wrong ? 'shared' : 'private'} in the bitmap, but the last state change that wrote it made it ${wrong ? 'private' : 'shared'}`,
        offset: first * size,
        size: blocks.length * size,
      });
      // Report each loss once: from now on the bitmap's value is the one later writes build on.
      intended.storeWord32(2 * word, bitmap.loadWord32(2 * word));
      intended.storeWord32(2 * word + 1, bitmap.loadWord32(2 * word + 1));
    } finally {
      Atomics.store(lock, 0, 0);
      Atomics.notify(lock, 0, 1);
    }
  }

  #acquire(lock: Int32Array): void {
    for (let spins = 0; Atomics.compareExchange(lock, 0, 0, 1) !== 0; spins++) {
      if (spins >= SPINS) Atomics.wait(lock, 0, 1, 1);
    }
  }
}
