import { describe, expect, it } from 'vitest';
import { PagedCounters } from '../../src/core/paged-counters.js';

describe('PagedCounters', () => {
  it('reads zero and allocates nothing until a non-zero write', () => {
    const c = new PagedCounters(2 ** 28);
    expect(c.length).toBe(2 ** 28);
    expect(c.get(0)).toBe(0);
    expect(c.get(2 ** 28 - 1)).toBe(0);
    c.set(12345, 0);
    c.setRange(0, 2 ** 28, 0);
    expect(c.add(99, 0)).toBe(0);
    expect(c.bytesAllocated()).toBe(0);
    expect(c.anyNonZero(0, 2 ** 28)).toBe(false);
    expect(c.maxInRange(0, 2 ** 28)).toBe(0);
  });

  it('get/set/add with page boundaries', () => {
    const c = new PagedCounters(10_000, 4096);
    c.set(4095, 7);
    c.set(4096, 8);
    expect(c.get(4095)).toBe(7);
    expect(c.get(4096)).toBe(8);
    expect(c.get(4094)).toBe(0);
    expect(c.bytesAllocated()).toBe(2 * 4096 * 4);
    expect(c.add(4095, 3)).toBe(10);
    expect(c.add(4095, -10)).toBe(0);
    expect(c.add(9999, 1)).toBe(1);
    expect(c.bytesAllocated()).toBe(3 * 4096 * 4);
    c.set(0, 0xffffffff);
    expect(c.get(0)).toBe(0xffffffff);
  });

  it('add rejects under/overflow without changing the counter', () => {
    const c = new PagedCounters(100, 16);
    expect(() => c.add(5, -1)).toThrow(/-1/);
    expect(c.get(5)).toBe(0);
    expect(c.bytesAllocated()).toBe(0);
    c.set(5, 0xffffffff);
    expect(() => c.add(5, 1)).toThrow(RangeError);
    expect(c.get(5)).toBe(0xffffffff);
    expect(() => c.add(5, 0.5)).toThrow(RangeError);
  });

  it('validates indices, ranges and values', () => {
    const c = new PagedCounters(100, 16);
    expect(() => c.get(100)).toThrow(/100/);
    expect(() => c.get(-1)).toThrow(RangeError);
    expect(() => c.set(0, -1)).toThrow(/-1/);
    expect(() => c.set(0, 2 ** 32)).toThrow(RangeError);
    expect(() => c.set(0, 1.5)).toThrow(RangeError);
    expect(() => c.setRange(90, 11, 1)).toThrow(/90.*11/);
    expect(() => c.maxInRange(0, 101)).toThrow(RangeError);
    expect(() => c.anyNonZero(-1, 1)).toThrow(RangeError);
    expect(() => new PagedCounters(-1)).toThrow(RangeError);
    expect(() => new PagedCounters(10, 0)).toThrow(RangeError);
  });

  it('setRange, maxInRange and anyNonZero across pages', () => {
    const c = new PagedCounters(1000, 64);
    c.setRange(60, 200, 3); // pages 0..4
    expect(c.get(59)).toBe(0);
    expect(c.get(60)).toBe(3);
    expect(c.get(259)).toBe(3);
    expect(c.get(260)).toBe(0);
    expect(c.bytesAllocated()).toBe(5 * 64 * 4);
    c.set(150, 9);
    expect(c.maxInRange(0, 1000)).toBe(9);
    expect(c.maxInRange(151, 100)).toBe(3);
    expect(c.maxInRange(260, 740)).toBe(0);
    expect(c.anyNonZero(0, 60)).toBe(false);
    expect(c.anyNonZero(0, 61)).toBe(true);
    expect(c.anyNonZero(259, 1)).toBe(true);
    expect(c.anyNonZero(260, 740)).toBe(false);
    expect(c.maxInRange(5, 0)).toBe(0);
    expect(c.anyNonZero(60, 0)).toBe(false);
    // clearing frees fully covered pages (pages 1..3), keeps partial ones
    c.setRange(64, 192, 0);
    expect(c.bytesAllocated()).toBe(2 * 64 * 4);
    expect(c.get(63)).toBe(3);
    expect(c.get(256)).toBe(3);
    expect(c.anyNonZero(64, 192)).toBe(false);
    c.setRange(0, 1000, 0);
    expect(c.bytesAllocated()).toBe(0);
  });

  it('serves a 2^28-entry (1 TiB at 4 KiB) array sparsely', () => {
    const n = 2 ** 28;
    const c = new PagedCounters(n);
    c.setRange(n - 5000, 5000, 2);
    c.add(2 ** 27, 1);
    expect(c.bytesAllocated()).toBeLessThanOrEqual(4 * 4096 * 4);
    expect(c.get(n - 1)).toBe(2);
    expect(c.get(n - 5001)).toBe(0);
    expect(c.maxInRange(0, n)).toBe(2);
    expect(c.anyNonZero(0, 2 ** 27)).toBe(false);
    expect(c.anyNonZero(0, 2 ** 27 + 1)).toBe(true);
    expect(c.maxInRange(0, n - 5000)).toBe(1);
    c.setRange(0, n, 0);
    expect(c.bytesAllocated()).toBe(0);
  });

  it('handles indices beyond 2^32', () => {
    const n = 2 ** 40;
    const c = new PagedCounters(n);
    c.set(2 ** 33 + 7, 5);
    expect(c.get(2 ** 33 + 7)).toBe(5);
    expect(c.get(7)).toBe(0);
    expect(c.anyNonZero(2 ** 33, 4096)).toBe(true);
    expect(c.maxInRange(0, n)).toBe(5);
    expect(c.bytesAllocated()).toBe(4096 * 4);
  });
});
