import { describe, expect, it } from 'vitest';
import { SharedBitmap } from '../../src/core/shared-bitmap.js';

describe('SharedBitmap basics', () => {
  it('byteLengthFor rounds up to whole 64-bit words (QEMU unsigned long)', () => {
    expect(SharedBitmap.byteLengthFor(0)).toBe(0);
    expect(SharedBitmap.byteLengthFor(1)).toBe(8);
    expect(SharedBitmap.byteLengthFor(32)).toBe(8);
    expect(SharedBitmap.byteLengthFor(64)).toBe(8);
    expect(SharedBitmap.byteLengthFor(65)).toBe(16);
    expect(SharedBitmap.byteLengthFor(2 ** 28)).toBe(2 ** 25);
    expect(() => SharedBitmap.byteLengthFor(-1)).toThrow(RangeError);
    expect(() => SharedBitmap.byteLengthFor(1.5)).toThrow(/1.5/);
  });

  it('allocates a zeroed SharedArrayBuffer and exposes size/buffer', () => {
    const bm = new SharedBitmap(100);
    expect(bm.size).toBe(100);
    expect(bm.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(bm.buffer.byteLength).toBe(16);
    expect(bm.countSet()).toBe(0);
    expect(bm.findNextBit(0)).toBe(100);
    expect(bm.findNextZeroBit(0)).toBe(0);
  });

  it('validates a supplied buffer and shares it with a second view', () => {
    expect(() => new SharedBitmap(65, new SharedArrayBuffer(8))).toThrow(RangeError);
    expect(() => new SharedBitmap(64, new ArrayBuffer(8) as unknown as SharedArrayBuffer)).toThrow(TypeError);
    const a = new SharedBitmap(64);
    const b = new SharedBitmap(64, a.buffer);
    a.set(40);
    expect(b.test(40)).toBe(true);
    b.clear(40);
    expect(a.test(40)).toBe(false);
  });

  it('set/clear/test at word boundaries 0, 31, 32, 63, 64', () => {
    const bm = new SharedBitmap(100);
    for (const b of [0, 31, 32, 63, 64]) bm.set(b);
    expect(bm.countSet()).toBe(5);
    for (let i = 0; i < 100; i++) expect(bm.test(i)).toBe([0, 31, 32, 63, 64].includes(i));
    expect(bm.findNextBit(0)).toBe(0);
    expect(bm.findNextBit(1)).toBe(31);
    expect(bm.findNextBit(32)).toBe(32);
    expect(bm.findNextBit(33)).toBe(63);
    expect(bm.findNextBit(64)).toBe(64);
    expect(bm.findNextBit(65)).toBe(100);
    bm.clear(31);
    bm.clear(64);
    expect(bm.findNextBit(1)).toBe(32);
    expect(bm.findNextBit(33)).toBe(63);
    expect(bm.findNextBit(64)).toBe(100);
    // bit 31 is the sign bit of an Int32 word
    bm.set(31);
    expect(bm.test(31)).toBe(true);
    expect(bm.findNextBit(1, 32)).toBe(31);
    expect(bm.countSet(31, 1)).toBe(1);
  });

  it('rejects out-of-range and non-integer arguments, naming the value', () => {
    const bm = new SharedBitmap(64);
    expect(() => bm.test(64)).toThrow(/64/);
    expect(() => bm.set(-1)).toThrow(RangeError);
    expect(() => bm.clear(0.5)).toThrow(/0.5/);
    expect(() => bm.setRange(60, 5)).toThrow(/60.*5/);
    expect(() => bm.clearRange(-1, 1)).toThrow(RangeError);
    expect(() => bm.findNextBit(0, 65)).toThrow(/65/);
    expect(() => bm.findNextBit(-2)).toThrow(/-2/);
    expect(() => bm.isRangeSet(0, NaN)).toThrow(/NaN/);
    expect(() => bm.countSet(10, 60)).toThrow(RangeError);
    expect(() => new SharedBitmap(-5)).toThrow(/-5/);
  });

  it('findNextBit follows the find_next_bit convention for from >= limit', () => {
    const bm = new SharedBitmap(64);
    bm.setRange(0, 64);
    expect(bm.findNextBit(10, 10)).toBe(10);
    expect(bm.findNextBit(20, 10)).toBe(10);
    expect(bm.findNextBit(100)).toBe(64); // from past the end is allowed
    expect(bm.findNextZeroBit(0)).toBe(64);
    expect(bm.findNextZeroBit(5, 40)).toBe(40);
  });
});

describe('SharedBitmap ranges', () => {
  it('setRange within one word, across one boundary, and across many words', () => {
    const bm = new SharedBitmap(1000);
    bm.setRange(3, 5); // 3..7
    expect(bm.setRuns()).toEqual([[3, 5]]);
    bm.setRange(30, 4); // 30..33 straddles 31/32
    expect(bm.setRuns()).toEqual([
      [3, 5],
      [30, 4],
    ]);
    bm.setRange(100, 700); // many words, unaligned both ends
    expect(bm.isRangeSet(100, 700)).toBe(true);
    expect(bm.test(99)).toBe(false);
    expect(bm.test(800)).toBe(false);
    expect(bm.countSet()).toBe(5 + 4 + 700);
    expect(bm.findNextZeroBit(100)).toBe(800);
    expect(bm.findNextBit(34)).toBe(100);
  });

  it('aligned full-word ranges and exact word edges', () => {
    const bm = new SharedBitmap(256);
    bm.setRange(32, 64); // words 1 and 2 exactly
    expect(bm.test(31)).toBe(false);
    expect(bm.test(32)).toBe(true);
    expect(bm.test(95)).toBe(true);
    expect(bm.test(96)).toBe(false);
    expect(bm.countSet(0, 256)).toBe(64);
    expect(bm.isRangeSet(32, 64)).toBe(true);
    expect(bm.isRangeSet(31, 2)).toBe(false);
    expect(bm.isRangeClear(0, 32)).toBe(true);
    expect(bm.isRangeClear(96, 160)).toBe(true);
    bm.clearRange(63, 2); // bits 63, 64
    expect(bm.setRuns()).toEqual([
      [32, 31],
      [65, 31],
    ]);
    bm.setRange(0, 256);
    expect(bm.countSet()).toBe(256);
    bm.clearRange(0, 256);
    expect(bm.countSet()).toBe(0);
  });

  it('clearRange across many words leaves neighbours intact', () => {
    const bm = new SharedBitmap(2048);
    bm.setRange(0, 2048);
    bm.clearRange(33, 1900);
    expect(bm.isRangeSet(0, 33)).toBe(true);
    expect(bm.isRangeClear(33, 1900)).toBe(true);
    expect(bm.isRangeSet(1933, 115)).toBe(true);
    expect(bm.countSet()).toBe(2048 - 1900);
    expect(bm.findNextZeroBit(0)).toBe(33);
    expect(bm.findNextBit(33)).toBe(1933);
  });

  it('empty ranges are no-ops / vacuous', () => {
    const bm = new SharedBitmap(64);
    bm.setRange(64, 0);
    bm.clearRange(0, 0);
    expect(bm.isRangeSet(10, 0)).toBe(true);
    expect(bm.isRangeClear(10, 0)).toBe(true);
    expect(bm.countSet(5, 0)).toBe(0);
    expect(bm.setRuns(5, 0)).toEqual([]);
    const empty = new SharedBitmap(0);
    expect(empty.findNextBit(0)).toBe(0);
    expect(empty.countSet()).toBe(0);
    expect(empty.setRuns()).toEqual([]);
  });

  it('setRuns clips runs to the queried range', () => {
    const bm = new SharedBitmap(200);
    bm.setRange(10, 50);
    bm.setRange(100, 100);
    expect(bm.setRuns(20, 100)).toEqual([
      [20, 40],
      [100, 20],
    ]);
    expect(bm.setRuns(150)).toEqual([[150, 50]]);
  });

  it('ignores stray bits past size in a supplied buffer', () => {
    const buf = new SharedArrayBuffer(8);
    new Int32Array(buf)[1] = -1; // bits 32..63 set, but size is 40
    const bm = new SharedBitmap(40, buf);
    expect(bm.findNextBit(0)).toBe(32);
    expect(bm.countSet()).toBe(8);
    expect(bm.setRuns()).toEqual([[32, 8]]);
    expect(bm.findNextZeroBit(32)).toBe(40);
  });
});

describe('SharedBitmap at 2^28 bits and beyond 2^31', () => {
  it('works near the top of a 2^28-bit (1 TiB at 4 KiB) bitmap', () => {
    const n = 2 ** 28;
    const bm = new SharedBitmap(n);
    const start = n - 1000 - 37;
    bm.setRange(start, 1000);
    expect(bm.findNextBit(0)).toBe(start);
    expect(bm.findNextZeroBit(start)).toBe(start + 1000);
    expect(bm.countSet()).toBe(1000);
    expect(bm.isRangeSet(start, 1000)).toBe(true);
    expect(bm.setRuns()).toEqual([[start, 1000]]);
    bm.set(n - 1);
    expect(bm.test(n - 1)).toBe(true);
    expect(bm.findNextBit(start + 1000)).toBe(n - 1);
    bm.clearRange(start, 1000);
    expect(bm.findNextBit(0)).toBe(n - 1);
  });

  it('handles bit indices above 2^31 without sign/truncation errors', () => {
    // 256 MiB of (lazily committed) SAB; only a few pages near the top are touched.
    const n = 2 ** 31 + 4096;
    let bm: SharedBitmap;
    try {
      bm = new SharedBitmap(n);
    } catch {
      return; // cannot reserve the buffer here; the 2^28 case above covers the common path
    }
    const b = 2 ** 31 + 5;
    bm.set(b);
    expect(bm.test(b)).toBe(true);
    expect(bm.test(5)).toBe(false);
    bm.setRange(2 ** 31 + 100, 10);
    expect(bm.findNextBit(b + 1)).toBe(2 ** 31 + 100);
    expect(bm.findNextZeroBit(2 ** 31 + 100)).toBe(2 ** 31 + 110);
    expect(bm.countSet(2 ** 31, 4096)).toBe(11);
    expect(bm.setRuns(2 ** 31, 4096)).toEqual([
      [b, 1],
      [2 ** 31 + 100, 10],
    ]);
    bm.clear(b);
    expect(bm.isRangeClear(2 ** 31, 100)).toBe(true);
  });
});
