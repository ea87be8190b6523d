/**
 * The invariant checker (spec section 9) on correct operation sequences:
 * random conversions through the whole `kvm_convert_memory` path (legacy,
 * and in-place with the `explicit` and `priority` orders), registration and
 * unregistration of iommufd containers and type1 containers with a high
 * entry limit (sections of one container never share IOVAs), and device
 * accesses at random IOVAs, with no fault injection. It must find nothing:
 * no instant violation (`drain`), nothing at quiescent points
 * (`checkQuiescent`), agreement over every converted range
 * (`checkConverted`) and over the whole region (`checkAgreement`), and
 * every device access is `ok` or `fault`.
 *
 * A few conversions are invalid (unaligned, empty, partly or wholly outside
 * the region). Such a conversion fails and stops the VM (except converting
 * unassigned memory to shared, which is a no-op), after which the sequence
 * ends: the guest is paused and converts nothing more.
 *
 * The counterpart properties break the protocol on purpose through public
 * API (a direct `dmaMap` that no listener knows about) and check that the
 * checker does report it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfidentialVm, DEFAULT_VM_CONFIG } from '../../src/core/confidential-vm.js';
import type { BackingMode } from '../../src/core/guest-memory.js';
import { InvariantChecker } from '../../src/core/invariants.js';
import type { InplaceOrder } from '../../src/core/kvm-convert-memory.js';
import type { RollbackPolicy } from '../../src/core/ram-block-attributes.js';
import { EAGAIN, EINVAL, PAGE } from './reference/events.js';
import { propertyParams } from './seed.js';

/** Each (container, slot) gets its own IOVA window: sections of one container never overlap. */
const WINDOW = 2 ** 30;
const SLOTS = 2;
const GIB = 2 ** 30;

const MODES: ReadonlyArray<{ mode: BackingMode; inplaceOrder: InplaceOrder }> = [
  { mode: 'legacy', inplaceOrder: 'explicit' },
  { mode: 'inplace', inplaceOrder: 'explicit' },
  { mode: 'inplace', inplaceOrder: 'priority' },
];

const CONTAINERS = [
  { id: 'iommufd0', backend: 'iommufd' as const, limit: 0 },
  { id: 'type1', backend: 'type1' as const, limit: 1_000_000 },
  { id: 'iommufd1', backend: 'iommufd' as const, limit: 0 },
];

interface Config {
  readonly blocks: number;
  readonly gpaBase: number;
  readonly rollback: RollbackPolicy;
  readonly containers: number;
}

type Op =
  | { op: 'register'; c: number; slot: number; offset: number; size: number }
  | { op: 'unregister'; c: number }
  | { op: 'convert'; gpa: number; size: number; toPrivate: boolean; valid: boolean }
  | { op: 'dma'; c: number; iova: number; size: number };

const configArb: fc.Arbitrary<Config> = fc.record({
  blocks: fc.integer({ min: 8, max: 64 }),
  gpaBase: fc.constantFrom(0, GIB, 4 * GIB),
  rollback: fc.constantFrom<RollbackPolicy>('none', 'listener', 'full'),
  containers: fc.integer({ min: 1, max: CONTAINERS.length }),
});

