/** Violations grouped by invariant: counts and the first message, in the order each was first found. */
import { describe, expect, it } from 'vitest';
import { groupViolations } from '../../src/core/violation-groups.js';

describe('groupViolations', () => {
  it('counts each invariant and keeps its first message', () => {
    const v = (invariant: 'stale-mapping' | 'disagreement', message: string) => ({ invariant, message });
    expect(groupViolations([v('disagreement', 'a'), v('stale-mapping', 'b'), v('disagreement', 'c'), v('disagreement', 'd')])).toEqual([
      { invariant: 'disagreement', count: 3, first: 'a' },
      { invariant: 'stale-mapping', count: 1, first: 'b' },
    ]);
    expect(groupViolations([])).toEqual([]);
  });
});
