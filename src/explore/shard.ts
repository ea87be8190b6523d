/**
 * Splitting an exploration into shards that independent jobs run (a CI
 * matrix, a Kubernetes Indexed Job, a Slurm array) and `convsim merge`
 * puts together. Sampling shards take consecutive ranges of seeds; DFS
 * shards take subtrees (see explore/dfs/bounded-dfs.ts). Either way the
 * N shards cover the unsharded run exactly once.
 */

export interface Shard {
  /** From 0. */
  readonly index: number;
  readonly count: number;
}

/** The seeds of shard `shard` among `iterations` seeds from `firstSeed`: a contiguous range, sizes differing by at most one. */
export function shardSeeds(firstSeed: number, iterations: number, shard: Shard): { firstSeed: number; iterations: number } {
  const start = Math.floor((shard.index * iterations) / shard.count);
  const end = Math.floor(((shard.index + 1) * iterations) / shard.count);
  return { firstSeed: firstSeed + start, iterations: end - start };
}

/** `I/N`, as the user gave it (1-based). */
export function shardLabel(shard: Shard): string {
  return `${shard.index + 1}/${shard.count}`;
}
