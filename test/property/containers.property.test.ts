/**
 * The two VFIO container back-ends against the reference (spec section 4,
 * "Container back-ends"): random direct dmaMap/dmaUnmap sequences (aligned
 * and unaligned, empty, overlapping, bisecting, spanning several mappings),
 * map-failure injection and device accesses, on type1 with small entry
 * limits and on iommufd.
 *
 * After every operation: QEMU's return, the kernel's return in the event,
 * the mapping list (iova, size, host offset), the number of cut mappings
 * recorded for the `partial-unmap` invariant, and for a device access
 * whether it faults (the memory is all shared, so a covered access is `ok`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfidentialVm, DEFAULT_VM_CONFIG } from '../../src/core/confidential-vm.js';
import { RefContainer, type RefBackend } from './reference/containers.js';
import { EFAULT, EIO, ENOMEM, PAGE, type RefEvent } from './reference/events.js';
import { EffectRecorder, mappingsOf } from './reference/observe.js';
import { propertyParams } from './seed.js';

/** The region (host memory behind the mappings) in pages; IOVAs live in a window of the same size. */
const BLOCKS = 24;

type Op =
  | { op: 'map'; iova: number; size: number; host: number }
  | { op: 'unmap'; iova: number; size: number }
  | { op: 'failNextMaps'; count: number; errno: number }
  | { op: 'dma'; iova: number; size: number };

/** IOVAs fall in a window of this many pages, so mappings crowd and collide. */
const IOVA_PAGES = 12;

/** Mostly page-aligned, sometimes off by a few bytes. */
const misalign: fc.Arbitrary<number> = fc.oneof({ weight: 19, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: PAGE - 1 }) });
const address: fc.Arbitrary<number> = fc.tuple(fc.nat(IOVA_PAGES), misalign).map(([page, off]) => page * PAGE + off);
/** `maxPages` pages (sometimes 0), sometimes plus a few bytes. */
const length = (maxPages: number): fc.Arbitrary<number> =>
  fc.tuple(fc.oneof({ weight: 19, arbitrary: fc.integer({ min: 1, max: maxPages }) }, { weight: 1, arbitrary: fc.constant(0) }), misalign)
    .map(([pages, off]) => pages * PAGE + off);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(address, length(3), fc.nat(BLOCKS - 1)).map(([iova, size, hostPage]): Op => {
      // Keep the host range inside the region (pinning past it is not a kernel case we model).
      const pages = Math.ceil(size / PAGE);
      return { op: 'map', iova, size, host: Math.max(0, Math.min(hostPage, BLOCKS - pages)) * PAGE };
    }),
  },
  { weight: 4, arbitrary: fc.tuple(address, length(8)).map(([iova, size]): Op => ({ op: 'unmap', iova, size })) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.constantFrom(ENOMEM, EIO, EFAULT)).map(([count, errno]): Op => ({ op: 'failNextMaps', count, errno })),
  },
  { weight: 2, arbitrary: fc.tuple(address, length(4)).map(([iova, size]): Op => ({ op: 'dma', iova, size: Math.max(1, size) })) },
);

const scenarioArb = fc.tuple(
  fc.constantFrom<RefBackend>('type1', 'iommufd'),
  fc.integer({ min: 1, max: 6 }),
  fc.array(opArb, { minLength: 1, maxLength: 50, size: 'max' }),
);

function run(backend: RefBackend, limit: number, ops: readonly Op[]): void {
  const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize: BLOCKS * PAGE });
  // All shared (no listener registered, so nothing is mapped): a covered device access is `ok`.
  expect(vm.convert(0, BLOCKS * PAGE, false)).toBe(0);
  const real = vm.addContainer('c', backend, limit);
  const events: RefEvent[] = [];
  const model = new RefContainer('c', backend, limit, events);
  const recorder = new EffectRecorder(vm);
  try {
    ops.forEach((op, i) => {
      const where = `op #${i} ${JSON.stringify(op)}`;
      let actual: unknown;
      let expected: unknown;
      switch (op.op) {
        case 'map':
          actual = real.dmaMap(op.iova, op.size, op.host);
          expected = model.map(op.iova, op.size, op.host);
          break;
        case 'unmap':
          actual = real.dmaUnmap(op.iova, op.size);
          expected = model.unmap(op.iova, op.size);
          break;
        case 'failNextMaps':
          real.failNextMaps(op.count, op.errno);
          model.failNextMaps(op.count, op.errno);
          break;
        case 'dma':
          actual = vm.dma('c', op.iova, op.size);
          expected = model.covers(op.iova, op.size) ? 'ok' : 'fault';
          break;
      }
      expect(actual, `${where}: result`).toEqual(expected);
      expect(recorder.take(), `${where}: events`).toEqual(events.splice(0));
      expect(mappingsOf(real), `${where}: mappings`).toEqual(model.mappings);
      expect(real.mappings.count, `${where}: count`).toBe(model.mappings.length);
      expect(real.partialUnmaps.length, `${where}: cut mappings`).toBe(model.cuts);
      if (backend === 'type1') expect(real.mappings.count, `${where}: entry limit`).toBeLessThanOrEqual(limit);
    });
  } finally {
    recorder.dispose();
  }
}

describe('VFIO containers against the reference back-ends', () => {
  it('type1 (small dma_entry_limit) and iommufd: random map/unmap/inject/dma sequences', () => {
    fc.assert(fc.property(scenarioArb, ([backend, limit, ops]) => run(backend, limit, ops)), propertyParams());
  });
});
