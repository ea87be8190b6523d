/**
 * The selftest workload against a transcription of the C control flow of
 * Linux's tools/testing/selftests/kvm/x86/private_mem_conversions_test.c
 * (guest_code, guest_test_explicit_conversion, guest_test_punch_hole, and
 * the host's UCALL_SYNC handling), written out here independently of the
 * workload, as a list of steps.
 */
import { describe, expect, it } from 'vitest';
import type { ActionResult, GuestAction, WorkloadContext } from '../../src/actors/vcpu/guest-actions.js';
import { selftest } from '../../src/actors/vcpu/selftest-workload.js';
import { exploreConfig, runCase } from '../../src/explore/explore-case.js';
import type { RunConfig } from '../../src/actors/run-config.js';

const PAGE = 4096;
const SZ_2M = 2 * 1024 * 1024;
const PER_CPU_DATA_SIZE = SZ_2M + PAGE;
const hex = (n: number): string => `0x${n.toString(16)}`;

/** One step as text: who does what to which range. */
function describeAction(a: GuestAction): string {
  switch (a.kind) {
    case 'mapGpa':
      return a.punchHole === true
        ? `punch_hole ${hex(a.gpa)}+${hex(a.size)}`
        : `map_${a.toPrivate ? 'private' : 'shared'} ${hex(a.gpa)}+${hex(a.size)}${a.fallocate === true ? ' fallocate' : ''}`;
    case 'access':
      return `guest memset ${a.private ? 'private' : 'shared'} ${hex(a.gpa)}+${hex(a.size)} ${hex(a.write ?? -1)}`;
    case 'hostWrite':
      return `host memset ${hex(a.gpa)}+${hex(a.size)} ${hex(a.pattern)}`;
    case 'check':
      return `${a.who ?? 'guest'} memcmp ${a.view} ${hex(a.gpa)}+${hex(a.size)} ${hex(a.expect)}`;
    case 'dma':
      return 'dma';
  }
}

/** The workload's steps for one run of guest_code (vCPU 0, base 0), after the set-up conversion. */
function workloadSteps(mode: 'legacy' | 'inplace', sharedFreedOnPrivate: boolean): string[] {
  const ctx: WorkloadContext = {
    vcpu: 0, vcpus: 1, containers: 0, guestMem: 4 * 1024 * 1024, gpaBase: 0, mode, budget: 1,
    sharedFreedOnPrivate, selftestExpect: sharedFreedOnPrivate ? 'qemu' : 'kvm', random: () => 0,
  };
  const w = selftest(ctx);
  const steps: string[] = [];
  let next = w.next();
  while (!next.done) {
    steps.push(describeAction(next.value));
    const result: ActionResult = { ret: 0, exits: next.value.kind === 'mapGpa' ? 1 : 0 };
    next = w.next(result);
  }
  return steps;
}

/**
 * The C code, transcribed. `hostSeesWhilePrivate` is what the host's memcmp
 * in SYNC_PRIVATE expects: the selftest's p1, or QEMU's zeroes (undefined:
 * the check cannot be made, in place).
 */
