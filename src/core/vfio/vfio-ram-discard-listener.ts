/**
 * The VFIO RamDiscardListener (hw/vfio/listener.c): maps populated parts of
 * a section into a container at the manager's granularity and unmaps
 * discarded parts with one call.
 */
import { ENOSPC, retName, type Ret } from '../errno.js';
import type { MemoryRegionSection } from '../memory-region-section.js';
import {
  RAM_DISCARD_LISTENER_PRIORITY_COMMON,
  type RamDiscardListener,
  type RamDiscardManager,
} from '../ram-discard-manager.js';
import type { RegisterFailure } from '../qemu-outcome.js';
import { isPowerOfTwo, roundUp } from '../units.js';
import type { VfioContainer } from './container.js';
import { vfioDmaMappingEstimate } from './dma-mapping-estimate.js';

/**
 * `VFIORamDiscardListener`. Its name in events is the container id unless
 * given one (a container with several sections, as QEMU's VFIO registers
 * `ram-below-4g` and `ram-above-4g`, names each listener).
 */
export class VfioRamDiscardListener implements RamDiscardListener {
  readonly name: string;
  readonly doubleDiscardSupported = true;
  readonly priority = RAM_DISCARD_LISTENER_PRIORITY_COMMON;
  readonly container: VfioContainer;
  readonly granularity: number;
  /** The registered section (`offset_within_address_space`, `size` as QEMU keeps them). */
  readonly section: MemoryRegionSection;

  constructor(container: VfioContainer, section: MemoryRegionSection, granularity: number, name = container.id) {
    this.name = name;
    this.container = container;
    this.section = section;
    this.granularity = granularity;
  }

  /**
   * `vfio_ram_discard_notify_populate`: map in chunks of the granularity,
   * aligned inside the memory region, so each can be unmapped on its own
   * later. On a failed map, discard the whole section (one unmap) and
   * return the error.
   */
  notifyPopulate(section: MemoryRegionSection): Ret {
    const end = section.offsetWithinRegion + section.size;
    for (let start = section.offsetWithinRegion, next: number; start < end; start = next) {
      next = Math.min(roundUp(start + 1, this.granularity), end);
      const iova = start - section.offsetWithinRegion + section.offsetWithinAddressSpace;
      const ret = this.container.dmaMap(iova, next - start, start);
      if (ret !== 0) {
        this.notifyDiscard(section); // "Rollback"
        return ret;
      }
    }
    return 0;
  }

  /** `vfio_ram_discard_notify_discard`: one unmap for the whole section; a failure is only logged. */
  notifyDiscard(section: MemoryRegionSection): void {
    const ret = this.container.dmaUnmap(section.offsetWithinAddressSpace, section.size);
    if (ret !== 0) {
      this.container.log.push(`vfio_ram_discard_notify_discard: vfio_container_dma_unmap() failed: ${retName(ret)}`);
    }
  }
}

/**
 * What `vfio_ram_discard_register_listener` does when the worst-case
 * mapping estimate exceeds `dma_max_mappings`: current QEMU fails the
 * region add (`error`), older QEMU only warned (`warn`).
 */
export type DmaLimitCheck = 'error' | 'warn';

export interface RegisterOptions {
  /** `kvm_get_max_memslots()`: 32764 on x86 KVM, 512 without KVM. */
  readonly maxMemslots: number;
  readonly dmaLimitCheck: DmaLimitCheck;
  /** The listener's name in events (default: the container id). */
  readonly name?: string;
}

/** What {@link vfioRamDiscardRegisterListener} did: the listener, 0 or an error, and which step failed. */
export interface RegisterResult {
  readonly listener: VfioRamDiscardListener;
  readonly ret: Ret;
  readonly failure: RegisterFailure;
}

/**
 * `vfio_ram_discard_register_listener`: create the listener, register it
 * with the manager (which replays shared runs through it), link it into the
 * container's list, then sanity-check the worst case number of DMA mappings:
 * blocks in all its sections + memslots - listeners. With `error` the
 * check returns -ENOSPC (QEMU: "possibly running out of DMA mappings"),
 * leaving the listener registered as QEMU does.
 */
export function vfioRamDiscardRegisterListener(
  container: VfioContainer,
  listeners: VfioRamDiscardListener[],
  rdm: RamDiscardManager,
  section: MemoryRegionSection,
  options: RegisterOptions,
): RegisterResult {
  const granularity = rdm.getMinGranularity();
  if (!isPowerOfTwo(granularity) || granularity < container.pageSize) {
    throw new RangeError(`granularity ${granularity} must be a power of two >= the IOMMU page size ${container.pageSize}`);
  }
  const listener = new VfioRamDiscardListener(container, { ...section }, granularity, options.name);
  const replayRet = rdm.registerListener(listener, section);
  listeners.unshift(listener);
  if (replayRet !== 0) return { listener, ret: replayRet, failure: 'replay' };
  if (vfioDmaMappingsExceeded(container, listeners, options.maxMemslots)) {
    container.log.push(`vfio_ram_discard_register_listener: possibly running out of DMA mappings. ` +
      `Maximum possible DMA mappings: ${container.dmaMaxMappings}, Maximum possible memslots: ${options.maxMemslots}`);
    if (options.dmaLimitCheck === 'error') return { listener, ret: -ENOSPC, failure: 'estimate' };
  }
  return { listener, ret: 0, failure: 'none' };
}

/**
 * The sanity check at the end of `vfio_ram_discard_register_listener`: the
 * worst case number of DMA mappings (every block of every registered
 * section, plus one per other memslot) exceeds `dma_max_mappings`.
 * Containers without a limit (iommufd: 0) never exceed it.
 */
export function vfioDmaMappingsExceeded(container: VfioContainer, listeners: readonly VfioRamDiscardListener[], maxMemslots: number): boolean {
  const sections = listeners.map((l) => ({ offsetWithinAddressSpace: l.section.offsetWithinAddressSpace, size: l.section.size, granularity: l.granularity }));
  return vfioDmaMappingEstimate(sections, maxMemslots, container.dmaMaxMappings).exceeded;
}
