/**
 * A VFIO container (an IOMMU address space) as QEMU's back-end sees it:
 * `vfio_container_dma_map` / `vfio_container_dma_unmap` on top of a kernel
 * back-end with its own errno rules (type1 or iommufd), plus the device
 * behind it that performs DMA.
 */
import { EINVAL, type Ret } from '../errno.js';
import type { EventBus } from '../events.js';
import { FaultPlan } from '../fault-plan.js';
import type { PinnableMemory } from '../guest-memory.js';
import { isAligned, PAGE_SIZE } from '../units.js';
import { MappingStore } from './mapping-store.js';

export type VfioBackend = 'type1' | 'iommufd';
export const VFIO_BACKENDS: readonly VfioBackend[] = ['type1', 'iommufd'];

/** What a device access through the IOMMU reached. `fault` is legitimate; the others are violations. */
export type DmaOutcome = 'ok' | 'fault' | 'dma-to-private' | 'dma-to-stale';

/** An unmap request whose range cut through a mapping (observed in the mapping table at the time). */
export interface PartialUnmap {
  readonly iova: number;
  readonly size: number;
  /** The mapping that was cut. */
  readonly mapping: { readonly iova: number; readonly size: number };
  /** What the kernel returned, and what QEMU's back-end reported upward. */
  readonly kernelRet: Ret;
  readonly qemuRet: Ret;
}

/** Per-container counters. */
export interface ContainerStats {
  maps: number;
  mapErrors: number;
  unmaps: number;
  unmapErrors: number;
  peakMappings: number;
  /** Bytes of guest memory pinned by this container's mappings now. */
  pinnedBytes: number;
}

export abstract class VfioContainer {
  readonly id: string;
  abstract readonly backend: VfioBackend;
  /** The IOMMU page size: the smallest mapping unit (`pgsizes` lowest bit). */
  readonly pageSize = PAGE_SIZE;
  readonly mappings = new MappingStore(PAGE_SIZE);
  readonly stats: ContainerStats = { maps: 0, mapErrors: 0, unmaps: 0, unmapErrors: 0, peakMappings: 0, pinnedBytes: 0 };
  /** Unmaps that cut a mapping, in the order they happened (checked by `partial-unmap`). */
  readonly partialUnmaps: PartialUnmap[] = [];
  /** `error_report` lines (failed discards are only logged in QEMU). */
  readonly log: string[] = [];
  protected readonly memory: PinnableMemory;
  readonly #bus: EventBus | undefined;
  #injectedFailures = 0;
  #injectedErrno = 0;
  /** Seeded kernel failures of map and unmap (none unless a run asks). */
  #faults = FaultPlan.none();

  constructor(id: string, memory: PinnableMemory, bus?: EventBus) {
    this.id = id;
    this.memory = memory;
    this.#bus = bus;
  }

  /**
   * `dma_max_mappings` as QEMU reads it from the kernel: the type1 entry
   * limit, 0 (no limit) for iommufd.
   */
  abstract get dmaMaxMappings(): number;

  /** Seeded fault injection: the kernel's map and unmap fail when `plan` says so. */
  injectFaults(plan: FaultPlan): void {
    this.#faults = plan;
  }

  /** Fault injection: the next `count` maps fail in the kernel with `-errno`. */
  failNextMaps(count: number, errno: number): void {
    this.#injectedFailures = count;
    this.#injectedErrno = errno;
  }

  /**
   * `vfio_container_dma_map(iova, size, vaddr)`: `hostOffset` stands for the
   * host virtual address (the region's shared backing plus offset).
   */
  dmaMap(iova: number, size: number, hostOffset: number): Ret {
    this.#bus?.emit({ kind: 'dmaMapAttempt', container: this.id, iova, size, hostOffset });
    let ret: Ret;
    if (!withinModelLimit(iova, size)) {
      ret = -EINVAL;
    } else if (this.#injectedFailures > 0) {
      this.#injectedFailures--;
      ret = -this.#injectedErrno;
    } else {
      const fault = this.#faults.next('map');
      ret = fault !== 0 ? fault : this.kernelMap(iova, size, hostOffset);
    }
    if (ret === 0) {
      this.stats.maps++;
      if (this.mappings.count > this.stats.peakMappings) this.stats.peakMappings = this.mappings.count;
    } else {
      this.stats.mapErrors++;
    }
    this.#bus?.emit({ kind: 'dmaMap', container: this.id, iova, size, ret });
    return ret;
  }

