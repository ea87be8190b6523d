/**
 * Scheduling strategies of the deterministic runtime: all nondeterminism of
 * a run comes through `choose`, seeded, so a seed (or a list of choices)
 * replays a schedule exactly.
 */
import { Prng } from '../../core/prng.js';
import type { Footprint } from './footprint.js';

/**
 * A step the scheduler may pick: the pending delivery on the channel from
 * `from` to `to`; or, with a `kind`, an action of its own by actor `to`
 * (`device`: the device behind container `to` makes a DMA access;
 * `hotplug`: the host unplugs and plugs again container `to`'s devices).
 */
export interface Candidate {
  readonly from: number;
  readonly to: number;
  readonly kind?: 'device' | 'hotplug';
  /**
   * The QEMU thread the step runs on behalf of (see `ActorContext.bind`):
   * a vCPU's thread (its actor's index), the main loop's, or, negative, a
   * device's, which never waits to continue. A systematic search counts
   * preemptions by it; undefined: the receiving actor is the thread.
   */
  readonly thread?: number;
}

export interface Strategy {
  /**
   * Index into `candidates` (non-empty, in canonical order: deliveries by
   * channel, then devices, then hot-plugs) of the step to make at `step`;
   * or -1 to abandon the run here (a systematic search that has already
   * covered every continuation: the run ends as `pruned`).
   */
  choose(candidates: readonly Candidate[], step: number): number;
  /**
   * With `footprints` on, after every step: what the step touched, and a
   * name of the state it left (a 53-bit hash, equal for prefixes that differ
   * only in the order of independent steps, so equal names mean equal states).
   */
  observe?(footprint: Footprint, state: number | string): void;
}

/** Sampling strategies (one seeded schedule per iteration). `dfs` (systematic) is in explore/dfs. */
export type StrategyName = 'random' | 'pct';
export const STRATEGIES: readonly StrategyName[] = ['random', 'pct'];

/** Uniform choice among pending deliveries. */
export class RandomStrategy implements Strategy {
  readonly #prng: Prng;

  constructor(seed: number) {
    this.#prng = new Prng(seed ^ 0x5eed);
  }

  choose(candidates: readonly Candidate[]): number {
    return this.#prng.int(candidates.length);
  }
}

/**
 * Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010) over
 * actors as the "threads": every actor gets a random distinct priority; the
 * pending delivery to the highest-priority receiver goes first; at d - 1
 * random change points (steps in [0, k)) the receiver just chosen drops to
 * a priority below every initial one. A bug of depth d is found with
 * probability at least 1 / (n k^(d-1)).
 */
export class PctStrategy implements Strategy {
  readonly #priority: number[];
  readonly #changePoints: Map<number, number>;

  constructor(seed: number, actors: number, depth: number, expectedSteps: number) {
    const prng = new Prng(seed ^ 0x9c7);
    // Initial priorities depth .. depth + actors - 1, shuffled; change points lower to 1 .. depth - 1.
    const priorities = Array.from({ length: actors }, (_, i) => depth + i);
    for (let i = priorities.length - 1; i > 0; i--) {
      const j = prng.int(i + 1);
      [priorities[i], priorities[j]] = [priorities[j]!, priorities[i]!];
    }
    this.#priority = priorities;
    this.#changePoints = new Map();
    for (let i = 1; i < depth; i++) this.#changePoints.set(prng.int(Math.max(1, expectedSteps)), depth - i);
  }

  choose(candidates: readonly Candidate[], step: number): number {
    let best = 0;
    for (let i = 1; i < candidates.length; i++) {
      if (this.#priority[candidates[i]!.to]! > this.#priority[candidates[best]!.to]!) best = i;
    }
    const lowered = this.#changePoints.get(step);
    if (lowered !== undefined) this.#priority[candidates[best]!.to] = lowered;
    return best;
  }
}

/** The PCT guarantee for n actors, k steps, depth d: 1 / (n k^(d-1)). */
export function pctBound(actors: number, steps: number, depth: number): number {
  return 1 / (actors * Math.max(1, steps) ** (depth - 1));
}

/**
 * Replays a schedule given as deviations from the default order (always
 * the first candidate): at step s, take candidate `choice mod count`. The
 * shrinker removes and lowers deviations.
 */
export class DeviationStrategy implements Strategy {
  readonly #deviations: ReadonlyMap<number, number>;

  constructor(deviations: ReadonlyMap<number, number>) {
    this.#deviations = deviations;
  }

  choose(candidates: readonly Candidate[], step: number): number {
    const choice = this.#deviations.get(step);
    return choice === undefined ? 0 : choice % candidates.length;
  }
}
