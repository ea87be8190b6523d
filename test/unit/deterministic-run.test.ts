import { describe, expect, it } from 'vitest';
import { exploreConfig, runCase, type ExploreCase } from '../../src/explore/explore-case.js';

const storm = (seed: number, strategy: 'random' | 'pct' = 'random'): ExploreCase => ({
  config: exploreConfig({ workload: 'storm', seed, conversions: 20 }),
  strategy, depth: 2, expectedSteps: 500, scheduleSeed: seed,
});

describe('deterministic runtime', () => {
  it('is deterministic: the same case gives the same trace hash and steps', () => {
    const a = runCase(storm(7));
    const b = runCase(storm(7));
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.steps).toBe(b.steps);
    expect(a.outcome).toBe('completed');
  });

  it('different schedule seeds give different interleavings', () => {
    const hashes = new Set([1, 2, 3, 4, 5].map((s) => runCase({ ...storm(7), scheduleSeed: s }).traceHash));
    expect(hashes.size).toBeGreaterThan(1);
  });

  it('keeps every sender->receiver channel FIFO, whatever the strategy', () => {
    for (const strategy of ['random', 'pct'] as const) {
      const r = runCase(storm(3, strategy), { recordTrace: true });
      const lastSent = new Map<string, number>();
      for (const d of r.trace) {
        const key = `${d.from}->${d.to}`;
        expect(d.sentStep).toBeGreaterThanOrEqual(lastSent.get(key) ?? -1);
        lastSent.set(key, d.sentStep);
      }
    }
  });

  it('replaying recorded deviations reproduces the run exactly', () => {
    const original = runCase(storm(11), { recordChoices: true });
    const replay = runCase({ ...storm(11), strategy: 'replay', deviations: [...original.deviations.entries()] });
    expect(replay.traceHash).toBe(original.traceHash);
  });
});