function opArb(config: Config): fc.Arbitrary<Op> {
  const { blocks, gpaBase } = config;
  const regionSize = blocks * PAGE;
  const c = fc.nat(config.containers - 1);
  const range = fc.tuple(fc.nat(blocks - 1), fc.nat(blocks - 1))
    .map(([a, b]) => ({ offset: Math.min(a, b) * PAGE, size: (Math.abs(a - b) + 1) * PAGE }));
  const convert = (gpa: number, size: number, toPrivate: boolean, valid: boolean): Op => ({ op: 'convert', gpa, size, toPrivate, valid });
  const invalid: fc.Arbitrary<Op> = fc.tuple(range, fc.boolean(), fc.integer({ min: 1, max: PAGE - 1 }), fc.nat(3)).map(([r, toPrivate, d, kind]) => {
    switch (kind) {
      case 0: return convert(gpaBase + r.offset + d, r.size, toPrivate, false); // unaligned start
      case 1: return convert(gpaBase + r.offset, 0, toPrivate, false); // empty
      case 2: return convert(gpaBase + r.offset, regionSize - r.offset + PAGE, toPrivate, false); // runs past the end
      default: return convert(gpaBase + regionSize + r.offset, r.size, toPrivate, false); // outside the region
    }
  });
  // Shared a little more often than private, so devices find something mapped.
  const toPrivate = fc.oneof({ weight: 2, arbitrary: fc.constant(true) }, { weight: 3, arbitrary: fc.constant(false) });
  // Mostly inside one page (a hit when that block is mapped), sometimes spanning up to three.
  const access = fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: PAGE }).chain((size) => fc.tuple(fc.constant(size), fc.nat(PAGE - size))) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 * PAGE }), fc.nat(PAGE - 1)) },
  );
  return fc.oneof(
    {
      weight: 4,
      // Slot 0 more often, so device accesses (also biased to slot 0) hit registered sections.
      arbitrary: fc.tuple(c, fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }), fc.oneof(range, fc.constant({ offset: 0, size: regionSize })))
        .map(([ci, slot, r]): Op => ({ op: 'register', c: ci, slot, ...r })),
    },
    { weight: 1, arbitrary: c.map((ci): Op => ({ op: 'unregister', c: ci })) },
    { weight: 16, arbitrary: fc.tuple(range, toPrivate).map(([r, priv]) => convert(gpaBase + r.offset, r.size, priv, true)) },
    { weight: 2, arbitrary: toPrivate.map((priv) => convert(gpaBase, regionSize, priv, true)) },
    { weight: 1, arbitrary: invalid },
    {
      weight: 10,
      // Slot SLOTS is a window no section ever uses: always a fault.
      arbitrary: fc.tuple(c, fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(SLOTS) }), fc.nat(blocks - 1), access)
        .map(([ci, slot, page, [size, within]]): Op => ({ op: 'dma', c: ci, iova: (slot + 1) * WINDOW + page * PAGE + within, size })),
    },
  );
}

function run(modeIndex: number, config: Config, ops: readonly Op[]): void {
  const vm = new ConfidentialVm({
    ...DEFAULT_VM_CONFIG, ...MODES[modeIndex]!, regionSize: config.blocks * PAGE, gpaBase: config.gpaBase, rollback: config.rollback,
  });
  const ids = CONTAINERS.slice(0, config.containers).map((c) => {
    vm.addContainer(c.id, c.backend, c.backend === 'type1' ? c.limit : undefined);
    return c.id;
  });
  const slotsInUse = new Map<string, Set<number>>(ids.map((id) => [id, new Set<number>()]));
  const checker = new InvariantChecker(vm);
  try {
    for (const [i, op] of ops.entries()) {
      const where = `op #${i} ${JSON.stringify(op)}`;
      let stop = false;
      switch (op.op) {
        case 'register': {
          const id = ids[op.c]!;
          const slots = slotsInUse.get(id)!;
          if (slots.has(op.slot)) break; // one section per IOVA window
          slots.add(op.slot);
          expect(vm.register(id, { offset: op.offset, size: op.size, iova: (op.slot + 1) * WINDOW + op.offset }), where).toBe(0);
          break;
        }
        case 'unregister': {
          const id = ids[op.c]!;
          vm.unregister(id);
          slotsInUse.get(id)!.clear();
          break;
        }
        case 'convert': {
          const ret = vm.convert(op.gpa, op.size, op.toPrivate);
          if (op.valid) {
            expect(ret, `${where}: a valid conversion succeeds`).toBe(0);
            expect(checker.checkConverted(op.gpa, op.size, op.toPrivate), `${where}: agreement after conversion`).toEqual([]);
          } else {
            const outside = op.gpa >= config.gpaBase + config.blocks * PAGE;
            // Current QEMU: -EINVAL for "no memory region, to private" too (older QEMU: -1).
            const expected = outside ? (op.toPrivate ? -EINVAL : 0) : -EINVAL;
            expect(ret, `${where}: invalid conversion`).toBe(expected);
            stop = ret !== 0;
            expect(vm.vmStopped, `${where}: VM stopped`).toBe(stop);
          }
          break;
        }
        case 'dma': {
          const id = ids[op.c]!;
          const outcome = vm.dma(id, op.iova, op.size);
          checker.recordAccess(id, op.iova, op.size, outcome);
          expect(['ok', 'fault'], `${where}: device access outcome`).toContain(outcome);
          break;
        }
      }
      expect(checker.drain(), `${where}: instant violations`).toEqual([]);
      expect(checker.checkQuiescent(), `${where}: quiescent violations`).toEqual([]);
      if (stop) break; // the VM is stopped: the guest converts nothing more
      // While every conversion so far succeeded: KVM == bitmap == every listener's mappings, region-wide.
      expect(checker.checkAgreement(), `${where}: agreement over the region`).toEqual([]);
    }
  } finally {
    checker.dispose();
  }
}

