/**
 * The VFIO side (spec section 4): the VFIO RamDiscardListener (4 KiB chunks,
 * IOVA arithmetic, self-discard on a failed map, the worst-case mapping
 * estimate) and the two kernel back-ends (type1 and iommufd), with the
 * numbers of the issue: 512 maps for 2 MiB, the 65,536th type1 map fails
 * with -ENOSPC, a 16 GiB guest needs 4,194,304 entries.
 */
import { describe, expect, it } from 'vitest';
import { ConfidentialVm, DEFAULT_VM_CONFIG, type VmConfig } from '../../src/core/confidential-vm.js';
import { EEXIST, EINVAL, ENOENT, ENOSPC, type Ret } from '../../src/core/errno.js';
import { EventBus, type CoreEvent } from '../../src/core/events.js';
import type { PinnableMemory } from '../../src/core/guest-memory.js';
import type { MemoryRegionSection } from '../../src/core/memory-region-section.js';
import type { VfioContainer } from '../../src/core/vfio/container.js';
import { IommufdContainer } from '../../src/core/vfio/iommufd-container.js';
import { TYPE1_DEFAULT_DMA_ENTRY_LIMIT, Type1Container } from '../../src/core/vfio/type1-container.js';
import { VfioRamDiscardListener } from '../../src/core/vfio/vfio-ram-discard-listener.js';
import { KVM_X86_MAX_MEMSLOTS, NO_KVM_MAX_MEMSLOTS, vfioDmaMappingEstimate } from '../../src/core/vfio/dma-mapping-estimate.js';

const K = 1024;
const M = 1024 * K;
const G = 1024 * M;
const P = 4 * K;

/** Memory that always pins and is always shared and fresh: only the container's own rules matter. */
class PlainMemory implements PinnableMemory {
  pinned = 0;
  pin(_offset: number, size: number): Ret {
    this.pinned += size / P;
    return 0;
  }
  unpin(_offset: number, size: number): void {
    this.pinned -= size / P;
  }
  currentEpoch(): number {
    return 0;
  }
  isStale(): boolean {
    return false;
  }
  isPrivate(): boolean {
    return false;
  }
}

function withBus(): { bus: EventBus; events: CoreEvent[] } {
  const bus = new EventBus();
  const events: CoreEvent[] = [];
  bus.subscribe((e) => events.push(e));
  return { bus, events };
}

function type1(limit = TYPE1_DEFAULT_DMA_ENTRY_LIMIT, bus?: EventBus): Type1Container {
  return new Type1Container('t1', new PlainMemory(), limit, bus);
}

function iommufd(bus?: EventBus): IommufdContainer {
  return new IommufdContainer('fd', new PlainMemory(), bus);
}

function mappings(c: VfioContainer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  c.mappings.forEach((iova, size) => {
    out.push([iova, size]);
  });
  return out;
}

function section(offset: number, size: number, iova: number): MemoryRegionSection {
  return { mr: 'ram0', offsetWithinRegion: offset, size, offsetWithinAddressSpace: iova, readonly: false };
}

function vm(config: Partial<VmConfig> & { regionSize: number }): ConfidentialVm {
  return new ConfidentialVm({ ...DEFAULT_VM_CONFIG, ...config });
}

