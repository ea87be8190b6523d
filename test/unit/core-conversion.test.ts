/**
 * The whole conversion path through ConfidentialVm: `kvm_convert_memory`
 * (spec section 5), the in-place orders (section 6), rollback across two
 * VFIO containers (section 7), device access outcomes and the invariant
 * checker (section 9).
 */
import { describe, expect, it } from 'vitest';
import { ConfidentialVm, DEFAULT_VM_CONFIG, type VmConfig } from '../../src/core/confidential-vm.js';
import { EAGAIN, EBUSY, EINVAL, ENOENT, ENOSPC } from '../../src/core/errno.js';

const ENOMEM = 12;
import { isEffect, type EffectEvent } from '../../src/core/events.js';
import { InvariantChecker } from '../../src/core/invariants.js';
import type { RollbackPolicy } from '../../src/core/ram-block-attributes.js';

const K = 1024;
const M = 1024 * K;
const P = 4 * K;

/** Effect events without the free-text `reason` of vmStop. */
type Effect = Record<string, unknown>;

function setup(config: Partial<VmConfig> & { regionSize: number }): { vm: ConfidentialVm; events: Effect[]; checker: InvariantChecker } {
  const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, ...config });
  const events: Effect[] = [];
  vm.bus.subscribe((e) => {
    if (!isEffect(e)) return;
    if (e.kind === 'vmStop') events.push({ kind: 'vmStop' });
    else events.push({ ...(e as EffectEvent) });
  });
  const checker = new InvariantChecker(vm);
  return { vm, events, checker };
}

function mappings(vm: ConfidentialVm, id: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  vm.container(id).mappings.forEach((iova, size) => {
    out.push([iova, size]);
  });
  return out;
}

const sharedBlocks = (vm: ConfidentialVm): Array<[number, number]> => vm.rba.bitmap.setRuns();
const kvmSharedBlocks = (vm: ConfidentialVm): Array<[number, number]> => vm.kvm.shared.setRuns();

describe('kvm_convert_memory: the shared backing and injected failures (current QEMU)', () => {
  it('hugetlb shared backing: a conversion to private does not discard the shared page, which keeps its data', () => {
    for (const [backing, discarded] of [['anonymous', true], ['hugetlb', false]] as const) {
      const { vm, events } = setup({ regionSize: 4 * M, sharedBacking: backing });
      expect(vm.convert(0, 2 * M, false)).toBe(0);
      vm.memory.writeShared(0, P, 0x11);
      events.length = 0;
      expect(vm.convert(0, P, true)).toBe(0);
      expect(events.some((e) => e['kind'] === 'discardShared')).toBe(discarded);
      expect(vm.memory.readShared(0)).toBe(discarded ? 0 : 0x11);
      // To shared, guest_memfd is discarded whatever the shared backing.
      events.length = 0;
      expect(vm.convert(0, P, false)).toBe(0);
      expect(events.at(-1)).toEqual({ kind: 'discardPrivate', offset: 0, size: P });
    }
  });

  it('a failed KVM_SET_MEMORY_ATTRIBUTES is returned as it is, before anything changes; the VM stops', () => {
    const calls: unknown[] = [];
    const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize: 4 * M }, {
      failSetAttributes: (gpa, size, toPrivate) => {
        calls.push([gpa, size, toPrivate]);
        return -ENOMEM;
      },
      failDiscard: () => 0,
    });
    expect(vm.convert(2 * M, P, false)).toBe(-ENOMEM);
    expect(calls).toEqual([[2 * M, P, false]]);
    expect(vm.kvm.shared.setRuns()).toEqual([]);
    expect(vm.rba.bitmap.setRuns()).toEqual([]);
    expect(vm.stopReason).toMatch(/-12|ENOMEM/);
  });

  it('a failed discard is returned after the attributes and the bitmap changed (as QEMU returns ram_block_discard_range\'s error)', () => {
    for (const toPrivate of [false, true]) {
      const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize: 4 * M }, {
        failSetAttributes: () => 0,
        failDiscard: (_offset, _size, leavingShared) => (leavingShared === toPrivate ? -EBUSY : 0),
      });
      if (toPrivate) expect(vm.convert(0, P, false)).toBe(0);
      vm.memory.writeShared(0, P, 0x22);
      expect(vm.convert(0, P, toPrivate)).toBe(-EBUSY);
      expect(vm.kvm.shared.setRuns()).toEqual(toPrivate ? [] : [[0, 1]]);
      expect(vm.rba.bitmap.setRuns()).toEqual(toPrivate ? [] : [[0, 1]]);
      if (toPrivate) expect(vm.memory.readShared(0)).toBe(0x22); // not discarded
      expect(vm.vmStopped).toBe(true);
    }
  });
});

