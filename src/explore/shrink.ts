/**
 * Automatic shrinking of a failing case: fewer workload conversions, a
 * smaller machine (fewer vCPUs, containers and VFIO sections, no faults,
 * no hot-plug), fewer and smaller deviations from the default schedule,
 * while the same invariant still fails first.
 */
import type { DeterministicResult } from '../runtime/deterministic/deterministic-run.js';
import { hotplugsDevices } from '../actors/run-config.js';
import { runCase, type ExploreCase } from './explore-case.js';
import { withoutFaults, withoutHotplug, withoutLastContainer, withoutLastVcpu, withoutSection } from './machine.js';
import { firstFailure } from './failure.js';

export interface ShrinkResult {
  readonly original: ExploreCase;
  readonly shrunk: ExploreCase;
  /** The shrunk case's run, with its trace recorded. */
  readonly result: DeterministicResult;
  /** The invariant, or the fatal QEMU outcome, that fails first. */
  readonly invariant: string;
  readonly attempts: number;
}

/** What shrinking knows so far, for a progress line (see {@link shrinkCase}). */
export interface ShrinkProgress {
  /** The reduction being tried. */
  readonly phase: string;
  /** Re-runs so far, and the most there will be. */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** The smallest failing case so far. */
  readonly conversions: number;
  readonly vcpus: number;
  readonly containers: number;
  /** Deliveries up to its failure, once a phase has measured it. */
  readonly failingAt: number | undefined;
}

/** One line of what {@link ShrinkProgress} says, without the time (the progress line adds it). */
export function describeShrinkProgress(p: ShrinkProgress, original: { conversions: number; vcpus: number; containers: number }): string {
  const failing = p.failingAt === undefined ? '' : `, fails at delivery ${p.failingAt + 1}`;
  return `shrinking (${p.phase}): attempt ${p.attempts} of at most ${p.maxAttempts}; conversions ${original.conversions} -> ${p.conversions}, ` +
    `vCPUs ${original.vcpus} -> ${p.vcpus}, containers ${original.containers} -> ${p.containers}${failing}`;
}

/** Upper bound on re-runs, so shrinking a pathological case still ends. */
const MAX_ATTEMPTS = 1500;
/** Seeded schedules tried on a machine with one vCPU or container fewer. */
const MACHINE_SEEDS = 100;
/** Seeded schedules tried on the reduced case in search of a shorter failing one. */
const RESEARCH_SEEDS = 300;
/**
 * Seeded schedules tried on a vCPU stopped earlier when the recorded
 * schedule no longer fails on it: the deviations are step numbers, and
 * dropping actions shifts them (a race of a few steps, such as a lost
 * bitmap update, then needs a schedule of its own). Only while stopping
 * vCPUs early (a binary search, a few tries), not for single actions.
 */
const ACTION_SEEDS = 8;
/** Runs up to this many deliveries are short enough for {@link ACTION_SEEDS}. */
const SHORT_RUN_STEPS = 20_000;

/**
 * Shrink a failing case.
 * @param onProgress called at every re-run with what is known so far (a progress line).
 * @throws RangeError when the case does not fail.
 */
