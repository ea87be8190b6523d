/**
 * The checks that see every window, each against a hand-made faulty
 * variant it must catch and the correct protocol it must not flag. A
 * faulty variant is made here by patching one method of the core for the
 * length of a test (the kind of one-line mistake a developer makes), and
 * run on the same deterministic runtime `convsim explore` uses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RunConfig } from '../../src/actors/run-config.js';
import { EIO, ENOMEM } from '../../src/core/errno.js';
import { EventBus } from '../../src/core/events.js';
import { RollbackChecker, type InterleavedStateChanges, type Violation } from '../../src/core/invariants.js';
import { SharedBitmap } from '../../src/core/shared-bitmap.js';
import { KvmMemoryAttributes } from '../../src/core/kvm-memory-attributes.js';
import { VfioContainer } from '../../src/core/vfio/container.js';
import { VfioRamDiscardListener } from '../../src/core/vfio/vfio-ram-discard-listener.js';
import { exploreConfig, runCase, type ExploreCase } from '../../src/explore/explore-case.js';
import { ALL_FIXES_PROTOCOL } from '../../src/core/protocol-policy.js';
import type { DeterministicResult } from '../../src/runtime/deterministic/deterministic-run.js';

const restore: Array<() => void> = [];
afterEach(() => {
  for (const undo of restore.splice(0)) undo();
});

/** Replace `proto[name]` for this test only. */
function patch<T extends object, K extends keyof T>(proto: T, name: K, make: (original: T[K]) => T[K]): void {
  const original = proto[name];
  proto[name] = make(original);
  restore.push(() => {
    proto[name] = original;
  });
}

function machine(seed: number, overrides: Partial<RunConfig> = {}, layout: 'flat' | 'x86' | 'random' = 'x86'): ExploreCase {
  // Every fix: what a faulty variant adds is then the only bug there is.
  const config = exploreConfig({ workload: 'storm', seed, conversions: 30, machine: { layout }, protocol: ALL_FIXES_PROTOCOL });
  return { config: { ...config, ...overrides }, strategy: 'random', depth: 2, expectedSteps: 2000, scheduleSeed: seed };
}

/** Run seeds 1..n to the end; every violation found, by invariant. */
function invariantsOver(n: number, make: (seed: number) => ExploreCase, stopAtViolation = false): { invariants: Set<string>; results: DeterministicResult[] } {
  const results = Array.from({ length: n }, (_, i) => runCase(make(i + 1), { stopAtViolation, maxSteps: 200_000 }));
  return { invariants: new Set(results.flatMap((r) => r.violations.map((v) => v.invariant))), results };
}

describe('instant checks against hand-made faulty variants', () => {
  it('correct protocol: no violation on x86 and random layouts, with devices DMA-ing at every step', () => {
    const { invariants, results } = invariantsOver(12, (seed) => machine(seed, {}, seed % 2 === 0 ? 'x86' : 'random'));
    expect([...invariants]).toEqual([]);
    // The devices really ran between the steps.
    expect(results.every((r) => r.stats.some((s) => (s['deviceAccesses'] ?? 0) > 0))).toBe(true);
  });

  it('a page freed while still mapped: VFIO discard that unmaps nothing -> stale-mapping at the free, dma-to-stale by the device', () => {
    patch(VfioRamDiscardListener.prototype, 'notifyDiscard', () => function notifyDiscard() { /* forgot to unmap */ });
    const { invariants, results } = invariantsOver(6, (seed) => machine(seed));
    expect(invariants.has('stale-mapping')).toBe(true);
    const messages = results.flatMap((r) => r.violations.map((v) => v.message));
    expect(messages.some((m) => /freed .* while a container still maps it/.test(m))).toBe(true);
    expect(invariants.has('dma-to-stale')).toBe(true);
  });

  it('a map while KVM holds the block private: KVM attributes never set to shared -> stale-mapping at the map', () => {
    patch(KvmMemoryAttributes.prototype, 'set', (original) => function set(this: KvmMemoryAttributes, gpa: number, size: number, toPrivate: boolean) {
      if (toPrivate) original.call(this, gpa, size, toPrivate);
    });
    // (The guest would fault on those pages for ever: stop at the first violation.)
    const { results } = invariantsOver(4, (seed) => machine(seed), true);
    const messages = results.flatMap((r) => r.violations.map((v) => v.message));
    expect(messages.some((m) => m.includes("while KVM's memory attributes hold it private"))).toBe(true);
  });

  it('a conversion that returns 0 but leaves the last page unconverted -> incomplete-conversion', () => {
    patch(KvmMemoryAttributes.prototype, 'set', (original) => function set(this: KvmMemoryAttributes, gpa: number, size: number, toPrivate: boolean) {
      original.call(this, gpa, toPrivate && size > 4096 ? size - 4096 : size, toPrivate);
    });
    const { invariants } = invariantsOver(6, (seed) => machine(seed));
    expect(invariants.has('incomplete-conversion')).toBe(true);
  });

  it('a kernel map that fails with nothing injected -> conversion-failed; with --faults the same failure is expected', () => {
    patch(VfioContainer.prototype, 'dmaMap', (original) => function dmaMap(this: VfioContainer, iova: number, size: number, host: number) {
      return this.stats.maps >= 40 ? -ENOMEM : original.call(this, iova, size, host);
    });
    expect(invariantsOver(4, (seed) => machine(seed)).invariants.has('conversion-failed')).toBe(true);
    const faulted = invariantsOver(4, (seed) => machine(seed, { faults: { rate: 0.0001, kinds: ['discard'] }, rollback: 'listener' }));
    expect(faulted.invariants.has('conversion-failed')).toBe(false);
  });

  it('VFIO map faults under every rollback policy keep the protocol safe (listener and full roll back exactly)', () => {
    for (const rollback of ['listener', 'full'] as const) {
      const { invariants, results } = invariantsOver(10, (seed) => machine(seed, { rollback, faults: { rate: 0.002, kinds: ['map'] } }, 'random'));
      expect([...invariants]).toEqual([]);
      // The faults really hit: some conversions failed and stopped the VM.
      expect(results.some((r) => r.vmStopped)).toBe(true);
    }
  });

  it('map faults with several conversions in flight (selftest: every vCPU owns its chunk): rollback checked, nothing flagged', () => {
    const make = (seed: number): ExploreCase => {
      const config = exploreConfig({ workload: 'selftest', seed, conversions: 40, machine: { layout: 'x86', vcpus: 3, inFlight: 3 } });
      return { config: { ...config, rollback: 'listener', faults: { rate: 0.002, kinds: ['map'] } }, strategy: 'random', depth: 2, expectedSteps: 2000, scheduleSeed: seed };
    };
    const { invariants, results } = invariantsOver(8, make);
    expect([...invariants]).toEqual([]);
    expect(results.reduce((n, r) => n + r.stats.reduce((m, s) => m + (s['checked:rollback'] ?? 0), 0), 0)).toBeGreaterThan(0);
  });

  it('an unmap failure (injected) leaves a stale mapping in QEMU as merged: found at the free', () => {
    const { invariants } = invariantsOver(8, (seed) => machine(seed, { faults: { rate: 0.3, kinds: ['unmap'] } }));
    expect(invariants.has('stale-mapping')).toBe(true);
    expect(EIO).toBe(5); // the errno table knows the errnos the fault plan returns
  });
});