const scenarioArb = configArb.chain((config) =>
  fc.tuple(fc.constant(config), fc.array(opArb(config), { minLength: 1, maxLength: 40, size: 'max' })));

describe('InvariantChecker on correct sequences', () => {
  it.each(MODES.map((m, i) => [`${m.mode}${m.mode === 'inplace' ? `/${m.inplaceOrder}` : ''}`, i] as const))(
    '%s: convert/register/unregister/dma find no violation',
    (_name, modeIndex) => {
      fc.assert(fc.property(scenarioArb, ([config, ops]) => run(modeIndex, config, ops)), propertyParams());
    },
  );
});

describe('InvariantChecker finds a protocol broken on purpose', () => {
  const arb = fc.record({
    blocks: fc.integer({ min: 8, max: 64 }),
    backend: fc.constantFrom('type1' as const, 'iommufd' as const),
    block: fc.nat(63),
    pages: fc.integer({ min: 1, max: 4 }),
    iovaPage: fc.nat(1000),
  });

  it('legacy: a block mapped behind RamBlockAttributes\' back, then converted to private -> stale-mapping', () => {
    fc.assert(fc.property(arb, ({ blocks, backend, block, pages, iovaPage }) => {
      const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize: blocks * PAGE });
      const container = vm.addContainer('rogue', backend, 1_000_000);
      const checker = new InvariantChecker(vm);
      const first = block % blocks;
      const n = Math.min(pages, blocks - first);
      const offset = first * PAGE;
      const iova = iovaPage * PAGE;
      expect(vm.convert(offset, n * PAGE, false)).toBe(0);
      expect(container.dmaMap(iova, n * PAGE, offset)).toBe(0); // no listener knows about this mapping
      expect(checker.checkQuiescent()).toEqual([]);
      expect(vm.convert(offset, n * PAGE, true)).toBe(0);
      const found = checker.checkQuiescent();
      expect(found.map((v) => v.invariant)).toContain('stale-mapping');
      const outcome = vm.dma('rogue', iova, PAGE);
      expect(['dma-to-stale', 'dma-to-private']).toContain(outcome);
      checker.recordAccess('rogue', iova, PAGE, outcome);
      expect(checker.drain().map((v) => v.invariant)).toContain(outcome);
      checker.dispose();
    }), propertyParams());
  });

  it('in place (explicit): a pinned mapping no listener knows about -> CONVERT_PRIVATE -EAGAIN and inplace-order', () => {
    fc.assert(fc.property(arb, ({ blocks, backend, block, pages, iovaPage }) => {
      const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize: blocks * PAGE, mode: 'inplace', inplaceOrder: 'explicit' });
      const container = vm.addContainer('rogue', backend, 1_000_000);
      const checker = new InvariantChecker(vm);
      const first = block % blocks;
      const n = Math.min(pages, blocks - first);
      const offset = first * PAGE;
      const iova = iovaPage * PAGE;
      expect(vm.convert(offset, n * PAGE, false)).toBe(0);
      expect(container.dmaMap(iova, n * PAGE, offset)).toBe(0);
      expect(checker.drain()).toEqual([]);
      expect(vm.convert(offset, n * PAGE, true)).toBe(-EAGAIN);
      expect(checker.drain().map((v) => v.invariant)).toContain('inplace-order');
      checker.dispose();
    }), propertyParams());
  });
});