describe('VfioRamDiscardListener.notifyPopulate: chunks of the granularity (hw/vfio/listener.c)', () => {
  for (const make of [type1, iommufd] as const) {
    it(`4K granularity: a 2 MiB section is 512 dmaMap calls of 4 KiB (${make.name}), IOVA = chunk - offset + iova`, () => {
      const { bus, events } = withBus();
      const c = make === type1 ? type1(TYPE1_DEFAULT_DMA_ENTRY_LIMIT, bus) : iommufd(bus);
      const s = section(2 * M, 2 * M, 0x80000000);
      const l = new VfioRamDiscardListener(c, s, P);
      expect(l.notifyPopulate(s)).toBe(0);
      const maps = events.filter((e) => e.kind === 'dmaMap');
      expect(maps).toHaveLength(512);
      maps.forEach((e, i) => expect(e).toEqual({ kind: 'dmaMap', container: c.id, iova: 0x80000000 + i * P, size: P, ret: 0 }));
      const attempts = events.filter((e) => e.kind === 'dmaMapAttempt');
      attempts.forEach((e, i) => expect(e.kind === 'dmaMapAttempt' && e.hostOffset).toBe(2 * M + i * P));
      expect(c.mappings.count).toBe(512);
      expect(c.stats.maps).toBe(512);
    });
  }

  it('chunks end at the next granularity boundary inside the region, or at the section end', () => {
    const { bus, events } = withBus();
    const c = iommufd(bus);
    // Granularity 16K, section [4K, 40K) of the region at IOVA 1 MiB.
    const s = section(4 * K, 36 * K, M);
    const l = new VfioRamDiscardListener(c, s, 16 * K);
    expect(l.notifyPopulate(s)).toBe(0);
    expect(events.filter((e) => e.kind === 'dmaMap').map((e) => e.kind === 'dmaMap' && [e.iova - M, e.size])).toEqual([
      [0, 12 * K], // [4K, 16K)
      [12 * K, 16 * K], // [16K, 32K)
      [28 * K, 8 * K], // [32K, 40K)
    ]);
  });

  it('a failed map: one notifyDiscard (one unmap) of the whole section, and the error is returned', () => {
    const { bus, events } = withBus();
    const c = type1(TYPE1_DEFAULT_DMA_ENTRY_LIMIT, bus);
    const s = section(0, 16 * K, 0);
    expect(c.dmaMap(8 * K, P, 8 * K)).toBe(0); // someone already maps the third chunk
    events.length = 0;
    const l = new VfioRamDiscardListener(c, s, P);
    expect(l.notifyPopulate(s)).toBe(-EEXIST);
    expect(events.filter((e) => e.kind === 'dmaMap' || e.kind === 'dmaUnmap')).toEqual([
      { kind: 'dmaMap', container: 't1', iova: 0, size: P, ret: 0 },
      { kind: 'dmaMap', container: 't1', iova: P, size: P, ret: 0 },
      { kind: 'dmaMap', container: 't1', iova: 2 * P, size: P, ret: -EEXIST },
      { kind: 'dmaUnmap', container: 't1', iova: 0, size: 16 * K, ret: 0 },
    ]);
    expect(mappings(c)).toEqual([]);
  });

  it('failNextMaps: the next maps fail with the injected errno, then maps work again', () => {
    const c = iommufd();
    c.failNextMaps(2, 28);
    expect(c.dmaMap(0, P, 0)).toBe(-ENOSPC);
    expect(c.dmaMap(0, P, 0)).toBe(-ENOSPC);
    expect(c.dmaMap(0, P, 0)).toBe(0);
    expect(c.stats.mapErrors).toBe(2);
  });

  it('notifyDiscard is one unmap of the whole section; a failure is only logged', () => {
    const { bus, events } = withBus();
    const c = type1(TYPE1_DEFAULT_DMA_ENTRY_LIMIT, bus);
    expect(c.dmaMap(0, 8 * K, 0)).toBe(0); // one 8K mapping
    const l = new VfioRamDiscardListener(c, section(0, 8 * K, 0), P);
    expect(() => l.notifyDiscard(section(4 * K, 4 * K, 4 * K))).not.toThrow();
    expect(events.at(-1)).toEqual({ kind: 'dmaUnmap', container: 't1', iova: 4 * K, size: 4 * K, ret: -EINVAL });
    expect(c.log.some((line) => line.includes('vfio_container_dma_unmap') && line.includes('EINVAL'))).toBe(true);
    expect(mappings(c)).toEqual([[0, 8 * K]]);
  });
});

