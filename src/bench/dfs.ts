/**
 * The systematic search, measured (issue "verified, not only sampled"):
 *
 * - the small machine (2 vCPUs, 3 conversions each, one type1 container,
 *   one hot-plug, one device access placed anywhere; every fix), preemption
 *   bound 2, within a time budget: plain bounded DFS, with sleep sets, and
 *   with sleep sets and the state cache (preemptions by QEMU thread), and
 *   the last with preemptions by actor, side by side, one after another on
 *   one thread each; executions, distinct traces, whether it completed;
 * - a tiny machine all three complete, for an exact reduction factor;
 * - every zoo entry on the small machine: executions (or schedules) to find
 *   it by DFS, random schedules and PCT depth 2 and 3, side by side.
 */
import type { RunConfig } from '../actors/run-config.js';
import { ALL_FIXES_PROTOCOL } from '../core/protocol-policy.js';
import { MiB } from '../core/units.js';
import { autoDmaEntryLimit } from '../actors/device-realize.js';
import { KVM_X86_MAX_MEMSLOTS } from '../core/vfio/dma-mapping-estimate.js';
import { actorCount, exploreConfig, MAX_STEPS } from '../explore/explore-case.js';
import { exploreDfs } from '../explore/dfs/explore-dfs.js';
import { firstFailure } from '../explore/failure.js';
import { MUTANTS } from '../explore/mutants.js';
import { runDeterministic } from '../runtime/deterministic/deterministic-run.js';
import { PctStrategy, RandomStrategy, type Strategy } from '../runtime/deterministic/strategy.js';
import type { PreemptionUnit, Reduction } from '../explore/dfs/bounded-dfs.js';

export interface DfsVariantRow {
  readonly variant: string;
  readonly executions: number;
  readonly distinctTraces: number;
  readonly complete: boolean;
  readonly seconds: number;
  readonly executionsPerSec: number;
}

export interface ZooRow {
  readonly mutant: string;
  /** Executions until DFS found it (null: not within the budget). */
  readonly dfs: number | null;
  readonly dfsInvariant: string | null;
  /** Schedules until the first failing one (null: none within the cap). */
  readonly random: number | null;
  readonly pct2: number | null;
  readonly pct3: number | null;
}

export interface DfsBenchResult {
  readonly machine: string;
  readonly preemptionBound: number;
  readonly budgetSeconds: number;
  readonly small: DfsVariantRow[];
  /**
   * Plain bounded DFS against each reduction on the small machine, side by
   * side: executions and seconds, plain / reduced (meaningful when both
   * completed, which `complete` says).
   */
  readonly smallReduction: {
    readonly complete: boolean;
    readonly sleepSets: { readonly executions: number; readonly seconds: number };
    readonly withCache: { readonly executions: number; readonly seconds: number };
  };
  readonly tiny: { readonly machine: string; readonly rows: DfsVariantRow[]; readonly reductionSleepSets: number; readonly reductionWithCache: number };
  readonly zoo: ZooRow[];
  readonly samplingCap: number;
}

/** The small machine of the issue, with every fix (or a zoo entry on top). */
export function smallMachine(options: { mutant?: string; workload?: 'storm' | 'adversarial'; conversions?: number; hotplugs?: number; deviceAccesses?: number } = {}): RunConfig {
  const guestMem = 16 * MiB;
  const config = exploreConfig({
    workload: options.workload ?? 'storm', seed: 1, conversions: options.conversions ?? 6, vary: false, protocol: ALL_FIXES_PROTOCOL,
    ...(options.mutant === undefined ? {} : { mutant: options.mutant }),
    machine: {
      vcpus: 2, guestMem,
      containers: [{ backend: 'type1', dmaEntryLimit: autoDmaEntryLimit({ guestMem, gpaBase: 0, blockSize: 4096, maxMemslots: KVM_X86_MAX_MEMSLOTS }), limitSource: 'auto' }],
    },
  });
  return { ...config, scheduledEvents: { hotplugs: options.hotplugs ?? 1, deviceAccesses: options.deviceAccesses ?? 1 } };
}

/**
 * Plain bounded DFS, sleep sets, sleep sets + state cache (preemptions by
 * QEMU thread, the default), and with `byActor` the default once more with
 * preemptions counted by receiving actor, side by side.
 */
