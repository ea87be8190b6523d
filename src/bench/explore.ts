/**
 * Exploration throughput: iterations per second of `convsim explore`'s
 * piscina pool with 1 and 2 threads, the same seeds, side by side,
 * alternating, median of repetitions. The pool is created and warmed up
 * before timing (creation is reported apart).
 */
import type { WorkloadName } from '../actors/run-config.js';
import { createExplorePool, explorePool } from '../explore/explore-pool.js';
import { median } from './median.js';

export interface ExplorePoolRow {
  readonly threads: number;
  readonly iterations: number;
  readonly medianIterationsPerSec: number;
  readonly medianDeliveriesPerSec: number;
  readonly poolStartMs: number;
  readonly repsIterationsPerSec: number[];
}

export interface ExploreBenchResult {
  readonly workload: WorkloadName;
  readonly strategy: 'random';
  readonly seeds: string;
  readonly repetitions: number;
  readonly rows: ExplorePoolRow[];
  /** 2-thread rate over 1-thread rate. */
  readonly speedup: number;
}


export async function runExploreBench(options: { iterations?: number; repetitions?: number; workload?: WorkloadName } = {}): Promise<ExploreBenchResult> {
  const iterations = options.iterations ?? 400;
  const repetitions = options.repetitions ?? 3;
  const workload = options.workload ?? 'storm';
  const input = { workload, strategy: 'random' as const, depth: 2, expectedSteps: 2000 };
  const sizes = [1, 2];
  const pools = sizes.map((threads) => {
    const t0 = performance.now();
    const pool = createExplorePool(threads);
    return { threads, pool, startMs: performance.now() - t0 };
  });
  const samples = new Map<number, Array<{ its: number; deliveries: number }>>(sizes.map((s) => [s, []]));
  try {
    for (const p of pools) {
      // Warm-up: threads started, modules loaded, JIT warm.
      const t0 = performance.now();
      await explorePool(p.pool, { input, firstSeed: 1_000_000, iterations: 8 * p.threads, keepGoing: true });
      p.startMs += performance.now() - t0;
    }
    for (let r = 0; r < repetitions; r++) {
      for (const p of pools) {
        const run = await explorePool(p.pool, { input, firstSeed: 1, iterations, keepGoing: true });
        samples.get(p.threads)!.push({ its: (run.iterations / run.elapsedMs) * 1000, deliveries: (run.deliveries / run.elapsedMs) * 1000 });
      }
    }
  } finally {
    await Promise.all(pools.map((p) => p.pool.destroy()));
  }
  const rows = pools.map((p): ExplorePoolRow => {
    const s = samples.get(p.threads)!;
    return {
      threads: p.threads,
      iterations,
      medianIterationsPerSec: Math.round(median(s.map((x) => x.its))),
      medianDeliveriesPerSec: Math.round(median(s.map((x) => x.deliveries))),
      poolStartMs: Math.round(p.startMs),
      repsIterationsPerSec: s.map((x) => Math.round(x.its)),
    };
  });
  return {
    workload,
    strategy: 'random',
    seeds: `1..${iterations}`,
    repetitions,
    rows,
    speedup: Number((rows[1]!.medianIterationsPerSec / rows[0]!.medianIterationsPerSec).toFixed(2)),
  };
}