  /**
   * `vfio_container_dma_unmap(iova, size)`. The event carries the kernel's
   * return; the caller gets what QEMU's back-end reports (they differ for
   * iommufd's -ENOENT).
   */
  dmaUnmap(iova: number, size: number): Ret {
    const fault = withinModelLimit(iova, size) ? this.#faults.next('unmap') : -EINVAL;
    const valid = fault === 0;
    const cuts = valid ? this.#mappingsCutBy(iova, size) : []; // checked before the kernel acts
    // An injected failure unmaps nothing, as the ioctl failing before it walks the range.
    const kernelRet = valid ? this.kernelUnmap(iova, size) : fault;
    const ret = this.qemuUnmapRet(kernelRet);
    for (const mapping of cuts) this.partialUnmaps.push({ iova, size, mapping, kernelRet, qemuRet: ret });
    if (kernelRet === 0) this.stats.unmaps++;
    else this.stats.unmapErrors++;
    this.#bus?.emit({ kind: 'dmaUnmap', container: this.id, iova, size, ret: kernelRet });
    return ret;
  }

  /**
   * A device access of `[iova, iova + size)`. `fault` when any byte has no
   * mapping (an IOMMU fault); otherwise the first problem found with the
   * pages reached: freed since mapped (`dma-to-stale`), or private
   * (`dma-to-private`).
   */
  deviceAccess(iova: number, size: number): DmaOutcome {
    let covered = iova;
    let outcome = 'ok' as DmaOutcome;
    this.mappings.forEachIntersecting(iova, size, (mIova, mSize, hostOffset, epoch) => {
      if (mIova > covered) return false; // a hole before this mapping
      const start = Math.max(iova, mIova);
      const end = Math.min(iova + size, mIova + mSize);
      const host = hostOffset + (start - mIova);
      if (this.memory.isStale(host, end - start, epoch)) outcome = 'dma-to-stale';
      else if (outcome === 'ok' && this.memory.isPrivate(host, end - start)) outcome = 'dma-to-private';
      covered = end;
      return outcome !== 'dma-to-stale';
    });
    if (outcome === 'dma-to-stale') return outcome;
    if (covered < iova + size) return 'fault';
    return outcome;
  }

  /** Common argument checks of both kernels' map ioctls. */
  protected checkMapArgs(iova: number, size: number, hostOffset: number): Ret {
    if (size === 0) return -EINVAL;
    if (!isAligned(iova, this.pageSize) || !isAligned(size, this.pageSize) || !isAligned(hostOffset, this.pageSize)) {
      return -EINVAL;
    }
    return 0;
  }

  /** Insert after the back-end's own checks: pin, then record the mapping. */
  protected insertPinned(iova: number, size: number, hostOffset: number): Ret {
    const pinned = this.memory.pin(hostOffset, size);
    if (pinned !== 0) return pinned;
    this.mappings.insert(iova, size, hostOffset, this.memory.currentEpoch());
    this.stats.pinnedBytes += size;
    return 0;
  }

  /** Remove every mapping inside the range, unpinning its pages. */
  protected removeContained(iova: number, size: number): number {
    let bytes = 0;
    this.mappings.forEachIntersecting(iova, size, (mIova, mSize, hostOffset) => {
      if (mIova >= iova && mIova + mSize <= iova + size) {
        this.memory.unpin(hostOffset, mSize);
        bytes += mSize;
      }
    });
    this.mappings.removeContained(iova, size);
    this.stats.pinnedBytes -= bytes;
    return bytes;
  }

  /** The kernel's MAP_DMA: 0 or a negative errno. */
  protected abstract kernelMap(iova: number, size: number, hostOffset: number): Ret;
  /** The kernel's UNMAP_DMA: 0 or a negative errno. */
  protected abstract kernelUnmap(iova: number, size: number): Ret;
  /** How QEMU's back-end turns the kernel's unmap return into its own. */
  protected abstract qemuUnmapRet(kernelRet: Ret): Ret;

  /** Mappings that the range `[iova, iova + size)` cuts through at either end. */
  #mappingsCutBy(iova: number, size: number): Array<{ iova: number; size: number }> {
    const end = iova + size;
    const cuts: Array<{ iova: number; size: number }> = [];
    this.mappings.forEachIntersecting(iova, size, (mIova, mSize) => {
      if (mIova < iova || mIova + mSize > end) cuts.push({ iova: mIova, size: mSize });
    });
    return cuts;
  }
}

/**
 * The model keeps IOVAs as JS numbers: a range ending past 2^53 is refused
 * with -EINVAL (the kernel's own limit is 2^64, checked the same way for
 * wrap-around).
 */
function withinModelLimit(iova: number, size: number): boolean {
  return iova + size <= Number.MAX_SAFE_INTEGER;
}
