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
import { EACCES, EAGAIN, type Ret } from './errno.js';
import type { KvmMemoryAttributes } from './kvm-memory-attributes.js';
import { PagedCounters } from './paged-counters.js';
import { SharedBitmap } from './shared-bitmap.js';

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
   * Monotonic stamp shared by discards and maps. A discard stamps its blocks
   * with a new value; a mapping is stale if any block's stamp is newer than
   * the value it recorded. (Uint32: wraps after 4 billion discards.)
   */
  #epoch = 0;
  /** Legacy: generation of each block's shared page (bumped by `discardShared`). */
  readonly sharedGeneration: PagedCounters;
  /** Legacy: generation of each block's private page (bumped by `discardPrivate`). */
  readonly privateGeneration: PagedCounters;
  /** Contents as a one-byte pattern per block (0 = zeroes): the shared page, or the only page in-place. */
  readonly sharedData: PagedCounters;
  /** Legacy: contents of the private page. In-place: unused (one page). */
  readonly privateData: PagedCounters;
  /** Pin counts per block (a VFIO mapping pins its pages while it exists). */
  readonly pins: PagedCounters;
  /** In-place: guest_memfd's own state, 1 = shared. Legacy: unused. */
  readonly gmemShared: SharedBitmap;
  /** Offset of the first pinned page of the last failed CONVERT_PRIVATE. */
  lastConvertErrorOffset = -1;

  constructor(mode: BackingMode, regionSize: number, blockSize: number, kvm: KvmMemoryAttributes) {
    this.mode = mode;
    this.blockSize = blockSize;
    this.blocks = Math.ceil(regionSize / blockSize);
    this.#kvm = kvm;
    this.sharedGeneration = new PagedCounters(this.blocks);
    this.privateGeneration = new PagedCounters(this.blocks);
    this.sharedData = new PagedCounters(this.blocks);
    this.privateData = new PagedCounters(this.blocks);
    this.pins = new PagedCounters(this.blocks);
    this.gmemShared = new SharedBitmap(mode === 'inplace' ? this.blocks : 0);
  }

  currentEpoch(): number {
    return this.#epoch;
  }

  /** `ram_block_discard_range`: free the shared pages (legacy, converting to private). */
  discardShared(offset: number, size: number): void {
    const [first, count] = this.#blocks(offset, size);
    this.sharedGeneration.setRange(first, count, ++this.#epoch);
    this.sharedData.setRange(first, count, 0);
  }

  /** `ram_block_discard_guest_memfd_range`: punch a hole in guest_memfd (legacy, converting to shared). */
  discardPrivate(offset: number, size: number): void {
    const [first, count] = this.#blocks(offset, size);
    this.privateGeneration.setRange(first, count, ++this.#epoch);
    this.privateData.setRange(first, count, 0);
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