describe('kvm_convert_memory: argument and region checks (spec 5, steps 1-2)', () => {
  for (const [what, gpa, size] of [
    ['unaligned start', 512, P],
    ['unaligned size', 0, P + 1],
    ['zero size', 0, 0],
  ] as const) {
    for (const toPrivate of [false, true]) {
      it(`${what} -> -EINVAL (to ${toPrivate ? 'private' : 'shared'}); the VM stops; nothing else happens`, () => {
        const { vm, events } = setup({ regionSize: 16 * K });
        vm.addContainer('c', 'type1');
        vm.register('c', { offset: 0, size: 16 * K, iova: 0 });
        expect(vm.convert(gpa, size, toPrivate)).toBe(-EINVAL);
        expect(events).toEqual([{ kind: 'vmStop' }]);
        expect(vm.vmStopped).toBe(true);
        expect(vm.stopReason).toMatch(/EINVAL/);
        expect(sharedBlocks(vm)).toEqual([]);
        expect(kvmSharedBlocks(vm)).toEqual([]);
      });
    }
  }

  it('outside the region, to shared: 0 (emulated MMIO), nothing happens, the VM runs on', () => {
    const { vm, events } = setup({ regionSize: 16 * K, gpaBase: 1 * M });
    expect(vm.convert(0, P, false)).toBe(0);
    expect(vm.convert(1 * M + 16 * K, 8 * K, false)).toBe(0);
    expect(vm.convert(1 * M - P, P, false)).toBe(0); // ends exactly at the region start
    expect(events).toEqual([]);
    expect(vm.vmStopped).toBe(false);
  });

  it('outside the region, to private: -EINVAL (current QEMU; older QEMU returned -1); the VM stops', () => {
    const { vm, events } = setup({ regionSize: 16 * K, gpaBase: 1 * M });
    expect(vm.convert(0, P, true)).toBe(-EINVAL);
    expect(events).toEqual([{ kind: 'vmStop' }]);
    expect(vm.vmStopped).toBe(true);
  });

  it('the VM stops once: a second failure emits no second vmStop', () => {
    const { vm, events } = setup({ regionSize: 16 * K });
    expect(vm.convert(1, P, true)).toBe(-EINVAL);
    expect(vm.convert(0, 0, true)).toBe(-EINVAL);
    expect(events).toEqual([{ kind: 'vmStop' }]);
  });

  it('a range running past the region end: KVM attributes are set (step 4) before the state change fails with -EINVAL (step 5)', () => {
    const { vm, events } = setup({ regionSize: 16 * K });
    expect(vm.convert(12 * K, 8 * K, false)).toBe(-EINVAL);
    expect(events).toEqual([{ kind: 'kvmSetAttributes', gpa: 12 * K, size: 8 * K, private: false }, { kind: 'vmStop' }]);
    expect(sharedBlocks(vm)).toEqual([]);
    expect(kvmSharedBlocks(vm)).toEqual([[3, 1]]);
  });
});