function transcription(hostSeesWhilePrivate: number | undefined): string[] {
  const s: string[] = [];
  const base = 0;
  const ranges: Array<[number, number]> = [[0, PAGE], [0, SZ_2M], [PAGE, PAGE], [PAGE, SZ_2M], [SZ_2M, PAGE]];
  const memsetG = (gpa: number, size: number, p: number, priv = false): void => {
    s.push(`guest memset ${priv ? 'private' : 'shared'} ${hex(gpa)}+${hex(size)} ${hex(p)}`);
  };
  const memcmpG = (gpa: number, size: number, p: number, priv = false): void => {
    s.push(`guest memcmp ${priv ? 'private' : 'shared'} ${hex(gpa)}+${hex(size)} ${hex(p)}`);
  };
  const syncShared = (gpa: number, size: number, cur: number, next: number): void => {
    s.push(`host memcmp shared ${hex(gpa)}+${hex(size)} ${hex(cur)}`);
    s.push(`host memset ${hex(gpa)}+${hex(size)} ${hex(next)}`);
  };
  const syncPrivate = (gpa: number, size: number): void => {
    if (hostSeesWhilePrivate !== undefined) s.push(`host memcmp shared ${hex(gpa)}+${hex(size)} ${hex(hostSeesWhilePrivate)}`);
  };
  const map = (gpa: number, size: number, shared: boolean, fallocate: boolean): void => {
    s.push(`map_${shared ? 'shared' : 'private'} ${hex(gpa)}+${hex(size)}${fallocate ? ' fallocate' : ''}`);
  };
  const punchHole = (gpa: number, size: number): void => {
    s.push(`punch_hole ${hex(gpa)}+${hex(size)}`);
  };

  const explicitConversion = (doFallocate: boolean): void => {
    memsetG(base, PER_CPU_DATA_SIZE, 0xaa);
    memcmpG(base, PER_CPU_DATA_SIZE, 0xaa);
    syncShared(base, PER_CPU_DATA_SIZE, 0xaa, 0xcc);
    memcmpG(base, PER_CPU_DATA_SIZE, 0xcc);
    for (const [offset, size] of ranges) {
      const gpa = base + offset;
      memsetG(gpa, size, 0x11);
      map(gpa, size, false, doFallocate);
      if (size > PAGE) {
        memsetG(gpa, PAGE, 0x22, true);
      } else {
        memsetG(gpa, size, 0x22, true);
        syncPrivate(gpa, size);
        memcmpG(gpa, size, 0x22, true);
        if (gpa > base) memcmpG(base, gpa - base, 0xcc);
        if (gpa + size < base + PER_CPU_DATA_SIZE) memcmpG(gpa + size, base + PER_CPU_DATA_SIZE - (gpa + size), 0xcc);
        for (let j = 0; j < size; j += PAGE) {
          if ((j / PAGE) & 1) throw new Error('a one-page range has no odd page');
          syncPrivate(gpa + j, PAGE);
        }
      }
      // skip:
      map(gpa, size, true, doFallocate);
      memsetG(gpa, size, 0x33);
      syncShared(gpa, size, 0x33, 0x44);
      memcmpG(gpa, size, 0x44);
      memsetG(gpa, size, 0xcc);
      map(base, PER_CPU_DATA_SIZE, true, true);
    }
  };
  const testPunchHole = (precise: boolean): void => {
    map(base, PER_CPU_DATA_SIZE, false, false);
    for (const [offset, size] of ranges) {
      const gpa = base + offset;
      punchHole(base, PER_CPU_DATA_SIZE);
      if (precise) {
        memsetG(gpa, size, 0xcc, true);
        memcmpG(gpa, size, 0xcc, true);
      } else {
        memsetG(base, PER_CPU_DATA_SIZE, 0xcc, true);
        memcmpG(base, PER_CPU_DATA_SIZE, 0xcc, true);
      }
      punchHole(gpa, size);
      memcmpG(gpa, size, 0, true);
    }
  };
  // guest_code
  explicitConversion(false);
  explicitConversion(true);
  testPunchHole(false);
  testPunchHole(true);
  return s;
}

describe('selftest workload = private_mem_conversions_test, step for step', () => {
  const setup = `map_shared 0x0+${hex(PER_CPU_DATA_SIZE)}`;

  it('kvm expectations (legacy): the host still sees p1 while the range is private', () => {
    const steps = workloadSteps('legacy', false);
    expect(steps[0]).toBe(setup);
    expect(steps.slice(1)).toEqual(transcription(0x11));
  });

  it('qemu expectations (legacy, anonymous shared memory): the host sees zeroes there', () => {
    expect(workloadSteps('legacy', true).slice(1)).toEqual(transcription(0));
  });

  it('in place: the host cannot read a private page, so those two checks are not made', () => {
    expect(workloadSteps('inplace', true).slice(1)).toEqual(transcription(undefined));
  });

  it('the 2 MiB cases write p2 to the first page only, and no single odd page is ever converted', () => {
    const steps = workloadSteps('legacy', true);
    const pass = ['0x0+0x1000', '0x0+0x1000', '0x1000+0x1000', '0x1000+0x1000', '0x200000+0x1000'].map((r) => `guest memset private ${r} 0x22`);
    expect(steps.filter((x) => /^guest memset private .* 0x22$/.test(x))).toEqual([...pass, ...pass]);
    // Single-page conversions are the 4K cases themselves (offsets 0, 4K, 2M), never gpa + an odd page of a 2 MiB case.
    const pageConversions = steps.filter((x) => /^map_(private|shared) 0x[0-9a-f]+\+0x1000/.test(x)).map((x) => x.split(' ')[1]);
    expect(new Set(pageConversions)).toEqual(new Set(['0x0+0x1000', '0x1000+0x1000', '0x200000+0x1000']));
  });
});

describe('run --workload selftest: no violation under both expectations, legacy and in place, on every platform', () => {
  const base = exploreConfig({ workload: 'selftest', seed: 1, conversions: 60 });
  for (const selftestExpect of ['kvm', 'qemu'] as const) {
    for (const mode of ['legacy', 'inplace'] as const) {
      for (const platform of ['sw-protected', 'tdx', 'snp'] as const) {
        it(`${selftestExpect}, ${mode}, ${platform}`, () => {
          const config: RunConfig = { ...base, vcpus: 2, selftestExpect, mode, platform };
          const r = runCase({ config, strategy: 'random', depth: 1, expectedSteps: 1, scheduleSeed: 2 }, { stopAtViolation: false });
          expect(r.violations).toEqual([]);
          expect(r.outcome).toBe('completed');
          const checks = r.stats.reduce((n, s) => n + Object.entries(s).filter(([k]) => k.endsWith(': data checks')).reduce((m, [, v]) => m + v, 0), 0);
          expect(checks).toBeGreaterThan(100);
        });
      }
    }
  }
});
