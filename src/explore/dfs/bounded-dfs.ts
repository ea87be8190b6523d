/**
 * Systematic depth-first search of a program's schedules, stateless (every
 * execution runs again from the start, as CHESS, Loom and Shuttle do),
 * with two reductions a QEMU developer can reason about:
 *
 * - **Preemption bounding** (CHESS's context bounding): a
 *   preemption is a choice of another thread while the thread that just
 *   ran still has a step waiting. A thread is, by default, the QEMU thread
 *   a step runs for (`Candidate.thread`): a conversion's whole chain of
 *   deliveries (exit, state change, bitmap steps, listener calls, replies)
 *   is its vCPU's thread, as `kvm_convert_memory` runs on the vCPU thread
 *   in QEMU, and a hot-plug's is the main loop's. Counted by receiving
 *   actor instead (`preemptionUnit: 'actor'`), nearly every choice is
 *   free, since an actor that has just handed a message on has nothing
 *   waiting, and the bound hardly bounds. Devices act on their own and
 *   never "have work", so leaving them is free.
 * - **Sleep sets** (Godefroid): after the branch that starts with step `t`
 *   at a node is explored, `t` sleeps in the node's later branches for as
 *   long as the steps taken there are independent of it (see
 *   `independent` in footprint.ts): running it there would only reorder
 *   commuting steps of an execution already explored. Without a bound,
 *   every Mazurkiewicz trace is explored, and no two complete executions
 *   explored are equivalent. Under a bound, a branch whose subtree the
 *   bound cut puts nothing to sleep (Coons, Musuvathi and McKinley 2013:
 *   the equivalent execution it would stand for may be one the bound cut).
 * - **A state cache** (`stateCache`): a state already left fully explored
 *   is not explored again when its first visit had at least as many
 *   preemptions to spare, the same thread last and no step asleep that is
 *   awake now; a skipped revisit counts as a cut for the path above it when
 *   the first visit's subtree was cut or the revisit has less to spare.
 *   The traces explored are exactly those of plain bounded DFS (tested on
 *   the actors, with states named by the prefix's partial order).
 *
 * The search does not know what it explores: `runOnce` runs one execution
 * under the {@link Strategy} it is given (the convsim runtime, or a small
 * hand-made program in the tests). Choices must be deterministic: the same
 * prefix of choices must offer the same candidates, which is checked.
 *
 * Work splits into shards without coordination: the subtrees below the
 * `splitDepth`-th branching node are numbered in DFS order (every shard
 * walks the same top of the tree) and shard `i` of `n` explores those
 * numbered `i mod n`; executions that end above that depth belong to shard 0.
 */
import type { Candidate, Strategy } from '../../runtime/deterministic/strategy.js';
import { independent, type Footprint } from '../../runtime/deterministic/footprint.js';

export type Reduction = 'sleep-sets' | 'none';
/** What a preemption switches away from: the QEMU thread a step runs for, or the actor receiving it. */
export type PreemptionUnit = 'thread' | 'actor';
export const PREEMPTION_UNITS: readonly PreemptionUnit[] = ['thread', 'actor'];
/** Branching nodes above the subtrees that shards share out. */
export const DEFAULT_SPLIT_DEPTH = 6;
export const REDUCTIONS: readonly Reduction[] = ['sleep-sets', 'none'];

export interface DfsOptions {
  /** Preemptions allowed per execution (undefined: unbounded). */
  readonly preemptionBound?: number;
  /** What a preemption switches away from (default `thread`, see the module text). */
  readonly preemptionUnit?: PreemptionUnit;
  readonly reduction: Reduction;
  /** Shard `index` of `count` (default: the whole tree). */
  readonly shard?: { readonly index: number; readonly count: number };
  /** Branching nodes above the subtrees that shards share out (default {@link DEFAULT_SPLIT_DEPTH}). */
  readonly splitDepth?: number;
  /**
   * Stateful search: a node whose state (named by the program, see
   * `Strategy.observe`) was already left fully explored with at least as
   * many preemptions to spare, the same thread last, and no step asleep
   * there that is awake here, is not explored again: every continuation
   * from it is covered. (The sleep-set comparison is Godefroid's condition
   * for stateful search with sleep sets, kept as a safeguard: with states
   * named by their partial order, no trace was lost without it once a
   * skipped revisit counts as a cut.) Kept per subtree, so shards prune
   * exactly as the unsharded search does.
   */
  readonly stateCache?: boolean;
  /**
   * Called before each execution with a lower bound of its position (see
   * {@link ExecutionInfo.position}): true stops the search (time budget,
   * Ctrl-C, or a failure already found earlier in the order by another shard).
   */
  readonly shouldStop?: (nextPosition: number) => boolean;
}