describe('type1 back-end (VFIO_TYPE1v2_IOMMU)', () => {
  it('dma_entry_limit defaults to 65535 (U16_MAX)', () => {
    expect(TYPE1_DEFAULT_DMA_ENTRY_LIMIT).toBe(65535);
    expect(type1().dmaMaxMappings).toBe(65535);
    expect(iommufd().dmaMaxMappings).toBe(0);
  });

  it('the 65,536th map fails with -ENOSPC; after an unmap one more fits', () => {
    const c = type1();
    for (let i = 0; i < 65535; i++) {
      const ret = c.dmaMap(i * P, P, i * P);
      if (ret !== 0) throw new Error(`map ${i + 1} failed with ${ret}`);
    }
    expect(c.mappings.count).toBe(65535);
    expect(c.dmaMap(65535 * P, P, 65535 * P)).toBe(-ENOSPC);
    expect(c.mappings.count).toBe(65535);
    expect(c.dmaUnmap(0, P)).toBe(0);
    expect(c.dmaMap(65535 * P, P, 65535 * P)).toBe(0);
    expect(c.dmaMap(65536 * P, P, 65536 * P)).toBe(-ENOSPC);
  });

  it('a custom limit: each mapping takes one entry whatever its size', () => {
    const c = type1(2);
    expect(c.dmaMap(0, 2 * M, 0)).toBe(0);
    expect(c.dmaMap(2 * M, P, 2 * M)).toBe(0);
    expect(c.dmaMap(4 * M, P, 4 * M)).toBe(-ENOSPC);
  });

  it('-EEXIST is checked before -ENOSPC', () => {
    const c = type1(1);
    expect(c.dmaMap(0, P, 0)).toBe(0);
    expect(c.dmaMap(0, P, 0)).toBe(-EEXIST);
    expect(c.dmaMap(P, P, P)).toBe(-ENOSPC);
  });

  it('unmap that bisects a mapping at either end -> -EINVAL, nothing unmapped', () => {
    const c = type1();
    expect(c.dmaMap(0, 8 * K, 0)).toBe(0);
    expect(c.dmaMap(16 * K, 8 * K, 16 * K)).toBe(0);
    expect(c.dmaUnmap(4 * K, 4 * K)).toBe(-EINVAL); // first byte inside [0, 8K)
    expect(c.dmaUnmap(0, 4 * K)).toBe(-EINVAL); // last byte inside [0, 8K)
    expect(c.dmaUnmap(0, 20 * K)).toBe(-EINVAL); // ends inside [16K, 24K)
    expect(c.dmaUnmap(4 * K, 16 * K)).toBe(-EINVAL); // both ends: [4K, 20K) cuts both mappings
    expect(mappings(c)).toEqual([[0, 8 * K], [16 * K, 8 * K]]);
    // Every cut mapping is recorded (one per mapping cut), with what the kernel and QEMU returned.
    expect(c.partialUnmaps.map((p) => [p.iova, p.size, p.mapping.iova, p.kernelRet, p.qemuRet])).toEqual([
      [4 * K, 4 * K, 0, -EINVAL, -EINVAL],
      [0, 4 * K, 0, -EINVAL, -EINVAL],
      [0, 20 * K, 16 * K, -EINVAL, -EINVAL],
      [4 * K, 16 * K, 0, -EINVAL, -EINVAL],
      [4 * K, 16 * K, 16 * K, -EINVAL, -EINVAL],
    ]);
  });

  it('unmap of a range with no mapping succeeds (0 bytes); a union of whole mappings (with holes) succeeds', () => {
    const { bus, events } = withBus();
    const c = type1(TYPE1_DEFAULT_DMA_ENTRY_LIMIT, bus);
    expect(c.dmaUnmap(0, M)).toBe(0);
    expect(events.at(-1)).toEqual({ kind: 'dmaUnmap', container: 't1', iova: 0, size: M, ret: 0 });
    expect(c.dmaMap(0, 8 * K, 0)).toBe(0);
    expect(c.dmaMap(16 * K, 4 * K, 16 * K)).toBe(0);
    expect(c.dmaMap(64 * K, 4 * K, 64 * K)).toBe(0);
    expect(c.dmaUnmap(0, 32 * K)).toBe(0);
    expect(mappings(c)).toEqual([[64 * K, 4 * K]]);
    expect(c.partialUnmaps).toEqual([]);
  });

  it('map/unmap argument checks: size 0 or unaligned -> -EINVAL', () => {
    const c = type1();
    expect(c.dmaMap(0, 0, 0)).toBe(-EINVAL);
    expect(c.dmaMap(512, P, 0)).toBe(-EINVAL);
    expect(c.dmaMap(0, 100, 0)).toBe(-EINVAL);
    expect(c.dmaMap(0, P, 512)).toBe(-EINVAL);
    expect(c.dmaUnmap(0, 0)).toBe(-EINVAL);
    expect(c.dmaUnmap(512, P)).toBe(-EINVAL);
    expect(c.mappings.count).toBe(0);
  });
});

