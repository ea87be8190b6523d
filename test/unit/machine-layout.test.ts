/**
 * The guest-physical map and the machine layouts: `memory_region_find`,
 * the x86 split, and the random layouts' promises (sections inside RAM,
 * block aligned, disjoint per container, never straddling two RAM sections).
 */
import { describe, expect, it } from 'vitest';
import { GuestPhysMap } from '../../src/core/guest-phys-map.js';
import { ABOVE_4G, buildLayout, x86BelowSize } from '../../src/core/machine-layout.js';
import { Prng } from '../../src/core/prng.js';
import { GiB, MiB } from '../../src/core/units.js';

const x86 = new GuestPhysMap([
  { name: 'ram-below-4g', gpa: 0, offset: 0, size: 32 * MiB },
  { name: 'ram-above-4g', gpa: ABOVE_4G, offset: 32 * MiB, size: 32 * MiB },
]);

describe('GuestPhysMap', () => {
  it('memory_region_find: the first RAM section intersecting the range, and the offset where it starts', () => {
    expect(x86.find(4096, 4096)).toMatchObject({ offset: 4096, mapping: { name: 'ram-below-4g' } });
    expect(x86.find(ABOVE_4G + 8192, 4096)).toMatchObject({ offset: 32 * MiB + 8192, mapping: { name: 'ram-above-4g' } });
    // A range starting in the hole above ram-below-4g finds nothing unless it reaches RAM.
    expect(x86.find(64 * MiB, 4096)).toBeUndefined();
    expect(x86.find(ABOVE_4G - 4096, 8192)).toMatchObject({ offset: 32 * MiB });
  });

  it('gpaPieces splits a RAMBlock range at the 4 GiB split; offsetPieces is its inverse', () => {
    const pieces = x86.gpaPieces(32 * MiB - 8192, 16384);
    expect(pieces).toEqual([[32 * MiB - 8192, 8192], [ABOVE_4G, 8192]]);
    expect(pieces.flatMap(([gpa, size]) => x86.offsetPieces(gpa, size))).toEqual([[32 * MiB - 8192, 8192], [32 * MiB, 8192]]);
    expect(x86.gpaOf(32 * MiB + 4096)).toBe(ABOVE_4G + 4096);
  });

  it('rejects overlapping sections', () => {
    expect(() => new GuestPhysMap([{ name: 'a', gpa: 0, offset: 0, size: 8192 }, { name: 'b', gpa: 4096, offset: 8192, size: 4096 }])).toThrow(RangeError);
  });
});

describe('layouts', () => {
  const input = { guestMem: 64 * MiB, blockSize: 4096, gpaBase: 0, containers: 2 };

  it('x86: q35 keeps 2 GiB below 4 GiB from 2.75 GiB of RAM; smaller guests are split in half', () => {
    expect(x86BelowSize(4 * GiB)).toBe(2 * GiB);
    expect(x86BelowSize(64 * MiB)).toBe(32 * MiB);
    const layout = buildLayout('x86', input, new Prng(1));
    expect(layout.ram.map((m) => [m.name, m.gpa, m.offset, m.size])).toEqual([
      ['ram-below-4g', 0, 0, 32 * MiB], ['ram-above-4g', ABOVE_4G, 32 * MiB, 32 * MiB],
    ]);
    // One listener per section and container, IOVA = GPA, so IOVA != offset above the split.
    expect(layout.vfio).toHaveLength(2);
    for (const sections of layout.vfio) expect(sections.map((s) => [s.offset, s.iova])).toEqual([[0, 0], [32 * MiB, ABOVE_4G]]);
  });

  it('random: sections are block aligned, inside one RAM section each, disjoint per container', () => {
    for (let seed = 0; seed < 300; seed++) {
      const layout = buildLayout('random', { ...input, containers: 3 }, new Prng(seed));
      const total = layout.ram.reduce((n, m) => n + m.size, 0);
      expect(total).toBe(input.guestMem);
      for (const sections of layout.vfio) {
        expect(sections.length).toBeGreaterThan(0);
        let end = 0;
        for (const s of [...sections].sort((a, b) => a.offset - b.offset)) {
          expect(s.offset % 4096 + s.size % 4096 + s.iova % 4096).toBe(0);
          expect(s.size).toBeGreaterThan(0);
          expect(s.offset).toBeGreaterThanOrEqual(end);
          end = s.offset + s.size;
          const ram = layout.ram.filter((m) => s.offset >= m.offset && s.offset + s.size <= m.offset + m.size);
          expect(ram).toHaveLength(1);
        }
      }
    }
  });

  it('random layouts vary: holes, IOVA shifts and splits all occur', () => {
    const layouts = Array.from({ length: 100 }, (_, seed) => buildLayout('random', input, new Prng(seed)));
    expect(layouts.some((l) => l.ram.length === 2)).toBe(true);
    expect(layouts.some((l) => l.vfio.some((s) => s.reduce((n, x) => n + x.size, 0) < input.guestMem))).toBe(true);
    expect(layouts.some((l) => l.vfio.some((s) => s.some((x) => x.iova !== x.offset)))).toBe(true);
  });
});
