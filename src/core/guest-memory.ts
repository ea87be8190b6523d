/**
 * The backing pages of the guest_memfd RAMBlock.
 *
 * - `legacy`: two pages per block, a shared one (anonymous/memfd memory) and a
 *   private one (guest_memfd). Discarding a page frees it; the next touch
 *   gets a new page. Each discard stamps the block's page with a new
 *   generation, so a mapping taken before it is recognisably stale.
 * - `inplace`: one page per block (mmap-able guest_memfd). guest_memfd keeps
 *   its own shared/private state, converts in place, and refuses to convert a
 *   pinned page to private (-EAGAIN).
 */
import { EACCES, EAGAIN, EFAULT, type Ret } from './errno.js';
import type { CounterArray } from './counter-array.js';
import type { KvmMemoryAttributes } from './kvm-memory-attributes.js';
import { PagedCounters } from './paged-counters.js';
import { SharedBitmap } from './shared-bitmap.js';
import { SharedCounters } from './shared-counters.js';
import { sharedAccessRecorder } from './shared-access.js';

/**
 * The SharedArrayBuffers behind a {@link GuestMemory} that several threads
 * share (the KVM exit handler discards and converts, containers pin and
 * check, vCPUs read and write contents).
 */
export interface GuestMemoryBuffers {
  readonly epoch: SharedArrayBuffer;
  readonly sharedGeneration: SharedArrayBuffer;
  readonly privateGeneration: SharedArrayBuffer;
  readonly sharedData: SharedArrayBuffer;
  readonly privateData: SharedArrayBuffer;
  readonly pins: SharedArrayBuffer;
  readonly gmemShared: SharedArrayBuffer;
}

export type BackingMode = 'legacy' | 'inplace';
export const BACKING_MODES: readonly BackingMode[] = ['legacy', 'inplace'];

/** What a VFIO container needs from memory: pins and the state of the page it reaches. */
export interface PinnableMemory {
  /** `pin_user_pages` on the shared view; fails for a page that is not shared in in-place mode. */
  pin(offset: number, size: number): Ret;
  unpin(offset: number, size: number): void;
  /** A stamp that orders maps against discards: a mapping records it when made. */
  currentEpoch(): number;
  /** The page under the mapping was freed (discarded) after `epoch`. */
  isStale(offset: number, size: number, epoch: number): boolean;
  /** Some block of the range is private (legacy: KVM attribute; in-place: guest_memfd state). */
  isPrivate(offset: number, size: number): boolean;
}

export class GuestMemory implements PinnableMemory {
  readonly mode: BackingMode;
  readonly blockSize: number;
  readonly blocks: number;
  readonly #kvm: KvmMemoryAttributes;
  /**
   * Monotonic stamp shared by discards and maps (one Uint32 cell, Atomics).
   * A discard stamps its blocks with a new value; a mapping is stale if any
   * block's stamp is newer than the value it recorded when made. (Wraps
   * after 4 billion discards.)
   */
  readonly #epoch: Uint32Array;
  /** Legacy: generation of each block's shared page (bumped by `discardShared`). */
  readonly sharedGeneration: CounterArray;
  /** Legacy: generation of each block's private page (bumped by `discardPrivate`). */
  readonly privateGeneration: CounterArray;
  /** Contents as a one-byte pattern per block (0 = zeroes): the shared page, or the only page in-place. */
  readonly sharedData: CounterArray;
  /** Legacy: contents of the private page. In-place: unused (one page). */
  readonly privateData: CounterArray;
  /** Pin counts per block (a VFIO mapping pins its pages while it exists). */
  readonly pins: CounterArray;
  /** In-place: guest_memfd's own state, 1 = shared. Legacy: unused. */
  readonly gmemShared: SharedBitmap;
  /** Offset of the first pinned page of the last failed CONVERT_PRIVATE. */
  lastConvertErrorOffset = -1;

  /**
   * @param buffers shared storage (from {@link GuestMemory.allocateBuffers},
   *   possibly created in another thread); without it, sparse single-thread
   *   storage that scales to a 1 TiB guest.
   */
  constructor(mode: BackingMode, regionSize: number, blockSize: number, kvm: KvmMemoryAttributes, buffers?: GuestMemoryBuffers) {
    this.mode = mode;
    this.blockSize = blockSize;
    this.blocks = Math.ceil(regionSize / blockSize);
    this.#kvm = kvm;
    const counters = (sab: SharedArrayBuffer | undefined): CounterArray =>
      sab === undefined ? new PagedCounters(this.blocks) : new SharedCounters(this.blocks, sab);
    this.#epoch = new Uint32Array(buffers?.epoch ?? new SharedArrayBuffer(4));
    this.sharedGeneration = counters(buffers?.sharedGeneration);
    this.privateGeneration = counters(buffers?.privateGeneration);
    this.sharedData = counters(buffers?.sharedData);
    this.privateData = counters(buffers?.privateData);
    this.pins = counters(buffers?.pins);
    this.gmemShared = new SharedBitmap(this.blocks, buffers?.gmemShared);
  }

