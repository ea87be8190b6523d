/** Progress of a phase of unknown length (shrinking): quiet for a second on a terminal, a line every 10 s elsewhere. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProgressLine } from '../../src/cli/progress.js';
import { decodeToken } from '../../src/explore/explore-case.js';
import { describeShrinkProgress, shrinkCase, type ShrinkProgress } from '../../src/explore/shrink.js';
import { packageRoot } from '../../src/workers/worker-url.js';

function fakeProgress(tty: boolean): { progress: ProgressLine; out: string[]; at: (ms: number) => void } {
  let now = 0;
  const out: string[] = [];
  const progress = new ProgressLine(0, { tty, label: 'x', write: (text) => out.push(text), now: () => now });
  return { progress, out, at: (ms) => (now = ms) };
}

describe('ProgressLine.status', () => {
  it('on a terminal: nothing in the first second, then redrawn in place with the time elapsed; cleared at the end', () => {
    const { progress, out, at } = fakeProgress(true);
    at(500);
    progress.status('attempt 3');
    expect(out).toEqual([]);
    at(1500);
    progress.status('attempt 9');
    at(1550);
    progress.status('attempt 10');
    at(2600);
    progress.status('attempt 20');
    progress.clear();
    expect(out).toEqual(['\rx attempt 9, 2s elapsed \x1b[K', '\rx attempt 20, 3s elapsed \x1b[K', '\r\x1b[K']);
  });

  it('elsewhere: one plain line every 10 s, and nothing to clear', () => {
    const { progress, out, at } = fakeProgress(false);
    for (let ms = 0; ms <= 25_000; ms += 1000) {
      at(ms);
      progress.status(`attempt ${ms / 1000}`);
    }
    progress.clear();
    expect(out).toEqual(['progress: x attempt 10, 10s elapsed\n', 'progress: x attempt 20, 20s elapsed\n']);
  });

  it('a short phase on a terminal draws nothing and clears nothing', () => {
    const { progress, out } = fakeProgress(true);
    progress.status('attempt 1');
    progress.clear();
    expect(out).toEqual([]);
  });
});

describe('shrink progress', () => {
  it('reports every attempt with what is known, attempts counting up to the total', () => {
    const token = readFileSync(join(packageRoot(), 'test', 'explore', 'fixtures', 'register-race-shrunk.token'), 'utf8').trim();
    const c = decodeToken(token);
    const seen: ShrinkProgress[] = [];
    const result = shrinkCase(c, 8, (p) => seen.push(p));
    expect(seen.map((p) => p.attempts)).toEqual(Array.from({ length: result.attempts }, (_, i) => i + 1));
    expect(seen.every((p) => p.maxAttempts === 8 && p.vcpus >= 1 && p.conversions >= 1)).toBe(true);
    const text = describeShrinkProgress(seen.at(-1)!, { conversions: 9, vcpus: 2, containers: 3 });
    expect(text).toMatch(/^shrinking \([a-z -]+\): attempt \d+ of at most 8; conversions 9 -> \d+, vCPUs 2 -> 1, containers 3 -> 1(, fails at delivery \d+)?$/);
  });
});