export function shrinkCase(failing: ExploreCase, maxAttempts = MAX_ATTEMPTS, onProgress?: (p: ShrinkProgress) => void): ShrinkResult {
  const first = runCase(failing, { recordChoices: true });
  const failure = firstFailure(first);
  const invariant = failure?.name;
  if (invariant === undefined) throw new RangeError('the case does not fail: nothing to shrink');
  let attempts = 0;
  let phase = 'fewer conversions';
  let failingAt: number | undefined = failure!.step;
  /** One more re-run: count it and say so. */
  const attempt = (): void => {
    attempts++;
    onProgress?.({ phase, attempts, maxAttempts, conversions: best.config.conversions, vcpus: best.config.vcpus,
      containers: best.config.containers.length, failingAt });
  };
  // A candidate that runs far longer than the failure it shrinks is not a shrink: cap its steps
  // (the default order can starve the vCPUs, e.g. hot-plug every few deliveries, and spin to MAX_STEPS).
  const stepCap = Math.max(100_000, 50 * first.steps);
  /** Where the last run that failed as wanted failed. */
  let lastFailingStep: number | undefined;
  const fails = (c: ExploreCase): boolean => {
    attempt();
    const found = firstFailure(runCase(c, { maxSteps: stepCap }));
    if (found?.name !== invariant) return false;
    lastFailingStep = found.step;
    return true;
  };
  // The schedule as deviations from the default order: replays the same run.
  let best: ExploreCase = {
    ...failing,
    strategy: 'replay',
    deviations: [...first.deviations.entries()],
  };

  const tryCase = (candidate: ExploreCase): boolean => {
    if (attempts >= maxAttempts || !fails(candidate)) return false;
    best = candidate;
    failingAt = lastFailingStep;
    return true;
  };

  // 1. Fewer conversions: halve while it fails, then step down.
  for (let target = Math.floor(best.config.conversions / 2); target >= 1 && attempts < maxAttempts; target = Math.floor(target / 2)) {
    if (!tryCase({ ...best, config: { ...best.config, conversions: target } })) break;
  }
  for (let target = best.config.conversions - 1; target >= 1 && attempts < maxAttempts; target--) {
    if (!tryCase({ ...best, config: { ...best.config, conversions: target } })) break;
  }
  phase = 'hot-plug sooner';
  // 1b. Hot-plug sooner (fewer deliveries before the device comes and goes).
  if (hotplugsDevices(best.config)) {
    for (let every = (best.config.hotplugEvery ?? 97) - 1; every >= 1 && attempts < maxAttempts; every--) {
      tryCase({ ...best, config: { ...best.config, hotplugEvery: every } });
    }
  }
  // 2. Fewer vCPUs and containers. The recorded deviations rarely fit a smaller machine (step
  //    numbers shift), so a smaller machine also gets a few seeded schedules of its own.
  //    A smaller machine is kept only if it does not make the failing run longer.
  const failsBy = (c: ExploreCase): number => {
    attempt();
    const found = firstFailure(runCase(c, { maxSteps: stepCap }));
    return found?.name === invariant ? found.step : Infinity;
  };
  phase = 'smaller machine';
  const tryMachine = (candidate: ExploreCase): boolean => {
    const limit = failsBy(best);
    failingAt = Number.isFinite(limit) ? limit : undefined;
    const by = failsBy(candidate);
    if (by <= limit) {
      best = candidate;
      failingAt = by;
      return true;
    }
    for (let seed = 1; seed <= MACHINE_SEEDS && attempts < maxAttempts; seed++) {
      const scheduled: ExploreCase = { ...candidate, strategy: 'random', scheduleSeed: seed, deviations: [] };
      const seededBy = failsBy(scheduled);
      if (seededBy > limit) continue;
      const recorded = runCase(scheduled, { maxSteps: stepCap, recordChoices: true });
      best = { ...candidate, strategy: 'replay', deviations: [...recorded.deviations.entries()] };
      failingAt = seededBy;
      return true;
    }
    return false;
  };
  while (best.config.vcpus > 1 && tryMachine({ ...best, config: withoutLastVcpu(best.config) }));
  while (best.config.containers.length > 1 && tryMachine({ ...best, config: withoutLastContainer(best.config) }));
  // 2b. A plainer machine: no faults, no hot-plug, fewer VFIO sections.
  if (best.config.faults !== undefined) tryMachine({ ...best, config: withoutFaults(best.config) });
  if (best.config.hotplug === true) tryMachine({ ...best, config: withoutHotplug(best.config) });
  for (let c = 0; c < best.config.containers.length && attempts < maxAttempts; c++) {
    for (let k = (best.config.layout?.vfio[c]?.length ?? 0) - 1; k >= 0 && attempts < maxAttempts; k--) {
      const smaller = withoutSection(best.config, c, k);
      if (smaller !== undefined) tryMachine({ ...best, config: smaller });
    }
  }
  // A smaller workload, with the recorded schedule or else one of a few seeded ones.
  // Only for short runs: on a long one (a 1 GiB guest filling a type1 table) every seed costs a
  // whole run, and the recorded schedule is what keeps it failing.
  const actionSeeds = first.steps <= SHORT_RUN_STEPS ? ACTION_SEEDS : 0;
  const tryWorkload = (candidate: ExploreCase): boolean => {
    if (tryCase(candidate)) return true;
    for (let seed = 1; seed <= actionSeeds && attempts < maxAttempts; seed++) {
      const scheduled: ExploreCase = { ...candidate, strategy: 'random', scheduleSeed: seed, deviations: [] };
      if (!fails(scheduled)) continue;
      const recorded = runCase(scheduled, { maxSteps: stepCap, recordChoices: true });
      best = { ...candidate, strategy: 'replay', deviations: [...recorded.deviations.entries()] };
      failingAt = lastFailingStep;
      return true;
    }
    return false;
  };
  // 3. Fewer workload operations: stop each vCPU early, then skip its actions, ddmin-style.
  phase = 'fewer workload actions';
  const firstRun = runCase(best);
  const vcpuStats = firstRun.actors.map((a, i) => (a.role === 'vcpu' ? firstRun.stats[i]!['actions'] ?? 0 : -1)).filter((n) => n >= 0);
  // The run stops at the violation, so capping each vCPU at what it performed changes nothing,
  // and keeps later skipping from letting the workload run on past its old end.
  best = { ...best, config: { ...best.config, actionLimit: vcpuStats } };
  vcpuStats.forEach((performed, vcpu) => {
    // The last actions first: stop the vCPU as early as still fails.
    const limits = (limit: number): number[] => {
      const all = [...(best.config.actionLimit ?? vcpuStats)];
      all[vcpu] = limit;
      return all;
    };
    let limit = performed;
    for (let lo = 0, hi = performed; lo < hi && attempts < maxAttempts;) {
      const mid = Math.floor((lo + hi) / 2);
      if (tryWorkload({ ...best, config: { ...best.config, actionLimit: limits(mid) } })) {
        hi = mid;
        limit = mid;
      } else lo = mid + 1;
    }
    performed = limit;
    let kept = Array.from({ length: performed }, (_, i) => i);
    const skipping = (keep: readonly number[]): number[][] => {
      const all = best.config.skipActions?.map((s) => [...s]) ?? [];
      while (all.length < best.config.vcpus) all.push([]);
      const keepSet = new Set(keep);
      all[vcpu] = Array.from({ length: performed }, (_, i) => i).filter((i) => !keepSet.has(i));
      return all;
    };
    // Skipping single actions of a long run (hundreds of them, each try a whole run) costs more than
    // it can save: long runs keep whole chunks only.
    const smallest = first.steps <= SHORT_RUN_STEPS ? 1 : Math.max(1, Math.floor(kept.length / 8));
    for (let chunk = Math.max(1, Math.floor(kept.length / 2)); chunk >= smallest && attempts < maxAttempts; chunk = Math.floor(chunk / 2)) {
      for (let at = 0; at < kept.length && attempts < maxAttempts;) {
        const without = [...kept.slice(0, at), ...kept.slice(at + chunk)];
        if (tryCase({ ...best, config: { ...best.config, skipActions: skipping(without) } })) kept = without;
        else at += chunk;
      }
    }
  });
  // 4. A shorter schedule for the reduced workload: the reductions above shift step numbers, so
  //    the recorded deviations may now describe a longer path than needed. Search a few seeded
  //    schedules of the reduced case and keep the one that fails soonest.
  const failingStep = (c: ExploreCase): number => {
    attempt();
    const found = firstFailure(runCase(c, { maxSteps: stepCap, recordChoices: true }));
    return found?.name === invariant ? found.step : Infinity;
  };
  phase = 'shorter schedule';
  let bestStep = failingStep(best);
  failingAt = bestStep;
  for (let seed = 1; seed <= RESEARCH_SEEDS && attempts < maxAttempts; seed++) {
    const candidate: ExploreCase = { ...best, strategy: 'random', scheduleSeed: seed, deviations: [] };
    const at = failingStep(candidate);
    if (at < bestStep) {
      const recorded = runCase(candidate, { maxSteps: stepCap, recordChoices: true });
      best = { ...best, strategy: 'replay', deviations: [...recorded.deviations.entries()] };
      bestStep = at;
      failingAt = at;
    }
  }
  phase = 'fewer deviations';
  // 5. Fewer deviations (ddmin-style: drop chunks, halving the chunk size).
  let deviations = [...(best.deviations ?? [])];
  for (let chunk = Math.max(1, Math.floor(deviations.length / 2)); chunk >= 1 && attempts < maxAttempts; chunk = Math.floor(chunk / 2)) {
    for (let at = 0; at < deviations.length && attempts < maxAttempts;) {
      const without = [...deviations.slice(0, at), ...deviations.slice(at + chunk)];
      if (tryCase({ ...best, deviations: without }) && failingStep(best) <= bestStep) deviations = without;
      else at += chunk;
    }
  }
  // 6. Shorter deviations: the nearest alternative to the default.
  phase = 'nearer deviations';
  for (let i = 0; i < deviations.length && attempts < maxAttempts; i++) {
    const [step, choice] = deviations[i]!;
    if (choice <= 1) continue;
    const lowered = deviations.map((d, j): [number, number] => (j === i ? [step, 1] : [d[0], d[1]]));
    if (tryCase({ ...best, deviations: lowered })) deviations = lowered;
  }
  const result = runCase(best, { recordTrace: true });
  return { original: failing, shrunk: best, result, invariant, attempts };
}
