/**
 * `explore --strategy dfs` on convsim's actors: the bounded DFS of
 * bounded-dfs.ts over the deterministic runtime, on one machine whose
 * workload is fixed by its seed. Every step records its footprint, so
 * sleep sets know which steps commute and each execution's partial-order
 * hash counts the distinct traces. A failing execution becomes a replay
 * case (its choices as deviations), shrunk and replayed like any other.
 */
import type { RunConfig } from '../../actors/run-config.js';
import { runDeterministic } from '../../runtime/deterministic/deterministic-run.js';
import { firstFailure } from '../failure.js';
import { encodeToken, MAX_STEPS, type ExploreCase } from '../explore-case.js';
import { boundedDfs, type DfsStats, type PreemptionUnit, type Reduction } from './bounded-dfs.js';

/** What a search explores and how: the same for one search, its pool threads and its shards. */
export interface DfsSearch {
  /** The machine, with `scheduledEvents` set (a DFS needs every action placed by the schedule). */
  readonly config: RunConfig;
  /** The bug-zoo entry, for the case. */
  readonly mutant?: string;
  readonly preemptionBound?: number;
  readonly preemptionUnit?: PreemptionUnit;
  readonly reduction: Reduction;
  readonly splitDepth?: number;
  /** Stateful search (see `DfsOptions.stateCache`): states are named by the partial-order hash of the prefix. */
  readonly stateCache?: boolean;
}

export interface DfsInput extends DfsSearch {
  readonly shard?: { readonly index: number; readonly count: number };
  /** Checked before each execution (see `DfsOptions.shouldStop`): true stops the search. */
  readonly shouldStop?: (nextPosition: number) => boolean;
  /** Called after every execution (progress). */
  readonly onExecution?: (executions: number, distinctTraces: number) => void;
  /** Keep every distinct partial-order hash in the result (for merging shards). */
  readonly keepTraceHashes?: boolean;
  /** Cells per chunk of the partial-order hash (default {@link DFS_HASH_CHUNK}, see deterministic-run.ts). */
  readonly hashChunk?: number;
}

export interface DfsFailure {
  readonly invariant: string;
  readonly message: string;
  /** The case that replays it (strategy `replay`, the execution's choices as deviations). */
  readonly case: ExploreCase;
  readonly token: string;
  readonly traceHash: string;
  readonly steps: number;
  /** Executions of this shard up to and including it. */
  readonly execution: number;
  /** Its place in the unsharded search order (see bounded-dfs.ts). */
  readonly position: number;
  readonly preemptions: number;
}

export interface DfsResult {
  readonly stats: DfsStats;
  /** Distinct partial-order hashes among the executions run to their end. */
  readonly distinctTraces: number;
  readonly traceHashes?: string[];
  readonly deliveries: number;
  readonly failure?: DfsFailure;
  readonly elapsedMs: number;
}

/**
 * The systematic search hashes partial orders cell by cell, exactly as its
 * footprints depend: distinct traces are counted exactly, and the state
 * cache meets every equivalent prefix (on the small machine 9,413
 * executions instead of 10,857 with 1,024-cell chunks, in the same time;
 * BENCHMARKS.md). Sampling keeps chunks: its machines are larger.
 */
export const DFS_HASH_CHUNK = 1;

/** Run the search; stops at the first failure. */
export function exploreDfs(input: DfsInput): DfsResult {
  const started = performance.now();
  const { config } = input;
  if (config.scheduledEvents === undefined) throw new RangeError('a systematic search needs RunConfig.scheduledEvents');
  const hashes = new Set<string>();
  let deliveries = 0;
  let failure: DfsFailure | undefined;
  const stats = boundedDfs(
    (strategy) => runDeterministic(config, {
      strategy, maxSteps: MAX_STEPS, recordTrace: false, stopAtViolation: true, recordChoices: true, footprints: true, stats: false,
      partialOrderChunk: input.hashChunk ?? DFS_HASH_CHUNK,
    }),
    {
      reduction: input.reduction,
      ...(input.preemptionBound === undefined ? {} : { preemptionBound: input.preemptionBound }),
      ...(input.preemptionUnit === undefined ? {} : { preemptionUnit: input.preemptionUnit }),
      ...(input.shard === undefined ? {} : { shard: input.shard }),
      ...(input.splitDepth === undefined ? {} : { splitDepth: input.splitDepth }),
      ...(input.stateCache === undefined ? {} : { stateCache: input.stateCache }),
      ...(input.shouldStop === undefined ? {} : { shouldStop: input.shouldStop }),
    },
    (r, info) => {
      deliveries += r.steps;
      if (r.partialOrderHash !== undefined) hashes.add(r.partialOrderHash);
      input.onExecution?.(info.index, hashes.size);
      const found = firstFailure(r) ?? (r.outcome === 'deadlock' ? { name: 'deadlock', message: 'the actors stopped with a vCPU still waiting for a reply', step: r.steps } : undefined);
      if (found === undefined) return 'continue';
      const c: ExploreCase = {
        config, strategy: 'replay', depth: 1, expectedSteps: 1, scheduleSeed: 0,
        deviations: [...r.deviations.entries()],
        ...(input.mutant === undefined ? {} : { mutant: input.mutant }),
      };
      failure = {
        invariant: found.name, message: found.message, case: c, token: encodeToken(c), traceHash: r.traceHash, steps: r.steps,
        execution: info.index, position: info.position, preemptions: info.preemptions,
      };
      return 'stop';
    },
  );
  return {
    stats,
    distinctTraces: hashes.size,
    ...(input.keepTraceHashes === true ? { traceHashes: [...hashes].sort() } : {}),
    deliveries,
    ...(failure === undefined ? {} : { failure }),
    elapsedMs: performance.now() - started,
  };
}
