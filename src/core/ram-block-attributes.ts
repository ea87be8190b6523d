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
  /** An existing shared bitmap to adopt (another thread's view); else a new one. */
  readonly bitmap?: SharedBitmap;
  readonly bus?: EventBus;
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
  readonly #bus: EventBus | undefined;
  /** `rdl_list` in notification order. */
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
    return this.#forEachRun(section, true, fn);
  }

  /** `ram_block_attributes_rdm_replay_discarded`: `fn` once per maximal private run. */
  replayDiscarded(section: MemoryRegionSection, fn: ReplayFn): Ret {
    return this.#forEachRun(section, false, fn);
  }

  /**
   * `ram_block_attributes_rdm_register_listener`: keep a copy of the section,
   * link the listener (at the head, or by priority), then replay every shared
   * run through its `notifyPopulate`. A failed replay makes QEMU exit(1);
   * here it returns the error and leaves the listener linked, as the state
   * was at the moment QEMU exited.
   */
  registerListener(listener: RamDiscardListener, section: MemoryRegionSection): Ret {
    if (section.mr !== this.mr) throw new RangeError(`section of ${section.mr} registered with ${this.mr}`);
    if (this.#registrations.some((r) => r.listener === listener)) {
      throw new RangeError(`listener ${listener.name} is already registered`);
    }
    const registration: Registration = { listener, section: { ...section } };
    if (this.priorities) {
      // Sorted by ascending priority; equal priorities keep registration order.
      const at = this.#registrations.findIndex((r) => r.listener.priority > listener.priority);
      if (at < 0) this.#registrations.push(registration);
      else this.#registrations.splice(at, 0, registration);
    } else {
      // QLIST_INSERT_HEAD: the newest listener is notified first.
      this.#registrations.unshift(registration);
    }
    return this.#forEachRun(registration.section, true, (s) => this.#callPopulate(listener, s));
  }

  /**
   * `ram_block_attributes_rdm_unregister_listener`: one discard of the whole
   * section when the listener supports double discard (VFIO), else one per
   * shared run; then unlink.
   */
  unregisterListener(listener: RamDiscardListener): void {
    const index = this.#registrations.findIndex((r) => r.listener === listener);
    const registration = this.#registrations[index];
    if (registration === undefined) throw new RangeError(`listener ${listener.name} is not registered`);
    if (listener.doubleDiscardSupported) {
      this.#callDiscard(listener, registration.section, false);
    } else {
      this.#forEachRun(registration.section, true, (s) => {
        this.#callDiscard(listener, s, false);
        return 0;
      });
    }
    this.#registrations.splice(index, 1);
  }

  // --- state change --------------------------------------------------------

  /** `ram_block_attributes_is_valid_range`. */
  isValidRange(offset: number, size: number): boolean {
    if (!isAligned(offset, this.blockSize) || !isAligned(size, this.blockSize)) return false;
    if (offset + size >= U64_LIMIT) return false; // `offset + size < offset` in u64
    if (offset + size > this.regionSize) return false;
    return true;
  }

  /**
   * `ram_block_attributes_state_change(offset, size, to_discard)`: convert a
   * range to private (`toDiscard`) or shared and tell the listeners. The
   * bitmap is always written before listeners hear of it. Returns 0, -EINVAL
   * for an invalid range (nothing changed), or the first listener error of a
   * populate (handled by the rollback policy).
   */
  stateChange(offset: number, size: number, toDiscard: boolean): Ret {
    if (!this.isValidRange(offset, size)) return -EINVAL;
    const bus = this.#bus;
    bus?.emit({ kind: 'stateChangeBegin', offset, size, toDiscard });
    const ret = toDiscard ? this.#changeToDiscarded(offset, size) : this.#changeToPopulated(offset, size);
    bus?.emit({ kind: 'stateChangeEnd', offset, size, toDiscard, ret });
    return ret;
  }

  #changeToDiscarded(offset: number, size: number): Ret {
    const { firstBit, nbits } = this.#bits(offset, size);
    const bitmap = this.bitmap;
    if (bitmap.isRangeClear(firstBit, nbits)) return 0; // already private
    if (bitmap.isRangeSet(firstBit, nbits)) {
      bitmap.clearRange(firstBit, nbits);
      this.#notifyDiscard(offset, size, false);
      return 0;
    }
    // Unexpected mixture: one block at a time, ascending.
    for (let bit = bitmap.findNextBit(firstBit, firstBit + nbits); bit < firstBit + nbits;
      bit = bitmap.findNextBit(bit + 1, firstBit + nbits)) {
      bitmap.clear(bit);
      this.#notifyDiscard(bit * this.blockSize, this.blockSize, false);
    }
    return 0;
  }

  #changeToPopulated(offset: number, size: number): Ret {
    const { firstBit, nbits } = this.#bits(offset, size);
    const bitmap = this.bitmap;
    if (bitmap.isRangeSet(firstBit, nbits)) return 0; // already shared
    if (bitmap.isRangeClear(firstBit, nbits)) {
      bitmap.setRange(firstBit, nbits);
      const ret = this.#notifyPopulate(offset, size);
      if (ret !== 0 && this.rollback !== 'none') bitmap.clearRange(firstBit, nbits);
      return ret;
    }
    // Unexpected mixture: one block at a time, ascending, stop at the first error.
    const end = firstBit + nbits;
    const changed: number[] = []; // blocks this call populated, for `full` rollback
    for (let bit = bitmap.findNextZeroBit(firstBit, end); bit < end; bit = bitmap.findNextZeroBit(bit + 1, end)) {
      bitmap.set(bit);
      const ret = this.#notifyPopulate(bit * this.blockSize, this.blockSize);
      if (ret === 0) {
        if (this.rollback === 'full') changed.push(bit);
        continue;
      }
      if (this.rollback !== 'none') bitmap.clear(bit);
      if (this.rollback === 'full') this.#restoreChangedBlocks(changed);
      return ret;
    }
    return 0;
  }

  /**
   * Full rollback of a mixture-to-shared change (v5 patch 10): every block
   * this call populated before the failing one goes back to private,
   * ascending, each with its own discard to every intersecting listener.
   */
  #restoreChangedBlocks(changed: readonly number[]): void {
    for (const bit of changed) {
      this.bitmap.clear(bit);
      this.#notifyDiscard(bit * this.blockSize, this.blockSize, true);
    }
  }

  // --- notification walks ---------------------------------------------------

  /**
   * `ram_block_attributes_notify_populate`: every listener whose section
   * intersects, in list order, until the first error. The rollback policy
   * decides what the listeners already notified hear about it.
   */
  #notifyPopulate(offset: number, size: number): Ret {
    this.#bus?.emit({ kind: 'populateStep', offset, size });
    const notified: Registration[] = [];
    for (const registration of this.#registrations) {
      const section = sectionIntersectRange(registration.section, offset, size);
      if (section === undefined) continue;
      const ret = this.#callPopulate(registration.listener, section);
      if (ret !== 0) {
        if (this.rollback !== 'none') this.#rollbackListeners(notified, offset, size);
        return ret;
      }
      notified.push(registration);
    }
    return 0;
  }

  /**
   * Tell the listeners notified before the failing one to discard again (not
   * the failing listener, which cleaned up after itself). Merged order: the
   * same order they were notified in, as virtio-mem does; priority order:
   * reverse, so VFIO unmaps before the KVM listener converts back.
   */
  #rollbackListeners(notified: readonly Registration[], offset: number, size: number): void {
    const order = this.priorities ? [...notified].reverse() : notified;
    for (const registration of order) {
      const section = sectionIntersectRange(registration.section, offset, size);
      if (section !== undefined) this.#callDiscard(registration.listener, section, true);
    }
  }

  /** `ram_block_attributes_notify_discard`: every intersecting listener; cannot fail. */
  #notifyDiscard(offset: number, size: number, rollback: boolean): void {
    const registrations = this.#registrations;
    const reverse = this.priorities;
    for (let i = 0; i < registrations.length; i++) {
      const registration = registrations[reverse ? registrations.length - 1 - i : i]!;
      const section = sectionIntersectRange(registration.section, offset, size);
      if (section !== undefined) this.#callDiscard(registration.listener, section, rollback);
    }
  }

  #callPopulate(listener: RamDiscardListener, section: MemoryRegionSection): Ret {
    const bus = this.#bus;
    bus?.emit({ kind: 'notifyPopulate', listener: listener.name, offset: section.offsetWithinRegion, size: section.size });
    const ret = listener.notifyPopulate(section);
    bus?.emit({ kind: 'notifyPopulateDone', listener: listener.name, offset: section.offsetWithinRegion, size: section.size, ret });
    return ret;
  }

  #callDiscard(listener: RamDiscardListener, section: MemoryRegionSection, rollback: boolean): void {
    this.#bus?.emit(rollback
      ? { kind: 'notifyDiscard', listener: listener.name, offset: section.offsetWithinRegion, size: section.size, rollback: true }
      : { kind: 'notifyDiscard', listener: listener.name, offset: section.offsetWithinRegion, size: section.size });
    listener.notifyDiscard(section);
  }

  // --- helpers ---------------------------------------------------------------

  #bits(offset: number, size: number): { firstBit: number; nbits: number } {
    return { firstBit: offset / this.blockSize, nbits: size / this.blockSize };
  }

  /**
   * `ram_block_attributes_for_each_populated_section` /
   * `..._for_each_discarded_section`: from the section's first block, find
   * the next run of the wanted state, intersect it with the section, stop
   * when empty (the run is past the section), call `fn`, stop on error.
   */
  #forEachRun(section: MemoryRegionSection, populated: boolean, fn: ReplayFn): Ret {
    const bitmap = this.bitmap;
    const size = this.bitmapSize;
    const findStart = populated ? bitmap.findNextBit.bind(bitmap) : bitmap.findNextZeroBit.bind(bitmap);
    const findEnd = populated ? bitmap.findNextZeroBit.bind(bitmap) : bitmap.findNextBit.bind(bitmap);
    let firstBit = findStart(Math.floor(section.offsetWithinRegion / this.blockSize), size);
    while (firstBit < size) {
      const lastBit = findEnd(firstBit + 1, size) - 1;
      const run = sectionIntersectRange(section, firstBit * this.blockSize, (lastBit - firstBit + 1) * this.blockSize);
      if (run === undefined) break;
      const ret = fn(run);
      if (ret !== 0) return ret;
      // lastBit + 1 is known to be of the other state: resume after it, as QEMU does.
      firstBit = lastBit + 2 < size ? findStart(lastBit + 2, size) : size;
    }
    return 0;
  }
}