describe('kvm_convert_memory, legacy backing: the effective orders (spec 5)', () => {
  it('to shared: KVM attribute -> bitmap set -> VFIO map -> free the private page; to private: KVM -> bitmap clear -> VFIO unmap -> free the shared page', () => {
    const { vm, events, checker } = setup({ regionSize: 64 * K, gpaBase: 4 * M });
    vm.addContainer('c', 'iommufd');
    expect(vm.register('c', { offset: 16 * K, size: 32 * K, iova: 0x10000000 })).toBe(0);
    expect(events).toEqual([]);
    const bitsAtEvent: string[] = [];
    vm.bus.subscribe((e) => {
      if (e.kind === 'dmaMap' || e.kind === 'dmaUnmap') bitsAtEvent.push(`${e.kind}:${vm.rba.bitmap.test(5) ? 1 : 0}`);
    });
    expect(vm.convert(4 * M + 20 * K, 8 * K, false)).toBe(0); // region offset 20K = blocks 5, 6
    expect(events).toEqual([
      { kind: 'kvmSetAttributes', gpa: 4 * M + 20 * K, size: 8 * K, private: false },
      { kind: 'notifyPopulate', listener: 'c', offset: 20 * K, size: 8 * K },
      { kind: 'dmaMap', container: 'c', iova: 0x10000000 + 4 * K, size: P, ret: 0 },
      { kind: 'dmaMap', container: 'c', iova: 0x10000000 + 8 * K, size: P, ret: 0 },
      { kind: 'discardPrivate', offset: 20 * K, size: 8 * K },
    ]);
    expect(checker.checkConverted(4 * M + 20 * K, 8 * K, false)).toEqual([]);
    events.length = 0;
    expect(vm.convert(4 * M + 20 * K, 8 * K, true)).toBe(0);
    expect(events).toEqual([
      { kind: 'kvmSetAttributes', gpa: 4 * M + 20 * K, size: 8 * K, private: true },
      { kind: 'notifyDiscard', listener: 'c', offset: 20 * K, size: 8 * K },
      { kind: 'dmaUnmap', container: 'c', iova: 0x10000000 + 4 * K, size: 8 * K, ret: 0 },
      { kind: 'discardShared', offset: 20 * K, size: 8 * K },
    ]);
    expect(bitsAtEvent).toEqual(['dmaMap:1', 'dmaMap:1', 'dmaUnmap:0']);
    expect(checker.checkConverted(4 * M + 20 * K, 8 * K, true)).toEqual([]);
    expect(checker.checkQuiescent()).toEqual([]);
    expect(checker.drain()).toEqual([]);
    expect(vm.vmStopped).toBe(false);
  });

  it('converting to shared 2 MiB maps 512 pages of 4 KiB in each container', () => {
    const { vm, events } = setup({ regionSize: 4 * M });
    vm.addContainer('t', 'type1');
    vm.addContainer('f', 'iommufd');
    vm.register('t', { offset: 0, size: 4 * M, iova: 0 });
    vm.register('f', { offset: 0, size: 4 * M, iova: 0 });
    expect(vm.convert(2 * M, 2 * M, false)).toBe(0);
    const maps = events.filter((e) => e['kind'] === 'dmaMap');
    expect(maps.filter((e) => e['container'] === 't')).toHaveLength(512);
    expect(maps.filter((e) => e['container'] === 'f')).toHaveLength(512);
    expect(maps.every((e) => e['size'] === P && e['ret'] === 0)).toBe(true);
    expect(vm.container('t').mappings.count).toBe(512);
    expect(vm.container('f').mappings.count).toBe(512);
  });

  it('a map failure: the error goes up, the VM stops, the private page is not freed, KVM stays shared', () => {
    const { vm, events } = setup({ regionSize: 16 * K });
    vm.addContainer('c', 'type1');
    vm.register('c', { offset: 0, size: 16 * K, iova: 0 });
    vm.container('c').failNextMaps(1, 28);
    expect(vm.convert(0, 8 * K, false)).toBe(-ENOSPC);
    expect(events).toEqual([
      { kind: 'kvmSetAttributes', gpa: 0, size: 8 * K, private: false },
      { kind: 'notifyPopulate', listener: 'c', offset: 0, size: 8 * K },
      { kind: 'dmaMap', container: 'c', iova: 0, size: P, ret: -ENOSPC },
      { kind: 'dmaUnmap', container: 'c', iova: 0, size: 8 * K, ret: 0 },
      { kind: 'vmStop' },
    ]);
    expect(vm.vmStopped).toBe(true);
    expect(vm.stopReason).toMatch(/ENOSPC/);
    expect(kvmSharedBlocks(vm)).toEqual([[0, 2]]);
    expect(sharedBlocks(vm)).toEqual([[0, 2]]); // policy none: the bits stay set
  });
});

