/**
 * Exploration on a piscina pool: consecutive seeds in batches, a bounded
 * window of tasks in flight, stop at the first failure (or keep going).
 *
 * The failure reported is the one with the LOWEST seed, whatever the number
 * of threads: when a batch fails at seed s, batches starting after s are
 * cancelled and those before s are waited for. So a given command line
 * always reports the same failure.
 *
 * @module
 */
import { Piscina } from 'piscina';
import { addCoverage, iterationTaskFile, type IterationInput, type IterationResult } from './iteration-task.js';

export type ExploreInput = Omit<IterationInput, 'seed' | 'count' | 'keepGoing'>;

export interface PoolRunOptions {
  readonly input: ExploreInput;
  readonly firstSeed: number;
  readonly iterations: number;
  readonly keepGoing: boolean;
  /** Seeds per task (default 4). */
  readonly batch?: number;
  /** Called after each finished task with the iterations done so far and the distinct traces among them. */
  readonly onProgress?: (done: number, distinct: number) => void;
  /** Aborting it stops the exploration (Ctrl-C): tasks in flight are cancelled, what finished is reported. */
  readonly signal?: AbortSignal;
}

export interface PoolRunResult {
  /** Iterations run to their end (or to their violation). */
  readonly iterations: number;
  /** Failures by ascending seed (at most one unless `keepGoing`). */
  readonly failures: IterationResult[];
  /** Iterations that hit the step limit (livelock guard) without a violation. */
  readonly stepLimits: number;
  /** Deliveries over all iterations done. */
  readonly deliveries: number;
  readonly elapsedMs: number;
  /** What the iterations covered, summed (see {@link IterationResult.coverage}), plus `outcome:<outcome>` counts. */
  readonly coverage: Record<string, number>;
  /** True when `signal` stopped the exploration before every seed was run. */
  readonly interrupted: boolean;
  /** Partial-order hashes of the iterations done: their number is the distinct traces seen. */
  readonly traceHashes: ReadonlySet<string>;
}

export const DEFAULT_BATCH = 4;

export function createExplorePool(threads: number): Piscina<IterationInput, IterationResult[]> {
  const pool = new Piscina<IterationInput, IterationResult[]>({
    filename: iterationTaskFile(),
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 60_000,
  });
  // Cancelling a running task terminates its thread; if the thread had already posted its
  // result, piscina reports that message as unexpected. The task was cancelled on purpose.
  pool.on('error', (error: unknown) => {
    if (error instanceof Error && error.message.startsWith('Unexpected message from Worker')) return;
    queueMicrotask(() => {
      throw error;
    });
  });
  return pool;
}

interface InFlight {
  readonly start: number;
  readonly controller: AbortController;
}

/** Run `iterations` seeds from `firstSeed` on `pool`. The pool stays usable afterwards. */
export async function explorePool(pool: Piscina<IterationInput, IterationResult[]>, options: PoolRunOptions): Promise<PoolRunResult> {
  const started = performance.now();
  const batch = Math.max(1, options.batch ?? DEFAULT_BATCH);
  const end = options.firstSeed + options.iterations;
  const window = Math.max(2, pool.maxThreads * 2);
  const failures: IterationResult[] = [];
  const inFlight = new Set<InFlight>();
  let next = options.firstSeed;
  let stopAt = Infinity;
  let done = 0;
  let stepLimits = 0;
  let deliveries = 0;
  const coverage: Record<string, number> = {};
  const traceHashes = new Set<string>();
  let error: unknown;

  return new Promise<PoolRunResult>((resolve, reject) => {
    const settle = (): void => {
      if (inFlight.size > 0) return;
      if (error !== undefined) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      failures.sort((a, b) => a.seed - b.seed);
      options.signal?.removeEventListener('abort', interrupt);
      resolve({ iterations: done, failures, stepLimits, deliveries, elapsedMs: performance.now() - started, coverage, interrupted, traceHashes });
    };
    let interrupted = false;
    const interrupt = (): void => {
      interrupted = true;
      next = end;
      for (const task of inFlight) task.controller.abort();
    };
    if (options.signal?.aborted === true) interrupt();
    options.signal?.addEventListener('abort', interrupt, { once: true });
    const pump = (): void => {
      while (error === undefined && inFlight.size < window && next < end && next <= stopAt) {
        const start = next;
        const count = Math.min(batch, end - start);
        next += count;
        const task: InFlight = { start, controller: new AbortController() };
        inFlight.add(task);
        pool.run({ ...options.input, seed: start, count, keepGoing: options.keepGoing }, { signal: task.controller.signal }).then(
          (results) => {
            inFlight.delete(task);
            for (const r of results) {
              done++;
              deliveries += r.steps;
              traceHashes.add(r.partialOrderHash);
              addCoverage(coverage, r.coverage);
              coverage[`outcome:${r.outcome}`] = (coverage[`outcome:${r.outcome}`] ?? 0) + 1;
              if (r.outcome === 'step-limit' && !r.found) stepLimits++;
              if (r.found) {
                failures.push(r);
                if (!options.keepGoing && r.seed < stopAt) {
                  stopAt = r.seed;
                  // Later batches cannot give a lower seed: cancel them.
                  for (const other of inFlight) if (other.start > stopAt) other.controller.abort();
                }
              }
            }
            options.onProgress?.(done, traceHashes.size);
            pump();
            settle();
          },
          (reason: unknown) => {
            inFlight.delete(task);
            if (!task.controller.signal.aborted && error === undefined) {
              error = reason;
              for (const other of inFlight) other.controller.abort();
            }
            settle();
          },
        );
      }
    };
    pump();
    settle();
  });
}

/** Create a pool, explore, destroy the pool. */
export async function explore(options: PoolRunOptions & { threads: number }): Promise<PoolRunResult> {
  const pool = createExplorePool(options.threads);
  try {
    return await explorePool(pool, options);
  } finally {
    await pool.destroy();
  }
}
