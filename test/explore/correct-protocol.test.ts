/**
 * The correct protocol (every fix: conversions under the BQL, atomic bitmap
 * ops, serialized registration, RCU listener list) shows no failure over a fixed number of
 * schedules of every workload, in legacy mode and in place with the
 * explicit and priority orders, with random and PCT schedules: the same
 * code the `convsim explore` pool runs.
 */
import { describe, expect, it } from 'vitest';
import type { WorkloadName } from '../../src/actors/run-config.js';
import type { BackingMode } from '../../src/core/guest-memory.js';
import type { InplaceOrder } from '../../src/core/kvm-convert-memory.js';
import { measureExpectedSteps } from '../../src/cli/commands/explore.js';
import runIterations from '../../src/explore/iteration-task.js';
import type { StrategyName } from '../../src/runtime/deterministic/strategy.js';
import { ALL_FIXES_PROTOCOL } from '../../src/core/protocol-policy.js';

/**
 * Schedules per cell. Kept small so that `npm test` stays within its time
 * budget; the measured figures (100,000s of schedules) are in BENCHMARKS.md.
 */
const SEEDS = 15;
const WORKLOADS: WorkloadName[] = ['storm', 'adversarial', 'selftest', 'hotplug', 'overlap', 'swiotlb'];
const protocol = ALL_FIXES_PROTOCOL;
const MODES: Array<{ mode: BackingMode; order: InplaceOrder }> = [
  { mode: 'legacy', order: 'explicit' },
  { mode: 'inplace', order: 'explicit' },
  { mode: 'inplace', order: 'priority' },
];
const STRATEGIES: StrategyName[] = ['random', 'pct'];

describe(`correct protocol: no failure in ${SEEDS} schedules per workload, mode/order and strategy`, () => {
  for (const workload of WORKLOADS) {
    for (const { mode, order } of MODES) {
      it(`${workload}, ${mode}${mode === 'inplace' ? ` ${order}` : ''}: ${SEEDS} random + ${SEEDS} pct (depth 2) schedules`, () => {
        for (const strategy of STRATEGIES) {
          const base = { workload, strategy, depth: 2, mode, order, protocol };
          const expectedSteps = strategy === 'pct' ? measureExpectedSteps({ ...base, expectedSteps: 1 }, 1) : 2000;
          const results = runIterations({ ...base, expectedSteps, seed: 1, count: SEEDS, keepGoing: true });
          expect(results).toHaveLength(SEEDS);
          const failures = results.filter((r) => r.found).map((r) => `${strategy} seed ${r.seed}: ${r.invariant}: ${r.message}`);
          expect(failures).toEqual([]);
          expect(results.filter((r) => r.outcome !== 'completed').map((r) => `${strategy} seed ${r.seed}: ${r.outcome}`)).toEqual([]);
        }
      });
    }
  }
});

describe(`correct protocol on varied machines: no failure in ${SEEDS * 2} schedules per workload`, () => {
  for (const workload of WORKLOADS) {
    it(`${workload}: layouts, vCPUs, containers, rollback, faults, hot-plug and backing drawn from each seed`, () => {
      const results = runIterations({ workload, strategy: 'random', depth: 2, expectedSteps: 2000, seed: 1000, count: SEEDS * 2, keepGoing: true, vary: true, protocol });
      const failures = results.filter((r) => r.found).map((r) => `seed ${r.seed}: ${r.invariant}: ${r.message}`);
      expect(failures).toEqual([]);
      // Varied for real: several layouts and both backings were drawn, and some faults hit.
      const coverage = results.reduce<Record<string, number>>((all, r) => {
        for (const [k, v] of Object.entries(r.coverage)) all[k] = (all[k] ?? 0) + v;
        return all;
      }, {});
      expect(Object.keys(coverage).filter((k) => k.startsWith('layout:')).length).toBe(3);
      expect(coverage['mode:legacy'] ?? 0).toBeGreaterThan(0);
      expect((coverage['mode:inplace-explicit'] ?? 0) + (coverage['mode:inplace-priority'] ?? 0)).toBeGreaterThan(0);
    });
  }
});
