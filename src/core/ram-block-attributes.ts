/**
 * RamBlockAttributes (system/ram-block-attributes.c): the per-RAMBlock bitmap
 * of shared (populated, bit = 1) and private (discarded, bit = 0) blocks, and
 * the RamDiscardManager that tells listeners (VFIO) about conversions.
 *
 * Method names follow the C functions: `stateChange` is
 * `ram_block_attributes_state_change`, `notifyPopulate` is
 * `ram_block_attributes_notify_populate`, and so on.
 */
import { BitmapExecutor } from './bitmap-executor.js';
import { bitmapWriter, type BitmapStep, type BitmapSteps, type BitmapWriter } from './bitmap-ops.js';
import { EINVAL, type Ret } from './errno.js';
import type { EventBus } from './events.js';
import { createListenerList, type ListenerList, type Registration } from './listener-list.js';
import { sectionIntersectRange, type MemoryRegionSection } from './memory-region-section.js';
import { MERGED_PROTOCOL, type BitmapOps, type ListenerListPolicy } from './protocol-policy.js';
import type { RamDiscardListener, RamDiscardManager, ReplayFn } from './ram-discard-manager.js';
import { SharedBitmap } from './shared-bitmap.js';
import { isAligned, U64_LIMIT } from './units.js';

/**
 * What happens when a listener fails `notifyPopulate` (spec section 7):
 * - `none`: merged QEMU (v6/v7): stop, undo nothing, return the error.
 * - `listener`: the interface contract / virtio-mem: every intersecting
 *   listener notified before the failing one in this step gets
 *   `notifyDiscard`, and the bits this step set are cleared again.
 * - `full`: v5 patch 10: as `listener`, and every block this call changed
 *   earlier is restored too, ascending, each with `notifyDiscard`.
 */
export type RollbackPolicy = 'none' | 'listener' | 'full';
export const ROLLBACK_POLICIES: readonly RollbackPolicy[] = ['none', 'listener', 'full'];

export interface RamBlockAttributesOptions {
  /** Name of the memory region the sections refer to. */
  readonly mr: string;
  /** `memory_region_size(mr)` in bytes. */
  readonly regionSize: number;
  /** Tracking unit: the host page size, 4 KiB. */
  readonly blockSize: number;
  readonly rollback: RollbackPolicy;
  /**
   * The v4 priority-listener design (spec section 6): listeners sorted by
   * ascending priority (ties in registration order), populate walks forward,
   * discard walks in reverse. Off (merged QEMU): newest listener first, one
   * walk order for both directions.
   */
  readonly priorities: boolean;
  /** Bug-zoo variant: notify listeners before writing the bitmap. */
  readonly notifyBeforeBitmap?: boolean;
  /** Bug-zoo variant: with priorities, walk reverse to populate and forward to discard. */
  readonly invertPriorityWalk?: boolean;
  /** An existing shared bitmap to adopt (another thread's view); else a new one. */
  readonly bitmap?: SharedBitmap;
  /** How the state change writes the bitmap (default: merged, non-atomic). */
  readonly bitmapOps?: BitmapOps;
  /** What unregistration does to walks in flight (default: merged, unlink and free). */
  readonly listenerList?: ListenerListPolicy;
  readonly bus?: EventBus;
}

/**
 * One synchronous listener call the algorithm needs made.
 */
export type ListenerCall =
  | { readonly kind: 'populate'; readonly listener: RamDiscardListener; readonly section: MemoryRegionSection }
  | { readonly kind: 'discard'; readonly listener: RamDiscardListener; readonly section: MemoryRegionSection };

/**
 * One step of a RamBlockAttributes algorithm at QEMU's grain: a listener
 * call, or a bitmap access of the converting thread (bitmap-ops.ts). The
 * algorithms are generators that yield these and are resumed with each
 * step's result, so the same code runs synchronously ({@link runSteps}) and
 * on the actor runtime, where a listener call is a message to a container
 * and a bitmap step a message to the converting vCPU's thread; another
 * thread may run between any two steps.
 */
