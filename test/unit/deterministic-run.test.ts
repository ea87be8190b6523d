import { describe, expect, it } from 'vitest';
import { exploreConfig, MAX_STEPS, runCase, type ExploreCase } from '../../src/explore/explore-case.js';
import { runDeterministic } from '../../src/runtime/deterministic/deterministic-run.js';
import { RandomStrategy, type Candidate } from '../../src/runtime/deterministic/strategy.js';
import { ALL_FIXES_PROTOCOL } from '../../src/core/protocol-policy.js';
import { MiB } from '../../src/core/units.js';

const storm = (seed: number, strategy: 'random' | 'pct' = 'random'): ExploreCase => ({
  config: exploreConfig({ workload: 'storm', seed, conversions: 20 }),
  strategy, depth: 2, expectedSteps: 500, scheduleSeed: seed,
});

describe('deterministic runtime', () => {
  it('is deterministic: the same case gives the same trace hash and steps', () => {
    const a = runCase(storm(7));
    const b = runCase(storm(7));
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.steps).toBe(b.steps);
    expect(a.outcome).toBe('completed');
  });

  it('different schedule seeds give different interleavings', () => {
    const hashes = new Set([1, 2, 3, 4, 5].map((s) => runCase({ ...storm(7), scheduleSeed: s }).traceHash));
    expect(hashes.size).toBeGreaterThan(1);
  });

  it('keeps every sender->receiver channel FIFO, whatever the strategy', () => {
    for (const strategy of ['random', 'pct'] as const) {
      const r = runCase(storm(3, strategy), { recordTrace: true });
      const lastSent = new Map<string, number>();
      for (const d of r.trace) {
        const key = `${d.from}->${d.to}`;
        expect(d.sentStep).toBeGreaterThanOrEqual(lastSent.get(key) ?? -1);
        lastSent.set(key, d.sentStep);
      }
    }
  });

  it('replaying recorded deviations reproduces the run exactly', () => {
    const original = runCase(storm(11), { recordChoices: true });
    const replay = runCase({ ...storm(11), strategy: 'replay', deviations: [...original.deviations.entries()] });
    expect(replay.traceHash).toBe(original.traceHash);
  });

  it('runs each step for the QEMU thread it belongs to: a conversion on its vCPU thread, even one admitted later; a hot-plug on the main loop', () => {
    // Under the BQL one conversion runs at a time: a second vCPU's exit waits and is admitted
    // when the first conversion ends, inside another thread's delivery. Its steps must still
    // be its own vCPU's (ActorContext.bind), or a systematic search miscounts preemptions.
    const base = exploreConfig({
      workload: 'storm', seed: 5, conversions: 8, vary: false, protocol: ALL_FIXES_PROTOCOL,
      machine: { vcpus: 3, guestMem: 16 * MiB, containers: [{ backend: 'type1', dmaEntryLimit: 1 << 20, limitSource: 'set' }] },
    });
    const config = { ...base, scheduledEvents: { hotplugs: 1, deviceAccesses: 2 } };
    const vcpuActors = new Set([2 + config.containers.length, 3 + config.containers.length, 4 + config.containers.length]);
    const mainThread = 2 + config.containers.length + config.vcpus;
    let checked = 0;
    let laterAdmitted = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const picked: Candidate[] = [];
      const random = new RandomStrategy(seed);
      const r = runDeterministic(config, {
        strategy: { choose: (candidates, step) => {
          const i = random.choose(candidates);
          picked[step] = { ...candidates[i]!, thread: candidates[i]!.thread! };
          return i;
        } },
        maxSteps: MAX_STEPS, recordTrace: true, stopAtViolation: false,
      });
      expect(r.outcome).toBe('completed');
      for (const d of r.trace) {
        const thread = picked[d.step]!.thread!;
        const m = d.message;
        if (picked[d.step]!.kind === 'device') expect(thread).toBeLessThan(0);
        else if (picked[d.step]!.kind === 'hotplug') expect(thread).toBe(mainThread);
        else if (m.type === 'exit') expect(thread).toBe(d.from);
        else if (m.type === 'stateChange') {
          expect(thread).toBe(m.vcpu);
          checked++;
        } else if (m.type === 'bitmapStep' || m.type === 'exitDone') expect(thread).toBe(d.to);
        else if (m.type === 'register' || m.type === 'unregister' || ((m.type === 'notifyPopulate' || m.type === 'notifyDiscard') && m.replay)) expect(thread).toBe(mainThread);
        else expect(vcpuActors.has(thread) || thread === mainThread).toBe(true);
      }
      // A conversion admitted inside another thread's delivery: its state change follows a reply to another vCPU.
      for (const d of r.trace) if (d.message.type === 'stateChange' && r.trace[d.sentStep]?.message.type === 'stateChangeDone') laterAdmitted++;
    }
    expect(checked).toBeGreaterThan(100);
    expect(laterAdmitted).toBeGreaterThan(0);
  });
});
