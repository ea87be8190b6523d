/**
 * Each platform's conversion exits: TDX MapGPA pieces (2 MiB lengths from
 * the start GPA) and KVM's RETRY between pieces, SNP page-state-change
 * lists (4 KiB and 2 MiB entries, coalesced by KVM's snp_begin_psc), and
 * the single KVM_HC_MAP_GPA_RANGE exit of a SW_PROTECTED VM.
 */
import { ALL_FIXES_PROTOCOL } from '../../src/core/protocol-policy.js';
import { describe, expect, it } from 'vitest';
import {
  conversionExits, snpPscExits, snpPscRequests, tdxMapGpaPieces, VMGEXIT_PSC_MAX_ENTRY,
} from '../../src/actors/vcpu/conversion-exits.js';
import type { RunConfig } from '../../src/actors/run-config.js';
import { EXIT_MAP_GPA, type Message } from '../../src/actors/protocol.js';
import { exploreConfig, runCase } from '../../src/explore/explore-case.js';

const K = 1024;
const M = 1024 * K;
const P = 4 * K;

describe('tdx: MapGPA pieces', () => {
  it('2 MiB lengths from the start GPA, not 2 MiB-aligned boundaries', () => {
    expect(tdxMapGpaPieces(P, 2 * M)).toEqual([[P, 2 * M]]);
    expect(tdxMapGpaPieces(P, 2 * M + P)).toEqual([[P, 2 * M], [2 * M + P, P]]);
    expect(tdxMapGpaPieces(6 * M, 5 * M)).toEqual([[6 * M, 2 * M], [8 * M, 2 * M], [10 * M, M]]);
    expect(tdxMapGpaPieces(0, P)).toEqual([[0, P]]);
  });
});

describe('sw-protected: one KVM_HC_MAP_GPA_RANGE exit for the whole range', () => {
  it('any size, any alignment', () => {
    expect(conversionExits('sw-protected', P, 5 * M + P)).toEqual([[P, 5 * M + P]]);
  });
});

describe('snp: page-state-change lists', () => {
  it('the guest uses 2 MiB entries where the range is aligned and long enough, 4 KiB entries elsewhere', () => {
    const [request, ...more] = snpPscRequests(2 * M - 2 * P, 2 * M + 3 * P);
    expect(more).toEqual([]);
    expect(request).toEqual([
      { gpa: 2 * M - 2 * P, huge: false }, { gpa: 2 * M - P, huge: false },
      { gpa: 2 * M, huge: true },
      { gpa: 4 * M, huge: false },
    ]);
  });

  it('KVM coalesces contiguous entries of the same page size into one exit (2 MiB and 4 KiB entries are not merged)', () => {
    const entries = snpPscRequests(2 * M - 2 * P, 2 * M + 3 * P)[0]!;
    expect(snpPscExits(entries)).toEqual([[2 * M - 2 * P, 2 * P], [2 * M, 2 * M], [4 * M, P]]);
    // Two 2 MiB entries in a row: one exit of 4 MiB.
    expect(conversionExits('snp', 2 * M, 4 * M)).toEqual([[2 * M, 4 * M]]);
    // A gap breaks the run.
    expect(snpPscExits([{ gpa: 0, huge: false }, { gpa: 2 * P, huge: false }])).toEqual([[0, P], [2 * P, P]]);
  });

  it(`a request holds at most ${VMGEXIT_PSC_MAX_ENTRY} entries: 2 MiB at an unaligned start is 512 entries, 8 requests, 8 exits of 256 KiB`, () => {
    const requests = snpPscRequests(P, 2 * M);
    expect(requests.map((r) => r.length)).toEqual([64, 64, 64, 64, 64, 64, 64, 64]);
    const exits = conversionExits('snp', P, 2 * M);
    expect(exits).toHaveLength(8);
    expect(exits.every(([, size]) => size === 64 * P)).toBe(true);
    expect(exits[0]).toEqual([P, 256 * K]);
    expect(exits.at(-1)).toEqual([P + 7 * 256 * K, 256 * K]);
  });
});

/** Every MapGPA exit (gpa, size) a run's vCPUs sent, in delivery order. */
function mapGpaExits(config: RunConfig): Array<[number, number]> {
  const r = runCase({ config, strategy: 'random', depth: 1, expectedSteps: 1, scheduleSeed: 3 }, { recordTrace: true, stopAtViolation: false });
  expect(r.violations).toEqual([]);
  return r.trace.map((d) => d.message).filter((m): m is Extract<Message, { type: 'exit' }> => m.type === 'exit' && m.reason === EXIT_MAP_GPA)
    .map((m) => [m.gpa, m.size]);
}

describe('the vCPU drives the platform exits', () => {
  const base = exploreConfig({ workload: 'storm', seed: 5, conversions: 60, protocol: ALL_FIXES_PROTOCOL });

  it('tdx: every exit is at most 2 MiB; KVM returns RETRY between pieces when events are pending, and the guest reissues the rest', () => {
    // Enough conversions for several multi-piece MapGPAs (storm: 15% are larger than 2 MiB).
    const config: RunConfig = { ...base, conversions: 300, platform: 'tdx' };
    const exits = mapGpaExits(config);
    expect(exits.every(([, size]) => size <= 2 * M)).toBe(true);
    expect(exits.some(([, size]) => size === 2 * M)).toBe(true);
    const r = runCase({ config, strategy: 'random', depth: 1, expectedSteps: 1, scheduleSeed: 3 }, { stopAtViolation: false });
    const vcpuStats = r.stats.filter((_, i) => r.actors[i]!.role === 'vcpu');
    const retries = vcpuStats.reduce((n, s) => n + (s['mapGpaRetries'] ?? 0), 0);
    expect(retries).toBeGreaterThan(0);
    // A retry re-issues from the next piece's GPA: the exits are the same as without one.
    expect(retries).toBeLessThan(vcpuStats.reduce((n, s) => n + (s['mapGpaExits'] ?? 0), 0));
  });

  it('sw-protected: conversions larger than 2 MiB reach QEMU as one exit', () => {
    const exits = mapGpaExits({ ...base, platform: 'sw-protected' });
    expect(exits.some(([, size]) => size > 2 * M)).toBe(true);
  });

  it('snp: no exit mixes page sizes; 2 MiB-sized exits are 2 MiB aligned', () => {
    const exits = mapGpaExits({ ...base, platform: 'snp' });
    for (const [gpa, size] of exits) {
      if (size >= 2 * M && size % (2 * M) === 0 && gpa % (2 * M) === 0) continue;
      expect(size).toBeLessThanOrEqual(VMGEXIT_PSC_MAX_ENTRY * P);
    }
  });
});
