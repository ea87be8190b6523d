/**
 * KVM's per-GFN memory attributes (`KVM_SET_MEMORY_ATTRIBUTES`), restricted
 * to the guest_memfd region. All private at start.
 */
import { SharedBitmap } from './shared-bitmap.js';

export class KvmMemoryAttributes {
  /** Guest physical address of block 0. */
  readonly gpaBase: number;
  readonly blockSize: number;
  /** One bit per block: 1 = shared, 0 = `KVM_MEMORY_ATTRIBUTE_PRIVATE`. */
  readonly shared: SharedBitmap;

  constructor(gpaBase: number, regionSize: number, blockSize: number, shared?: SharedBitmap) {
    this.gpaBase = gpaBase;
    this.blockSize = blockSize;
    this.shared = shared ?? new SharedBitmap(Math.ceil(regionSize / blockSize));
  }

  /**
   * `kvm_set_memory_attributes_private/shared(gpa, size)`. The part of the
   * range outside the region is accepted and not tracked (KVM keeps
   * attributes for any GFN; the model only keeps the region's).
   */
  set(gpa: number, size: number, toPrivate: boolean): void {
    const regionEnd = this.gpaBase + this.shared.size * this.blockSize;
    const start = Math.max(gpa, this.gpaBase);
    const end = Math.min(gpa + size, regionEnd);
    if (end <= start) return;
    const first = Math.floor((start - this.gpaBase) / this.blockSize);
    const count = Math.ceil((end - this.gpaBase) / this.blockSize) - first;
    if (toPrivate) this.shared.clearRange(first, count);
    else this.shared.setRange(first, count);
  }

  /** True if any block of the region-relative byte range is private. */
  anyPrivate(offset: number, size: number): boolean {
    const first = Math.floor(offset / this.blockSize);
    return !this.shared.isRangeSet(first, Math.ceil((offset + size) / this.blockSize) - first);
  }
}
