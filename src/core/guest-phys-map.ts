/**
 * The guest-physical map of the one guest_memfd RAMBlock: where each part of
 * the RAMBlock appears in the guest's physical address space (QEMU's flat
 * view of `system_memory`). On pc/q35 one RAMBlock is mapped twice over, as
 * `ram-below-4g` at GPA 0 and `ram-above-4g` at 4 GiB, so a block's GPA and
 * its offset in the RAMBlock differ above the split.
 *
 * Offsets are bytes into the RAMBlock (`offset_within_region`); GPAs are
 * bytes in the guest's physical address space.
 */

/** One RAM section of the flat view: `[gpa, gpa + size)` shows RAMBlock bytes `[offset, offset + size)`. */
export interface RamMapping {
  /** The alias's name in QEMU (`ram-below-4g`, `ram-above-4g`, or `ram`). */
  readonly name: string;
  readonly gpa: number;
  readonly offset: number;
  readonly size: number;
}

/** A `memory_region_find()` hit: the first RAM section intersecting a GPA range. */
export interface RegionFind {
  readonly mapping: RamMapping;
  /** `section.offset_within_region` of the clipped section. */
  readonly offset: number;
}

export class GuestPhysMap {
  /** Sorted by GPA, non-overlapping in GPA and in offset. */
  readonly mappings: readonly RamMapping[];

  constructor(mappings: readonly RamMapping[]) {
    this.mappings = [...mappings].sort((a, b) => a.gpa - b.gpa);
    for (let i = 1; i < this.mappings.length; i++) {
      const prev = this.mappings[i - 1]!;
      if (prev.gpa + prev.size > this.mappings[i]!.gpa) throw new RangeError(`RAM sections ${prev.name} and ${this.mappings[i]!.name} overlap`);
    }
  }

  /** One section: RAMBlock byte 0 at `gpaBase`. */
  static flat(gpaBase: number, size: number): GuestPhysMap {
    return new GuestPhysMap([{ name: 'ram', gpa: gpaBase, offset: 0, size }]);
  }

  /**
   * `memory_region_find(get_system_memory(), start, size)`: the first RAM
   * section that intersects `[gpa, gpa + size)`, and the region offset
   * where the intersection starts; undefined when no RAM is there.
   */
  find(gpa: number, size: number): RegionFind | undefined {
    for (const m of this.mappings) {
      if (m.gpa + m.size <= gpa) continue;
      if (m.gpa >= gpa + size) return undefined;
      return { mapping: m, offset: m.offset + Math.max(gpa, m.gpa) - m.gpa };
    }
    return undefined;
  }

  /** The GPA at which RAMBlock byte `offset` appears, or undefined when no section shows it. */
  gpaOf(offset: number): number | undefined {
    for (const m of this.mappings) {
      if (offset >= m.offset && offset < m.offset + m.size) return m.gpa + offset - m.offset;
    }
    return undefined;
  }

  /**
   * The RAMBlock byte ranges that a GPA range covers, in GPA order (the
   * parts outside RAM are left out).
   */
  offsetPieces(gpa: number, size: number): Array<[offset: number, size: number]> {
    const pieces: Array<[number, number]> = [];
    for (const m of this.mappings) {
      const start = Math.max(gpa, m.gpa);
      const end = Math.min(gpa + size, m.gpa + m.size);
      if (end > start) pieces.push([m.offset + start - m.gpa, end - start]);
    }
    return pieces;
  }

  /**
   * The GPA ranges that show RAMBlock bytes `[offset, offset + size)`, in
   * offset order (bytes no section shows are left out): what a guest that
   * thinks of its memory as one array must convert.
   */
  gpaPieces(offset: number, size: number): Array<[gpa: number, size: number]> {
    const pieces: Array<[number, number]> = [];
    const byOffset = [...this.mappings].sort((a, b) => a.offset - b.offset);
    for (const m of byOffset) {
      const start = Math.max(offset, m.offset);
      const end = Math.min(offset + size, m.offset + m.size);
      if (end > start) pieces.push([m.gpa + start - m.offset, end - start]);
    }
    return pieces;
  }
}