describe('both back-ends: -EEXIST on overlap', () => {
  for (const make of [type1, iommufd] as const) {
    it(`${make.name}: overlapping, containing and contained maps fail; adjacent maps succeed`, () => {
      const c = make === type1 ? type1() : iommufd();
      expect(c.dmaMap(16 * K, 16 * K, 16 * K)).toBe(0); // [16K, 32K)
      expect(c.dmaMap(12 * K, 8 * K, 0)).toBe(-EEXIST); // overlaps the start
      expect(c.dmaMap(28 * K, 8 * K, 0)).toBe(-EEXIST); // overlaps the end
      expect(c.dmaMap(20 * K, 4 * K, 0)).toBe(-EEXIST); // inside
      expect(c.dmaMap(0, 64 * K, 0)).toBe(-EEXIST); // contains it
      expect(c.dmaMap(12 * K, 4 * K, 12 * K)).toBe(0); // adjacent before
      expect(c.dmaMap(32 * K, 4 * K, 32 * K)).toBe(0); // adjacent after
      expect(mappings(c)).toEqual([[12 * K, 4 * K], [16 * K, 16 * K], [32 * K, 4 * K]]);
    });
  }
});

describe('iommufd back-end', () => {
  it('partial unmap: the kernel returns -ENOENT (in the event), QEMU reports 0, the mapping stays', () => {
    const { bus, events } = withBus();
    const c = iommufd(bus);
    expect(c.dmaMap(0, 8 * K, 0)).toBe(0);
    expect(c.dmaUnmap(0, 4 * K)).toBe(0);
    expect(events.at(-1)).toEqual({ kind: 'dmaUnmap', container: 'fd', iova: 0, size: 4 * K, ret: -ENOENT });
    expect(mappings(c)).toEqual([[0, 8 * K]]);
    expect(c.partialUnmaps).toEqual([{ iova: 0, size: 4 * K, mapping: { iova: 0, size: 8 * K }, kernelRet: -ENOENT, qemuRet: 0 }]);
  });

  it('unmap of a range with nothing mapped: -ENOENT at the ioctl, 0 for QEMU; a whole mapping: 0', () => {
    const { bus, events } = withBus();
    const c = iommufd(bus);
    expect(c.dmaUnmap(0, M)).toBe(0);
    expect(events.at(-1)).toEqual({ kind: 'dmaUnmap', container: 'fd', iova: 0, size: M, ret: -ENOENT });
    expect(c.partialUnmaps).toEqual([]);
    expect(c.dmaMap(0, 8 * K, 0)).toBe(0);
    expect(c.dmaMap(8 * K, 4 * K, 8 * K)).toBe(0);
    expect(c.dmaUnmap(0, M)).toBe(0);
    expect(events.at(-1)).toEqual({ kind: 'dmaUnmap', container: 'fd', iova: 0, size: M, ret: 0 });
    expect(mappings(c)).toEqual([]);
  });

  it('has no entry limit: 70,000 maps succeed', () => {
    const c = iommufd();
    for (let i = 0; i < 70000; i++) {
      if (c.dmaMap(i * P, P, i * P) !== 0) throw new Error(`map ${i} failed`);
    }
    expect(c.mappings.count).toBe(70000);
  });
});

