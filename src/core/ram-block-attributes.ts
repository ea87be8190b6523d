/**
 * RamBlockAttributes (system/ram-block-attributes.c): the per-RAMBlock bitmap
 * of shared (populated, bit = 1) and private (discarded, bit = 0) blocks, and
 * the RamDiscardManager that tells listeners (VFIO) about conversions.
 *
 * Method names follow the C functions: `stateChange` is
 * `ram_block_attributes_state_change`, `notifyPopulate` is
 * `ram_block_attributes_notify_populate`, and so on.
 */
import { EINVAL, type Ret } from './errno.js';
import type { EventBus } from './events.js';
import { sectionIntersectRange, type MemoryRegionSection } from './memory-region-section.js';
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
  readonly bus?: EventBus;
}

/**
 * One synchronous listener call the algorithm needs made. The algorithms
 * are generators that yield these and are resumed with the call's result,
 * so the same code runs synchronously ({@link callListener}) and on the
 * actor runtime, where a call is a message to a container and a wait for
 * its reply.
 */
export type ListenerCall =
  | { readonly kind: 'populate'; readonly listener: RamDiscardListener; readonly section: MemoryRegionSection }
  | { readonly kind: 'discard'; readonly listener: RamDiscardListener; readonly section: MemoryRegionSection };

/** The shape of every RamBlockAttributes algorithm: yields calls, returns a Ret. */
export type ListenerCalls = Generator<ListenerCall, Ret, Ret>;

/** Make a listener call directly (discards always "return" 0). */
export function callListener(call: ListenerCall): Ret {
  if (call.kind === 'populate') return call.listener.notifyPopulate(call.section);
  call.listener.notifyDiscard(call.section);
  return 0;
}

