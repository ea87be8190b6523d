/**
 * The worst-case DMA mapping estimate at the end of
 * `vfio_ram_discard_register_listener` (hw/vfio/listener.c), for containers
 * with a mapping limit (type1's `dma_entry_limit`): every block of every
 * section the container has a RamDiscardListener for could be mapped on its
 * own, and every other memslot could be a section taking one mapping, so
 *
 *     blocks + max_memslots - listeners > dma_max_mappings  -> refuse.
 *
 * `max_memslots` is `kvm_get_max_memslots()` under KVM (KVM_CAP_NR_MEMSLOTS)
 * and 512 without KVM.
 */
import { alignDown, roundUp } from '../units.js';

/**
 * What x86 KVM reports for KVM_CAP_NR_MEMSLOTS: `KVM_USER_MEM_SLOTS`, that
 * is SHRT_MAX (32767) minus the 3 private slots KVM keeps for itself.
 */
export const KVM_X86_MAX_MEMSLOTS = 32764;

/** QEMU's `max_memslots` when KVM is not enabled. */
export const NO_KVM_MAX_MEMSLOTS = 512;

/** One registered section, as the estimate reads a `VFIORamDiscardListener`. */
export interface EstimatedSection {
  readonly offsetWithinAddressSpace: number;
  readonly size: number;
  readonly granularity: number;
}

export interface DmaMappingEstimate {
  /** Blocks over all the container's RamDiscardManager sections (`vrdl_mappings`). */
  readonly blocks: number;
  /** Those sections' listeners (`vrdl_count`). */
  readonly listeners: number;
  readonly maxMemslots: number;
  /** `dma_max_mappings`; 0 means no limit (iommufd). */
  readonly limit: number;
  /** blocks + maxMemslots - listeners. */
  readonly worstCase: number;
  /** QEMU refuses the region add. */
  readonly exceeded: boolean;
  /** The smallest `dma_max_mappings` that passes: the worst case itself. */
  readonly smallestLimit: number;
}

/** The estimate for a container's sections (its `vrdl_list`, including the one being added). */
export function vfioDmaMappingEstimate(sections: readonly EstimatedSection[], maxMemslots: number, limit: number): DmaMappingEstimate {
  let blocks = 0;
  for (const s of sections) {
    const start = alignDown(s.offsetWithinAddressSpace, s.granularity);
    const end = roundUp(s.offsetWithinAddressSpace + s.size, s.granularity);
    blocks += (end - start) / s.granularity;
  }
  const worstCase = blocks + maxMemslots - sections.length;
  return {
    blocks, listeners: sections.length, maxMemslots, limit, worstCase,
    exceeded: limit !== 0 && worstCase > limit,
    smallestLimit: Math.max(worstCase, 1),
  };
}

/** One line with the numbers, for a refused device. */
export function describeEstimate(container: string, e: DmaMappingEstimate): string {
  return `${container}: QEMU refuses the device: ${e.blocks} blocks in its sections + ${e.maxMemslots} memslots - ` +
    `${e.listeners} listener${e.listeners === 1 ? '' : 's'} = ${e.worstCase} possible DMA mappings > dma_entry_limit ${e.limit}; ` +
    `the smallest limit that fits is ${e.smallestLimit} (type1:${e.smallestLimit}, or type1:auto)`;
}
