/**
 * The bug zoo: every entry is found from a fixed seed by the same code the
 * `convsim explore` pool runs (`runIteration`, seeds 1, 2, ... in order, the
 * first failure reported as the CLI reports the lowest failing seed), with
 * an invariant the entry names, and shrinks to a short story.
 */
import { describe, expect, it } from 'vitest';
import { replayCase } from '../../src/cli/commands/replay.js';
import { shrinkReport } from '../../src/cli/commands/shrink.js';
import { shrinkCase } from '../../src/explore/shrink.js';
import { decodeToken } from '../../src/explore/explore-case.js';
import { runIteration, type IterationResult } from '../../src/explore/iteration-task.js';
import { MUTANTS } from '../../src/explore/mutants.js';

/** Story bound of issue 4. */
const STORY_BOUND = 30;
/** Entries the shrinker does not bring to 30 steps, with the bound they do meet: none at present. */
const KNOWN_LONGER: Record<string, number> = {};
/**
 * Entries shrunk with fewer re-runs than `convsim shrink`'s 1,500. type1-4k-exhaustion
 * replays a 1 GiB guest filling a 65,535-entry type1 table (about 0.1 s a run): its
 * shrink takes 630 runs, 323 of them through step 3 (fewer actions, where the shrinker
 * treats long runs differently), then 300 for step 4's seeded re-search of the reduced
 * case, which the other seven entries run in full. 330 covers steps 1-3 (its story is
 * within the bound after step 1 already: 8-9 steps from 6 re-runs on); the test then
 * asserts exactly what it asserts for the others (invariant kept, story <= 30 steps,
 * the shrunk token replays the same trace).
 */
const ATTEMPT_BUDGET: Record<string, number> = { 'type1-4k-exhaustion': 330 };

function firstFailure(mutant: string): IterationResult | undefined {
  for (let seed = 1; seed <= 200; seed++) {
    const r = runIteration({ workload: 'storm', strategy: 'random', depth: 2, expectedSteps: 2000, seed, mutant });
    if (r.found) return r;
  }
  return undefined;
}

describe('bug zoo: each entry found with fixed seeds (random schedules, seeds 1..200) and shrunk', () => {
  it('has the eight entries of issue 4', () => {
    expect(MUTANTS.map((m) => m.name).sort()).toEqual([
      'inplace-v6-order', 'iommufd-enoent-swallowed', 'no-lock-overlap', 'no-rollback-two-containers',
      'notify-before-bitmap', 'priority-inverted', 'register-race', 'type1-4k-exhaustion',
    ]);
  });

  for (const mutant of MUTANTS) {
    const bound = KNOWN_LONGER[mutant.name] ?? STORY_BOUND;
    const budget = ATTEMPT_BUDGET[mutant.name];
    const title = (bound === STORY_BOUND
      ? `${mutant.name}: found, expected invariant, shrunk story <= ${STORY_BOUND} steps`
      : `${mutant.name}: found, expected invariant, shrunk story <= ${bound} steps (KNOWN SHORTFALL: above the ${STORY_BOUND}-step goal)`) +
      (budget === undefined ? '' : ` within ${budget} re-runs`);
    it(title, () => {
      const found = firstFailure(mutant.name);
      expect(found, 'no failure within seeds 1..200').toBeDefined();
      expect(mutant.expected).toContain(found!.invariant);
      const original = decodeToken(found!.token!);
      const budget = ATTEMPT_BUDGET[mutant.name];
      const report = budget === undefined ? shrinkReport(original) : shrinkReport(original, shrinkCase(original, budget));
      expect(report.invariant).toBe(found!.invariant);
      expect(report.storySteps).toBeGreaterThan(0);
      expect(report.storySteps).toBeLessThanOrEqual(bound);
      // The story ends with the violation.
      expect(report.story.at(-1)).toMatch(new RegExp(`^=> ${report.invariant}: `));
      // The shrunk token reproduces the same failure and trace.
      const again = replayCase(decodeToken(report.replay));
      expect(again.invariant).toBe(report.invariant);
      expect(again.traceHash).toBe(report.traceHash);
      expect(again.story).toEqual(report.story);
    }, 180_000); // type1-4k-exhaustion shrinks a 1 GiB guest: tens of seconds on a loaded 2-core machine
  }
});