export type RbaStep = ListenerCall | BitmapStep;

/** The shape of every RamBlockAttributes algorithm: yields steps, returns a Ret. */
export type ListenerCalls = Generator<RbaStep, Ret, Ret>;

/**
 * When a state change writes the bitmap, relative to notifying the
 * listeners: one policy, chosen at construction. `keep` says whether a
 * populate whose walk returned `ret` still writes its bits (a discard
 * always does).
 */
type WriteTiming = (write: () => BitmapSteps, notify: () => ListenerCalls, keep: (ret: Ret) => boolean) => ListenerCalls;

/** Merged QEMU: the bitmap first, then the listeners (spec invariant: listeners never hear of a state the bitmap lacks). */
const BITMAP_FIRST: WriteTiming = function* (write, notify) {
  yield* write();
  return yield* notify();
};

/** The bug-zoo variant `notify-before-bitmap`: the listeners first, then the bitmap. */
const NOTIFY_FIRST: WriteTiming = function* (write, notify, keep) {
  const ret = yield* notify();
  if (keep(ret)) yield* write();
  return ret;
};

/** Which way each walk goes over `rdl_list` (true: from the tail). */
interface WalkOrder {
  readonly populate: boolean;
  readonly discard: boolean;
}

/** Whether a step is a listener call (else a bitmap access). */
export function isListenerCall(step: RbaStep): step is ListenerCall {
  return step.kind === 'populate' || step.kind === 'discard';
}

/** Make a listener call directly (discards always "return" 0). */
export function callListener(call: ListenerCall): Ret {
  if (call.kind === 'populate') return call.listener.notifyPopulate(call.section);
  call.listener.notifyDiscard(call.section);
  return 0;
}

/** Run an algorithm to completion in this thread: direct listener calls, bitmap steps by `executor`. */
export function runSteps(calls: ListenerCalls, executor: BitmapExecutor | undefined): Ret {
  let step = calls.next();
  while (!step.done) {
    const value = step.value;
    if (isListenerCall(value)) step = calls.next(callListener(value));
    else if (executor === undefined) throw new Error(`bitmap step ${value.kind} without an executor`);
    else step = calls.next(executor.execute(value));
  }
  return step.value;
}

/**
 * `ram_block_attributes_is_valid_range`: block-aligned offset and size,
 * `offset + size <= offset` rejected (u64 wrap-around, and a zero size:
 * the merged C code uses `<=`, so the spec's "zero size is rejected one
 * level up" holds only in addition), inside the region.
 */
export function isValidBlockRange(offset: number, size: number, blockSize: number, regionSize: number): boolean {
  if (!isAligned(offset, blockSize) || !isAligned(size, blockSize)) return false;
  if (size === 0 || offset + size >= U64_LIMIT) return false; // `offset + size <= offset` in u64
  return offset + size <= regionSize;
}

export class RamBlockAttributes implements RamDiscardManager {
  readonly mr: string;
  readonly regionSize: number;
  readonly blockSize: number;
  /** `bitmap_size`: blocks in the region, rounded up. */
  readonly bitmapSize: number;
  /** 1 = shared = populated. Only this object writes it; other threads may read it. */
  readonly bitmap: SharedBitmap;
  readonly rollback: RollbackPolicy;
  readonly priorities: boolean;
  /** When the bitmap is written relative to the notification (bitmap first, unless a zoo variant). */
  readonly #timing: WriteTiming;
  /** Walk directions: merged both forward; priorities populate forward, discard in reverse (or inverted: the zoo). */
  readonly #walkOrder: WalkOrder;
  readonly #bus: EventBus | undefined;
  /** `rdl_list`, under the listener-list policy. */
  readonly #list: ListenerList;
  /** `bitmap_set`/`set_bit` and friends, under the bitmap-ops policy. */
  readonly #writer: BitmapWriter;
  /** Runs bitmap steps in this thread for the synchronous entry points (made on first use). */
  #direct: BitmapExecutor | undefined;

