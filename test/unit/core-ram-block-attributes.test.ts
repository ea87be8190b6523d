/**
 * RamBlockAttributes as a RamDiscardManager (spec sections 2, 3, 6 and 7),
 * driven with recording listeners so that every notification, its order
 * and its section can be checked exactly.
 */
import { describe, expect, it } from 'vitest';
import { EINVAL, ENOSPC, type Ret } from '../../src/core/errno.js';
import { EventBus, type CoreEvent } from '../../src/core/events.js';
import type { MemoryRegionSection } from '../../src/core/memory-region-section.js';
import { RamBlockAttributes, type RollbackPolicy } from '../../src/core/ram-block-attributes.js';
import type { RamDiscardListener } from '../../src/core/ram-discard-manager.js';

const B = 4096; // block size
const MR = 'ram0';

/** One line per listener call: `A populate 2+3` = blocks [2, 5) of the region. */
type Log = string[];
const pop = (name: string, block: number, blocks = 1): string => `${name} populate ${block}+${blocks}`;
const dis = (name: string, block: number, blocks = 1): string => `${name} discard ${block}+${blocks}`;

function sectionOf(block: number, blocks: number, iova = block * B): MemoryRegionSection {
  return { mr: MR, offsetWithinRegion: block * B, size: blocks * B, offsetWithinAddressSpace: iova, readonly: false };
}

interface FakeOptions {
  priority?: number;
  doubleDiscardSupported?: boolean;
  /** Return value of a populate of this section (default 0). */
  populateRet?: (section: MemoryRegionSection) => Ret;
}

/** A RamDiscardListener that records what it is told. */
class FakeListener implements RamDiscardListener {
  readonly name: string;
  readonly doubleDiscardSupported: boolean;
  readonly priority: number;
  readonly sections: Array<{ kind: 'populate' | 'discard'; section: MemoryRegionSection }> = [];
  readonly #log: Log;
  readonly #populateRet: ((section: MemoryRegionSection) => Ret) | undefined;

  constructor(name: string, log: Log, options: FakeOptions = {}) {
    this.name = name;
    this.#log = log;
    this.priority = options.priority ?? 10;
    this.doubleDiscardSupported = options.doubleDiscardSupported ?? true;
    this.#populateRet = options.populateRet;
  }

  notifyPopulate(section: MemoryRegionSection): Ret {
    this.#log.push(pop(this.name, section.offsetWithinRegion / B, section.size / B));
    this.sections.push({ kind: 'populate', section: { ...section } });
    return this.#populateRet?.(section) ?? 0;
  }

  notifyDiscard(section: MemoryRegionSection): void {
    this.#log.push(dis(this.name, section.offsetWithinRegion / B, section.size / B));
    this.sections.push({ kind: 'discard', section: { ...section } });
  }
}

/** Fail the populate of any section that contains `block`. */
const failOnBlock = (block: number, ret: Ret = -ENOSPC) => (s: MemoryRegionSection): Ret =>
  s.offsetWithinRegion <= block * B && block * B < s.offsetWithinRegion + s.size ? ret : 0;

function makeRba(blocks: number, rollback: RollbackPolicy = 'none', priorities = false, bus?: EventBus): RamBlockAttributes {
  return new RamBlockAttributes({ mr: MR, regionSize: blocks * B, blockSize: B, rollback, priorities, ...(bus ? { bus } : {}) });
}

/** Indices of the set bits. */
function setBits(rba: RamBlockAttributes): number[] {
  const bits: number[] = [];
  for (let b = 0; b < rba.bitmapSize; b++) if (rba.bitmap.test(b)) bits.push(b);
  return bits;
}

/** Set bits directly (no notification), for a starting state. */
function preset(rba: RamBlockAttributes, bits: number[]): void {
  for (const b of bits) rba.bitmap.set(b);
}

