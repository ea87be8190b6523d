import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MappingStore } from '../../src/core/vfio/mapping-store.js';
import { assertProperty } from './seed.js';

const PS = 4096;

interface M {
  iova: number;
  size: number;
  hostOffset: number;
  epoch: number;
}

/** Obviously-correct reference: a plain sorted array of objects (bytes). */
class RefStore {
  items: M[] = [];
  insert(m: M): boolean {
    for (const x of this.items) {
      if (x.iova < m.iova + m.size && m.iova < x.iova + x.size) return false;
    }
    this.items.push(m);
    this.items.sort((p, q) => p.iova - q.iova);
    return true;
  }
  intersecting(iova: number, size: number): M[] {
    if (size === 0) return [];
    return this.items.filter((x) => x.iova < iova + size && iova < x.iova + x.size);
  }
  find(b: number): M | undefined {
    return this.items.find((x) => x.iova <= b && b < x.iova + x.size);
  }
  removeContained(iova: number, size: number): { count: number; bytes: number } {
    if (size === 0) return { count: 0, bytes: 0 };
    const keep: M[] = [];
    let count = 0;
    let bytes = 0;
    for (const x of this.items) {
      if (x.iova >= iova && x.iova + x.size <= iova + size) {
        count++;
        bytes += x.size;
      } else {
        keep.push(x);
      }
    }
    this.items = keep;
    return { count, bytes };
  }
}

type Op =
  | { t: 'insert'; page: number; pages: number; host: number; epoch: number }
  | { t: 'fill'; page: number; k: number; desc: boolean; stride: number }
  | { t: 'remove'; start: number; len: number }
  | { t: 'query'; start: number; len: number; stopAfter: number; probe: number }
  | { t: 'clear' };

const WINDOW = 600; // pages

/** A byte offset within the window: page-aligned or not. */
const byteArb = fc.oneof(
  fc.integer({ min: 0, max: WINDOW }).map((p) => p * PS),
  fc.integer({ min: 0, max: WINDOW * PS }),
);
const lenArb = fc.oneof(
  fc.integer({ min: 0, max: 80 }).map((p) => p * PS),
  fc.integer({ min: 0, max: 80 * PS }),
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('insert' as const),
      page: fc.integer({ min: 0, max: WINDOW }),
      pages: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 64 })),
      host: fc.integer({ min: 0, max: 2 ** 20 }),
      epoch: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant(0xffffffff)),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('fill' as const),
      page: fc.integer({ min: 0, max: WINDOW }),
      k: fc.integer({ min: 1, max: 60 }),
      desc: fc.boolean(),
      stride: fc.constantFrom(1, 2, 3),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('remove' as const), start: byteArb, len: lenArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('query' as const),
      start: byteArb,
      len: lenArb,
      stopAfter: fc.integer({ min: 0, max: 20 }),
      probe: byteArb,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
);

const scenarioArb = fc.record({
  leafCapacity: fc.constantFrom(4, 5, 8, 16, 512),
  // window base in pages: 0, 1 TiB, and just below 2^52 bytes
  basePage: fc.constantFrom(0, 2 ** 28, 2 ** 40 - WINDOW - 200),
  ops: fc.array(opArb, { maxLength: 120 }),
});

function all(s: MappingStore): M[] {
  const out: M[] = [];
  s.forEach((iova, size, hostOffset, epoch) => {
    out.push({ iova, size, hostOffset, epoch });
  });
  return out;
}

describe('MappingStore vs sorted-array reference', () => {
  it('random operation sequences agree with the reference (small leaves, large IOVAs)', () => {
    assertProperty(
      'mapping-store ops',
      fc.property(scenarioArb, ({ leafCapacity, basePage, ops }) => {
        const base = basePage * PS;
        const s = new MappingStore(PS, { leafCapacity });
        const ref = new RefStore();
        const ins = (m: M): void => {
          expect(s.insert(m.iova, m.size, m.hostOffset, m.epoch)).toBe(ref.insert(m));
        };
        for (const op of ops) {
          switch (op.t) {
            case 'insert':
              ins({ iova: base + op.page * PS, size: op.pages * PS, hostOffset: op.host * PS, epoch: op.epoch });
              break;
            case 'fill':
              for (let i = 0; i < op.k; i++) {
                const p = op.page + (op.desc ? op.k - 1 - i : i) * op.stride;
                ins({ iova: base + p * PS, size: PS, hostOffset: p * PS, epoch: i });
              }
              break;
            case 'remove':
              expect(s.removeContained(base + op.start, op.len)).toEqual(ref.removeContained(base + op.start, op.len));
              break;
            case 'query': {
              const exp = ref.intersecting(base + op.start, op.len);
              expect(s.intersects(base + op.start, op.len)).toBe(exp.length > 0);
              const got: M[] = [];
              s.forEachIntersecting(base + op.start, op.len, (iova, size, hostOffset, epoch) => {
                got.push({ iova, size, hostOffset, epoch });
                return got.length < op.stopAfter ? undefined : false;
              });
              expect(got).toEqual(exp.slice(0, Math.max(1, op.stopAfter)));
              expect(s.find(base + op.probe)).toEqual(ref.find(base + op.probe));
              break;
            }
            case 'clear':
              s.clear();
              ref.items = [];
              break;
          }
          s.checkInvariants();
          expect(s.count).toBe(ref.items.length);
        }
        expect(all(s)).toEqual(ref.items);
        // memory accounting: empty store holds nothing; a non-empty one stays bounded
        if (s.count === 0) expect(s.bytesAllocated()).toBe(0);
        // drain everything
        const total = ref.items.reduce((acc, m) => acc + m.size, 0);
        expect(s.removeContained(base, (WINDOW + 200) * PS)).toEqual({ count: ref.items.length, bytes: total });
        expect(s.count).toBe(0);
        expect(s.bytesAllocated()).toBe(0);
        s.checkInvariants();
      }),
    );
  });
});
