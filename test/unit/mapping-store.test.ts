import { describe, expect, it } from 'vitest';
import { MappingStore } from '../../src/core/vfio/mapping-store.js';

const K4 = 4096;
const M2 = 2 * 1024 * 1024;

type Row = [number, number, number, number];

function rows(s: MappingStore): Row[] {
  const out: Row[] = [];
  s.forEach((iova, size, host, epoch) => {
    out.push([iova, size, host, epoch]);
  });
  return out;
}

function intersecting(s: MappingStore, iova: number, size: number): Row[] {
  const out: Row[] = [];
  s.forEachIntersecting(iova, size, (a, b, c, d) => {
    out.push([a, b, c, d]);
  });
  return out;
}

describe('MappingStore basics', () => {
  it('inserts, finds and rejects overlaps without changing anything', () => {
    const s = new MappingStore();
    expect(s.count).toBe(0);
    expect(s.insert(0x10000, 0x4000, 0x200000, 7)).toBe(true);
    expect(s.insert(0x20000, K4, 0x300000, 8)).toBe(true);
    expect(s.count).toBe(2);
    // overlaps: inside, straddling start, straddling end, covering
    expect(s.insert(0x11000, K4, 0, 1)).toBe(false);
    expect(s.insert(0xf000, 0x2000, 0, 1)).toBe(false);
    expect(s.insert(0x13000, 0x2000, 0, 1)).toBe(false);
    expect(s.insert(0x8000, 0x20000, 0, 1)).toBe(false);
    expect(s.count).toBe(2);
    // adjacent is fine
    expect(s.insert(0x14000, K4, 0x500000, 9)).toBe(true);
    expect(s.insert(0xf000, K4, 0x600000, 10)).toBe(true);
    expect(rows(s)).toEqual([
      [0xf000, K4, 0x600000, 10],
      [0x10000, 0x4000, 0x200000, 7],
      [0x14000, K4, 0x500000, 9],
      [0x20000, K4, 0x300000, 8],
    ]);
    expect(s.find(0x12345)).toEqual({ iova: 0x10000, size: 0x4000, hostOffset: 0x200000, epoch: 7 });
    expect(s.find(0x13fff)?.iova).toBe(0x10000);
    expect(s.find(0x15000)).toBeUndefined();
    expect(s.find(0)).toBeUndefined();
    expect(s.find(0x20fff)?.epoch).toBe(8);
    s.checkInvariants();
  });

  it('validates arguments', () => {
    const s = new MappingStore();
    expect(() => s.insert(1, K4, 0, 0)).toThrow(/iova 1/);
    expect(() => s.insert(0, 100, 0, 0)).toThrow(/size 100/);
    expect(() => s.insert(0, K4, 5, 0)).toThrow(/hostOffset 5/);
    expect(() => s.insert(0, 0, 0, 0)).toThrow(RangeError);
    expect(() => s.insert(0, K4, 0, -1)).toThrow(/epoch -1/);
    expect(() => s.insert(0, K4, 0, 2 ** 32)).toThrow(RangeError);
    expect(() => s.insert(-K4, K4, 0, 0)).toThrow(RangeError);
    expect(() => s.intersects(-1, 1)).toThrow(RangeError);
    expect(() => new MappingStore(0)).toThrow(RangeError);
    expect(() => new MappingStore(4096, { leafCapacity: 2 })).toThrow(RangeError);
    expect(s.count).toBe(0);
  });

  it('intersects and forEachIntersecting use byte ranges (unaligned queries allowed)', () => {
    const s = new MappingStore();
    s.insert(0x10000, 0x2000, 0, 1);
    s.insert(0x14000, 0x1000, 0, 2);
    expect(s.intersects(0, 0x10000)).toBe(false);
    expect(s.intersects(0, 0x10001)).toBe(true);
    expect(s.intersects(0x11fff, 1)).toBe(true);
    expect(s.intersects(0x12000, 0x2000)).toBe(false);
    expect(s.intersects(0x12000, 0x2001)).toBe(true);
    expect(s.intersects(0x15000, 0x100000)).toBe(false);
    expect(s.intersects(0x10000, 0)).toBe(false);
    expect(intersecting(s, 0x11000, 0x4000).map((r) => r[3])).toEqual([1, 2]);
    expect(intersecting(s, 0x12000, 0x2000)).toEqual([]);
    expect(intersecting(s, 0, 2 ** 40).length).toBe(2);
  });

  it('visitors can stop early by returning false', () => {
    const s = new MappingStore();
    for (let i = 0; i < 10; i++) s.insert(i * K4, K4, 0, i);
    const seen: number[] = [];
    s.forEach((_a, _b, _c, e) => {
      seen.push(e);
      return e < 3;
    });
    expect(seen).toEqual([0, 1, 2, 3]);
    const seen2: number[] = [];
    s.forEachIntersecting(2 * K4, 5 * K4, (_a, _b, _c, e) => {
      seen2.push(e);
      return e !== 4 ? undefined : false;
    });
    expect(seen2).toEqual([2, 3, 4]);
  });

  it('removeContained removes only fully contained mappings', () => {
    const s = new MappingStore();
    s.insert(0, 0x4000, 0, 0);
    s.insert(0x4000, K4, 0, 1);
    s.insert(0x5000, K4, 0, 2);
    s.insert(0x6000, 0x4000, 0, 3);
    // [0x2000, 0x8000): contains 1 and 2 only
    expect(s.removeContained(0x2000, 0x6000)).toEqual({ count: 2, bytes: 0x2000 });
    expect(rows(s).map((r) => r[3])).toEqual([0, 3]);
    // partial overlap only: nothing
    expect(s.removeContained(0x7000, 0x1000)).toEqual({ count: 0, bytes: 0 });
    expect(s.removeContained(0x6000, 0x3fff)).toEqual({ count: 0, bytes: 0 });
    expect(s.removeContained(0x6000, 0)).toEqual({ count: 0, bytes: 0 });
    // unaligned range still containing [0x6000, 0xa000)
    expect(s.removeContained(0x5fff, 0x4002)).toEqual({ count: 1, bytes: 0x4000 });
    expect(s.removeContained(0, 2 ** 50)).toEqual({ count: 1, bytes: 0x4000 });
    expect(s.count).toBe(0);
    expect(s.bytesAllocated()).toBe(0);
    s.checkInvariants();
  });

  it('clear empties the store', () => {
    const s = new MappingStore();
    for (let i = 0; i < 5000; i++) s.insert(i * K4, K4, i * K4, 0);
    expect(s.count).toBe(5000);
    s.clear();
    expect(s.count).toBe(0);
    expect(s.bytesAllocated()).toBe(0);
    expect(rows(s)).toEqual([]);
    expect(s.insert(0, K4, 0, 0)).toBe(true);
  });
});