describe('RamBlockAttributes: state and RamDiscardManager queries', () => {
  it('starts all private: bitmapSize = region / block size (rounded up), all bits 0', () => {
    const rba = makeRba(16);
    expect(rba.bitmapSize).toBe(16);
    expect(setBits(rba)).toEqual([]);
    const odd = new RamBlockAttributes({ mr: MR, regionSize: 16 * B + 1, blockSize: B, rollback: 'none', priorities: false });
    expect(odd.bitmapSize).toBe(17);
  });

  it('getMinGranularity is the block size', () => {
    expect(makeRba(4).getMinGranularity()).toBe(4096);
    const big = new RamBlockAttributes({ mr: MR, regionSize: 2 ** 21, blockSize: 2 ** 16, rollback: 'none', priorities: false });
    expect(big.getMinGranularity()).toBe(65536);
  });

  it('isPopulated is true iff every block of the section is shared', () => {
    const rba = makeRba(8);
    preset(rba, [2, 3, 4]);
    expect(rba.isPopulated(sectionOf(2, 3))).toBe(true);
    expect(rba.isPopulated(sectionOf(3, 1))).toBe(true);
    expect(rba.isPopulated(sectionOf(1, 2))).toBe(false); // block 1 private
    expect(rba.isPopulated(sectionOf(4, 2))).toBe(false); // block 5 private
    expect(rba.isPopulated(sectionOf(0, 8))).toBe(false);
    expect(rba.isPopulated(sectionOf(0, 1))).toBe(false);
  });

  it('replayPopulated / replayDiscarded call fn once per maximal run inside the section, ascending', () => {
    const rba = makeRba(10);
    preset(rba, [0, 1, 3, 6, 7]);
    const runs = (populated: boolean, s: MemoryRegionSection): Array<[number, number, number]> => {
      const out: Array<[number, number, number]> = [];
      const fn = (r: MemoryRegionSection): Ret => {
        out.push([r.offsetWithinRegion / B, r.size / B, r.offsetWithinAddressSpace]);
        return 0;
      };
      expect(populated ? rba.replayPopulated(s, fn) : rba.replayDiscarded(s, fn)).toBe(0);
      return out;
    };
    // Whole region.
    expect(runs(true, sectionOf(0, 10))).toEqual([[0, 2, 0], [3, 1, 3 * B], [6, 2, 6 * B]]);
    expect(runs(false, sectionOf(0, 10))).toEqual([[2, 1, 2 * B], [4, 2, 4 * B], [8, 2, 8 * B]]);
    // A section [1, 7) at IOVA 1 MiB: runs are clipped and the IOVA moves with them.
    const s = sectionOf(1, 6, 0x100000);
    expect(runs(true, s)).toEqual([[1, 1, 0x100000], [3, 1, 0x100000 + 2 * B], [6, 1, 0x100000 + 5 * B]]);
    expect(runs(false, s)).toEqual([[2, 1, 0x100000 + B], [4, 2, 0x100000 + 3 * B]]);
    // A run that starts past the section ends the iteration.
    expect(runs(true, sectionOf(4, 2))).toEqual([]);
    expect(runs(false, sectionOf(6, 2))).toEqual([]);
  });

  it('replay stops at the first non-zero return and returns it', () => {
    const rba = makeRba(8);
    preset(rba, [0, 2, 4, 6]);
    const seen: number[] = [];
    const ret = rba.replayPopulated(sectionOf(0, 8), (r) => {
      seen.push(r.offsetWithinRegion / B);
      return seen.length === 2 ? -EINVAL : 0;
    });
    expect(ret).toBe(-EINVAL);
    expect(seen).toEqual([0, 2]);
    const seenD: number[] = [];
    expect(rba.replayDiscarded(sectionOf(0, 8), (r) => {
      seenD.push(r.offsetWithinRegion / B);
      return -5;
    })).toBe(-5);
    expect(seenD).toEqual([1]);
  });
});

