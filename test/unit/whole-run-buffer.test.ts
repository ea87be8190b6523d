/** The trace buffer keeps the whole run: recent events in full, an even sample of older ones, within its limit. */
import { describe, expect, it } from 'vitest';
import { WholeRunBuffer } from '../../src/workers/whole-run-buffer.js';

describe('WholeRunBuffer', () => {
  it('keeps everything under the limit', () => {
    const b = new WholeRunBuffer<{ ts: number }>(100);
    for (let t = 0; t < 50; t++) b.push([{ ts: t }]);
    expect(b.events().map((e) => e.ts)).toEqual(Array.from({ length: 50 }, (_, t) => t));
    expect(b.dropped).toBe(0);
    expect(b.coverage().fullFromUs).toBeUndefined();
  });

  it('past the limit: at most limit events, the newest half in full, the rest spread over the whole run, in order', () => {
    const limit = 1000;
    const b = new WholeRunBuffer<{ ts: number; kind: string }>(limit);
    const n = 1_000_000;
    // Strictly alternating kinds: decimation must not keep only one of them.
    for (let t = 0; t < n; t++) b.push(t % 2 === 0 ? [{ ts: t, kind: 'send' }] : [{ ts: t, kind: 'slice' }, { ts: t, kind: 'flow' }]);
    const events = b.events();
    expect(events.length).toBeLessThanOrEqual(limit);
    expect(events.length).toBeGreaterThan(limit / 2);
    const ts = events.map((e) => e.ts);
    expect(ts).toEqual([...ts].sort((x, y) => x - y));
    const coverage = b.coverage();
    expect(coverage.stride).toBeGreaterThan(1);
    // The recent part is complete from fullFromUs on.
    const recent = ts.filter((t) => t >= coverage.fullFromUs!);
    expect(new Set(recent).size).toBe(n - coverage.fullFromUs!);
    // The older sample spans the run evenly: something in every tenth of it.
    for (let decile = 0; decile < 10; decile++) {
      expect(ts.some((t) => t >= (decile * n) / 10 && t < ((decile + 1) * n) / 10), `decile ${decile}`).toBe(true);
    }
    const older = events.filter((e) => e.ts < coverage.fullFromUs!);
    expect(older.some((e) => e.kind === 'send')).toBe(true);
    expect(older.some((e) => e.kind === 'slice')).toBe(true);
    expect(b.dropped + events.length).toBe(n / 2 + n);
  });
});