describe('MappingStore large values', () => {
  it('is exact for byte values near 2^40 and 2^50', () => {
    const s = new MappingStore();
    const a = 2 ** 40 - 2 * K4;
    const b = 2 ** 50 - K4;
    const big = 2 ** 52 - M2;
    expect(s.insert(a, 4 * K4, 2 ** 40 + K4, 1)).toBe(true); // straddles 2^40
    expect(s.insert(b, 2 * K4, 2 ** 51, 2)).toBe(true); // straddles 2^50
    expect(s.insert(big, M2, 2 ** 52 - K4, 3)).toBe(true);
    expect(s.insert(2 ** 40, K4, 0, 9)).toBe(false);
    expect(s.find(2 ** 40 + 123)).toEqual({ iova: a, size: 4 * K4, hostOffset: 2 ** 40 + K4, epoch: 1 });
    expect(s.find(2 ** 50)).toEqual({ iova: b, size: 2 * K4, hostOffset: 2 ** 51, epoch: 2 });
    expect(s.find(2 ** 52 - 1)?.iova).toBe(big);
    expect(s.find(2 ** 50 + K4)).toBeUndefined();
    expect(s.intersects(2 ** 50 + K4, K4)).toBe(false);
    expect(s.intersects(2 ** 50 + K4 - 1, 1)).toBe(true);
    expect(rows(s)).toEqual([
      [a, 4 * K4, 2 ** 40 + K4, 1],
      [b, 2 * K4, 2 ** 51, 2],
      [big, M2, 2 ** 52 - K4, 3],
    ]);
    expect(s.removeContained(2 ** 50 - K4, 2 * K4)).toEqual({ count: 1, bytes: 2 * K4 });
    expect(s.removeContained(2 ** 40 - 2 * K4, 4 * K4 - 1)).toEqual({ count: 0, bytes: 0 });
    expect(s.removeContained(2 ** 40 - 2 * K4, 4 * K4)).toEqual({ count: 1, bytes: 4 * K4 });
    expect(s.count).toBe(1);
  });

  it('fills 2 MiB of 4 KiB pages around 2^50 and enumerates a sub-range', () => {
    const s = new MappingStore();
    const base = 2 ** 50 - M2 / 2;
    for (let i = 0; i < 512; i++) expect(s.insert(base + i * K4, K4, i * K4, i)).toBe(true);
    const got = intersecting(s, 2 ** 50 - K4, 2 * K4);
    expect(got).toEqual([
      [2 ** 50 - K4, K4, 255 * K4, 255],
      [2 ** 50, K4, 256 * K4, 256],
    ]);
  });
});

