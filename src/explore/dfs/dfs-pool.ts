/**
 * A systematic search on a piscina pool: the search (or the user's shard of
 * it) split once more into one shard per thread, run in parallel, then
 * merged (merge-dfs.ts). Ctrl-C and the time budget raise a stop flag
 * every thread checks between executions; what finished is kept.
 *
 * @module
 */
import { Piscina } from 'piscina';
import type { Shard } from '../shard.js';
import { CONTROL_PROGRESS, CONTROL_STOP, dfsControl, dfsTaskFile, type DfsTaskInput } from './dfs-task.js';
import type { DfsResult, DfsSearch } from './explore-dfs.js';
import { mergeDfs, type MergedDfs } from './merge-dfs.js';

export interface DfsRunOptions extends DfsSearch {
  /** The user's shard (default: all). */
  readonly shard?: Shard;
  readonly threads: number;
  readonly timeBudgetMs?: number;
  /** Aborting it (Ctrl-C) stops the search; what finished is reported. */
  readonly signal?: AbortSignal;
  /** Every quarter second: executions and distinct traces so far (summed over threads; distinct is an upper bound). */
  readonly onProgress?: (executions: number, distinct: number) => void;
}

export interface DfsRun extends MergedDfs {
  /** Why the search stopped before covering its tree, if it did (a failure aside). */
  readonly stoppedBy?: 'time-budget' | 'interrupt';
  readonly threads: number;
}

export async function runDfs(options: DfsRunOptions): Promise<DfsRun> {
  const threads = Math.max(1, options.threads);
  const user = options.shard ?? { index: 0, count: 1 };
  const control = dfsControl(threads);
  const cells = new Int32Array(control);
  let stoppedBy: DfsRun['stoppedBy'];
  const stop = (why: NonNullable<DfsRun['stoppedBy']>): void => {
    stoppedBy ??= why;
    Atomics.store(cells, CONTROL_STOP, 1);
  };
  const onAbort = (): void => stop('interrupt');
  if (options.signal?.aborted === true) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const budget = options.timeBudgetMs === undefined ? undefined : setTimeout(() => stop('time-budget'), options.timeBudgetMs);
  const progress = options.onProgress === undefined ? undefined : setInterval(() => {
    let executions = 0;
    let distinct = 0;
    for (let t = 0; t < threads; t++) {
      executions += Atomics.load(cells, CONTROL_PROGRESS + 2 * t);
      distinct += Atomics.load(cells, CONTROL_PROGRESS + 2 * t + 1);
    }
    options.onProgress!(executions, distinct);
  }, 250);
  const pool = new Piscina<DfsTaskInput, DfsResult>({ filename: dfsTaskFile(), minThreads: threads, maxThreads: threads, idleTimeout: 1000 });
  try {
    const { shard: _shard, threads: _threads, timeBudgetMs: _budget, signal: _signal, onProgress: _progress, ...search } = options;
    const parts = await Promise.all(Array.from({ length: threads }, (_, t) => pool.run({
      ...search,
      // The user's shard i of N, dealt once more to T threads: i + N t of N T.
      shard: { index: user.index + user.count * t, count: user.count * threads },
      control,
      slot: t,
    })));
    const merged = mergeDfs(parts.map((p) => ({ ...p, traceHashes: p.traceHashes ?? [] })));
    return { ...merged, ...(stoppedBy === undefined || merged.failure !== undefined ? {} : { stoppedBy }), threads };
  } finally {
    if (budget !== undefined) clearTimeout(budget);
    if (progress !== undefined) clearInterval(progress);
    options.signal?.removeEventListener('abort', onAbort);
    await pool.destroy();
  }
}