describe('rollback across two VFIO containers, failure injected with failNextMaps (spec 7)', () => {
  /**
   * Region of 8 blocks. Container `a` (type1) registers [8K, 32K) at IOVA
   * 0x10000000 first, `b` (iommufd) registers the whole region at IOVA 1 MiB
   * second, so `b` is notified first and `a` second. Block 2 starts shared.
   */
  function twoContainers(rollback: RollbackPolicy): ReturnType<typeof setup> {
    const s = setup({ regionSize: 32 * K, rollback });
    s.vm.addContainer('a', 'type1');
    s.vm.addContainer('b', 'iommufd');
    expect(s.vm.register('a', { offset: 8 * K, size: 24 * K, iova: 0x10000000 })).toBe(0);
    expect(s.vm.register('b', { offset: 0, size: 32 * K, iova: 1 * M })).toBe(0);
    expect(s.vm.rba.listenerNames).toEqual(['b', 'a']);
    expect(s.vm.convert(8 * K, 4 * K, false)).toBe(0);
    expect(mappings(s.vm, 'a')).toEqual([[0x10000000, P]]);
    expect(mappings(s.vm, 'b')).toEqual([[1 * M + 8 * K, P]]);
    s.events.length = 0;
    return s;
  }

  /** The populate steps of the mixture walk over blocks 0, 1, 3 until `a` fails at block 3. */
  const mixtureSteps: Effect[] = [
    { kind: 'kvmSetAttributes', gpa: 0, size: 16 * K, private: false },
    { kind: 'notifyPopulate', listener: 'b', offset: 0, size: P },
    { kind: 'dmaMap', container: 'b', iova: 1 * M, size: P, ret: 0 },
    { kind: 'notifyPopulate', listener: 'b', offset: 4 * K, size: P },
    { kind: 'dmaMap', container: 'b', iova: 1 * M + 4 * K, size: P, ret: 0 },
    { kind: 'notifyPopulate', listener: 'b', offset: 12 * K, size: P },
    { kind: 'dmaMap', container: 'b', iova: 1 * M + 12 * K, size: P, ret: 0 },
    { kind: 'notifyPopulate', listener: 'a', offset: 12 * K, size: P },
    { kind: 'dmaMap', container: 'a', iova: 0x10001000, size: P, ret: -ENOSPC },
    { kind: 'dmaUnmap', container: 'a', iova: 0x10001000, size: P, ret: 0 }, // a's own rollback
  ];

  it('none, mixture: nothing undone; b keeps blocks 0, 1, 3 mapped, a never maps block 3; bits 0-3 set', () => {
    const { vm, events, checker } = twoContainers('none');
    vm.container('a').failNextMaps(1, 28);
    expect(vm.convert(0, 16 * K, false)).toBe(-ENOSPC);
    expect(events).toEqual([...mixtureSteps, { kind: 'vmStop' }]);
    expect(sharedBlocks(vm)).toEqual([[0, 4]]);
    expect(mappings(vm, 'b')).toEqual([[1 * M, P], [1 * M + 4 * K, P], [1 * M + 8 * K, P], [1 * M + 12 * K, P]]);
    expect(mappings(vm, 'a')).toEqual([[0x10000000, P]]);
    expect(checker.drain()).toEqual([]);
    // Some containers mapped, others not: a's shared run [8K, 16K) is only half mapped.
    expect(checker.checkAgreement().map((v) => [v.invariant, v.container, v.offset, v.size])).toEqual([['disagreement', 'a', 8 * K, 8 * K]]);
  });

  it('listener, mixture: only b (notified before a) discards block 3, never a; bit 3 cleared; blocks 0 and 1 stay', () => {
    const { vm, events, checker } = twoContainers('listener');
    vm.container('a').failNextMaps(1, 28);
    expect(vm.convert(0, 16 * K, false)).toBe(-ENOSPC);
    expect(events).toEqual([
      ...mixtureSteps,
      { kind: 'notifyDiscard', listener: 'b', offset: 12 * K, size: P, rollback: true },
      { kind: 'dmaUnmap', container: 'b', iova: 1 * M + 12 * K, size: P, ret: 0 },
      { kind: 'vmStop' },
    ]);
    expect(sharedBlocks(vm)).toEqual([[0, 3]]);
    expect(mappings(vm, 'b')).toEqual([[1 * M, P], [1 * M + 4 * K, P], [1 * M + 8 * K, P]]);
    expect(mappings(vm, 'a')).toEqual([[0x10000000, P]]);
    expect(checker.drain()).toEqual([]); // rollback exactness holds
  });

  it('full, mixture: as listener, then blocks 0 and 1 (changed by this call) go back, ascending; bitmap back to its prior value', () => {
    const { vm, events, checker } = twoContainers('full');
    vm.container('a').failNextMaps(1, 28);
    expect(vm.convert(0, 16 * K, false)).toBe(-ENOSPC);
    expect(events).toEqual([
      ...mixtureSteps,
      { kind: 'notifyDiscard', listener: 'b', offset: 12 * K, size: P, rollback: true },
      { kind: 'dmaUnmap', container: 'b', iova: 1 * M + 12 * K, size: P, ret: 0 },
      { kind: 'notifyDiscard', listener: 'b', offset: 0, size: P, rollback: true },
      { kind: 'dmaUnmap', container: 'b', iova: 1 * M, size: P, ret: 0 },
      { kind: 'notifyDiscard', listener: 'b', offset: 4 * K, size: P, rollback: true },
      { kind: 'dmaUnmap', container: 'b', iova: 1 * M + 4 * K, size: P, ret: 0 },
      { kind: 'vmStop' },
    ]);
    expect(sharedBlocks(vm)).toEqual([[2, 1]]);
    expect(mappings(vm, 'b')).toEqual([[1 * M + 8 * K, P]]);
    expect(mappings(vm, 'a')).toEqual([[0x10000000, P]]);
    expect(checker.drain()).toEqual([]);
    // KVM attributes were set before the state change and are not rolled back (QEMU does not either).
    expect(kvmSharedBlocks(vm)).toEqual([[0, 4]]);
  });

  for (const policy of ['none', 'listener', 'full'] as const) {
    it(`${policy}, all discarded: b maps, a fails; ${policy === 'none' ? 'b stays mapped' : 'b (only) is told to discard'}`, () => {
      const { vm, events } = twoContainers(policy);
      vm.container('a').failNextMaps(1, 28);
      expect(vm.convert(16 * K, 16 * K, false)).toBe(-ENOSPC); // blocks 4-7, all private
      const common: Effect[] = [
        { kind: 'kvmSetAttributes', gpa: 16 * K, size: 16 * K, private: false },
        { kind: 'notifyPopulate', listener: 'b', offset: 16 * K, size: 16 * K },
        ...[0, 1, 2, 3].map((i) => ({ kind: 'dmaMap', container: 'b', iova: 1 * M + 16 * K + i * P, size: P, ret: 0 })),
        { kind: 'notifyPopulate', listener: 'a', offset: 16 * K, size: 16 * K },
        { kind: 'dmaMap', container: 'a', iova: 0x10000000 + 8 * K, size: P, ret: -ENOSPC },
        { kind: 'dmaUnmap', container: 'a', iova: 0x10000000 + 8 * K, size: 16 * K, ret: 0 },
      ];
      const rollback: Effect[] = policy === 'none' ? [] : [
        { kind: 'notifyDiscard', listener: 'b', offset: 16 * K, size: 16 * K, rollback: true },
        { kind: 'dmaUnmap', container: 'b', iova: 1 * M + 16 * K, size: 16 * K, ret: 0 },
      ];
      expect(events).toEqual([...common, ...rollback, { kind: 'vmStop' }]);
      expect(sharedBlocks(vm)).toEqual(policy === 'none' ? [[2, 1], [4, 4]] : [[2, 1]]);
      expect(mappings(vm, 'b').length).toBe(policy === 'none' ? 5 : 1);
      expect(mappings(vm, 'a')).toEqual([[0x10000000, P]]);
    });
  }

  it('the failure in the container notified first (b, the newest): nobody to roll back, whatever the policy', () => {
    for (const policy of ['none', 'listener', 'full'] as const) {
      const { vm, events } = twoContainers(policy);
      vm.container('b').failNextMaps(1, 28);
      expect(vm.convert(16 * K, 16 * K, false)).toBe(-ENOSPC);
      expect(events.filter((e) => e['kind'] === 'notifyDiscard')).toEqual([]);
      expect(events.filter((e) => e['kind'] === 'notifyPopulate')).toEqual([{ kind: 'notifyPopulate', listener: 'b', offset: 16 * K, size: 16 * K }]);
      expect(events.filter((e) => e['kind'] === 'dmaUnmap')).toEqual([{ kind: 'dmaUnmap', container: 'b', iova: 1 * M + 16 * K, size: 16 * K, ret: -ENOENT }]);
      expect(sharedBlocks(vm)).toEqual(policy === 'none' ? [[2, 1], [4, 4]] : [[2, 1]]);
    }
  });
});

