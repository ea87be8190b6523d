/**
 * The systematic search on small hand-made programs, against brute force:
 * every schedule enumerated, final states compared. Threads run
 * operations on shared variables; a step's footprint is the variable it
 * reads or writes.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { boundedDfs, type Reduction } from '../../src/explore/dfs/bounded-dfs.js';
import type { Candidate, Strategy } from '../../src/runtime/deterministic/strategy.js';
import type { Footprint } from '../../src/runtime/deterministic/footprint.js';

type Op = { kind: 'read' | 'write' | 'add'; v: number };
type Program = Op[][];

interface Outcome { state: string; preemptions: number }

/** Run a program under a strategy: one thread's next operation per step. */
function runProgram(program: Program, strategy: Strategy): Outcome | undefined {
  const vars = [0, 0, 0];
  const local = program.map(() => 0);
  const pc = program.map(() => 0);
  let last = -1;
  let preemptions = 0;
  for (let step = 0; ; step++) {
    const candidates: Candidate[] = [];
    for (let t = 0; t < program.length; t++) if (pc[t]! < program[t]!.length) candidates.push({ from: t, to: t });
    if (candidates.length === 0) break;
    const choice = strategy.choose(candidates, step);
    if (choice < 0) return undefined;
    const t = candidates[choice]!.to;
    if (last >= 0 && t !== last && pc[last]! < program[last]!.length) preemptions++;
    last = t;
    const op = program[t]![pc[t]!++]!;
    if (op.kind === 'read') local[t] = local[t]! * 3 + vars[op.v]!;
    else if (op.kind === 'write') vars[op.v] = local[t]! + t + 1;
    else vars[op.v] = vars[op.v]! + 1;
    const footprint: Footprint = { actor: t, accesses: [op.v, 0, 0, op.kind === 'read' ? 0 : 1], global: false };
    // The whole state names itself (a stateful search may skip a state it has explored).
    strategy.observe?.(footprint, JSON.stringify([vars, local, pc, t]));
  }
  return { state: JSON.stringify([vars, local]), preemptions };
}

/** Every schedule: final states and execution count, with at most `bound` preemptions. */
function bruteForce(program: Program, bound = Infinity): { executions: number; states: Set<string> } {
  const states = new Set<string>();
  let executions = 0;
  const walk = (prefix: number[]): void => {
    let depth = 0;
    let branches = 0;
    const outcome = runProgram(program, {
      choose(candidates) {
        const d = depth++;
        if (d < prefix.length) return prefix[d]!;
        if (d === prefix.length) branches = candidates.length;
        return 0;
      },
    });
    if (depth > prefix.length && branches > 0) {
      for (let i = 0; i < branches; i++) walk([...prefix, i]);
      return;
    }
    if (outcome !== undefined && outcome.preemptions <= bound) {
      executions++;
      states.add(outcome.state);
    }
  };
  walk([]);
  return { executions, states };
}

function dfs(program: Program, reduction: Reduction, bound?: number, shard?: { index: number; count: number }, splitDepth?: number, stateCache = false) {
  const states = new Set<string>();
  const stats = boundedDfs((s) => runProgram(program, s), {
    reduction, ...(bound === undefined ? {} : { preemptionBound: bound }), ...(shard === undefined ? {} : { shard }),
    ...(splitDepth === undefined ? {} : { splitDepth }), stateCache,
  }, (outcome) => {
    if (outcome !== undefined) states.add(outcome.state);
    return 'continue';
  });
  return { stats, states };
}

const op = (kind: Op['kind'], v: number): Op => ({ kind, v });
const PROGRAMS: Record<string, Program> = {
  // Two threads on disjoint variables: one trace.
  disjoint: [[op('write', 0), op('add', 0), op('read', 0)], [op('write', 1), op('add', 1), op('read', 1)]],
  // A lost update: read-modify-write of one variable by two threads.
  'lost update': [[op('read', 0), op('write', 0)], [op('read', 0), op('write', 0)]],
  // Three threads, some shared, some private accesses.
  mixed: [[op('read', 0), op('write', 1), op('add', 2)], [op('add', 2), op('read', 1)], [op('write', 0), op('read', 2)]],
};