/** What the caller says about one finished execution. */
export type Verdict = 'continue' | 'stop';

export interface DfsStats {
  /** Executions run to their end (not abandoned as covered). */
  readonly executions: number;
  /** Executions abandoned part-way because every step left was asleep (an equivalent one was explored). */
  readonly sleepBlocked: number;
  /** Branches not taken because an equivalent execution had been explored (sleep sets). */
  readonly prunedEquivalent: number;
  /** Branches not taken because they would exceed the preemption bound. */
  readonly prunedByBound: number;
  /** The whole (bounded) tree was explored: the search was not stopped. */
  readonly complete: boolean;
  /** Executions abandoned at a state already fully explored (`stateCache`). */
  readonly revisits: number;
  /** Deepest execution, in steps. */
  readonly maxDepth: number;
  /** Subtrees numbered for sharding, over every shard (the same in each). */
  readonly subtrees: number;
}

/** Where an execution lies in the unsharded DFS order: compare `position`, then `index` within the shard. */
export interface ExecutionInfo {
  /** Executions of this shard so far, from 1. */
  readonly index: number;
  /** Order key across shards (see the module text): smaller comes first in the unsharded search. */
  readonly position: number;
  readonly preemptions: number;
}

interface Taken {
  readonly key: number;
  readonly footprint: Footprint;
  /** May put later branches to sleep (its subtree was explored in full). */
  readonly sleeps: boolean;
}

interface Node {
  readonly keys: number[];
  readonly threads: number[];
  /** Cost (0 or 1 preemption) of each candidate here. */
  readonly costs: number[];
  readonly sleep: Taken[];
  readonly preemptions: number;
  readonly done: Taken[];
  /** Branching nodes on the path above this one (this one excluded). */
  readonly branchingAbove: number;
  readonly branching: boolean;
  chosen: number;
  footprint: Footprint | undefined;
  /** The bound cut some branch below the chosen one: its subtree does not hold every execution that starts with it. */
  cut: boolean;
  /** The bound cut some branch here or anywhere below, in any branch (kept for the state cache). */
  cutBelow: boolean;
  /** The state this node stands at and the thread that led here (for the state cache), when known. */
  readonly stateKey: string | undefined;
  /** The state the chosen step left (from `observe`). */
  stateAfter: number | string | undefined;
}

/** A candidate's identity across executions, and its thread for preemption counting. */
function keyOf(c: Candidate): number {
  if (c.kind === 'device') return -1 - c.to * 2;
  if (c.kind === 'hotplug') return -2 - c.to * 2;
  return c.from * 65536 + c.to;
}

/** The thread a candidate runs on, for preemption counting: negative never waits to continue. */
function threadOf(c: Candidate, unit: PreemptionUnit): number {
  if (c.kind === 'device') return -1 - c.to * 2;
  if (unit === 'thread' && c.thread !== undefined) return c.thread;
  if (c.kind === 'hotplug') return -2 - c.to * 2;
  return c.to;
}