/** Run an algorithm to completion with direct listener calls. */
export function runListenerCalls(calls: ListenerCalls): Ret {
  let step = calls.next();
  while (!step.done) step = calls.next(callListener(step.value));
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

/** A registered listener and the copy of the section it registered with. */
interface Registration {
  readonly listener: RamDiscardListener;
  readonly section: MemoryRegionSection;
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
  readonly #notifyBeforeBitmap: boolean;
  readonly #invertWalk: boolean;
  readonly #bus: EventBus | undefined;
  /** `rdl_list` in notification (populate-walk) order. */
  #registrations: Registration[] = [];

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
    this.#notifyBeforeBitmap = options.notifyBeforeBitmap ?? false;
    this.#invertWalk = options.priorities && (options.invertPriorityWalk ?? false);
    this.#bus = options.bus;
  }

  /** Listener names in notification (populate-walk) order. */
  get listenerNames(): string[] {
    return this.#registrations.map((r) => r.listener.name);
  }

  /** The section a listener registered with, or undefined. */
  sectionOf(listener: RamDiscardListener): MemoryRegionSection | undefined {
    return this.#registrations.find((r) => r.listener === listener)?.section;
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
    return runListenerCalls(this.registerListenerCalls(listener, section));
  }

  unregisterListener(listener: RamDiscardListener): void {
    runListenerCalls(this.unregisterListenerCalls(listener));
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
    if (this.#registrations.some((r) => r.listener === listener)) {
      throw new RangeError(`listener ${listener.name} is already registered`);
    }
    const registration: Registration = { listener, section: { ...section } };
    const list = [...this.#registrations];
    if (this.priorities) {
      // Sorted by ascending priority; equal priorities keep registration order.
      const at = list.findIndex((r) => r.listener.priority > listener.priority);
      if (at < 0) list.push(registration);
      else list.splice(at, 0, registration);
    } else {
      // QLIST_INSERT_HEAD: the newest listener is notified first.
      list.unshift(registration);
    }
    // Copy-on-write: a walk in flight keeps iterating the list it started with.
    this.#registrations = list;
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
    const registration = this.#registrations.find((r) => r.listener === listener);
    if (registration === undefined) throw new RangeError(`listener ${listener.name} is not registered`);
    if (listener.doubleDiscardSupported) {
      yield* this.#discardCall(listener, registration.section, false);
    } else {
      for (const run of this.#runs(registration.section, true)) yield* this.#discardCall(listener, run, false);
    }
    this.#registrations = this.#registrations.filter((r) => r !== registration);
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
    return runListenerCalls(this.stateChangeCalls(offset, size, toDiscard));
  }

  /**
   * {@link stateChange} as a generator of listener calls.
   *
   * Concurrency: there is no lock (QEMU has none [inferred]). Two of these
   * may be in flight at once on the actor runtime, each reading and writing
   * the bitmap between its own listener calls.
   */
  *stateChangeCalls(offset: number, size: number, toDiscard: boolean): ListenerCalls {
    if (!this.isValidRange(offset, size)) return -EINVAL;
    const bus = this.#bus;
    bus?.emit({ kind: 'stateChangeBegin', offset, size, toDiscard });
    const ret = toDiscard ? yield* this.#changeToDiscarded(offset, size) : yield* this.#changeToPopulated(offset, size);
    bus?.emit({ kind: 'stateChangeEnd', offset, size, toDiscard, ret });
    return ret;
  }

  *#changeToDiscarded(offset: number, size: number): ListenerCalls {
    const firstBit = offset / this.blockSize;
    const nbits = size / this.blockSize;
    const bitmap = this.bitmap;
    if (bitmap.isRangeClear(firstBit, nbits)) return 0; // already private
    const late = this.#notifyBeforeBitmap;
    if (bitmap.isRangeSet(firstBit, nbits)) {
      if (!late) bitmap.clearRange(firstBit, nbits);
      yield* this.#notifyDiscard(offset, size, false);
      if (late) bitmap.clearRange(firstBit, nbits);
      return 0;
    }
    // Unexpected mixture: one block at a time, ascending.
    const end = firstBit + nbits;
    for (let bit = bitmap.findNextBit(firstBit, end); bit < end; bit = bitmap.findNextBit(bit + 1, end)) {
      if (!late) bitmap.clear(bit);
      yield* this.#notifyDiscard(bit * this.blockSize, this.blockSize, false);
      if (late) bitmap.clear(bit);
    }
    return 0;
  }

  *#changeToPopulated(offset: number, size: number): ListenerCalls {
    const firstBit = offset / this.blockSize;
    const nbits = size / this.blockSize;
    const bitmap = this.bitmap;
    if (bitmap.isRangeSet(firstBit, nbits)) return 0; // already shared
    const late = this.#notifyBeforeBitmap;
    if (bitmap.isRangeClear(firstBit, nbits)) {
      if (!late) bitmap.setRange(firstBit, nbits);
      const ret = yield* this.#notifyPopulate(offset, size);
      if (late && (ret === 0 || this.rollback === 'none')) bitmap.setRange(firstBit, nbits);
      if (ret !== 0 && this.rollback !== 'none') bitmap.clearRange(firstBit, nbits);
      return ret;
    }
    // Unexpected mixture: one block at a time, ascending, stop at the first error.
    const end = firstBit + nbits;
    const changed: number[] = []; // blocks this call populated, for `full` rollback
    for (let bit = bitmap.findNextZeroBit(firstBit, end); bit < end; bit = bitmap.findNextZeroBit(bit + 1, end)) {
      if (!late) bitmap.set(bit);
      const ret = yield* this.#notifyPopulate(bit * this.blockSize, this.blockSize);
      if (late && (ret === 0 || this.rollback === 'none')) bitmap.set(bit);
      if (ret === 0) {
        if (this.rollback === 'full') changed.push(bit);
        continue;
      }
      if (this.rollback !== 'none') bitmap.clear(bit);
      if (this.rollback === 'full') {
        // v5 patch 10: every block this call populated goes back, ascending.
        for (const done of changed) {
          bitmap.clear(done);
          yield* this.#notifyDiscard(done * this.blockSize, this.blockSize, true);
        }
      }
      return ret;
    }
    return 0;
  }

  // --- notification walks ---------------------------------------------------

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
    const walk = this.#invertWalk ? [...this.#registrations].reverse() : this.#registrations;
    for (const registration of walk) {
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
    const registrations = this.#registrations;
    const reverse = this.priorities !== this.#invertWalk;
    for (let i = 0; i < registrations.length; i++) {
      const registration = registrations[reverse ? registrations.length - 1 - i : i]!;
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