describe('RamBlockAttributes.stateChange: validity (spec 3.1)', () => {
  const invalid: Array<[string, number, number]> = [
    ['unaligned offset', 1, B],
    ['offset not a multiple of the block size', B / 2, B],
    ['unaligned size', 0, B + 512],
    ['size below one block', 0, 100],
    ['end beyond the region', 14 * B, 4 * B],
    ['offset at the region end', 16 * B, B],
    ['offset far beyond the region', 2 ** 40, B],
    ['offset + size past 2^53', 2 ** 53 - B, 2 * B],
  ];
  for (const toDiscard of [false, true]) {
    for (const [what, offset, size] of invalid) {
      it(`${what} -> -EINVAL (to ${toDiscard ? 'private' : 'shared'}), nothing changed, nobody told`, () => {
        const log: Log = [];
        const bus = new EventBus();
        const events: CoreEvent[] = [];
        bus.subscribe((e) => events.push(e));
        const rba = makeRba(16, 'none', false, bus);
        rba.registerListener(new FakeListener('A', log), sectionOf(0, 16));
        preset(rba, [0, 5, 15]);
        log.length = 0;
        events.length = 0;
        expect(rba.stateChange(offset, size, toDiscard)).toBe(-EINVAL);
        expect(setBits(rba)).toEqual([0, 5, 15]);
        expect(log).toEqual([]);
        expect(events).toEqual([]);
      });
    }
  }

  it('the last block of the region is valid; exactly the whole region is valid', () => {
    const rba = makeRba(16);
    expect(rba.stateChange(15 * B, B, false)).toBe(0);
    expect(rba.stateChange(0, 16 * B, false)).toBe(0);
    expect(setBits(rba)).toHaveLength(16);
  });
});

