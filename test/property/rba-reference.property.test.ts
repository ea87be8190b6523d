/**
 * RamBlockAttributes + VFIO listeners + containers against the reference
 * model (test/property/reference), over random operation sequences on small
 * regions (8 to 64 blocks, so mixtures are frequent), for each rollback
 * policy: register/unregister of container listeners on random sections
 * (IOVAs may collide), state changes (valid, empty and invalid ranges), map
 * failure injection, isPopulated and replays.
 *
 * After every operation: the return value, the effect events in order
 * (notifications with the bitmap of the range at the moment they are sent,
 * maps and unmaps with the kernel's return), the whole bitmap, the listener
 * order, and every container's mapping list and count of cut mappings.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfidentialVm, DEFAULT_VM_CONFIG } from '../../src/core/confidential-vm.js';
import type { MemoryRegionSection } from '../../src/core/memory-region-section.js';
import { type RollbackPolicy } from '../../src/core/ram-block-attributes.js';
import type { RefBackend } from './reference/containers.js';
import { EFAULT, EIO, ENOMEM, ENOSPC, PAGE, type RefSection } from './reference/events.js';
import { bitsString, EffectRecorder, mappingsOf } from './reference/observe.js';
import { REF_MAX_MEMSLOTS, RefVm, type RefContainerSpec } from './reference/vm.js';
import { propertyParams } from './seed.js';

const POLICIES: readonly RollbackPolicy[] = ['none', 'listener', 'full'];

interface Config {
  readonly blocks: number;
  readonly containers: ReadonlyArray<{ readonly backend: RefBackend; readonly limit: number }>;
}

type Op =
  | { op: 'register'; c: number; offset: number; size: number; iova: number }
  | { op: 'unregister'; c: number }
  | { op: 'stateChange'; offset: number; size: number; toDiscard: boolean }
  | { op: 'failNextMaps'; c: number; count: number; errno: number }
  | { op: 'isPopulated'; offset: number; size: number }
  | { op: 'replay'; populated: boolean; offset: number; size: number; iova: number; failAt: number };

const configArb: fc.Arbitrary<Config> = fc.record({
  blocks: fc.integer({ min: 8, max: 64 }),
  containers: fc.array(
    fc.record({
      backend: fc.constantFrom<RefBackend>('type1', 'iommufd'),
      // Tiny limits hit -ENOSPC at map time; 520..600 straddle the registration estimate (blocks + 512 - n).
      limit: fc.constantFrom(3, 5, 8, 16, 520, 560, 600, 65535),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

/** A non-empty block-aligned range inside the region, from two block indices. */
function blockRange(blocks: number): fc.Arbitrary<{ offset: number; size: number }> {
  return fc.tuple(fc.nat(blocks - 1), fc.nat(blocks - 1)).map(([a, b]) => ({
    offset: Math.min(a, b) * PAGE,
    size: (Math.abs(a - b) + 1) * PAGE,
  }));
}

/** Ranges for stateChange: mostly valid, some empty, some invalid in each way the spec lists. */
function changeRange(blocks: number): fc.Arbitrary<{ offset: number; size: number }> {
  const regionSize = blocks * PAGE;
  return fc.oneof(
    { weight: 12, arbitrary: blockRange(blocks) },
    { weight: 1, arbitrary: fc.nat(blocks).map((k) => ({ offset: k * PAGE, size: 0 })) },
    { weight: 1, arbitrary: fc.tuple(blockRange(blocks), fc.integer({ min: 1, max: PAGE - 1 })).map(([r, d]) => ({ offset: r.offset + d, size: r.size })) },
    { weight: 1, arbitrary: fc.tuple(blockRange(blocks), fc.integer({ min: 1, max: PAGE - 1 })).map(([r, d]) => ({ offset: r.offset, size: r.size + d })) },
    { weight: 1, arbitrary: fc.tuple(fc.nat(blocks), fc.integer({ min: 1, max: 4 })).map(([k, n]) => ({ offset: k * PAGE, size: regionSize - k * PAGE + n * PAGE })) },
    { weight: 1, arbitrary: fc.constantFrom({ offset: 2 ** 63, size: PAGE }, { offset: 0, size: 2 ** 64 - PAGE }, { offset: 2 ** 63, size: 2 ** 63 }) },
  );
}

/** An IOVA for a section: identity, shifted, or anywhere in a small window (collisions wanted). */
function iovaFor(blocks: number): fc.Arbitrary<(offset: number) => number> {
  return fc.oneof(
    fc.constant((offset: number) => offset),
    fc.constant((offset: number) => offset + blocks * PAGE),
    fc.nat(2 * blocks).map((j) => () => j * PAGE),
  );
}

