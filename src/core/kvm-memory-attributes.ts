/**
 * KVM's per-GFN memory attributes (`KVM_SET_MEMORY_ATTRIBUTES`), restricted
 * to the guest_memfd region. All private at start.
 */
import { GuestPhysMap } from './guest-phys-map.js';
import { SharedBitmap } from './shared-bitmap.js';

/**
 * KVM keys attributes by GFN; the model keeps them per RAMBlock block,
 * which is the same thing as long as every GFN of RAM shows exactly one
 * block (true of every layout convsim builds): GPAs go through the
 * {@link GuestPhysMap}.
 */
export class KvmMemoryAttributes {
  readonly physMap: GuestPhysMap;
  readonly blockSize: number;
  /** One bit per block: 1 = shared, 0 = `KVM_MEMORY_ATTRIBUTE_PRIVATE`. */
  readonly shared: SharedBitmap;

  /** `physMap` may be a bare GPA base: the flat map of one section there. */
  constructor(physMap: GuestPhysMap | number, regionSize: number, blockSize: number, shared?: SharedBitmap) {
    this.physMap = typeof physMap === 'number' ? GuestPhysMap.flat(physMap, regionSize) : physMap;
    this.blockSize = blockSize;
    this.shared = shared ?? new SharedBitmap(Math.ceil(regionSize / blockSize));
  }

  /**
   * `kvm_set_memory_attributes_private/shared(gpa, size)`. The part of the
   * range outside RAM is accepted and not tracked (KVM keeps attributes for
   * any GFN; the model only keeps the region's).
   */
  set(gpa: number, size: number, toPrivate: boolean): void {
    for (const [offset, n] of this.physMap.offsetPieces(gpa, size)) this.setOffsets(offset, n, toPrivate);
  }

  /** The attributes of the GFNs that show RAMBlock bytes `[offset, offset + size)`. */
  setOffsets(offset: number, size: number, toPrivate: boolean): void {
    const first = Math.floor(offset / this.blockSize);
    const end = Math.min(Math.ceil((offset + size) / this.blockSize), this.shared.size);
    if (end <= first) return;
    if (toPrivate) this.shared.clearRange(first, end - first);
    else this.shared.setRange(first, end - first);
  }

  /** True if any block of the region-relative byte range is private. */
  anyPrivate(offset: number, size: number): boolean {
    const first = Math.floor(offset / this.blockSize);
    return !this.shared.isRangeSet(first, Math.ceil((offset + size) / this.blockSize) - first);
  }
}