describe('RamBlockAttributes.stateChange: the three cases (spec 3.2-3.4)', () => {
  function setup(bits: number[]): { rba: RamBlockAttributes; log: Log } {
    const log: Log = [];
    const rba = makeRba(16);
    rba.registerListener(new FakeListener('A', log), sectionOf(0, 16));
    preset(rba, bits);
    return { rba, log };
  }

  it('to shared, all discarded: set all bits, one notifyPopulate of the whole range', () => {
    const { rba, log } = setup([]);
    expect(rba.stateChange(2 * B, 4 * B, false)).toBe(0);
    expect(setBits(rba)).toEqual([2, 3, 4, 5]);
    expect(log).toEqual([pop('A', 2, 4)]);
  });

  it('to shared, all populated: nothing to do', () => {
    const { rba, log } = setup([2, 3, 4, 5]);
    expect(rba.stateChange(2 * B, 4 * B, false)).toBe(0);
    expect(setBits(rba)).toEqual([2, 3, 4, 5]);
    expect(log).toEqual([]);
  });

  it('to private, all populated: clear all bits, one notifyDiscard of the whole range', () => {
    const { rba, log } = setup([1, 2, 3, 4, 5, 6]);
    expect(rba.stateChange(2 * B, 4 * B, true)).toBe(0);
    expect(setBits(rba)).toEqual([1, 6]);
    expect(log).toEqual([dis('A', 2, 4)]);
  });

  it('to private, all discarded: nothing to do', () => {
    const { rba, log } = setup([1, 6]);
    expect(rba.stateChange(2 * B, 4 * B, true)).toBe(0);
    expect(setBits(rba)).toEqual([1, 6]);
    expect(log).toEqual([]);
  });

  it('to shared, mixture: one notifyPopulate per discarded block, ascending', () => {
    const { rba, log } = setup([1, 3]);
    expect(rba.stateChange(0, 6 * B, false)).toBe(0);
    expect(setBits(rba)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(log).toEqual([pop('A', 0), pop('A', 2), pop('A', 4), pop('A', 5)]);
  });

  it('to private, mixture: one notifyDiscard per populated block, ascending', () => {
    const { rba, log } = setup([1, 3, 4, 9]);
    expect(rba.stateChange(0, 6 * B, true)).toBe(0);
    expect(setBits(rba)).toEqual([9]);
    expect(log).toEqual([dis('A', 1), dis('A', 3), dis('A', 4)]);
  });

  it('to shared, mixture: stops at the first error (policy none: that bit stays set, later blocks untouched)', () => {
    const log: Log = [];
    const rba = makeRba(8);
    rba.registerListener(new FakeListener('A', log, { populateRet: failOnBlock(2) }), sectionOf(0, 8));
    preset(rba, [1]);
    expect(rba.stateChange(0, 5 * B, false)).toBe(-ENOSPC);
    expect(log).toEqual([pop('A', 0), pop('A', 2)]);
    expect(setBits(rba)).toEqual([0, 1, 2]);
  });

  it('every intersecting listener gets the range narrowed to its section, with its IOVA; others are skipped', () => {
    const log: Log = [];
    const rba = makeRba(16);
    const a = new FakeListener('A', log);
    const b = new FakeListener('B', log);
    const c = new FakeListener('C', log);
    rba.registerListener(a, sectionOf(0, 4, 0x10000000)); // blocks [0, 4)
    rba.registerListener(b, sectionOf(4, 4, 0x20000000)); // blocks [4, 8)
    rba.registerListener(c, sectionOf(8, 8, 0x30000000)); // blocks [8, 16)
    expect(rba.stateChange(2 * B, 4 * B, false)).toBe(0); // blocks [2, 6)
    expect(log).toEqual([pop('B', 4, 2), pop('A', 2, 2)]); // newest first; C does not intersect
    expect(a.sections[0]!.section).toEqual(sectionOf(2, 2, 0x10000000 + 2 * B));
    expect(b.sections[0]!.section).toEqual(sectionOf(4, 2, 0x20000000));
    expect(c.sections).toEqual([]);
    log.length = 0;
    expect(rba.stateChange(2 * B, 4 * B, true)).toBe(0);
    expect(log).toEqual([dis('B', 4, 2), dis('A', 2, 2)]);
    expect(a.sections[1]!.section).toEqual(sectionOf(2, 2, 0x10000000 + 2 * B));
  });
});

describe('RamBlockAttributes: the bitmap is updated before listeners are told (spec 3.5)', () => {
  for (const [what, bits, toDiscard] of [
    ['to shared, all discarded', [] as number[], false],
    ['to shared, mixture', [1, 3], false],
    ['to private, all populated', [0, 1, 2, 3, 4, 5], true],
    ['to private, mixture', [0, 2, 5], true],
  ] as const) {
    it(`${what}: at every notifyPopulate/notifyDiscard event and call, the notified blocks already have their new value`, () => {
      const bus = new EventBus();
      const rba = makeRba(8, 'none', false, bus);
      const seen: string[] = [];
      const check = (kind: string, offset: number, size: number): void => {
        for (let b = offset / B; b < (offset + size) / B; b++) {
          seen.push(`${kind}:${b}:${rba.bitmap.test(b) ? 1 : 0}`);
        }
      };
      bus.subscribe((e) => {
        if (e.kind === 'notifyPopulate' || e.kind === 'notifyDiscard') check(`event-${e.kind}`, e.offset, e.size);
      });
      const listener: RamDiscardListener = {
        name: 'A', doubleDiscardSupported: true, priority: 10,
        notifyPopulate: (s) => {
          check('call-notifyPopulate', s.offsetWithinRegion, s.size);
          return 0;
        },
        notifyDiscard: (s) => check('call-notifyDiscard', s.offsetWithinRegion, s.size),
      };
      rba.registerListener(listener, sectionOf(0, 8));
      preset(rba, [...bits]);
      seen.length = 0;
      expect(rba.stateChange(0, 6 * B, toDiscard)).toBe(0);
      expect(seen.length).toBeGreaterThan(0);
      const want = toDiscard ? '0' : '1';
      for (const s of seen) expect(s.endsWith(`:${want}`), s).toBe(true);
    });
  }
});

describe('RamBlockAttributes: listeners (spec 3, register/unregister)', () => {
  it('QLIST_INSERT_HEAD: the newest listener is notified first, in both directions', () => {
    const log: Log = [];
    const rba = makeRba(4);
    for (const name of ['L1', 'L2', 'L3']) rba.registerListener(new FakeListener(name, log), sectionOf(0, 4));
    expect(rba.listenerNames).toEqual(['L3', 'L2', 'L1']);
    expect(rba.stateChange(0, 4 * B, false)).toBe(0);
    expect(rba.stateChange(0, 4 * B, true)).toBe(0);
    expect(log).toEqual([pop('L3', 0, 4), pop('L2', 0, 4), pop('L1', 0, 4), dis('L3', 0, 4), dis('L2', 0, 4), dis('L1', 0, 4)]);
  });

  it('register replays only the populated runs inside the section, through notifyPopulate, with moved IOVAs', () => {
    const log: Log = [];
    const rba = makeRba(10);
    preset(rba, [0, 1, 3, 6, 7]);
    const a = new FakeListener('A', log);
    expect(rba.registerListener(a, sectionOf(1, 5, 0x40000000))).toBe(0); // blocks [1, 6)
    expect(log).toEqual([pop('A', 1, 1), pop('A', 3, 1)]);
    expect(a.sections.map((s) => s.section.offsetWithinAddressSpace)).toEqual([0x40000000, 0x40000000 + 2 * B]);
    expect(rba.listenerNames).toEqual(['A']);
  });

  it('register of a fully private section replays nothing; the section is copied', () => {
    const log: Log = [];
    const rba = makeRba(4);
    const s = sectionOf(0, 4);
    const a = new FakeListener('A', log);
    expect(rba.registerListener(a, s)).toBe(0);
    expect(log).toEqual([]);
    expect(rba.sectionOf(a)).toEqual(s);
    expect(rba.sectionOf(a)).not.toBe(s);
  });

  it('register replay failure is returned (QEMU exits)', () => {
    const log: Log = [];
    const rba = makeRba(4);
    preset(rba, [0, 2]);
    expect(rba.registerListener(new FakeListener('A', log, { populateRet: failOnBlock(0) }), sectionOf(0, 4))).toBe(-ENOSPC);
    expect(log).toEqual([pop('A', 0)]);
  });

  it('unregister with doubleDiscardSupported: one notifyDiscard of the whole registered section, then unlinked', () => {
    const log: Log = [];
    const rba = makeRba(8);
    const a = new FakeListener('A', log);
    rba.registerListener(a, sectionOf(2, 6, 0x9000000));
    rba.registerListener(new FakeListener('B', log), sectionOf(0, 8));
    preset(rba, [3, 5]);
    log.length = 0;
    rba.unregisterListener(a);
    expect(log).toEqual([dis('A', 2, 6)]);
    expect(a.sections.at(-1)!.section).toEqual(sectionOf(2, 6, 0x9000000));
    expect(rba.listenerNames).toEqual(['B']);
    // Nothing populated at all: still one discard of the whole section.
    const c = new FakeListener('C', log);
    rba.registerListener(c, sectionOf(6, 2));
    log.length = 0;
    rba.unregisterListener(c);
    expect(log).toEqual([dis('C', 6, 2)]);
  });

  it('unregister without doubleDiscardSupported: one notifyDiscard per populated run in the section', () => {
    const log: Log = [];
    const rba = makeRba(8);
    preset(rba, [0, 2, 3, 6]);
    const a = new FakeListener('A', log, { doubleDiscardSupported: false });
    rba.registerListener(a, sectionOf(1, 6));
    log.length = 0;
    rba.unregisterListener(a);
    expect(log).toEqual([dis('A', 2, 2), dis('A', 6, 1)]);
    expect(rba.listenerNames).toEqual([]);
  });

  it('an unregistered listener is told nothing more', () => {
    const log: Log = [];
    const rba = makeRba(4);
    const a = new FakeListener('A', log);
    rba.registerListener(a, sectionOf(0, 4));
    rba.unregisterListener(a);
    log.length = 0;
    expect(rba.stateChange(0, 4 * B, false)).toBe(0);
    expect(log).toEqual([]);
  });
});

describe('RamBlockAttributes: rollback policies on a populate failure (spec 7)', () => {
  /**
   * Three listeners over the whole region, registered A, B, C: notified C, B, A.
   * B (the second notified) fails on the block given.
   */
  function setup(policy: RollbackPolicy, failBlock: number, bits: number[]): { rba: RamBlockAttributes; log: Log } {
    const log: Log = [];
    const rba = makeRba(8, policy);
    rba.registerListener(new FakeListener('A', log), sectionOf(0, 8));
    rba.registerListener(new FakeListener('B', log, { populateRet: failOnBlock(failBlock) }), sectionOf(0, 8));
    rba.registerListener(new FakeListener('C', log), sectionOf(0, 8));
    preset(rba, bits);
    log.length = 0;
    return { rba, log };
  }

  it('none, all discarded: stop at B, nothing undone, bits stay set, error returned', () => {
    const { rba, log } = setup('none', 0, []);
    expect(rba.stateChange(0, 4 * B, false)).toBe(-ENOSPC);
    expect(log).toEqual([pop('C', 0, 4), pop('B', 0, 4)]);
    expect(setBits(rba)).toEqual([0, 1, 2, 3]);
  });

  for (const policy of ['listener', 'full'] as const) {
    it(`${policy}, all discarded: only C (notified before B) gets a discard, never B or A; bits restored`, () => {
      const { rba, log } = setup(policy, 0, []);
      expect(rba.stateChange(0, 4 * B, false)).toBe(-ENOSPC);
      expect(log).toEqual([pop('C', 0, 4), pop('B', 0, 4), dis('C', 0, 4)]);
      expect(setBits(rba)).toEqual([]);
    });
  }

  it('none, mixture: blocks before the failing one stay shared and notified; the failing bit stays set', () => {
    const { rba, log } = setup('none', 4, [1, 3]);
    expect(rba.stateChange(0, 6 * B, false)).toBe(-ENOSPC);
    expect(log).toEqual([
      pop('C', 0), pop('B', 0), pop('A', 0),
      pop('C', 2), pop('B', 2), pop('A', 2),
      pop('C', 4), pop('B', 4),
    ]);
    expect(setBits(rba)).toEqual([0, 1, 2, 3, 4]);
  });

  it('listener, mixture: only the failing step is undone (C discards block 4, bit 4 cleared); blocks 0 and 2 stay', () => {
    const { rba, log } = setup('listener', 4, [1, 3]);
    expect(rba.stateChange(0, 6 * B, false)).toBe(-ENOSPC);
    expect(log).toEqual([
      pop('C', 0), pop('B', 0), pop('A', 0),
      pop('C', 2), pop('B', 2), pop('A', 2),
      pop('C', 4), pop('B', 4), dis('C', 4),
    ]);
    expect(setBits(rba)).toEqual([0, 1, 2, 3]);
  });

  it('full, mixture: the failing step as listener, then every block this call changed, ascending, to every listener', () => {
    const { rba, log } = setup('full', 4, [1, 3]);
    expect(rba.stateChange(0, 6 * B, false)).toBe(-ENOSPC);
    expect(log).toEqual([
      pop('C', 0), pop('B', 0), pop('A', 0),
      pop('C', 2), pop('B', 2), pop('A', 2),
      pop('C', 4), pop('B', 4), dis('C', 4),
      dis('C', 0), dis('B', 0), dis('A', 0),
      dis('C', 2), dis('B', 2), dis('A', 2),
    ]);
    expect(setBits(rba)).toEqual([1, 3]); // back to the prior value
  });

  it('the first listener failing: nobody was notified before it, so no discard at all', () => {
    const log: Log = [];
    const rba = makeRba(4, 'listener');
    rba.registerListener(new FakeListener('A', log), sectionOf(0, 4));
    rba.registerListener(new FakeListener('B', log, { populateRet: failOnBlock(0) }), sectionOf(0, 4));
    expect(rba.stateChange(0, 4 * B, false)).toBe(-ENOSPC);
    expect(log).toEqual([pop('B', 0, 4)]);
    expect(setBits(rba)).toEqual([]);
  });

  it('a listener that does not intersect is neither notified nor rolled back', () => {
    const log: Log = [];
    const rba = makeRba(8, 'listener');
    rba.registerListener(new FakeListener('A', log, { populateRet: failOnBlock(0) }), sectionOf(0, 8));
    rba.registerListener(new FakeListener('X', log), sectionOf(6, 2));
    rba.registerListener(new FakeListener('C', log), sectionOf(0, 8));
    expect(rba.stateChange(0, 4 * B, false)).toBe(-ENOSPC);
    expect(log).toEqual([pop('C', 0, 4), pop('A', 0, 4), dis('C', 0, 4)]);
  });

  for (const policy of ['none', 'listener', 'full'] as const) {
    it(`${policy}: discards never fail and are never rolled back`, () => {
      const { rba, log } = setup(policy, 0, [0, 1, 2, 3]);
      expect(rba.stateChange(0, 4 * B, true)).toBe(0);
      expect(log).toEqual([dis('C', 0, 4), dis('B', 0, 4), dis('A', 0, 4)]);
      expect(setBits(rba)).toEqual([]);
    });
  }
});

describe('RamBlockAttributes: priority listeners (v4 design, spec 6)', () => {
  it('sorted by ascending priority, equal priorities in registration order; populate forward, discard in reverse', () => {
    const log: Log = [];
    const rba = makeRba(4, 'none', true);
    rba.registerListener(new FakeListener('V1', log, { priority: 10 }), sectionOf(0, 4));
    rba.registerListener(new FakeListener('K', log, { priority: 0 }), sectionOf(0, 4));
    rba.registerListener(new FakeListener('V2', log, { priority: 10 }), sectionOf(0, 4));
    expect(rba.listenerNames).toEqual(['K', 'V1', 'V2']);
    expect(rba.stateChange(0, 4 * B, false)).toBe(0);
    expect(rba.stateChange(0, 4 * B, true)).toBe(0);
    expect(log).toEqual([pop('K', 0, 4), pop('V1', 0, 4), pop('V2', 0, 4), dis('V2', 0, 4), dis('V1', 0, 4), dis('K', 0, 4)]);
  });

  it('rollback with priorities walks the notified listeners in reverse (VFIO unmaps before KVM converts back)', () => {
    const log: Log = [];
    const rba = makeRba(4, 'listener', true);
    rba.registerListener(new FakeListener('K', log, { priority: 0 }), sectionOf(0, 4));
    rba.registerListener(new FakeListener('V1', log, { priority: 10 }), sectionOf(0, 4));
    rba.registerListener(new FakeListener('V2', log, { priority: 10, populateRet: failOnBlock(0) }), sectionOf(0, 4));
    expect(rba.stateChange(0, 4 * B, false)).toBe(-ENOSPC);
    expect(log).toEqual([pop('K', 0, 4), pop('V1', 0, 4), pop('V2', 0, 4), dis('V1', 0, 4), dis('K', 0, 4)]);
    expect(setBits(rba)).toEqual([]);
  });
});