  /** Shared storage for a region, to hand to every thread's GuestMemory. */
  static allocateBuffers(regionSize: number, blockSize: number): GuestMemoryBuffers {
    const blocks = Math.ceil(regionSize / blockSize);
    const counters = (): SharedArrayBuffer => new SharedArrayBuffer(Math.max(4, blocks * 4));
    return {
      epoch: new SharedArrayBuffer(4),
      sharedGeneration: counters(),
      privateGeneration: counters(),
      sharedData: counters(),
      privateData: counters(),
      pins: counters(),
      gmemShared: new SharedArrayBuffer(SharedBitmap.byteLengthFor(blocks)),
    };
  }

  currentEpoch(): number {
    sharedAccessRecorder?.access(this.#epoch.buffer as SharedArrayBuffer, false, 0, 0);
    return Atomics.load(this.#epoch, 0);
  }

  /** A new stamp for a discard, after every stamp handed out before. */
  #nextEpoch(): number {
    sharedAccessRecorder?.access(this.#epoch.buffer as SharedArrayBuffer, true, 0, 0);
    return Atomics.add(this.#epoch, 0, 1) + 1;
  }

  /** `ram_block_discard_range`: free the shared pages (legacy, converting to private). */
  discardShared(offset: number, size: number): void {
    const [first, count] = this.#blocks(offset, size);
    this.sharedGeneration.setRange(first, count, this.#nextEpoch());
    this.sharedData.setRange(first, count, 0);
  }

  /** `ram_block_discard_guest_memfd_range`: punch a hole in guest_memfd (legacy, converting to shared). */
  discardPrivate(offset: number, size: number): void {
    const [first, count] = this.#blocks(offset, size);
    this.privateGeneration.setRange(first, count, this.#nextEpoch());
    this.privateData.setRange(first, count, 0);
  }

  /**
   * `fallocate(PUNCH_HOLE)` on guest_memfd: its pages in the range are
   * freed and read as zeroes when faulted in again (legacy: the private
   * page; in place: the one page).
   */
  punchHole(offset: number, size: number): void {
    if (this.mode === 'legacy') {
      this.discardPrivate(offset, size);
      return;
    }
    const [first, count] = this.#blocks(offset, size);
    this.sharedGeneration.setRange(first, count, this.#nextEpoch());
    this.sharedData.setRange(first, count, 0);
  }

  /**
   * In-place `CONVERT_PRIVATE`: host mappings are zapped, then every page
   * must hold only page-cache references; a page pinned by VFIO has more ->
   * -EAGAIN with the failing offset, nothing converted.
   */
  convertPrivate(offset: number, size: number): Ret {
    const [first, count] = this.#blocks(offset, size);
    if (this.pins.anyNonZero(first, count)) {
      for (let b = first; b < first + count; b++) {
        if (this.pins.get(b) !== 0) {
          this.lastConvertErrorOffset = b * this.blockSize;
          break;
        }
      }
      return -EAGAIN;
    }
    this.gmemShared.clearRange(first, count);
    return 0;
  }

  /** In-place `CONVERT_SHARED`: no reference-count check. */
  convertShared(offset: number, size: number): Ret {
    const [first, count] = this.#blocks(offset, size);
    this.gmemShared.setRange(first, count);
    return 0;
  }

  pin(offset: number, size: number): Ret {
    // No VMA behind the address: get_user_pages fails.
    if (offset + size > this.blocks * this.blockSize) return -EFAULT;
    const [first, count] = this.#blocks(offset, size);
    // In-place: a host fault on a page that is not shared fails, so GUP cannot pin it.
    if (this.mode === 'inplace' && !this.gmemShared.isRangeSet(first, count)) return -EACCES;
    for (let b = first; b < first + count; b++) this.pins.add(b, 1);
    return 0;
  }

  unpin(offset: number, size: number): void {
    const [first, count] = this.#blocks(offset, size);
    for (let b = first; b < first + count; b++) {
      if (this.pins.get(b) > 0) this.pins.add(b, -1);
    }
  }

  isStale(offset: number, size: number, epoch: number): boolean {
    if (this.mode === 'inplace') return false; // one page, never freed by a conversion
    const [first, count] = this.#blocks(offset, size);
    return this.sharedGeneration.maxInRange(first, count) > epoch;
  }

  isPrivate(offset: number, size: number): boolean {
    if (this.mode === 'legacy') return this.#kvm.anyPrivate(offset, size);
    const [first, count] = this.#blocks(offset, size);
    return !this.gmemShared.isRangeSet(first, count);
  }

  /** Write a pattern into the shared view (the guest or host touching shared memory). */
  writeShared(offset: number, size: number, pattern: number): void {
    const [first, count] = this.#blocks(offset, size);
    this.sharedData.setRange(first, count, pattern);
  }

  /** Write a pattern into private memory (legacy: the guest_memfd page). */
  writePrivate(offset: number, size: number, pattern: number): void {
    const [first, count] = this.#blocks(offset, size);
    (this.mode === 'inplace' ? this.sharedData : this.privateData).setRange(first, count, pattern);
  }

  /** Pattern of one block as the host sees it through the shared view. */
  readShared(offset: number): number {
    return this.sharedData.get(Math.floor(offset / this.blockSize));
  }

  /** Pattern of one block as the guest sees it privately. */
  readPrivate(offset: number): number {
    const block = Math.floor(offset / this.blockSize);
    return (this.mode === 'inplace' ? this.sharedData : this.privateData).get(block);
  }

  #blocks(offset: number, size: number): [number, number] {
    const first = Math.floor(offset / this.blockSize);
    return [first, Math.ceil((offset + size) / this.blockSize) - first];
  }
}