describe('in-place conversion: the three orders (spec 6)', () => {
  function inplace(order: 'v6' | 'priority' | 'explicit'): ReturnType<typeof setup> {
    const s = setup({ regionSize: 16 * K, mode: 'inplace', inplaceOrder: order });
    s.vm.addContainer('c', 'iommufd');
    expect(s.vm.register('c', { offset: 0, size: 16 * K, iova: 0 })).toBe(0);
    return s;
  }

  it('v6, to shared: KVM -> CONVERT_SHARED -> map; no violation', () => {
    const { vm, events, checker } = inplace('v6');
    expect(vm.convert(0, 8 * K, false)).toBe(0);
    expect(events).toEqual([
      { kind: 'kvmSetAttributes', gpa: 0, size: 8 * K, private: false },
      { kind: 'gmemConvertShared', offset: 0, size: 8 * K, ret: 0 },
      { kind: 'notifyPopulate', listener: 'c', offset: 0, size: 8 * K },
      { kind: 'dmaMap', container: 'c', iova: 0, size: P, ret: 0 },
      { kind: 'dmaMap', container: 'c', iova: P, size: P, ret: 0 },
    ]);
    expect(checker.drain()).toEqual([]);
  });

  it('v6, to private: CONVERT_PRIVATE meets the VFIO pin -> -EAGAIN, inplace-order violation, VM stops, nothing unmapped', () => {
    const { vm, events, checker } = inplace('v6');
    expect(vm.convert(0, 8 * K, false)).toBe(0);
    events.length = 0;
    expect(vm.convert(0, 8 * K, true)).toBe(-EAGAIN);
    expect(events).toEqual([
      { kind: 'kvmSetAttributes', gpa: 0, size: 8 * K, private: true },
      { kind: 'gmemConvertPrivate', offset: 0, size: 8 * K, ret: -EAGAIN },
      { kind: 'vmStop' },
    ]);
    expect(vm.memory.lastConvertErrorOffset).toBe(0);
    expect(checker.drain().map((v) => v.invariant)).toContain('inplace-order');
    expect(mappings(vm, 'c')).toEqual([[0, P], [P, P]]);
    expect(sharedBlocks(vm)).toEqual([[0, 2]]);
    expect(vm.vmStopped).toBe(true);
  });

  it('v6, to private with nothing mapped: no -EAGAIN, no violation', () => {
    const s = setup({ regionSize: 16 * K, mode: 'inplace', inplaceOrder: 'v6' });
    expect(s.vm.convert(0, 8 * K, false)).toBe(0);
    expect(s.vm.convert(0, 8 * K, true)).toBe(0);
    expect(s.checker.drain()).toEqual([]);
  });

  it('explicit: to shared CONVERT_SHARED before the map; to private the unmap before CONVERT_PRIVATE; no violation', () => {
    const { vm, events, checker } = inplace('explicit');
    expect(vm.convert(0, 8 * K, false)).toBe(0);
    expect(vm.convert(0, 8 * K, true)).toBe(0);
    expect(events).toEqual([
      { kind: 'kvmSetAttributes', gpa: 0, size: 8 * K, private: false },
      { kind: 'gmemConvertShared', offset: 0, size: 8 * K, ret: 0 },
      { kind: 'notifyPopulate', listener: 'c', offset: 0, size: 8 * K },
      { kind: 'dmaMap', container: 'c', iova: 0, size: P, ret: 0 },
      { kind: 'dmaMap', container: 'c', iova: P, size: P, ret: 0 },
      { kind: 'kvmSetAttributes', gpa: 0, size: 8 * K, private: true },
      { kind: 'notifyDiscard', listener: 'c', offset: 0, size: 8 * K },
      { kind: 'dmaUnmap', container: 'c', iova: 0, size: 8 * K, ret: 0 },
      { kind: 'gmemConvertPrivate', offset: 0, size: 8 * K, ret: 0 },
    ]);
    expect(checker.drain()).toEqual([]);
    expect(checker.checkQuiescent()).toEqual([]);
    expect(checker.checkConverted(0, 8 * K, true)).toEqual([]);
    expect(vm.vmStopped).toBe(false);
  });

  it('priority: the KVM listener (priority 0) is first on populate and last on discard; no violation', () => {
    const { vm, events, checker } = inplace('priority');
    expect(vm.rba.listenerNames).toEqual(['kvm', 'c']);
    expect(vm.convert(0, 8 * K, false)).toBe(0);
    expect(vm.convert(0, 8 * K, true)).toBe(0);
    expect(events).toEqual([
      { kind: 'notifyPopulate', listener: 'kvm', offset: 0, size: 8 * K },
      { kind: 'kvmSetAttributes', gpa: 0, size: 8 * K, private: false },
      { kind: 'gmemConvertShared', offset: 0, size: 8 * K, ret: 0 },
      { kind: 'notifyPopulate', listener: 'c', offset: 0, size: 8 * K },
      { kind: 'dmaMap', container: 'c', iova: 0, size: P, ret: 0 },
      { kind: 'dmaMap', container: 'c', iova: P, size: P, ret: 0 },
      { kind: 'notifyDiscard', listener: 'c', offset: 0, size: 8 * K },
      { kind: 'dmaUnmap', container: 'c', iova: 0, size: 8 * K, ret: 0 },
      { kind: 'notifyDiscard', listener: 'kvm', offset: 0, size: 8 * K },
      { kind: 'kvmSetAttributes', gpa: 0, size: 8 * K, private: true },
      { kind: 'gmemConvertPrivate', offset: 0, size: 8 * K, ret: 0 },
    ]);
    expect(checker.drain()).toEqual([]);
    expect(checker.checkConverted(0, 8 * K, true)).toEqual([]);
  });

  it('in place nothing is discarded: no discardShared / discardPrivate', () => {
    for (const order of ['v6', 'priority', 'explicit'] as const) {
      const { vm, events } = inplace(order);
      vm.convert(0, 16 * K, false);
      vm.unregister('c');
      vm.convert(0, 16 * K, true);
      expect(events.filter((e) => e['kind'] === 'discardShared' || e['kind'] === 'discardPrivate')).toEqual([]);
    }
  });

  it('in place a page that is not shared cannot be pinned: a direct map of a private page fails (-EACCES)', () => {
    const { vm } = inplace('explicit');
    expect(vm.container('c').dmaMap(0x100000, P, 0)).toBe(-13);
  });
});

