/**
 * Putting shards of a systematic search together (threads of one run, or
 * jobs merged by `convsim merge`): totals add up, distinct traces are the
 * union of their hashes, and the failure reported is the one that comes
 * first in the unsharded search order, so N shards report what one
 * unsharded search would.
 */
import type { DfsStats } from './bounded-dfs.js';
import type { DfsFailure } from './explore-dfs.js';

/** What one shard contributes (a `DfsResult`, or its JSON from another job). */
export interface DfsPart {
  readonly stats: DfsStats;
  readonly traceHashes: readonly string[];
  readonly deliveries: number;
  readonly failure?: DfsFailure;
  readonly elapsedMs: number;
}

export interface MergedDfs {
  readonly stats: DfsStats;
  readonly distinctTraces: number;
  readonly traceHashes: string[];
  readonly deliveries: number;
  readonly failure?: DfsFailure;
  /** Longest shard. */
  readonly elapsedMs: number;
}

export function mergeDfs(parts: readonly DfsPart[]): MergedDfs {
  const hashes = new Set<string>();
  let failure: DfsFailure | undefined;
  const sum = (f: (s: DfsStats) => number): number => parts.reduce((total, p) => total + f(p.stats), 0);
  for (const p of parts) {
    for (const h of p.traceHashes) hashes.add(h);
    if (p.failure !== undefined && (failure === undefined || p.failure.position < failure.position)) failure = p.failure;
  }
  const stats: DfsStats = {
    executions: sum((s) => s.executions),
    sleepBlocked: sum((s) => s.sleepBlocked),
    prunedEquivalent: sum((s) => s.prunedEquivalent),
    prunedByBound: sum((s) => s.prunedByBound),
    // A search stopped by its failure is not complete either: what comes after it was not explored.
    complete: parts.every((p) => p.stats.complete) && failure === undefined,
    revisits: sum((s) => s.revisits),
    maxDepth: Math.max(0, ...parts.map((p) => p.stats.maxDepth)),
    subtrees: Math.max(0, ...parts.map((p) => p.stats.subtrees)),
  };
  return {
    stats,
    distinctTraces: hashes.size,
    traceHashes: [...hashes].sort(),
    deliveries: parts.reduce((total, p) => total + p.deliveries, 0),
    ...(failure === undefined ? {} : { failure }),
    elapsedMs: Math.max(0, ...parts.map((p) => p.elapsedMs)),
  };
}