describe('bounded DFS on hand-made programs', () => {
  for (const [name, program] of Object.entries(PROGRAMS)) {
    it(`${name}: without reduction it enumerates exactly the brute-force schedules`, () => {
      const brute = bruteForce(program);
      const plain = dfs(program, 'none');
      expect(plain.stats.executions).toBe(brute.executions);
      expect(plain.states).toEqual(brute.states);
      expect(plain.stats.complete).toBe(true);
    });

    it(`${name}: sleep sets explore fewer executions and miss no final state`, () => {
      const brute = bruteForce(program);
      const reduced = dfs(program, 'sleep-sets');
      expect(reduced.states).toEqual(brute.states);
      expect(reduced.stats.executions).toBeLessThanOrEqual(brute.executions);
    });

    for (const bound of [0, 1, 2]) {
      it(`${name}: preemption bound ${bound} enumerates exactly the schedules with at most ${bound} preemptions`, () => {
        const brute = bruteForce(program, bound);
        const plain = dfs(program, 'none', bound);
        expect(plain.stats.executions).toBe(brute.executions);
        expect(plain.states).toEqual(brute.states);
      });
    }
  }

  it('disjoint threads: sleep sets leave one execution per trace (one here)', () => {
    expect(dfs(PROGRAMS['disjoint']!, 'sleep-sets').stats.executions).toBe(1);
    expect(bruteForce(PROGRAMS['disjoint']!).executions).toBe(20);
  });

  it('random programs: sleep sets reach every final state brute force reaches', () => {
    const opArb = fc.record({ kind: fc.constantFrom<Op['kind']>('read', 'write', 'add'), v: fc.integer({ min: 0, max: 2 }) });
    fc.assert(fc.property(fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }), (program) => {
      const brute = bruteForce(program);
      const reduced = dfs(program, 'sleep-sets');
      expect(reduced.states).toEqual(brute.states);
      expect(reduced.stats.executions).toBeLessThanOrEqual(brute.executions);
    }), { numRuns: 60, seed: 12 });
  });

  it('random programs: with a preemption bound, sleep sets still reach every state the bounded brute force reaches', () => {
    // Naive sleep sets under a bound lose about one program in five here; sleeping only branches
    // whose subtree the bound did not cut keeps every state.
    const opArb = fc.record({ kind: fc.constantFrom<Op['kind']>('read', 'write', 'add'), v: fc.integer({ min: 0, max: 2 }) });
    let plain = 0;
    let reduced = 0;
    fc.assert(fc.property(fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }), fc.integer({ min: 0, max: 2 }), (program, bound) => {
      const brute = bruteForce(program, bound);
      const r = dfs(program, 'sleep-sets', bound);
      expect(r.states).toEqual(brute.states);
      plain += brute.executions;
      reduced += r.stats.executions;
    }), { numRuns: 200, seed: 3 });
    expect(reduced).toBeLessThan(plain);
  });

  it('random programs: the state cache (with sleep sets and a bound) reaches every state brute force reaches, in fewer executions', () => {
    const opArb = fc.record({ kind: fc.constantFrom<Op['kind']>('read', 'write', 'add'), v: fc.integer({ min: 0, max: 2 }) });
    let without = 0;
    let withCache = 0;
    fc.assert(fc.property(fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }), fc.integer({ min: 0, max: 3 }), (program, b) => {
      const bound = b === 3 ? undefined : b;
      const brute = bruteForce(program, bound);
      // Split depth 1: nearly the whole tree lies in subtrees, where the cache works.
      const cached = dfs(program, 'sleep-sets', bound, undefined, 1, true);
      expect(cached.states).toEqual(brute.states);
      withCache += cached.stats.executions;
      without += dfs(program, 'sleep-sets', bound, undefined, 1).stats.executions;
    }), { numRuns: 200, seed: 5 });
    expect(withCache).toBeLessThan(without);
  });

  it('random programs: shards add up to the unsharded search, state cache and bound included', () => {
    const opArb = fc.record({ kind: fc.constantFrom<Op['kind']>('read', 'write', 'add'), v: fc.integer({ min: 0, max: 2 }) });
    fc.assert(fc.property(fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 }), fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 1, max: 2 }), fc.integer({ min: 2, max: 3 }), (program, bound, splitDepth, count) => {
        const whole = dfs(program, 'sleep-sets', bound, undefined, splitDepth, true);
        const parts = Array.from({ length: count }, (_, index) => dfs(program, 'sleep-sets', bound, { index, count }, splitDepth, true));
        expect(parts.reduce((n, p) => n + p.stats.executions, 0)).toBe(whole.stats.executions);
        expect(new Set(parts.flatMap((p) => [...p.states]))).toEqual(whole.states);
      }), { numRuns: 150, seed: 7 });
  });

  it('shards cover the tree exactly once: N shards add up to the whole (with the state cache too)', () => {
    const program = PROGRAMS['mixed']!;
    for (const reduction of ['none', 'sleep-sets'] as const) {
      const whole = dfs(program, reduction, undefined, undefined, 2, reduction === 'sleep-sets');
      let executions = 0;
      const states = new Set<string>();
      for (let index = 0; index < 3; index++) {
        const part = dfs(program, reduction, undefined, { index, count: 3 }, 2, reduction === 'sleep-sets');
        executions += part.stats.executions;
        for (const s of part.states) states.add(s);
        expect(part.stats.subtrees).toBe(whole.stats.subtrees);
      }
      expect(executions).toBe(whole.stats.executions);
      expect(states).toEqual(whole.states);
    }
  });
});