/** Run the search; `onExecution` sees each execution's result and may stop it. */
export function boundedDfs<T>(
  runOnce: (strategy: Strategy) => T,
  options: DfsOptions,
  onExecution: (result: T, info: ExecutionInfo) => Verdict,
): DfsStats {
  const bound = options.preemptionBound ?? Infinity;
  const unit = options.preemptionUnit ?? 'thread';
  const sleepSets = options.reduction === 'sleep-sets';
  const shardIndex = options.shard?.index ?? 0;
  const shardCount = options.shard?.count ?? 1;
  const splitDepth = options.splitDepth ?? DEFAULT_SPLIT_DEPTH;
  const path: Node[] = [];
  let executions = 0;
  let sleepBlocked = 0;
  let prunedEquivalent = 0;
  let prunedByBound = 0;
  let maxDepth = 0;
  /** Subtrees numbered so far (frontier nodes created), in DFS order. */
  let subtrees = 0;
  let revisits = 0;
  /**
   * State key -> how it was left fully explored: the preemptions it had to
   * spare and the keys asleep there. Cleared at each subtree.
   */
  const explored = new Map<string, Array<{ readonly spare: number; readonly asleep: readonly number[]; readonly cut: boolean }>>();
  /**
   * Whether a visit of a state with `spare` preemptions to spare and `sleep`
   * asleep is covered by an earlier one; then whether the bound may have
   * cut the subtree this visit skips (see `cut`): it did at the earlier
   * visit, or this one has fewer preemptions to spare.
   */
  const covered = (stateKey: string, spare: number, sleep: readonly Taken[]): { readonly cut: boolean } | undefined => {
    let found: { readonly cut: boolean } | undefined;
    for (const e of explored.get(stateKey) ?? []) {
      if (e.spare < spare || !e.asleep.every((k) => sleep.some((t) => t.key === k))) continue;
      const cut = e.cut || e.spare > spare;
      if (!cut) return { cut };
      found = { cut };
    }
    return found;
  };
  /** The bound cut a branch below every node of the path. */
  const cutPath = (): void => {
    for (const above of path) above.cut = above.cutBelow = true;
  };
  /** Entries the state cache keeps at most (a full cache stops adding: still sound). */
  const MAX_STATES = 4_000_000;

  const asleep = (node: Node, key: number): boolean => node.sleep.some((t) => t.key === key);
  const taken = (node: Node, key: number): boolean => node.done.some((t) => t.key === key);
  // (A node's done list also keeps the branches that may not sleep: they are taken all the same.)

  /**
   * The candidates of `node` not yet taken, allowed, in the order to try
   * them: preempting first, then in the runtime's order. The first
   * executions spend their preemptions at the first chances, where two
   * vCPUs' conversions overlap; the serial execution comes last. (Measured
   * on the zoo, BENCHMARKS.md: non-preempting first needed 8,714 executions
   * for register-race, and no-lock-overlap's first overlap sat behind
   * every placement of the device access and the hot-plug late in the run.)
   */
  const nextChoice = (node: Node): number => {
    let best = -1;
    for (let i = 0; i < node.keys.length; i++) {
      if (i === node.chosen || taken(node, node.keys[i]!) || asleep(node, node.keys[i]!)) continue;
      if (node.preemptions + node.costs[i]! > bound) continue;
      if (best < 0 || node.costs[i]! > node.costs[best]!) best = i;
    }
    return best;
  };

  /**
   * Branches of a node that will never be taken, counted once when it is
   * left. Above the split every shard walks the same nodes: shard 0 counts them.
   */
  const countPruned = (node: Node): void => {
    if (node.branchingAbove < splitDepth && shardIndex !== 0) return;
    for (let i = 0; i < node.keys.length; i++) {
      if (i === node.chosen || taken(node, node.keys[i]!)) continue;
      if (asleep(node, node.keys[i]!)) prunedEquivalent++;
      else if (node.preemptions + node.costs[i]! > bound) prunedByBound++;
    }
  };

  class DfsStrategy implements Strategy {
    depth = 0;
    /** This execution entered a subtree another shard owns, ran into a sleep-blocked node, or reached an explored state. */
    abandoned: 'shard' | 'asleep' | 'explored' | undefined;
    /** Number of the subtree this execution is in (0: above the split). */
    subtree = 0;

    choose(candidates: readonly Candidate[]): number {
      const d = this.depth++;
      if (d < path.length) {
        const node = path[d]!;
        if (candidates.length !== node.keys.length || candidates.some((c, i) => keyOf(c) !== node.keys[i])) {
          throw new Error(`the program is not deterministic: step ${d} offers other candidates than before under the same choices`);
        }
        return node.chosen;
      }
      const parent = path[d - 1];
      const sleep: Taken[] = [];
      if (sleepSets && parent !== undefined) {
        const last = parent.footprint!;
        for (const t of parent.sleep) if (independent(t.footprint, last)) sleep.push(t);
        for (const t of parent.done) if (t.sleeps && independent(t.footprint, last)) sleep.push(t);
      }
      const lastThread = parent === undefined ? undefined : parent.threads[parent.chosen]!;
      const threads = candidates.map((c) => threadOf(c, unit));
      // The thread that just ran has a delivery waiting: choosing another thread preempts it.
      const busy = lastThread !== undefined && lastThread >= 0 && threads.includes(lastThread);
      const costs = threads.map((t) => (busy && t !== lastThread ? 1 : 0));
      const preemptions = parent === undefined ? 0 : parent.preemptions + parent.costs[parent.chosen]!;
      const keys = candidates.map(keyOf);
      const branchingAbove = parent === undefined ? 0 : parent.branchingAbove + (parent.branching ? 1 : 0);
      const allowed = keys.filter((k, i) => !sleep.some((t) => t.key === k) && preemptions + costs[i]! <= bound).length;
      const stateKey = options.stateCache === true && parent?.stateAfter !== undefined ? `${parent.stateAfter}:${lastThread}` : undefined;
      const node: Node = {
        keys, threads, costs, sleep, preemptions, done: [], branchingAbove, branching: allowed >= 2, chosen: -1, footprint: undefined, cut: false,
        cutBelow: costs.some((c) => preemptions + c > bound),
        stateKey, stateAfter: undefined,
      };
      // The bound cuts a branch here: no subtree above holds every execution through it.
      if (node.cutBelow) cutPath();
      // The first node below the split-th branching node starts a numbered subtree.
      if (branchingAbove === splitDepth && this.subtree === 0) {
        // Subtrees put nothing to sleep in the subtrees after them: a shard that skips one cannot
        // know whether the bound cut it, and every shard must see the same sleep sets.
        cutPath();
        subtrees++;
        explored.clear();
        this.subtree = subtrees;
        if ((subtrees - 1) % shardCount !== shardIndex) {
          this.abandoned = 'shard';
          return -1;
        }
      }
      // Only inside a subtree, where the cache is kept: above the split every shard must walk the same nodes.
      const earlier = stateKey !== undefined && branchingAbove >= splitDepth ? covered(stateKey, bound - preemptions, sleep) : undefined;
      if (earlier !== undefined) {
        // Every continuation from this state, with this many preemptions to spare, is covered already.
        // Skipping it, the path above skips whatever the bound cut there: it must put nothing to sleep.
        if (earlier.cut) cutPath();
        this.abandoned = 'explored';
        return -1;
      }
      const choice = nextChoice(node);
      if (choice < 0) {
        // Every step left is asleep: every continuation is equivalent to one explored already.
        this.abandoned = 'asleep';
        countPruned(node);
        return -1;
      }
      node.chosen = choice;
      path.push(node);
      return choice;
    }

    observe(footprint: Footprint, state: number | string): void {
      const node = path[this.depth - 1]!;
      node.footprint = footprint;
      node.stateAfter = state;
    }
  }

  let complete = true;
  for (;;) {
    const strategy = new DfsStrategy();
    // Replaying the prefix re-enters the subtree the path is in: number it as the search did.
    strategy.subtree = subtreeOfPath(path, splitDepth, subtrees);
    if (options.shouldStop?.(strategy.subtree === 0 ? 2 * subtrees : 2 * strategy.subtree - 1) === true) {
      complete = false;
      break;
    }
    const result = runOnce(strategy);
    maxDepth = Math.max(maxDepth, strategy.depth);
    let verdict: Verdict = 'continue';
    if (strategy.abandoned === 'asleep' && (strategy.subtree !== 0 || shardIndex === 0)) sleepBlocked++;
    if (strategy.abandoned === 'explored' && (strategy.subtree !== 0 || shardIndex === 0)) revisits++;
    else if (strategy.abandoned === undefined && (strategy.subtree !== 0 || shardIndex === 0)) {
      executions++;
      // Above the split (subtree 0) an execution sits between the subtrees numbered before it and the next.
      const position = strategy.subtree === 0 ? 2 * subtrees : 2 * strategy.subtree - 1;
      verdict = onExecution(result, { index: executions, position, preemptions: preemptionsOf(path) });
    }
    if (verdict === 'stop') {
      complete = false;
      break;
    }
    // Backtrack: the deepest node with a branch left takes it.
    let resumed = false;
    while (path.length > 0) {
      const node = path[path.length - 1]!;
      // A branch explored in full puts its first step to sleep in the later branches. One the bound
      // cut does not: an execution equivalent to a later one may be among those it cut (the sleep
      // would then lose it; Coons, Musuvathi and McKinley, "Bounded partial-order reduction", 2013).
      if (node.footprint !== undefined) node.done.push({ key: node.keys[node.chosen]!, footprint: node.footprint, sleeps: !node.cut });
      node.cut = false;
      const next = nextChoice(node);
      if (next >= 0) {
        node.chosen = next;
        node.footprint = undefined;
        resumed = true;
        break;
      }
      countPruned(node);
      // Left fully explored: remember its state (only within subtrees, see `stateCache`).
      if (node.stateKey !== undefined && node.branchingAbove >= splitDepth && explored.size < MAX_STATES) {
        const spare = bound - node.preemptions;
        if (covered(node.stateKey, spare, node.sleep)?.cut !== false) {
          const visits = explored.get(node.stateKey) ?? [];
          if (visits.length === 0) explored.set(node.stateKey, visits);
          visits.push({ spare, asleep: node.sleep.map((t) => t.key), cut: node.cutBelow });
        }
      }
      path.pop();
    }
    if (!resumed) break;
  }
  return { executions, sleepBlocked, prunedEquivalent, prunedByBound, complete, revisits, maxDepth, subtrees };
}

function preemptionsOf(path: readonly Node[]): number {
  const last = path[path.length - 1];
  return last === undefined ? 0 : last.preemptions + last.costs[last.chosen]!;
}

/** The numbered subtree a path lies in: the path reaches below the split, and the subtree is the latest numbered. */
function subtreeOfPath(path: readonly Node[], splitDepth: number, subtrees: number): number {
  return path.some((n) => n.branchingAbove === splitDepth) ? subtrees : 0;
}
