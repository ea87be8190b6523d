/**
 * Each policy closes the race it is meant to close, found by exploration
 * (deterministic, fixed seeds) on the small fixed machine: what the
 * `verify` table shows, on a few cells cheap enough for every test run.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeToken, runCase } from '../../src/explore/explore-case.js';
import type { WorkloadName } from '../../src/actors/run-config.js';
import runIterations from '../../src/explore/iteration-task.js';
import { ALL_FIXES_PROTOCOL, MERGED_PROTOCOL, type ProtocolPolicy } from '../../src/core/protocol-policy.js';

/** Invariants found first over seeds 1..n (every seed run, first failure of each). */
function found(workload: WorkloadName, protocol: ProtocolPolicy, n: number): string[] {
  const results = runIterations({ workload, strategy: 'random', depth: 2, expectedSteps: 2000, seed: 1, count: n, keepGoing: true, protocol });
  return [...new Set(results.filter((r) => r.found).map((r) => r.invariant!))].sort();
}

describe('protocol policies, by exploration', () => {
  it('merged, well-behaved guest: vCPUs converting disjoint pages of one bitmap word lose updates; atomic bitmap ops close it', () => {
    expect(found('storm', MERGED_PROTOCOL, 30)).toContain('lost-update');
    expect(found('storm', { ...MERGED_PROTOCOL, bitmapOps: 'atomic' }, 30)).toEqual([]);
  });

  it('merged hot-plug: a walk steps on from a freed listener; with RCU no walk does', () => {
    const atomic: ProtocolPolicy = { ...MERGED_PROTOCOL, bitmapOps: 'atomic' };
    expect(found('hotplug', atomic, 30)).toContain('use-after-free');
    expect(found('hotplug', { ...atomic, listenerList: 'rcu' }, 30)).not.toContain('use-after-free');
    expect(found('hotplug', { ...atomic, registration: 'serialized' }, 30)).toEqual([]);
  });

  it('malicious guest: unlocked or only state-change-locked conversions break the host; the BQL around kvm_convert_memory holds', () => {
    expect(found('adversarial', { ...ALL_FIXES_PROTOCOL, conversionLock: 'none' }, 30)).not.toEqual([]);
    expect(found('adversarial', { ...ALL_FIXES_PROTOCOL, conversionLock: 'rba-mutex' }, 30)).not.toEqual([]);
    expect(found('adversarial', ALL_FIXES_PROTOCOL, 30)).toEqual([]);
  });
});

describe('a malicious guest\'s own livelock is not a host failure', () => {
  it('two vCPUs ping-ponging a page with opposite accesses (found at schedule 1297 of every fix) replays with no violation', () => {
    const token = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'adversarial-ping-pong.token'), 'utf8').trim();
    const r = runCase(decodeToken(token), { stopAtViolation: true });
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('completed');
  });
});
