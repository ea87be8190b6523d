import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/core/latency-histogram.js';
import { propertyParams } from '../property/seed.js';

describe('LatencyHistogram', () => {
  it('is exact below 32 and within 1/32 above', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 46 }), (v) => {
      const top = LatencyHistogram.valueAt(LatencyHistogram.indexOf(v));
      expect(top).toBeGreaterThanOrEqual(v);
      if (v < 32) expect(top).toBe(v);
      else expect(top - v).toBeLessThanOrEqual(v / 32);
    }), propertyParams());
  });

  it('reports quantiles of a known distribution', () => {
    const h = new LatencyHistogram();
    for (let v = 1; v <= 1000; v++) h.record(v * 1000);
    const s = h.summary();
    expect(s.count).toBe(1000);
    expect(s.p50).toBeGreaterThanOrEqual(500_000);
    expect(s.p50).toBeLessThanOrEqual(500_000 * (1 + 1 / 32));
    expect(s.p99).toBeGreaterThanOrEqual(990_000);
    expect(s.max).toBe(1_000_000);
  });

  it('merges and round-trips through its sparse form', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    a.record(100);
    b.record(5_000_000);
    a.merge(LatencyHistogram.fromSparse(b.toSparse()));
    expect(a.count).toBe(2);
    expect(a.quantile(1)).toBe(5_000_000);
  });
});
