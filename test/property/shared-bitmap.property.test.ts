import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SharedBitmap } from '../../src/core/shared-bitmap.js';
import { assertProperty } from './seed.js';

/** Obviously-correct reference: one byte per bit. */
class RefBitmap {
  readonly bits: Uint8Array;
  constructor(n: number) {
    this.bits = new Uint8Array(n);
  }
  get n(): number {
    return this.bits.length;
  }
  fill(start: number, count: number, v: 0 | 1): void {
    for (let i = start; i < start + count; i++) this.bits[i] = v;
  }
  findNext(from: number, limit: number, v: 0 | 1): number {
    for (let i = from; i < limit; i++) if (this.bits[i] === v) return i;
    return limit;
  }
  all(start: number, count: number, v: 0 | 1): boolean {
    for (let i = start; i < start + count; i++) if (this.bits[i] !== v) return false;
    return true;
  }
  count(start: number, count: number): number {
    let c = 0;
    for (let i = start; i < start + count; i++) c += this.bits[i] as number;
    return c;
  }
  runs(start: number, count: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let i = start;
    const end = start + count;
    while (i < end) {
      if (this.bits[i] === 1) {
        let j = i;
        while (j < end && this.bits[j] === 1) j++;
        out.push([i, j - i]);
        i = j;
      } else {
        i++;
      }
    }
    return out;
  }
}

type Op =
  | { t: 'setRange' | 'clearRange'; a: number; b: number }
  | { t: 'set' | 'clear'; bit: number }
  | { t: 'query'; from: number; limit: number; a: number; b: number };

/** Operations on an n-bit window; ranges as two endpoints in [0, n] (shrinks well). */
function opArb(n: number): fc.Arbitrary<Op> {
  // Endpoints: uniform, or within one bit of a word boundary.
  const nearBoundary = (max: number): fc.Arbitrary<number> =>
    fc
      .tuple(fc.integer({ min: 0, max: Math.floor(max / 32) }), fc.integer({ min: -1, max: 1 }))
      .map(([w, d]) => Math.min(max, Math.max(0, w * 32 + d)));
  const end = fc.oneof(fc.integer({ min: 0, max: n }), nearBoundary(n));
  const bit = fc.oneof(fc.integer({ min: 0, max: n - 1 }), nearBoundary(n - 1));
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ t: fc.constant('setRange' as const), a: end, b: end }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('clearRange' as const), a: end, b: end }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constantFrom('set' as const, 'clear' as const), bit }) },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant('query' as const),
        from: fc.integer({ min: 0, max: n + 3 }),
        limit: end,
        a: end,
        b: end,
      }),
    },
  );
}

// A bitmap window near the top of a 2^28-bit bitmap, starting at a non-word-aligned bit.
const BIG_BASE = 2 ** 28 - 333;
const WINDOW_MAX = 300;
const bigBuffer = new SharedArrayBuffer(SharedBitmap.byteLengthFor(BIG_BASE + WINDOW_MAX + 64));
const bigFull = new SharedBitmap(BIG_BASE + WINDOW_MAX + 64, bigBuffer);

const scenarioArb = fc
  .record({
    base: fc.constantFrom(0, 0, BIG_BASE),
    n: fc.oneof(fc.integer({ min: 1, max: WINDOW_MAX }), fc.constantFrom(1, 31, 32, 33, 63, 64, 65, 96, 128)),
  })
  .chain(({ base, n }) =>
    fc.record({ base: fc.constant(base), n: fc.constant(n), ops: fc.array(opArb(n), { maxLength: 60 }) }),
  );