describe('device access through a container (spec 9.2)', () => {
  it('ok through a live mapping of a shared page; fault where any byte is unmapped', () => {
    const { vm } = setup({ regionSize: 16 * K });
    vm.addContainer('c', 'type1');
    vm.register('c', { offset: 0, size: 16 * K, iova: 0x40000 });
    expect(vm.dma('c', 0x40000, P)).toBe('fault');
    expect(vm.convert(0, 8 * K, false)).toBe(0);
    expect(vm.dma('c', 0x40000, 8 * K)).toBe('ok');
    expect(vm.dma('c', 0x40000 + 100, 10)).toBe('ok');
    expect(vm.dma('c', 0x40000 + 4 * K, 8 * K)).toBe('fault'); // second half unmapped
    expect(vm.dma('c', 0, P)).toBe('fault');
  });

  it('dma-to-private: a mapping made directly onto a page KVM holds private (legacy); stale-mapping reported', () => {
    const { vm, checker } = setup({ regionSize: 16 * K });
    vm.addContainer('c', 'type1');
    expect(vm.container('c').dmaMap(0, P, 0)).toBe(0);
    expect(vm.dma('c', 0, P)).toBe('dma-to-private');
    expect(checker.checkQuiescent().map((v) => v.invariant)).toEqual(['stale-mapping']);
  });

  it('dma-to-stale: a mapping made directly, then the page converted to private (the shared page is freed) while still mapped', () => {
    const { vm, checker } = setup({ regionSize: 16 * K });
    vm.addContainer('c', 'iommufd');
    expect(vm.convert(0, 8 * K, false)).toBe(0);
    expect(vm.container('c').dmaMap(0, 8 * K, 0)).toBe(0);
    expect(vm.dma('c', 0, 8 * K)).toBe('ok');
    expect(vm.convert(0, 4 * K, true)).toBe(0);
    expect(vm.dma('c', 0, P)).toBe('dma-to-stale');
    expect(vm.dma('c', P, P)).toBe('ok'); // the second page was not freed
    expect(checker.checkQuiescent().map((v) => v.invariant)).toEqual(['stale-mapping']);
  });

  it('iommufd partial unmap: kernel -ENOENT, QEMU 0, the mapping stays: partial-unmap, then stale-mapping and dma-to-stale after conversion to private', () => {
    const { vm, events, checker } = setup({ regionSize: 16 * K });
    vm.addContainer('c', 'iommufd');
    expect(vm.convert(0, 8 * K, false)).toBe(0);
    expect(vm.container('c').dmaMap(0, 8 * K, 0)).toBe(0);
    events.length = 0;
    expect(vm.container('c').dmaUnmap(0, 4 * K)).toBe(0);
    expect(events).toEqual([{ kind: 'dmaUnmap', container: 'c', iova: 0, size: 4 * K, ret: -ENOENT }]);
    expect(mappings(vm, 'c')).toEqual([[0, 8 * K]]);
    expect(checker.checkQuiescent().map((v) => v.invariant)).toEqual(['partial-unmap']);
    expect(checker.checkQuiescent()).toEqual([]); // reported once
    expect(vm.convert(0, 4 * K, true)).toBe(0);
    expect(checker.checkQuiescent().map((v) => [v.invariant, v.container])).toEqual([['stale-mapping', 'c']]);
    expect(vm.dma('c', 0, 4 * K)).toBe('dma-to-stale');
  });

  it('in place pages are never freed by a conversion: no dma-to-stale', () => {
    const { vm } = setup({ regionSize: 16 * K, mode: 'inplace', inplaceOrder: 'explicit' });
    vm.addContainer('c', 'type1');
    vm.register('c', { offset: 0, size: 16 * K, iova: 0 });
    expect(vm.convert(0, 16 * K, false)).toBe(0);
    expect(vm.dma('c', 0, 16 * K)).toBe('ok');
  });
});

