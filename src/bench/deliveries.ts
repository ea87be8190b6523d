/**
 * Deterministic deliveries per second, one thread: exploration iterations
 * (random schedules, stop at a violation, as `convsim explore` runs them)
 * of each workload, median of repetitions. Also the set-up cost of an
 * iteration (a run of one conversion), and the PCT 95%-confidence
 * arithmetic of issue 4 projected at the measured rates.
 */
import type { RunConfig, WorkloadName } from '../actors/run-config.js';
import type { BackingMode } from '../core/guest-memory.js';
import type { InplaceOrder } from '../core/kvm-convert-memory.js';
import { actorCount, exploreConfig, runCase, type ExploreCase } from '../explore/explore-case.js';
import { median } from './median.js';

export interface DeliveriesRow {
  readonly workload: WorkloadName;
  readonly mode: BackingMode;
  readonly order: InplaceOrder;
  readonly actors: number;
  readonly iterationsPerRep: number;
  readonly meanSteps: number;
  /** Deliveries per second, set-up included (what exploration gets). */
  readonly medianDeliveriesPerSec: number;
  readonly medianIterationsPerSec: number;
  readonly medianMsPerIteration: number;
  /** Median time of an iteration of one conversion: allocating the guest and the actors. */
  readonly setupMsPerIteration: number;
  /** Deliveries per second with that set-up subtracted (the scheduler and actors alone). */
  readonly deliveriesPerSecExcludingSetup: number;
  readonly repsDeliveriesPerSec: number[];
}

export interface PctProjection {
  readonly actors: number;
  readonly steps: number;
  readonly depth: number;
  /** 1 / (n k^(d-1)). */
  readonly bound: number;
  /** Runs for 95% confidence: ln(20) n k^(d-1). */
  readonly runsFor95: number;
  /** runsFor95 * k deliveries at the measured storm rate, one thread. */
  readonly projectedSecondsAtStormRate: number;
  /** The same with set-up excluded. */
  readonly projectedSecondsExcludingSetup: number;
  /** Measured: the storm workload with 4 vCPUs (2 + 2 containers + 4 = 8 actors). */
  readonly eightActorStorm: { readonly meanSteps: number; readonly msPerIteration: number; readonly projectedSecondsOneThread: number; readonly projectedSecondsTwoThreads: number };
  readonly goalSeconds: number;
}

export interface DeliveriesBenchResult {
  readonly repetitions: number;
  readonly rows: DeliveriesRow[];
  readonly pct: PctProjection;
}


function caseOf(config: RunConfig, seed: number): ExploreCase {
  return { config, strategy: 'random', depth: 2, expectedSteps: 2000, scheduleSeed: seed };
}

/** Time `iterations` seeds of `make(seed)`: total steps and milliseconds. */
function timeIterations(make: (seed: number) => RunConfig, iterations: number, firstSeed = 1): { steps: number; ms: number } {
  let steps = 0;
  const t0 = performance.now();
  for (let seed = firstSeed; seed < firstSeed + iterations; seed++) steps += runCase(caseOf(make(seed), seed)).steps;
  return { steps, ms: performance.now() - t0 };
}

const CASES: ReadonlyArray<{ workload: WorkloadName; mode: BackingMode; order: InplaceOrder }> = [
  { workload: 'storm', mode: 'legacy', order: 'explicit' },
  { workload: 'selftest', mode: 'legacy', order: 'explicit' },
  { workload: 'hotplug', mode: 'legacy', order: 'explicit' },
  { workload: 'overlap', mode: 'legacy', order: 'explicit' },
  { workload: 'swiotlb', mode: 'legacy', order: 'explicit' },
  { workload: 'storm', mode: 'inplace', order: 'explicit' },
  { workload: 'storm', mode: 'inplace', order: 'priority' },
];

export function runDeliveriesBench(options: { iterations?: number; repetitions?: number } = {}): DeliveriesBenchResult {
  const iterations = options.iterations ?? 60;
  const repetitions = options.repetitions ?? 5;
  const rows: DeliveriesRow[] = [];
  for (const k of CASES) {
    const make = (seed: number): RunConfig => exploreConfig({ workload: k.workload, seed, mode: k.mode, order: k.order });
    timeIterations(make, Math.min(10, iterations)); // warm-up (JIT)
    const reps: Array<{ steps: number; ms: number }> = [];
    for (let r = 0; r < repetitions; r++) reps.push(timeIterations(make, iterations));
    const setup: number[] = [];
    for (let r = 0; r < repetitions; r++) {
      const t = timeIterations((seed) => exploreConfig({ workload: k.workload, seed, mode: k.mode, order: k.order, conversions: 1 }), 10);
      setup.push(t.ms / 10);
    }
    const rates = reps.map((t) => (t.steps / t.ms) * 1000);
    const msPerIteration = median(reps.map((t) => t.ms / iterations));
    const setupMs = median(setup);
    const meanSteps = reps[0]!.steps / iterations;
    rows.push({
      workload: k.workload,
      mode: k.mode,
      order: k.order,
      actors: actorCount(make(1)),
      iterationsPerRep: iterations,
      meanSteps: Math.round(meanSteps),
      medianDeliveriesPerSec: Math.round(median(rates)),
      medianIterationsPerSec: Math.round(1000 / msPerIteration),
      medianMsPerIteration: Number(msPerIteration.toFixed(3)),
      setupMsPerIteration: Number(setupMs.toFixed(3)),
      deliveriesPerSecExcludingSetup: msPerIteration > setupMs ? Math.round((meanSteps / (msPerIteration - setupMs)) * 1000) : 0,
      repsDeliveriesPerSec: rates.map(Math.round),
    });
  }

  // PCT arithmetic of issue 4: depth 2, 8 actors, k = 1000 steps.
  const actors = 8;
  const steps = 1000;
  const depth = 2;
  const bound = 1 / (actors * steps ** (depth - 1));
  const runsFor95 = Math.ceil(Math.log(20) / bound);
  const storm = rows[0]!;
  const eight = (seed: number): RunConfig => ({ ...exploreConfig({ workload: 'storm', seed }), vcpus: 4 });
  timeIterations(eight, 10);
  const eightReps: Array<{ steps: number; ms: number }> = [];
  for (let r = 0; r < repetitions; r++) eightReps.push(timeIterations(eight, iterations));
  const eightMs = median(eightReps.map((t) => t.ms / iterations));
  return {
    repetitions,
    rows,
    pct: {
      actors,
      steps,
      depth,
      bound,
      runsFor95,
      projectedSecondsAtStormRate: Number(((runsFor95 * steps) / storm.medianDeliveriesPerSec).toFixed(1)),
      projectedSecondsExcludingSetup: storm.deliveriesPerSecExcludingSetup > 0 ? Number(((runsFor95 * steps) / storm.deliveriesPerSecExcludingSetup).toFixed(1)) : 0,
      eightActorStorm: {
        meanSteps: Math.round(eightReps[0]!.steps / iterations),
        msPerIteration: Number(eightMs.toFixed(3)),
        projectedSecondsOneThread: Number(((runsFor95 * eightMs) / 1000).toFixed(1)),
        projectedSecondsTwoThreads: Number(((runsFor95 * eightMs) / 2000).toFixed(1)),
      },
      goalSeconds: 60,
    },
  };
}