/** Every maximal run of set and of clear bits is exactly detected by isRangeSet/isRangeClear. */
function checkRuns(bm: SharedBitmap, ref: RefBitmap, base: number): void {
  const n = ref.n;
  let i = 0;
  while (i < n) {
    const v = ref.bits[i] as 0 | 1;
    let j = i;
    while (j < n && ref.bits[j] === v) j++;
    const same = (st: number, c: number): boolean => (v === 1 ? bm.isRangeSet(st, c) : bm.isRangeClear(st, c));
    expect(same(base + i, j - i)).toBe(true);
    if (i > 0) expect(same(base + i - 1, j - i + 1)).toBe(false);
    if (j < n) expect(same(base + i, j - i + 1)).toBe(false);
    expect(bm.countSet(base + i, j - i)).toBe(v * (j - i));
    expect(v === 1 ? bm.findNextZeroBit(base + i, base + n) : bm.findNextBit(base + i, base + n)).toBe(base + j);
    i = j;
  }
}

function check(bm: SharedBitmap, ref: RefBitmap, base: number, op: Op): void {
  const n = ref.n;
  const lo = (o: { a: number; b: number }): number => Math.min(o.a, o.b);
  const len = (o: { a: number; b: number }): number => Math.abs(o.a - o.b);
  switch (op.t) {
    case 'setRange':
      bm.setRange(base + lo(op), len(op));
      ref.fill(lo(op), len(op), 1);
      break;
    case 'clearRange':
      bm.clearRange(base + lo(op), len(op));
      ref.fill(lo(op), len(op), 0);
      break;
    case 'set':
      bm.set(base + op.bit);
      ref.bits[op.bit] = 1;
      break;
    case 'clear':
      bm.clear(base + op.bit);
      ref.bits[op.bit] = 0;
      break;
    case 'query': {
      const { from, limit } = op;
      const s = lo(op);
      const c = len(op);
      const expNext = (v: 0 | 1, lim: number): number => (from >= lim ? lim : ref.findNext(from, lim, v));
      expect(bm.findNextBit(base + from, base + limit)).toBe(base + expNext(1, limit));
      expect(bm.findNextZeroBit(base + from, base + limit)).toBe(base + expNext(0, limit));
      expect(bm.findNextBit(base + from)).toBe(base + expNext(1, n));
      expect(bm.findNextZeroBit(base + from)).toBe(base + expNext(0, n));
      expect(bm.isRangeSet(base + s, c)).toBe(ref.all(s, c, 1));
      expect(bm.isRangeClear(base + s, c)).toBe(ref.all(s, c, 0));
      expect(bm.countSet(base + s, c)).toBe(ref.count(s, c));
      expect(bm.setRuns(base + s, c)).toEqual(ref.runs(s, c).map(([x, k]) => [base + x, k]));
      for (let i = s; i < s + c; i++) expect(bm.test(base + i)).toBe(ref.bits[i] === 1);
      checkRuns(bm, ref, base);
      break;
    }
  }
}

describe('SharedBitmap vs one-byte-per-bit reference', () => {
  it('random operation sequences agree with the reference (incl. a window near bit 2^28)', () => {
    assertProperty(
      'shared-bitmap ops',
      fc.property(scenarioArb, ({ base, n, ops }) => {
        let bm: SharedBitmap;
        if (base === 0) {
          bm = new SharedBitmap(n);
        } else {
          bigFull.clearRange(BIG_BASE, WINDOW_MAX + 64);
          bm = new SharedBitmap(BIG_BASE + n, bigBuffer);
        }
        const ref = new RefBitmap(n);
        for (const op of ops) check(bm, ref, base, op);
        // final full comparison of the window
        for (let i = 0; i < n; i++) expect(bm.test(base + i)).toBe(ref.bits[i] === 1);
        expect(bm.countSet(base, n)).toBe(ref.count(0, n));
        checkRuns(bm, ref, base);
        expect(bm.setRuns(base, n)).toEqual(ref.runs(0, n).map(([x, k]) => [base + x, k]));
        if (base === 0) {
          expect(bm.countSet()).toBe(ref.count(0, n));
          expect(bm.setRuns()).toEqual(ref.runs(0, n));
        }
        // a second view over the same buffer sees the same bits
        const view = new SharedBitmap(bm.size, bm.buffer);
        expect(view.setRuns(base, n)).toEqual(bm.setRuns(base, n));
      }),
    );
  });
});