describe('rollback exactness with state changes interleaved', () => {
  const events = (bus: EventBus, rollbackTo: string): void => {
    // Two populates in flight (a and b), their events interleaved on one bus; each is told
    // apart by the job being stepped. a fails at listener c1 after c0 succeeded.
    const a = { job: 'a' };
    const b = { job: 'b' };
    let current: object | undefined;
    const as = (job: object, fn: () => void): void => {
      current = job;
      fn();
      current = undefined;
    };
    checkerKey.current = () => current;
    as(a, () => bus.emit({ kind: 'stateChangeBegin', offset: 0, size: 8192, toDiscard: false }));
    as(b, () => bus.emit({ kind: 'stateChangeBegin', offset: 65536, size: 4096, toDiscard: false }));
    as(a, () => bus.emit({ kind: 'populateStep', offset: 0, size: 8192 }));
    as(b, () => bus.emit({ kind: 'populateStep', offset: 65536, size: 4096 }));
    as(a, () => bus.emit({ kind: 'notifyPopulateDone', listener: 'c0', offset: 0, size: 8192, ret: 0 }));
    as(b, () => bus.emit({ kind: 'notifyPopulateDone', listener: 'c0', offset: 65536, size: 4096, ret: 0 }));
    as(a, () => bus.emit({ kind: 'notifyPopulateDone', listener: 'c1', offset: 0, size: 8192, ret: -ENOMEM }));
    as(b, () => bus.emit({ kind: 'notifyPopulateDone', listener: 'c1', offset: 65536, size: 4096, ret: 0 }));
    as(a, () => bus.emit({ kind: 'notifyDiscard', listener: rollbackTo, offset: 0, size: 8192, rollback: true }));
    as(b, () => bus.emit({ kind: 'stateChangeEnd', offset: 65536, size: 4096, toDiscard: false, ret: 0 }));
    as(a, () => bus.emit({ kind: 'stateChangeEnd', offset: 0, size: 8192, toDiscard: false, ret: -ENOMEM }));
  };
  const checkerKey: InterleavedStateChanges = { current: () => undefined };

  it('exactly the listeners notified before the failing one get the discard: correct, then the failing one discarded', () => {
    for (const [rollbackTo, violations] of [['c0', 0], ['c1', 1]] as const) {
      const bus = new EventBus();
      const found: Violation[] = [];
      const checker = new RollbackChecker(bus, 'listener', new SharedBitmap(64), 4096, found, { current: () => checkerKey.current() });
      events(bus, rollbackTo);
      expect(found.map((v) => v.invariant)).toEqual(Array(violations).fill('rollback'));
      expect(checker.checked).toBe(1);
    }
  });
});
