/**
 * `memory_region_section_intersect_range()` (spec section 2, "Intersection").
 */
import { describe, expect, it } from 'vitest';
import { sectionIntersectRange, type MemoryRegionSection } from '../../src/core/memory-region-section.js';

const KiB = 1024;

/** A window [4K, 20K) of region "ram0" seen at IOVA 1 MiB. */
const section: MemoryRegionSection = {
  mr: 'ram0',
  offsetWithinRegion: 4 * KiB,
  size: 16 * KiB,
  offsetWithinAddressSpace: 0x100000,
  readonly: false,
};

describe('sectionIntersectRange (memory_region_section_intersect_range)', () => {
  it('narrows to a range strictly inside, moving the IOVA by the same amount as the region offset', () => {
    expect(sectionIntersectRange(section, 8 * KiB, 4 * KiB)).toEqual({
      mr: 'ram0', offsetWithinRegion: 8 * KiB, size: 4 * KiB, offsetWithinAddressSpace: 0x100000 + 4 * KiB, readonly: false,
    });
  });

  it('start = max(section start, offset): a range starting before the section keeps the section start and IOVA', () => {
    expect(sectionIntersectRange(section, 0, 8 * KiB)).toEqual({
      mr: 'ram0', offsetWithinRegion: 4 * KiB, size: 4 * KiB, offsetWithinAddressSpace: 0x100000, readonly: false,
    });
  });

  it('end = min(section end, offset + size): a range running past the section is clipped at the section end', () => {
    expect(sectionIntersectRange(section, 12 * KiB, 1024 * KiB)).toEqual({
      mr: 'ram0', offsetWithinRegion: 12 * KiB, size: 8 * KiB, offsetWithinAddressSpace: 0x100000 + 8 * KiB, readonly: false,
    });
  });

  it('a range covering the whole section returns the section unchanged', () => {
    expect(sectionIntersectRange(section, 0, 64 * KiB)).toEqual(section);
  });

  it('end <= start is empty (undefined): before, after, touching either end, zero size', () => {
    expect(sectionIntersectRange(section, 0, 4 * KiB)).toBeUndefined(); // ends exactly at the section start
    expect(sectionIntersectRange(section, 20 * KiB, 4 * KiB)).toBeUndefined(); // starts exactly at the section end
    expect(sectionIntersectRange(section, 64 * KiB, 4 * KiB)).toBeUndefined();
    expect(sectionIntersectRange(section, 8 * KiB, 0)).toBeUndefined();
  });

  it('keeps mr and readonly, and never mutates its argument', () => {
    const ro: MemoryRegionSection = { ...section, readonly: true };
    const copy = { ...ro };
    const narrowed = sectionIntersectRange(ro, 16 * KiB, 4 * KiB);
    expect(narrowed?.readonly).toBe(true);
    expect(narrowed?.mr).toBe('ram0');
    expect(ro).toEqual(copy);
  });

  it('is exact for offsets beyond 2^32 (no 32-bit arithmetic)', () => {
    const high: MemoryRegionSection = { mr: 'ram0', offsetWithinRegion: 2 ** 40, size: 2 ** 33, offsetWithinAddressSpace: 2 ** 41, readonly: false };
    expect(sectionIntersectRange(high, 2 ** 40 + 2 ** 32, 2 ** 34)).toEqual({
      mr: 'ram0', offsetWithinRegion: 2 ** 40 + 2 ** 32, size: 2 ** 32, offsetWithinAddressSpace: 2 ** 41 + 2 ** 32, readonly: false,
    });
  });
});