describe('MappingStore structure (splits, merges, orders)', () => {
  for (const leafCapacity of [4, 8, 16, 512]) {
    it(`ascending, descending and interleaved fills then removals (leafCapacity ${leafCapacity})`, () => {
      const n = 3000;
      for (const order of ['asc', 'desc', 'interleaved'] as const) {
        const s = new MappingStore(K4, { leafCapacity });
        const idx = (i: number): number =>
          order === 'asc' ? i : order === 'desc' ? n - 1 - i : i % 2 === 0 ? i / 2 : n - 1 - (i - 1) / 2;
        for (let i = 0; i < n; i++) {
          const p = idx(i);
          expect(s.insert(p * 2 * K4, K4, p * K4, p)).toBe(true);
        }
        s.checkInvariants();
        expect(s.count).toBe(n);
        let k = 0;
        s.forEach((iova, size, host, epoch) => {
          expect([iova, size, host, epoch]).toEqual([k * 2 * K4, K4, k * K4, k]);
          k++;
        });
        expect(k).toBe(n);
        // remove every third, then everything else in descending chunks
        for (let p = 0; p < n; p += 3) expect(s.removeContained(p * 2 * K4, K4).count).toBe(1);
        s.checkInvariants();
        expect(s.count).toBe(n - Math.ceil(n / 3));
        for (let hi = n; hi > 0; hi -= 97) {
          const lo = Math.max(0, hi - 97);
          s.removeContained(lo * 2 * K4, (hi - lo) * 2 * K4);
          s.checkInvariants();
        }
        expect(s.count).toBe(0);
        expect(s.bytesAllocated()).toBe(0);
      }
    });
  }

  it('fills leaves completely for ascending inserts (28 bytes per mapping)', () => {
    const s = new MappingStore();
    const n = 512 * 64;
    for (let i = 0; i < n; i++) s.insert(i * K4, K4, i * K4, 0);
    expect(s.bytesAllocated() / n).toBeLessThanOrEqual(28.5);
  });

  it('stays within ~32 bytes per mapping for random insertion order', () => {
    const s = new MappingStore();
    const n = 100_000;
    // deterministic permutation via a multiplicative step coprime with n
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const p = (i * 7919) % n;
      if (s.insert(p * K4, K4, 0, 0)) ok++;
    }
    expect(ok).toBe(n);
    s.checkInvariants();
    expect(s.bytesAllocated() / n).toBeLessThanOrEqual(34);
  });

  it('frees and shrinks storage as mappings are removed', () => {
    const s = new MappingStore();
    const n = 50_000;
    for (let i = 0; i < n; i++) s.insert(i * K4, K4, 0, 0);
    const full = s.bytesAllocated();
    // remove 15 of every 16 pages
    for (let i = 0; i < n; i++) if (i % 16 !== 0) s.removeContained(i * K4, K4);
    s.checkInvariants();
    expect(s.count).toBe(n / 16);
    expect(s.bytesAllocated()).toBeLessThan(full / 4);
    expect(s.bytesAllocated() / s.count).toBeLessThanOrEqual(64);
  });

  it('forEachIntersecting over 2 MiB in a 4M-page store visits exactly 512 mappings', () => {
    const s = new MappingStore();
    const n = 1 << 20; // 4 GiB of 4 KiB mappings keeps the test fast
    for (let i = 0; i < n; i++) s.insert(i * K4, K4, i * K4, 0);
    let visited = 0;
    const t0 = performance.now();
    for (let r = 0; r < 100; r++) {
      s.forEachIntersecting(((r * 7919) % 2000) * M2, M2, () => {
        visited++;
      });
    }
    expect(visited).toBe(100 * 512);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