function variants(config: RunConfig, bound: number, budgetMs: number, byActor: boolean): DfsVariantRow[] {
  const rows: DfsVariantRow[] = [];
  const runs: Array<[string, Reduction, boolean, PreemptionUnit]> = [
    ['plain bounded DFS', 'none', false, 'thread'], ['sleep sets', 'sleep-sets', false, 'thread'], ['sleep sets + state cache', 'sleep-sets', true, 'thread'],
  ];
  if (byActor) runs.push(['sleep sets + state cache, preemptions by actor', 'sleep-sets', true, 'actor']);
  for (const [variant, reduction, stateCache, preemptionUnit] of runs) {
    const started = performance.now();
    const r = exploreDfs({ config, reduction, stateCache, preemptionBound: bound, preemptionUnit, shouldStop: () => performance.now() - started > budgetMs });
    const seconds = (performance.now() - started) / 1000;
    rows.push({ variant, executions: r.stats.executions, distinctTraces: r.distinctTraces, complete: r.stats.complete, seconds, executionsPerSec: r.stats.executions / seconds });
  }
  return rows;
}

/** How many times fewer executions and seconds `reduced` took than `plain`. */
function ratio(plain: DfsVariantRow, reduced: DfsVariantRow): { executions: number; seconds: number } {
  return { executions: plain.executions / Math.max(1, reduced.executions), seconds: plain.seconds / Math.max(1e-9, reduced.seconds) };
}

/** Schedules (seeds 1..cap) until the first that fails, or null. */
function schedulesToFind(config: RunConfig, cap: number, strategy: (seed: number) => Strategy): number | null {
  for (let seed = 1; seed <= cap; seed++) {
    const r = runDeterministic(config, { strategy: strategy(seed), maxSteps: MAX_STEPS, recordTrace: false, stopAtViolation: true });
    if (firstFailure(r) !== undefined || r.outcome === 'deadlock') return seed;
  }
  return null;
}

export function runDfsBench(options: { budgetSeconds?: number; zooBudgetSeconds?: number; samplingCap?: number; onProgress?: (what: string) => void } = {}): DfsBenchResult {
  const budgetMs = (options.budgetSeconds ?? 60) * 1000;
  const zooBudgetMs = (options.zooBudgetSeconds ?? 30) * 1000;
  const cap = options.samplingCap ?? 2000;
  const bound = 2;
  options.onProgress?.('small machine');
  const small = variants(smallMachine(), bound, budgetMs, true);
  options.onProgress?.('tiny machine');
  const tinyConfig = smallMachine({ workload: 'adversarial', conversions: 2, hotplugs: 0, deviceAccesses: 1 });
  const tiny = variants(tinyConfig, 1, budgetMs, false);
  const zoo: ZooRow[] = [];
  for (const m of MUTANTS) {
    options.onProgress?.(`zoo ${m.name}`);
    const config = smallMachine({ mutant: m.name });
    const started = performance.now();
    const found = exploreDfs({ config, reduction: 'sleep-sets', stateCache: true, preemptionBound: bound, mutant: m.name, shouldStop: () => performance.now() - started > zooBudgetMs });
    // PCT's k: the steps of the default schedule, rounded up to a hundred.
    const k = Math.ceil(runDeterministic(config, { strategy: { choose: () => 0 }, maxSteps: MAX_STEPS, recordTrace: false, stopAtViolation: false }).steps / 100) * 100;
    const actors = actorCount(config);
    zoo.push({
      mutant: m.name,
      dfs: found.failure?.execution ?? null,
      dfsInvariant: found.failure?.invariant ?? null,
      random: schedulesToFind(config, cap, (seed) => new RandomStrategy(seed)),
      pct2: schedulesToFind(config, cap, (seed) => new PctStrategy(seed, actors, 2, k)),
      pct3: schedulesToFind(config, cap, (seed) => new PctStrategy(seed, actors, 3, k)),
    });
  }
  return {
    machine: '2 vCPUs, 3 conversions each (storm, seed 1), one type1 container, 16M guest, one hot-plug and one device access placed anywhere; every fix',
    preemptionBound: bound,
    budgetSeconds: budgetMs / 1000,
    small,
    smallReduction: {
      complete: small[0]!.complete && small[1]!.complete && small[2]!.complete,
      sleepSets: ratio(small[0]!, small[1]!),
      withCache: ratio(small[0]!, small[2]!),
    },
    tiny: {
      machine: 'adversarial, 2 vCPUs, 1 conversion each, one device access, preemption bound 1',
      rows: tiny,
      reductionSleepSets: tiny[0]!.executions / Math.max(1, tiny[1]!.executions),
      reductionWithCache: tiny[0]!.executions / Math.max(1, tiny[2]!.executions),
    },
    zoo,
    samplingCap: cap,
  };
}
