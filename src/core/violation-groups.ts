/** Violations grouped by invariant: how many of each, and the first one found. */
import type { Violation } from './invariants.js';

/** One invariant's violations. */
export interface ViolationGroup {
  readonly invariant: string;
  readonly count: number;
  /** The message of the first violation of this invariant. */
  readonly first: string;
}

/** Group `violations` by invariant, in the order each invariant was first found. */
export function groupViolations(violations: readonly Violation[]): ViolationGroup[] {
  const groups = new Map<string, { count: number; first: string }>();
  for (const v of violations) {
    const g = groups.get(v.invariant);
    if (g === undefined) groups.set(v.invariant, { count: 1, first: v.message });
    else g.count++;
  }
  return [...groups].map(([invariant, g]) => ({ invariant, count: g.count, first: g.first }));
}
