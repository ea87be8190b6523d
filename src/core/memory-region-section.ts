/**
 * `MemoryRegionSection` and `memory_region_section_intersect_range()`
 * (include/system/memory.h).
 */

/** A window of a memory region as seen from an address space. */
export interface MemoryRegionSection {
  /** Name of the memory region (there is one guest_memfd RAMBlock in the model). */
  readonly mr: string;
  /** Byte offset of the window inside the region. */
  readonly offsetWithinRegion: number;
  /** Length in bytes. */
  readonly size: number;
  /** Where the window starts in the address space: for VFIO, the IOVA. */
  readonly offsetWithinAddressSpace: number;
  readonly readonly: boolean;
}

/**
 * `memory_region_section_intersect_range(section, offset, size)`: narrow the
 * section to `[offset, offset + size)` of its region. Returns `undefined` (QEMU:
 * `false`) when the intersection is empty. The address-space offset moves by
 * the same amount as the region offset.
 */
export function sectionIntersectRange(
  section: MemoryRegionSection,
  offset: number,
  size: number,
): MemoryRegionSection | undefined {
  const start = Math.max(section.offsetWithinRegion, offset);
  const end = Math.min(section.offsetWithinRegion + section.size, offset + size);
  if (end <= start) return undefined;
  return {
    mr: section.mr,
    offsetWithinRegion: start,
    size: end - start,
    offsetWithinAddressSpace: section.offsetWithinAddressSpace + (start - section.offsetWithinRegion),
    readonly: section.readonly,
  };
}

/** The section's end offset inside the region (exclusive). */
export function sectionEnd(section: MemoryRegionSection): number {
  return section.offsetWithinRegion + section.size;
}