describe('vfio_ram_discard_register_listener: the worst-case mapping estimate', () => {
  // blocks in all sections + max memslots - listener count > dma_max_mappings -> fail.
  // Under KVM max_memslots = kvm_get_max_memslots() (x86: 32764); 512 is QEMU's fallback without KVM.
  it('the default VM config uses KVM\'s x86 memslot count, 32764', () => {
    expect(DEFAULT_VM_CONFIG.maxMemslots).toBe(32764);
    expect(KVM_X86_MAX_MEMSLOTS).toBe(32767 - 3);
  });

  it('KVM, one listener, default limit 65535: 32,772 blocks of 4 KiB pass (32772 + 32764 - 1 = 65535), 32,773 fail', () => {
    const ok = vm({ regionSize: 32773 * P });
    ok.addContainer('c', 'type1');
    expect(ok.register('c', { offset: 0, size: 32772 * P, iova: 0 })).toBe(0);
    expect(ok.container('c').log).toEqual([]);
    const bad = vm({ regionSize: 32773 * P });
    bad.addContainer('c', 'type1');
    const r = bad.registerListener('c', { offset: 0, size: 32773 * P, iova: 0 });
    expect(r.ret).toBe(-ENOSPC);
    expect(r.failure).toBe('estimate');
    expect(bad.container('c').log.join('\n')).toMatch(/Maximum possible DMA mappings: 65535, Maximum possible memslots: 32764/);
    // About 128 MiB: 32,772 blocks are 128 MiB + 16 KiB.
    expect(32772 * P).toBe(128 * M + 16 * K);
  });

  it('KVM, two listeners (ram-below-4g and ram-above-4g): the threshold moves by one, 32,773 pass and 32,774 fail', () => {
    const below = 16384;
    for (const [total, want] of [[32773, 0], [32774, -ENOSPC]] as const) {
      const v = vm({ regionSize: total * P });
      v.addContainer('c', 'type1');
      expect(v.register('c', { offset: 0, size: below * P, iova: 0 }, 'ram-below-4g')).toBe(0);
      expect(v.register('c', { offset: below * P, size: (total - below) * P, iova: 4 * G }, 'ram-above-4g')).toBe(want);
    }
    const e = vfioDmaMappingEstimate([
      { offsetWithinAddressSpace: 0, size: below * P, granularity: P },
      { offsetWithinAddressSpace: 4 * G, size: (32774 - below) * P, granularity: P },
    ], KVM_X86_MAX_MEMSLOTS, TYPE1_DEFAULT_DMA_ENTRY_LIMIT);
    expect(e).toMatchObject({ blocks: 32774, listeners: 2, worstCase: 65536, exceeded: true, smallestLimit: 65536 });
  });

  it('without KVM (512 memslots), one listener on default type1: 65,024 blocks fit (65024 + 512 - 1 = 65535), 65,025 do not (-ENOSPC, logged)', () => {
    const ok = vm({ regionSize: 65025 * P, maxMemslots: NO_KVM_MAX_MEMSLOTS });
    ok.addContainer('c', 'type1');
    expect(ok.register('c', { offset: 0, size: 65024 * P, iova: 0 })).toBe(0);
    expect(ok.container('c').log).toEqual([]);
    const bad = vm({ regionSize: 65025 * P, maxMemslots: NO_KVM_MAX_MEMSLOTS });
    bad.addContainer('c', 'type1');
    expect(bad.register('c', { offset: 0, size: 65025 * P, iova: 0 })).toBe(-ENOSPC);
    expect(bad.container('c').log.join('\n')).toMatch(/possibly running out of DMA mappings/);
    // The listener stays registered, as QEMU leaves it.
    expect(bad.rba.listenerNames).toEqual(['c']);
  });

  it('with dmaLimitCheck "warn" (older QEMU) the same registration only logs', () => {
    const v = vm({ regionSize: 65025 * P, dmaLimitCheck: 'warn' });
    v.addContainer('c', 'type1');
    expect(v.registerListener('c', { offset: 0, size: 65025 * P, iova: 0 })).toMatchObject({ ret: 0, failure: 'none' });
    expect(v.container('c').log.join('\n')).toMatch(/possibly running out of DMA mappings/);
  });

  it('the estimate sums all listeners of the container and subtracts their count (512 memslots)', () => {
    // 32,513 + 32,512 blocks + 512 - 2 = 65,535: fits.
    const v = vm({ regionSize: 65026 * P, maxMemslots: NO_KVM_MAX_MEMSLOTS });
    v.addContainer('c', 'type1');
    expect(v.register('c', { offset: 0, size: 32513 * P, iova: 0 })).toBe(0);
    expect(v.register('c', { offset: 32513 * P, size: 32512 * P, iova: 32513 * P })).toBe(0);
    // 32,513 + 32,513 + 512 - 2 = 65,536: does not.
    const w = vm({ regionSize: 65026 * P, maxMemslots: NO_KVM_MAX_MEMSLOTS });
    w.addContainer('c', 'type1');
    expect(w.register('c', { offset: 0, size: 32513 * P, iova: 0 })).toBe(0);
    expect(w.register('c', { offset: 32513 * P, size: 32513 * P, iova: 32513 * P })).toBe(-ENOSPC);
  });

  it('a 16 GiB guest needs 4,194,304 entries: under KVM the limit must be at least 4,194,304 + 32,763', () => {
    expect((16 * G) / P).toBe(4_194_304);
    const fits = vm({ regionSize: 16 * G });
    fits.addContainer('c', 'type1', 4_194_304 + 32_763);
    expect(fits.register('c', { offset: 0, size: 16 * G, iova: 0 })).toBe(0);
    const short = vm({ regionSize: 16 * G });
    short.addContainer('c', 'type1', 4_194_304 + 32_762);
    expect(short.register('c', { offset: 0, size: 16 * G, iova: 0 })).toBe(-ENOSPC);
    const dflt = vm({ regionSize: 16 * G });
    dflt.addContainer('c', 'type1');
    expect(dflt.register('c', { offset: 0, size: 16 * G, iova: 0 })).toBe(-ENOSPC);
    // iommufd reports no limit (0): no check.
    const fd = vm({ regionSize: 16 * G });
    fd.addContainer('c', 'iommufd');
    expect(fd.register('c', { offset: 0, size: 16 * G, iova: 0 })).toBe(0);
    expect(fd.container('c').log).toEqual([]);
  });

  it('a 16 GiB guest converted fully shared on iommufd holds 4,194,304 mappings, in a few seconds', () => {
    const v = vm({ regionSize: 16 * G });
    v.addContainer('c', 'iommufd');
    expect(v.register('c', { offset: 0, size: 16 * G, iova: 0 })).toBe(0);
    const t0 = performance.now();
    expect(v.convert(0, 16 * G, false)).toBe(0);
    const toShared = performance.now() - t0;
    expect(v.container('c').mappings.count).toBe(4_194_304);
    expect(v.container('c').stats.maps).toBe(4_194_304);
    const first = v.container('c').mappings.find(0);
    const last = v.container('c').mappings.find(16 * G - 1);
    expect(first).toMatchObject({ iova: 0, size: P, hostOffset: 0 });
    expect(last).toMatchObject({ iova: 16 * G - P, size: P, hostOffset: 16 * G - P });
    const t1 = performance.now();
    expect(v.convert(0, 16 * G, true)).toBe(0);
    const toPrivate = performance.now() - t1;
    expect(v.container('c').mappings.count).toBe(0);
    console.log(`16 GiB iommufd: to shared ${toShared.toFixed(0)} ms (4,194,304 maps), to private ${toPrivate.toFixed(0)} ms`);
    expect(toShared).toBeLessThan(8000);
    expect(toPrivate).toBeLessThan(8000);
  });

  it('a 256 MiB section on type1 (65,536 blocks, estimate only warned): the 65,536th map of the conversion fails with -ENOSPC', () => {
    const v = vm({ regionSize: 256 * M, dmaLimitCheck: 'warn' });
    v.addContainer('c', 'type1');
    expect(v.register('c', { offset: 0, size: 256 * M, iova: 0 })).toBe(0);
    const maps: Array<{ iova: number; ret: number }> = [];
    const unmaps: Array<{ iova: number; size: number; ret: number }> = [];
    v.bus.subscribe((e) => {
      if (e.kind === 'dmaMap') maps.push({ iova: e.iova, ret: e.ret });
      if (e.kind === 'dmaUnmap') unmaps.push({ iova: e.iova, size: e.size, ret: e.ret });
    });
    expect(v.convert(0, 256 * M, false)).toBe(-ENOSPC);
    expect(maps).toHaveLength(65536);
    expect(maps.slice(0, 65535).every((m) => m.ret === 0)).toBe(true);
    expect(maps[65535]).toEqual({ iova: 65535 * P, ret: -ENOSPC });
    // The listener's own rollback: one unmap of the whole section, which removes the 65,535 mappings.
    expect(unmaps).toEqual([{ iova: 0, size: 256 * M, ret: 0 }]);
    expect(v.container('c').mappings.count).toBe(0);
    expect(v.vmStopped).toBe(true);
  });
});
