/**
 * Rollback policies (spec section 7, invariant 7) checked as properties of
 * the real core alone, without the reference model, on well-formed setups:
 * every container's listeners are registered while the region is all
 * private (nothing to replay) at IOVA windows that never overlap, then
 * random state changes run with random map-failure injection and type1
 * entry exhaustion.
 *
 * - `listener` and `full`: after every operation, every registered listener
 *   has exactly the populated blocks of its section mapped (the failing
 *   listener cleaned up itself, the ones notified before it were told to
 *   discard), the InvariantChecker reports nothing, and the failed range is
 *   not all shared; bits outside the range never change.
 * - `full`: a failed populate leaves the bitmap and every mapping table
 *   exactly as they were before the call.
 * - `none`: a failed populate only ever adds bits (the failing step's bits
 *   stay set); and, as the counterpart showing the agreement check can
 *   fail, a failure at the second listener of a walk leaves the first one
 *   mapped and the checker reports a disagreement.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfidentialVm, DEFAULT_VM_CONFIG } from '../../src/core/confidential-vm.js';
import { InvariantChecker } from '../../src/core/invariants.js';
import type { RollbackPolicy } from '../../src/core/ram-block-attributes.js';
import type { RefBackend, RefMapping } from './reference/containers.js';
import { EFAULT, EIO, ENOMEM, PAGE } from './reference/events.js';
import { bitsString, mappingsOf } from './reference/observe.js';
import { propertyParams } from './seed.js';

/** IOVA windows per container are this far apart, so sections never collide. */
const WINDOW = 2 ** 30;

interface Setup {
  readonly blocks: number;
  readonly containers: ReadonlyArray<{
    readonly backend: RefBackend;
    readonly limit: number;
    /** Sections as [first block, last block] pairs, each in its own IOVA window. */
    readonly sections: ReadonlyArray<readonly [number, number]>;
  }>;
}

type Op =
  | { op: 'stateChange'; offset: number; size: number; toDiscard: boolean }
  | { op: 'failNextMaps'; c: number; count: number; errno: number };

const setupArb: fc.Arbitrary<Setup> = fc.integer({ min: 8, max: 64 }).chain((blocks) =>
  fc.record({
    blocks: fc.constant(blocks),
    containers: fc.array(
      fc.record({
        backend: fc.constantFrom<RefBackend>('type1', 'iommufd'),
        limit: fc.constantFrom(4, 6, 12, 1_000_000),
        sections: fc.array(fc.tuple(fc.nat(blocks - 1), fc.nat(blocks - 1)), { minLength: 1, maxLength: 2 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  }));

function opsArb(setup: Setup): fc.Arbitrary<Op[]> {
  const range = fc.tuple(fc.nat(setup.blocks - 1), fc.nat(setup.blocks - 1))
    .map(([a, b]) => ({ offset: Math.min(a, b) * PAGE, size: (Math.abs(a - b) + 1) * PAGE }));
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(range, fc.boolean()).map(([r, toDiscard]): Op => ({ op: 'stateChange', ...r, toDiscard })) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.nat(setup.containers.length - 1), fc.integer({ min: 1, max: 3 }), fc.constantFrom(ENOMEM, EIO, EFAULT))
        .map(([c, count, errno]): Op => ({ op: 'failNextMaps', c, count, errno })),
    },
  );
  return fc.array(op, { minLength: 1, maxLength: 30, size: 'max' });
}

const scenarioArb = setupArb.chain((setup) => fc.tuple(fc.constant(setup), opsArb(setup)));

function build(rollback: RollbackPolicy, setup: Setup): ConfidentialVm {
  const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize: setup.blocks * PAGE, rollback });
  setup.containers.forEach((c, i) => {
    const id = `c${i}`;
    vm.addContainer(id, c.backend, c.limit);
    c.sections.forEach(([a, b], slot) => {
      const offset = Math.min(a, b) * PAGE;
      // The return may be -ENOSPC from the worst-case estimate with a tiny limit; the listener stays registered.
      vm.register(id, { offset, size: (Math.abs(a - b) + 1) * PAGE, iova: (slot + 1) * WINDOW + offset });
    });
  });
  return vm;
}

/** Every listener maps exactly the populated blocks of its section, one 4K mapping each. */
function expectAgreement(vm: ConfidentialVm, where: string): void {
  for (const [id, listeners] of vm.vfioListeners) {
    const container = vm.container(id);
    for (const l of listeners) {
      for (let off = l.section.offsetWithinRegion; off < l.section.offsetWithinRegion + l.section.size; off += PAGE) {
        const iova = l.section.offsetWithinAddressSpace + (off - l.section.offsetWithinRegion);
        const m = container.mappings.find(iova);
        const expected = vm.rba.bitmap.test(off / PAGE) ? { iova, size: PAGE, hostOffset: off } : undefined;
        const actual = m === undefined ? undefined : { iova: m.iova, size: m.size, hostOffset: m.hostOffset };
        expect(actual, `${where}: ${id} at iova 0x${iova.toString(16)} (block ${off / PAGE})`).toEqual(expected);
      }
    }
  }
}