describe('register / unregister through ConfidentialVm', () => {
  it('register replays shared runs through VFIO maps; unregister is one unmap of the whole section', () => {
    const { vm, events } = setup({ regionSize: 32 * K });
    expect(vm.convert(0, 8 * K, false)).toBe(0);
    expect(vm.convert(16 * K, 4 * K, false)).toBe(0);
    vm.addContainer('c', 'type1');
    events.length = 0;
    expect(vm.register('c', { offset: 4 * K, size: 16 * K, iova: 0x200000 })).toBe(0);
    expect(events).toEqual([
      { kind: 'notifyPopulate', listener: 'c', offset: 4 * K, size: 4 * K },
      { kind: 'dmaMap', container: 'c', iova: 0x200000, size: P, ret: 0 },
      { kind: 'notifyPopulate', listener: 'c', offset: 16 * K, size: 4 * K },
      { kind: 'dmaMap', container: 'c', iova: 0x200000 + 12 * K, size: P, ret: 0 },
    ]);
    events.length = 0;
    vm.unregister('c');
    expect(events).toEqual([
      { kind: 'notifyDiscard', listener: 'c', offset: 4 * K, size: 16 * K },
      { kind: 'dmaUnmap', container: 'c', iova: 0x200000, size: 16 * K, ret: 0 },
    ]);
    expect(mappings(vm, 'c')).toEqual([]);
    expect(vm.rba.listenerNames).toEqual([]);
  });
});
