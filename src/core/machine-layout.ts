/**
 * Machine layouts: how the one guest_memfd RAMBlock appears in the guest's
 * physical address space (its RAM sections), and which sections of it each
 * VFIO container registers a RamDiscardListener for, at which IOVA.
 *
 * - `flat`: one section at `gpaBase`, every container registering it whole
 *   at IOVA = GPA (convsim's first machine).
 * - `x86`: QEMU's pc/q35 split of the RAMBlock into `ram-below-4g` at GPA 0
 *   and `ram-above-4g` at 4 GiB (`pc_q35_init`: 2 GiB below 4 GiB once the
 *   guest has 2.75 GiB or more). Every container registers one listener
 *   per section, so above the split IOVA and region offset differ. Guests
 *   smaller than 2.75 GiB would have no upper section in QEMU; convsim
 *   splits them in half (at a 2 MiB boundary) so that the upper section
 *   exists on the small machines exploration runs. The legacy holes below
 *   1 MiB (VGA, BIOS) are not modelled.
 * - `random` (seeded): the RAM at a varied GPA base, split or not; each
 *   container registers 1 to 3 sections that need not cover the whole
 *   region (holes), at varied IOVA offsets.
 */
import { GuestPhysMap, type RamMapping } from './guest-phys-map.js';
import type { Prng } from './prng.js';
import { GiB, MiB } from './units.js';

export type LayoutName = 'flat' | 'x86' | 'random';
export const LAYOUTS: readonly LayoutName[] = ['flat', 'x86', 'random'];

/** A section a VFIO container registers: RAMBlock bytes `[offset, offset + size)` at `iova`. */
export interface VfioSectionSpec {
  readonly offset: number;
  readonly size: number;
  readonly iova: number;
}

export interface MachineLayout {
  readonly name: LayoutName;
  /** The guest-physical map of the RAMBlock. */
  readonly ram: readonly RamMapping[];
  /** Per container (by index), the sections it registers, in registration order. */
  readonly vfio: ReadonlyArray<readonly VfioSectionSpec[]>;
}

/** Where `ram-above-4g` starts. */
export const ABOVE_4G = 4 * GiB;
const TWO_MIB = 2 * MiB;

/** `pc_q35_init`'s split, scaled down for guests too small to have an upper section. */
export function x86BelowSize(guestMem: number): number {
  if (guestMem >= 0xb0000000) return 0x80000000;
  return Math.max(TWO_MIB, Math.floor(guestMem / 2 / TWO_MIB) * TWO_MIB);
}

export interface LayoutInput {
  readonly guestMem: number;
  readonly blockSize: number;
  readonly gpaBase: number;
  readonly containers: number;
}

/** Build a layout; `random` draws from `prng` (the others ignore it). */
export function buildLayout(name: LayoutName, input: LayoutInput, prng: Prng): MachineLayout {
  switch (name) {
    case 'flat': {
      const ram = [{ name: 'ram', gpa: input.gpaBase, offset: 0, size: input.guestMem }];
      return { name, ram, vfio: identitySections(ram, input.containers) };
    }
    case 'x86': {
      const ram = x86Ram(input.guestMem);
      return { name, ram, vfio: identitySections(ram, input.containers) };
    }
    case 'random':
      return randomLayout(input, prng);
    default: {
      const unreachable: never = name;
      throw new RangeError(`unknown layout ${String(unreachable)}`);
    }
  }
}

function x86Ram(guestMem: number): RamMapping[] {
  const below = Math.min(guestMem, x86BelowSize(guestMem));
  const ram: RamMapping[] = [{ name: 'ram-below-4g', gpa: 0, offset: 0, size: below }];
  if (guestMem > below) ram.push({ name: 'ram-above-4g', gpa: ABOVE_4G, offset: below, size: guestMem - below });
  return ram;
}

/** Every container registers every RAM section whole, at IOVA = GPA (no vIOMMU). */
function identitySections(ram: readonly RamMapping[], containers: number): VfioSectionSpec[][] {
  return Array.from({ length: containers }, () => ram.map((m) => ({ offset: m.offset, size: m.size, iova: m.gpa })));
}

function randomLayout(input: LayoutInput, prng: Prng): MachineLayout {
  const { guestMem, blockSize } = input;
  const base = prng.int(8) * TWO_MIB;
  let ram: RamMapping[];
  if (prng.next() < 0.5 || guestMem < 2 * TWO_MIB) {
    ram = [{ name: 'ram', gpa: base, offset: 0, size: guestMem }];
  } else {
    const below = (1 + prng.int(guestMem / TWO_MIB - 1)) * TWO_MIB;
    ram = [
      { name: 'ram-below-4g', gpa: base, offset: 0, size: below },
      { name: 'ram-above-4g', gpa: ABOVE_4G + prng.int(4) * TWO_MIB, offset: below, size: guestMem - below },
    ];
  }
  const vfio = Array.from({ length: input.containers }, () => {
    // IOVA = GPA, or shifted by a varied amount (as behind an IOMMU that remaps).
    const shift = prng.next() < 0.5 ? 0 : (1 + prng.int(64)) * TWO_MIB;
    const count = 1 + prng.int(3);
    const sections: VfioSectionSpec[] = [];
    for (const [start, size] of randomSubranges(guestMem / blockSize, count, prng)) {
      // A section never straddles two RAM sections (each is its own MemoryRegionSection).
      for (const m of ram) {
        const from = Math.max(start * blockSize, m.offset);
        const to = Math.min((start + size) * blockSize, m.offset + m.size);
        if (to > from) sections.push({ offset: from, size: to - from, iova: m.gpa + from - m.offset + shift });
      }
    }
    return sections;
  });
  return { name: 'random', ram, vfio };
}

/**
 * `count` disjoint block ranges in `[0, blocks)`, ascending, with holes
 * between them; the first covers at least half of its share, so that a
 * container always sees a good part of the guest.
 */
function randomSubranges(blocks: number, count: number, prng: Prng): Array<[number, number]> {
  const share = Math.floor(blocks / count);
  const ranges: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const lo = i * share;
    const hole = prng.next() < 0.3 ? 0 : prng.int(Math.max(1, Math.floor(share / 4)));
    const size = Math.max(1, share - hole - prng.int(Math.max(1, Math.floor(share / 4))));
    ranges.push([lo + hole, Math.min(size, blocks - lo - hole)]);
  }
  return ranges.filter(([, n]) => n > 0);
}

/** The guest-physical map of a layout. */
export function physMapOf(layout: MachineLayout): GuestPhysMap {
  return new GuestPhysMap(layout.ram);
}

/** Sections, listeners and IOVA ≠ offset, for coverage reports. */
export function describeLayout(layout: MachineLayout): { sections: number; remapped: boolean } {
  const all = layout.vfio.flat();
  return { sections: all.length, remapped: all.some((s) => s.iova !== s.offset) };
}
