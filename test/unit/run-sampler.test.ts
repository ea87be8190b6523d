/** The report's sampler and its bounded pieces: bitmap buckets, the decimated series, the KVM conversion log. */
import { describe, expect, it } from 'vitest';
import { ConversionLog } from '../../src/actors/kvm-exit/conversion-log.js';
import { SharedBitmap } from '../../src/core/shared-bitmap.js';
import { DecimatedSeries } from '../../src/runtime/decimated-series.js';
import { bucketFractions, RunSampler } from '../../src/runtime/run-sampler.js';
import type { ActorGauges } from '../../src/workers/actor-worker.js';

describe('bucketFractions', () => {
  it('downsamples the bitmap to the shared fraction of each bucket', () => {
    const bitmap = new SharedBitmap(1000);
    bitmap.setRange(0, 250);
    bitmap.setRange(900, 50);
    const { fractions, total } = bucketFractions(bitmap, 4);
    expect(fractions).toEqual([1, 0, 0, 0.2]);
    expect(total).toBe(300);
  });

  it('never makes more buckets than bits, and covers every bit once', () => {
    const bitmap = new SharedBitmap(5);
    bitmap.setRange(0, 5);
    expect(bucketFractions(bitmap, 128)).toEqual({ fractions: [1, 1, 1, 1, 1], total: 5 });
    const odd = new SharedBitmap(1001);
    odd.setRange(0, 1001);
    expect(bucketFractions(odd, 7).total).toBe(1001);
  });
  it('agrees with SharedBitmap.countSet on every bucket (odd sizes, random bits)', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const size of [1, 31, 33, 1000, 4097, 70_001]) {
      const bitmap = new SharedBitmap(size);
      for (let k = 0; k < 20; k++) {
        const start = Math.floor(random() * size);
        bitmap.setRange(start, Math.floor(random() * (size - start)));
      }
      for (const buckets of [1, 7, 128]) {
        const { fractions, total } = bucketFractions(bitmap, buckets);
        const b = Math.min(buckets, size);
        fractions.forEach((f, i) => {
          const start = Math.floor((i * size) / b);
          const count = Math.floor(((i + 1) * size) / b) - start;
          expect(f).toBeCloseTo(count === 0 ? 0 : bitmap.countSet(start, count) / count, 3);
        });
        expect(total).toBe(bitmap.countSet());
      }
    }
  });
});

describe('DecimatedSeries', () => {
  it('stays within its capacity and keeps an even spread', () => {
    const series = new DecimatedSeries<number>(16);
    for (let i = 0; i < 1000; i++) series.push(i);
    const kept = series.toArray();
    expect(kept.length).toBeLessThan(16);
    expect(kept[0]).toBe(0);
    const gaps = new Set(kept.slice(1).map((v, i) => v - kept[i]!));
    expect([...gaps]).toEqual([series.stride]);
    expect(series.offered).toBe(1000);
  });
});

describe('ConversionLog', () => {
  it('returns conversions after a sequence number and counts those already overwritten', () => {
    const log = new ConversionLog(4);
    for (let i = 1; i <= 3; i++) log.record(i * 10, i * 4096, 4096, i % 2 === 0, true);
    const first = log.since(0);
    expect(first.marks.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(first.marks[1]).toEqual({ seq: 2, t: 20, gpa: 8192, size: 4096, toPrivate: true, ok: true });
    expect(first).toMatchObject({ last: 3, lost: 0 });
    for (let i = 4; i <= 9; i++) log.record(i * 10, 0, 2 << 20, false, i !== 9);
    const next = log.since(first.last);
    expect(next.marks.map((m) => m.seq)).toEqual([6, 7, 8, 9]);
    expect(next.lost).toBe(2);
    expect(next.marks.at(-1)!.ok).toBe(false);
    expect(log.since(9)).toEqual({ marks: [], last: 9, lost: 0 });
  });
});

describe('RunSampler', () => {
  it('samples the bitmap, the gauges and the conversions, on one time axis', async () => {
    const bitmap = new SharedBitmap(256);
    const log = new ConversionLog();
    let conversions = 0;
    const sampler = new RunSampler({
      bitmap,
      gauges: () => Promise.resolve<ActorGauges[]>([
        { gauges: { 'live mappings c0': bitmap.countSet() }, violations: 0, conversions: 0, busyMs: 0 },
        { gauges: {}, violations: 1, conversions, busyMs: 2 },
      ]),
      recentConversions: (after) => Promise.resolve(log.since(after)),
    }, { intervalMs: 10, buckets: 8 });
    sampler.start();
    await new Promise((resolve) => setTimeout(resolve, 35));
    bitmap.setRange(0, 64);
    conversions = 1;
    log.record(Number(process.hrtime.bigint()), 0, 64 * 4096, false, true);
    await new Promise((resolve) => setTimeout(resolve, 35));
    const series = await sampler.stop();
    expect(series.samples.length).toBeGreaterThanOrEqual(3);
    const last = series.samples.at(-1)!;
    expect(last.shared).toEqual([1, 1, 0, 0, 0, 0, 0, 0]);
    expect(last).toMatchObject({ sharedPages: 64, conversions: 1, violations: 1, gauges: { 'live mappings c0': 64 } });
    expect(series.samples[0]!.sharedPages).toBe(0);
    const times = series.samples.map((s) => s.t);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(series.conversions).toHaveLength(1);
    expect(series.conversions[0]!.t).toBeGreaterThan(series.samples[0]!.t);
    expect(series.conversions[0]!.t).toBeLessThanOrEqual(last.t);
    expect(series).toMatchObject({ buckets: 8, blocks: 256, conversionsSeen: 1, conversionsLost: 0 });
  });
});
