/**
 * The bug zoo: named protocol variants, each a genuine alternative code
 * path (a policy or an order a developer could plausibly write, or that
 * QEMU had at some point) applied to a run configuration. None of them
 * reports a violation by itself: the invariant checks must find it.
 */
import type { RunConfig } from '../actors/run-config.js';
import type { InvariantName } from '../core/invariants.js';
import { ENOSPC } from '../core/errno.js';
import type { FatalOutcome } from '../core/qemu-outcome.js';
import { MiB } from '../core/units.js';
import { TYPE1_DEFAULT_DMA_ENTRY_LIMIT } from '../core/vfio/type1-container.js';

export interface Mutant {
  readonly name: string;
  /** What the variant changes, in QEMU's terms. */
  readonly description: string;
  /**
   * The invariants expected to catch it, the one usually found first listed
   * first, or the fatal QEMU outcome it leads to (QEMU's `exit(1)` on a
   * failed register-time replay).
   */
  readonly expected: ReadonlyArray<InvariantName | FatalOutcome>;
  /** The configuration the variant runs with. */
  apply(config: RunConfig): RunConfig;
}

export const MUTANTS: readonly Mutant[] = [
  {
    name: 'no-lock-overlap',
    description: 'every fix but the conversion lock (--conversion-lock none, as QEMU today: kvm_convert_memory runs on each vCPU thread without a lock) with a guest converting overlapping ranges both ways: a populate maps blocks the other conversion already mapped (-EEXIST, the VM stops) or has just made private, and KVM attributes and the bitmap disagree',
    expected: ['conversion-failed', 'stale-mapping', 'disagreement'],
    apply: (c) => ({ ...c, workload: 'overlap', protocol: { ...c.protocol, conversionLock: 'none' }, inFlight: Math.max(2, c.vcpus), vcpus: Math.max(2, c.vcpus) }),
  },
  {
    name: 'register-race',
    description: 'every fix but the conversion lock and the registration order (--conversion-lock none --registration racy): a container is hot-plugged (register replays populated runs, unregister discards) while conversions flip bits; a replay and a concurrent populate map the same block (-EEXIST): the conversion fails and the VM stops, or the replay fails and QEMU exits',
    expected: ['conversion-failed', 'qemu-exit', 'disagreement', 'stale-mapping'],
    apply: (c) => ({ ...c, workload: 'hotplug', protocol: { ...c.protocol, conversionLock: 'none', registration: 'racy' }, hotplugEvery: 23 }),
  },
  {
    name: 'no-rollback-two-containers',
    description: 'rollback none (merged QEMU) with a map failure injected in the second of two containers (in notification order, newest first): the first keeps its mappings, the second self-discards, the bit stays set',
    expected: ['disagreement'],
    apply: (c) => ({
      ...c,
      rollback: 'none',
      containers: [{ backend: 'iommufd', dmaEntryLimit: 0 }, { backend: 'iommufd', dmaEntryLimit: 0 }],
      variant: { ...c.variant, failMaps: { container: 0, afterMaps: 0, errno: ENOSPC } },
    }),
  },
  {
    name: 'iommufd-enoent-swallowed',
    description: 'VFIO maps in coarse 2 MiB chunks on iommufd; a 4 KiB conversion to private unmaps inside one, the kernel returns -ENOENT, QEMU reports success and the mapping stays',
    expected: ['partial-unmap', 'stale-mapping'],
    apply: (c) => ({
      ...c,
      containers: [{ backend: 'iommufd', dmaEntryLimit: 0 }],
      variant: { ...c.variant, vfioGranularity: 2 * MiB },
    }),
  },
  {
    name: 'notify-before-bitmap',
    description: 'ram_block_attributes_state_change notifies listeners before it writes the bitmap: VFIO maps blocks the bitmap still holds private',
    expected: ['stale-mapping'],
    apply: (c) => ({ ...c, variant: { ...c.variant, notifyBeforeBitmap: true } }),
  },
  {
    name: 'inplace-v6-order',
    description: 'in-place conversion with the merged order: guest_memfd converts first, listeners after, so CONVERT_PRIVATE meets pages VFIO still pins',
    expected: ['inplace-order'],
    apply: (c) => ({ ...c, mode: 'inplace', order: 'v6' }),
  },
  {
    name: 'priority-inverted',
    description: 'v4 priority listeners with the walk directions swapped: to shared VFIO maps before guest_memfd converts, to private guest_memfd converts before VFIO unmaps',
    expected: ['inplace-order'],
    apply: (c) => ({ ...c, mode: 'inplace', order: 'priority', variant: { ...c.variant, invertPriorityWalk: true } }),
  },
  {
    name: 'type1-4k-exhaustion',
    description: 'a realistically sized guest on type1 with the default dma_entry_limit (65,535) and 4 KiB mappings; older QEMU only warns at registration, maps then fail with -ENOSPC',
    expected: ['conversion-failed', 'disagreement'],
    apply: (c) => ({
      ...c,
      guestMem: Math.max(c.guestMem, 1024 * MiB),
      workload: 'swiotlb',
      conversions: Math.max(c.conversions, 512),
      containers: [{ backend: 'type1', dmaEntryLimit: TYPE1_DEFAULT_DMA_ENTRY_LIMIT }],
      variant: { ...c.variant, dmaLimitWarnOnly: true },
    }),
  },
];

export function findMutant(name: string): Mutant | undefined {
  return MUTANTS.find((m) => m.name === name);
}