  constructor(options: RamBlockAttributesOptions) {
    this.mr = options.mr;
    this.regionSize = options.regionSize;
    this.blockSize = options.blockSize;
    this.bitmapSize = Math.ceil(options.regionSize / options.blockSize);
    this.bitmap = options.bitmap ?? new SharedBitmap(this.bitmapSize);
    if (this.bitmap.size !== this.bitmapSize) {
      throw new RangeError(`bitmap has ${this.bitmap.size} bits, region needs ${this.bitmapSize}`);
    }
    this.rollback = options.rollback;
    this.priorities = options.priorities;
    this.#timing = options.notifyBeforeBitmap === true ? NOTIFY_FIRST : BITMAP_FIRST;
    const inverted = options.priorities && options.invertPriorityWalk === true;
    this.#walkOrder = { populate: inverted, discard: options.priorities !== inverted };
    this.#bus = options.bus;
    this.#list = createListenerList(options.listenerList ?? MERGED_PROTOCOL.listenerList);
    this.#writer = bitmapWriter(options.bitmapOps ?? MERGED_PROTOCOL.bitmapOps);
  }

  /** The executor of the synchronous entry points: this thread stands for the converting one. */
  #directExecutor(): BitmapExecutor {
    if (this.#direct === undefined) {
      const intended = new SharedBitmap(this.bitmapSize);
      for (const [first, count] of this.bitmap.setRuns()) intended.setRange(first, count);
      this.#direct = new BitmapExecutor({ bitmap: this.bitmap, intended, lock: new Int32Array(new SharedArrayBuffer(4)), blockSize: this.blockSize }, []);
    }
    return this.#direct;
  }

  /** Listener names in notification (populate-walk) order. */
  get listenerNames(): string[] {
    return this.#list.all().map((r) => r.listener.name);
  }

  /** The section a listener registered with, or undefined. */
  sectionOf(listener: RamDiscardListener): MemoryRegionSection | undefined {
    return this.#list.find(listener)?.section;
  }

  // --- RamDiscardManager -------------------------------------------------

  /** `ram_block_attributes_rdm_get_min_granularity`. */
  getMinGranularity(): number {
    return this.blockSize;
  }

  /** `ram_block_attributes_rdm_is_populated`: every block of the section is shared. */
  isPopulated(section: MemoryRegionSection): boolean {
    const firstBit = Math.floor(section.offsetWithinRegion / this.blockSize);
    const lastBit = firstBit + Math.floor(section.size / this.blockSize) - 1;
    return this.bitmap.findNextZeroBit(firstBit, lastBit + 1) > lastBit;
  }

  /** `ram_block_attributes_rdm_replay_populated`: `fn` once per maximal shared run. */
  replayPopulated(section: MemoryRegionSection, fn: ReplayFn): Ret {
    return this.#replay(section, true, fn);
  }

  /** `ram_block_attributes_rdm_replay_discarded`: `fn` once per maximal private run. */
  replayDiscarded(section: MemoryRegionSection, fn: ReplayFn): Ret {
    return this.#replay(section, false, fn);
  }

  registerListener(listener: RamDiscardListener, section: MemoryRegionSection): Ret {
    return runSteps(this.registerListenerCalls(listener, section), undefined);
  }

  unregisterListener(listener: RamDiscardListener): void {
    runSteps(this.unregisterListenerCalls(listener), undefined);
  }

  /**
   * `ram_block_attributes_rdm_register_listener`: keep a copy of the section,
   * link the listener (at the head, or by priority), then replay every shared
   * run through its `notifyPopulate`. A failed replay makes QEMU exit(1);
   * here it returns the error and leaves the listener linked, as the state
   * was at the moment QEMU exited.
   *
   * Concurrency: the replay reads the bitmap run by run, between calls; a
   * conversion running meanwhile (another thread in QEMU) can flip bits
   * under it. That is the listener-registration race of spec section 9.
   */
  *registerListenerCalls(listener: RamDiscardListener, section: MemoryRegionSection): ListenerCalls {
    if (section.mr !== this.mr) throw new RangeError(`section of ${section.mr} registered with ${this.mr}`);
    if (this.#list.find(listener) !== undefined) {
      throw new RangeError(`listener ${listener.name} is already registered`);
    }
    const registration: Registration = { listener, section: { ...section } };
    // QLIST_INSERT_HEAD (the newest listener is notified first), or sorted by priority.
    this.#list.insert(registration, this.priorities);
    for (const run of this.#runs(registration.section, true)) {
      const ret = yield* this.#populateCall(listener, run);
      if (ret !== 0) return ret;
    }
    return 0;
  }

  /**
   * `ram_block_attributes_rdm_unregister_listener`: one discard of the whole
   * section when the listener supports double discard (VFIO), else one per
   * shared run; then unlink.
   */
  *unregisterListenerCalls(listener: RamDiscardListener): ListenerCalls {
    const registration = this.#list.find(listener);
    if (registration === undefined) throw new RangeError(`listener ${listener.name} is not registered`);
    if (listener.doubleDiscardSupported) {
      yield* this.#discardCall(listener, registration.section, false);
    } else {
      for (const run of this.#runs(registration.section, true)) yield* this.#discardCall(listener, run, false);
    }
    // QLIST_REMOVE, then vfio_ram_discard_unregister_listener's g_free: one step, no walk can
    // come between them (the list policy decides what a walk standing on it meets).
    this.#list.remove(registration);
    return 0;
  }

  // --- state change --------------------------------------------------------

  /** `ram_block_attributes_is_valid_range`. */
  isValidRange(offset: number, size: number): boolean {
    return isValidBlockRange(offset, size, this.blockSize, this.regionSize);
  }

  /**
   * `ram_block_attributes_state_change(offset, size, to_discard)`: convert a
   * range to private (`toDiscard`) or shared and tell the listeners. The
   * bitmap is always written before listeners hear of it. Returns 0, -EINVAL
   * for an invalid range (nothing changed), or the first listener error of a
   * populate (handled by the rollback policy).
   */
  stateChange(offset: number, size: number, toDiscard: boolean): Ret {
    return runSteps(this.stateChangeCalls(offset, size, toDiscard), this.#directExecutor());
  }

  /**
   * {@link stateChange} as a generator of steps at QEMU's grain.
   *
   * Concurrency: nothing is held (QEMU as merged). The classification is
   * two scans (`find_next_bit`, `find_next_zero_bit`), each a step; every
   * bitmap word written is a load and a store (non-atomic ops) or one
   * atomic step; every listener call is a step. Another state change, a
   * registration replay or an unregistration may run between any two,
   * exactly where QEMU's threads can: a classification may be stale by the
   * time the write comes, a store may write back a word another vCPU
   * changed since the load (`lost-update`), a walk may stand on a listener
   * being freed (`use-after-free`). Which of them can happen is the
   * protocol's policies' business (protocol-policy.ts), not this code's.
   */
  *stateChangeCalls(offset: number, size: number, toDiscard: boolean): ListenerCalls {
    if (!this.isValidRange(offset, size)) return -EINVAL;
    const bus = this.#bus;
    bus?.emit({ kind: 'stateChangeBegin', offset, size, toDiscard });
    const firstBit = offset / this.blockSize;
    const nbits = size / this.blockSize;
    const end = firstBit + nbits;
    // The declarations of ram_block_attributes_state_change: two scans, another thread may write between them.
    const isDiscarded = (yield { kind: 'find', zero: false, from: firstBit, limit: end }) >= end;
    const isPopulated = (yield { kind: 'find', zero: true, from: firstBit, limit: end }) >= end;
    const ret = toDiscard
      ? yield* this.#changeToDiscarded(firstBit, nbits, isDiscarded, isPopulated)
      : yield* this.#changeToPopulated(firstBit, nbits, isDiscarded, isPopulated);
    bus?.emit({ kind: 'stateChangeEnd', offset, size, toDiscard, ret });
    return ret;
  }

  *#changeToDiscarded(firstBit: number, nbits: number, isDiscarded: boolean, isPopulated: boolean): ListenerCalls {
    const writer = this.#writer;
    const always = (): boolean => true;
    if (isDiscarded) return 0; // already private
    if (isPopulated) {
      return yield* this.#timing(() => writer.range(firstBit, nbits, false), () => this.#notifyDiscard(firstBit * this.blockSize, nbits * this.blockSize, false), always);
    }
    // Unexpected mixture: one block at a time, ascending. QEMU tests each bit; the skipped
    // test_bit reads up to the next shared block are one scan step here.
    const end = firstBit + nbits;
    for (let bit = yield* this.#find(false, firstBit, end); bit < end; bit = yield* this.#find(false, bit + 1, end)) {
      yield* this.#timing(() => writer.bit(bit, false), () => this.#notifyDiscard(bit * this.blockSize, this.blockSize, false), always);
    }
    return 0;
  }

  *#changeToPopulated(firstBit: number, nbits: number, isDiscarded: boolean, isPopulated: boolean): ListenerCalls {
    const writer = this.#writer;
    // Bits written after a failed walk stay only when nothing is rolled back.
    const keep = (ret: Ret): boolean => ret === 0 || this.rollback === 'none';
    if (isPopulated) return 0; // already shared
    if (isDiscarded) {
      const ret = yield* this.#timing(() => writer.range(firstBit, nbits, true), () => this.#notifyPopulate(firstBit * this.blockSize, nbits * this.blockSize), keep);
      if (ret !== 0 && this.rollback !== 'none') yield* writer.range(firstBit, nbits, false);
      return ret;
    }
    // Unexpected mixture: one block at a time, ascending, stop at the first error.
    const end = firstBit + nbits;
    const changed: number[] = []; // blocks this call populated, for `full` rollback
    for (let bit = yield* this.#find(true, firstBit, end); bit < end; bit = yield* this.#find(true, bit + 1, end)) {
      const ret = yield* this.#timing(() => writer.bit(bit, true), () => this.#notifyPopulate(bit * this.blockSize, this.blockSize), keep);
      if (ret === 0) {
        if (this.rollback === 'full') changed.push(bit);
        continue;
      }
      if (this.rollback !== 'none') yield* writer.bit(bit, false);
      if (this.rollback === 'full') {
        // v5 patch 10: every block this call populated goes back, ascending.
        for (const done of changed) {
          yield* writer.bit(done, false);
          yield* this.#notifyDiscard(done * this.blockSize, this.blockSize, true);
        }
      }
      return ret;
    }
    return 0;
  }

  /** One scan step: the next block from `from` that is private (`zero`) or shared, else `limit`. */
  *#find(zero: boolean, from: number, limit: number): ListenerCalls {
    if (from >= limit) return limit;
    return yield { kind: 'find', zero, from, limit };
  }

  // --- notification walks ---------------------------------------------------

  /** Begin a walk of `rdl_list`; stepping on from a freed listener is reported on the bus. */
  #walk(reverse: boolean): () => Registration | undefined {
    const walk = this.#list.walk(reverse, (freed) => this.#bus?.emit({ kind: 'listenerUseAfterFree', listener: freed.listener.name }));
    return () => walk.next();
  }

  /**
   * `ram_block_attributes_notify_populate`: every listener whose section
   * intersects, in list order, until the first error. Under a rollback
   * policy, the listeners already notified in this walk are told to discard
   * again (not the failing one, which cleaned up after itself): in the
   * order they were notified (virtio-mem), or in reverse with priorities so
   * VFIO unmaps before the KVM listener converts back. The caller clears the
   * failing step's bits after this returns: the literal order of the
   * rollback contract ("discard, and restore the bits"); `full` then clears
   * each earlier block before its own discard.
   */
  *#notifyPopulate(offset: number, size: number): ListenerCalls {
    this.#bus?.emit({ kind: 'populateStep', offset, size });
    const notified: Registration[] = [];
    const next = this.#walk(this.#walkOrder.populate);
    for (let registration = next(); registration !== undefined; registration = next()) {
      const section = sectionIntersectRange(registration.section, offset, size);
      if (section === undefined) continue;
      const ret = yield* this.#populateCall(registration.listener, section);
      if (ret === 0) {
        notified.push(registration);
        continue;
      }
      if (this.rollback !== 'none') {
        if (this.priorities) notified.reverse();
        for (const done of notified) {
          yield* this.#discardCall(done.listener, sectionIntersectRange(done.section, offset, size)!, true);
        }
      }
      return ret;
    }
    return 0;
  }

  /**
   * `ram_block_attributes_notify_discard`: every intersecting listener
   * (reverse order with priorities); cannot fail.
   */
  *#notifyDiscard(offset: number, size: number, rollback: boolean): ListenerCalls {
    const next = this.#walk(this.#walkOrder.discard);
    for (let registration = next(); registration !== undefined; registration = next()) {
      const section = sectionIntersectRange(registration.section, offset, size);
      if (section !== undefined) yield* this.#discardCall(registration.listener, section, rollback);
    }
    return 0;
  }

  *#populateCall(listener: RamDiscardListener, section: MemoryRegionSection): ListenerCalls {
    const bus = this.#bus;
    bus?.emit({ kind: 'notifyPopulate', listener: listener.name, offset: section.offsetWithinRegion, size: section.size });
    const ret = yield { kind: 'populate', listener, section };
    bus?.emit({ kind: 'notifyPopulateDone', listener: listener.name, offset: section.offsetWithinRegion, size: section.size, ret });
    return ret;
  }

  *#discardCall(listener: RamDiscardListener, section: MemoryRegionSection, rollback: boolean): ListenerCalls {
    this.#bus?.emit(rollback
      ? { kind: 'notifyDiscard', listener: listener.name, offset: section.offsetWithinRegion, size: section.size, rollback: true }
      : { kind: 'notifyDiscard', listener: listener.name, offset: section.offsetWithinRegion, size: section.size });
    yield { kind: 'discard', listener, section };
    return 0;
  }

  // --- run iteration ---------------------------------------------------------

  #replay(section: MemoryRegionSection, populated: boolean, fn: ReplayFn): Ret {
    for (const run of this.#runs(section, populated)) {
      const ret = fn(run);
      if (ret !== 0) return ret; // QEMU logs the error and stops
    }
    return 0;
  }

  /**
   * `ram_block_attributes_for_each_populated_section` /
   * `..._for_each_discarded_section`: from the section's first block, find
   * the next run of the wanted state, intersect it with the section, stop
   * when empty (the run is past the section), yield it, continue after it.
   * The bitmap is read lazily, run by run.
   */
  *#runs(section: MemoryRegionSection, populated: boolean): Generator<MemoryRegionSection, void, void> {
    const bitmap = this.bitmap;
    const size = this.bitmapSize;
    const findStart = (from: number): number => (populated ? bitmap.findNextBit(from, size) : bitmap.findNextZeroBit(from, size));
    const findEnd = (from: number): number => (populated ? bitmap.findNextZeroBit(from, size) : bitmap.findNextBit(from, size));
    let firstBit = findStart(Math.floor(section.offsetWithinRegion / this.blockSize));
    while (firstBit < size) {
      const lastBit = findEnd(firstBit + 1) - 1;
      const run = sectionIntersectRange(section, firstBit * this.blockSize, (lastBit - firstBit + 1) * this.blockSize);
      if (run === undefined) return;
      yield run;
      // lastBit + 1 is known to be of the other state: resume after it, as QEMU does.
      firstBit = lastBit + 2 < size ? findStart(lastBit + 2) : size;
    }
  }
}