function snapshot(vm: ConfidentialVm): { bits: string; mappings: Record<string, RefMapping[]> } {
  const mappings: Record<string, RefMapping[]> = {};
  for (const [id, c] of vm.containers) mappings[id] = mappingsOf(c);
  return { bits: bitsString(vm.rba.bitmap), mappings };
}

function run(rollback: RollbackPolicy, setup: Setup, ops: readonly Op[]): void {
  const vm = build(rollback, setup);
  const checker = new InvariantChecker(vm);
  try {
    ops.forEach((op, i) => {
      const where = `op #${i} ${JSON.stringify(op)}`;
      if (op.op === 'failNextMaps') {
        vm.container(`c${op.c}`).failNextMaps(op.count, op.errno);
        return;
      }
      const before = snapshot(vm);
      const ret = vm.stateChange(op.offset, op.size, op.toDiscard);
      const after = snapshot(vm);
      const first = op.offset / PAGE;
      const last = first + op.size / PAGE;
      // Bits outside the range never change.
      expect(after.bits.slice(0, first) + after.bits.slice(last), `${where}: bits outside the range`)
        .toBe(before.bits.slice(0, first) + before.bits.slice(last));
      if (op.toDiscard) expect(ret, `${where}: discard cannot fail`).toBe(0);
      if (ret === 0) {
        expect(after.bits.slice(first, last), `${where}: range after success`).toBe((op.toDiscard ? '0' : '1').repeat(last - first));
      }
      if (rollback === 'none') {
        // No rollback: bits only ever get set by a populate, even a failed one.
        if (!op.toDiscard) for (let b = first; b < last; b++) if (before.bits[b] === '1') expect(after.bits[b], `${where}: block ${b}`).toBe('1');
        if (ret !== 0) expect(after.bits.slice(first, last), `${where}: failed populate undid nothing`).not.toBe(before.bits.slice(first, last));
        return;
      }
      expectAgreement(vm, where);
      expect(checker.drain(), `${where}: instant violations`).toEqual([]);
      expect(checker.checkQuiescent(), `${where}: quiescent violations`).toEqual([]);
      // KVM attributes are not part of a direct stateChange: only the listeners' agreement counts here.
      expect(checker.checkAgreement().filter((v) => v.container !== undefined), `${where}: agreement`).toEqual([]);
      if (ret !== 0) {
        expect(after.bits.slice(first, last), `${where}: failed range is not all shared`).not.toBe('1'.repeat(last - first));
        if (rollback === 'full') expect(after, `${where}: full rollback restores bitmap and mappings`).toEqual(before);
      }
    });
  } finally {
    checker.dispose();
  }
}

describe('rollback policies (spec section 7) on well-formed setups', () => {
  it.each<RollbackPolicy>(['listener', 'full'])('rollback=%s keeps every listener in agreement with the bitmap', (rollback) => {
    fc.assert(fc.property(scenarioArb, ([setup, ops]) => run(rollback, setup, ops)), propertyParams());
  });

  it('rollback=none only ever adds bits on a failed populate', () => {
    fc.assert(fc.property(scenarioArb, ([setup, ops]) => run('none', setup, ops)), propertyParams());
  });

  it('a failure at the second listener of a walk: none leaves the first mapped (disagreement), listener/full do not', () => {
    const arb = fc.record({
      blocks: fc.integer({ min: 8, max: 64 }),
      backends: fc.tuple(fc.constantFrom<RefBackend>('type1', 'iommufd'), fc.constantFrom<RefBackend>('type1', 'iommufd')),
      range: fc.tuple(fc.nat(63), fc.nat(63)),
      errno: fc.constantFrom(ENOMEM, EIO, EFAULT),
    });
    fc.assert(fc.property(arb, ({ blocks, backends, range, errno }) => {
      const a = range[0] % blocks;
      const b = range[1] % blocks;
      const offset = Math.min(a, b) * PAGE;
      const size = (Math.abs(a - b) + 1) * PAGE;
      for (const rollback of ['none', 'listener', 'full'] as const) {
        const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize: blocks * PAGE, rollback });
        vm.addContainer('old', backends[0], 1_000_000);
        vm.addContainer('new', backends[1], 1_000_000);
        const whole = { offset: 0, size: blocks * PAGE, iova: WINDOW };
        expect(vm.register('old', whole)).toBe(0);
        expect(vm.register('new', whole)).toBe(0);
        const checker = new InvariantChecker(vm);
        // Newest first: 'new' maps the range, then 'old' fails on its first map.
        vm.container('old').failNextMaps(1, errno);
        expect(vm.stateChange(offset, size, false), rollback).toBe(-errno);
        const disagreements = checker.checkAgreement().filter((v) => v.container !== undefined);
        if (rollback === 'none') {
          expect(mappingsOf(vm.container('new')).length, rollback).toBe(size / PAGE);
          expect(mappingsOf(vm.container('old')), rollback).toEqual([]);
          expect(disagreements.map((v) => [v.invariant, v.container]), rollback).toContainEqual(['disagreement', 'old']);
        } else {
          expect(disagreements, rollback).toEqual([]);
          expect(checker.drain(), rollback).toEqual([]);
          expect(bitsString(vm.rba.bitmap), rollback).toBe('0'.repeat(blocks));
          expect(mappingsOf(vm.container('new')), rollback).toEqual([]);
        }
        checker.dispose();
      }
    }), propertyParams());
  });
});