function opArb(config: Config): fc.Arbitrary<Op> {
  const { blocks } = config;
  const c = fc.nat(config.containers.length - 1);
  const section = fc.tuple(blockRange(blocks), iovaFor(blocks)).map(([r, iova]) => ({ ...r, iova: iova(r.offset) }));
  return fc.oneof(
    { weight: 3, arbitrary: fc.tuple(c, section).map(([ci, s]): Op => ({ op: 'register', c: ci, ...s })) },
    { weight: 1, arbitrary: c.map((ci): Op => ({ op: 'unregister', c: ci })) },
    { weight: 8, arbitrary: fc.tuple(changeRange(blocks), fc.boolean()).map(([r, toDiscard]): Op => ({ op: 'stateChange', ...r, toDiscard })) },
    {
      weight: 2,
      arbitrary: fc.tuple(c, fc.integer({ min: 1, max: 3 }), fc.constantFrom(ENOMEM, EIO, EFAULT, ENOSPC))
        .map(([ci, count, errno]): Op => ({ op: 'failNextMaps', c: ci, count, errno })),
    },
    { weight: 1, arbitrary: blockRange(blocks).map((r): Op => ({ op: 'isPopulated', ...r })) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.boolean(), section, fc.integer({ min: -1, max: 3 }))
        .map(([populated, s, failAt]): Op => ({ op: 'replay', populated, ...s, failAt })),
    },
  );
}

const scenarioArb = configArb.chain((config) =>
  fc.tuple(fc.constant(config), fc.array(opArb(config), { minLength: 1, maxLength: 40, size: 'max' })));

const containerId = (i: number): string => `c${i}`;

function realSection(s: RefSection): MemoryRegionSection {
  return { mr: 'ram0', offsetWithinRegion: s.offset, size: s.size, offsetWithinAddressSpace: s.iova, readonly: false };
}

/** Runs one op on both sides; returns comparable results. */
function apply(vm: ConfidentialVm, ref: RefVm, op: Op): { real: unknown; expected: unknown } {
  switch (op.op) {
    case 'register': {
      const id = containerId(op.c);
      return { real: vm.register(id, op), expected: ref.register(id, op) };
    }
    case 'unregister': {
      const id = containerId(op.c);
      vm.unregister(id);
      ref.unregister(id);
      return { real: undefined, expected: undefined };
    }
    case 'stateChange':
      return { real: vm.stateChange(op.offset, op.size, op.toDiscard), expected: ref.stateChange(op.offset, op.size, op.toDiscard) };
    case 'failNextMaps': {
      const id = containerId(op.c);
      vm.container(id).failNextMaps(op.count, op.errno);
      ref.container(id).failNextMaps(op.count, op.errno);
      return { real: undefined, expected: undefined };
    }
    case 'isPopulated':
      return { real: vm.rba.isPopulated(realSection({ ...op, iova: op.offset })), expected: ref.rba.isPopulated({ ...op, iova: op.offset }) };
    case 'replay': {
      const realRuns: number[][] = [];
      const refRuns: number[][] = [];
      const section = { offset: op.offset, size: op.size, iova: op.iova };
      const realFn = (s: MemoryRegionSection): number => {
        realRuns.push([s.offsetWithinRegion, s.size, s.offsetWithinAddressSpace]);
        return realRuns.length - 1 === op.failAt ? -EIO : 0;
      };
      const refFn = (s: RefSection): number => {
        refRuns.push([s.offset, s.size, s.iova]);
        return refRuns.length - 1 === op.failAt ? -EIO : 0;
      };
      const realRet = op.populated
        ? vm.rba.replayPopulated(realSection(section), realFn)
        : vm.rba.replayDiscarded(realSection(section), realFn);
      const refRet = ref.rba.replay(section, op.populated, refFn);
      return { real: { ret: realRet, runs: realRuns }, expected: { ret: refRet, runs: refRuns } };
    }
  }
}

function runScenario(rollback: RollbackPolicy, config: Config, ops: readonly Op[]): void {
  const regionSize = config.blocks * PAGE;
  const specs: RefContainerSpec[] = config.containers.map((c, i) => ({ id: containerId(i), backend: c.backend, limit: c.limit }));
  // The reference model's estimate uses QEMU's no-KVM memslot count (REF_MAX_MEMSLOTS), so the small limits straddle it.
  const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize, rollback, maxMemslots: REF_MAX_MEMSLOTS });
  for (const s of specs) vm.addContainer(s.id, s.backend, s.limit);
  const ref = new RefVm(regionSize, PAGE, rollback, specs);
  const recorder = new EffectRecorder(vm);
  try {
    ops.forEach((op, i) => {
      const where = `op #${i} ${JSON.stringify(op)}`;
      const { real, expected } = apply(vm, ref, op);
      expect(real, `${where}: result`).toEqual(expected);
      expect(recorder.take(), `${where}: effect events`).toEqual(ref.takeEvents());
      expect(bitsString(vm.rba.bitmap), `${where}: bitmap`).toBe(ref.rba.bitsOf(0, regionSize));
      expect(vm.rba.listenerNames, `${where}: listener order`).toEqual(ref.rba.listenerNames);
      for (const s of specs) {
        const real = vm.container(s.id);
        const model = ref.container(s.id);
        expect(mappingsOf(real), `${where}: mappings of ${s.id}`).toEqual(model.mappings);
        expect(real.partialUnmaps.length, `${where}: cut mappings of ${s.id}`).toBe(model.cuts);
      }
    });
  } finally {
    recorder.dispose();
  }
}

describe('RamBlockAttributes + VFIO against the reference model', () => {
  it.each(POLICIES)('rollback=%s: random register/unregister/stateChange/failNextMaps/replay sequences', (rollback) => {
    fc.assert(fc.property(scenarioArb, ([config, ops]) => runScenario(rollback, config, ops)), propertyParams());
  });
});
