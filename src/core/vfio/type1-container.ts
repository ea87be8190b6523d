/**
 * The legacy VFIO type1 back-end (`VFIO_TYPE1v2_IOMMU`), with the kernel's
 * rules from drivers/vfio/vfio_iommu_type1.c.
 */
import { EEXIST, EINVAL, ENOSPC, type Ret } from '../errno.js';
import type { EventBus } from '../events.js';
import type { PinnableMemory } from '../guest-memory.js';
import { VfioContainer, type VfioBackend } from './container.js';

/** `vfio_iommu_type1.dma_entry_limit` default: U16_MAX. */
export const TYPE1_DEFAULT_DMA_ENTRY_LIMIT = 65535;

export class Type1Container extends VfioContainer {
  readonly backend: VfioBackend = 'type1';
  /** `dma_entry_limit`: each mapping takes one entry. */
  readonly dmaEntryLimit: number;

  constructor(id: string, memory: PinnableMemory, dmaEntryLimit = TYPE1_DEFAULT_DMA_ENTRY_LIMIT, bus?: EventBus) {
    super(id, memory, bus);
    this.dmaEntryLimit = dmaEntryLimit;
  }

  override get dmaMaxMappings(): number {
    return this.dmaEntryLimit;
  }

  /** `vfio_dma_do_map`: -EINVAL bad args, -EEXIST on overlap, then -ENOSPC when no entry is left. */
  protected override kernelMap(iova: number, size: number, hostOffset: number): Ret {
    const bad = this.checkMapArgs(iova, size, hostOffset);
    if (bad !== 0) return bad;
    if (this.mappings.intersects(iova, size)) return -EEXIST;
    if (this.mappings.count >= this.dmaEntryLimit) return -ENOSPC; // dma_avail == 0
    return this.insertPinned(iova, size, hostOffset);
  }

  /**
   * `vfio_dma_do_unmap`: a range whose first byte lies inside a mapping that
   * starts before it, or whose last byte lies inside a mapping that ends
   * after it, bisects that mapping -> -EINVAL, nothing unmapped. A range with
   * no mappings succeeds (0 bytes).
   */
  protected override kernelUnmap(iova: number, size: number): Ret {
    if (size === 0 || !Number.isInteger(iova / this.pageSize) || !Number.isInteger(size / this.pageSize)) return -EINVAL;
    const first = this.mappings.find(iova);
    if (first !== undefined && first.iova !== iova) return -EINVAL;
    const last = this.mappings.find(iova + size - 1);
    if (last !== undefined && last.iova + last.size !== iova + size) return -EINVAL;
    this.removeContained(iova, size);
    return 0;
  }

  /** `vfio_legacy_dma_unmap` passes the kernel's error up. */
  protected override qemuUnmapRet(kernelRet: Ret): Ret {
    return kernelRet;
  }
}
