/**
 * The iommufd back-end (`IOMMU_IOAS_MAP` / `IOMMU_IOAS_UNMAP`), with the
 * kernel's rules from drivers/iommu/iommufd/io_pagetable.c and QEMU's
 * backends/iommufd.c on top.
 */
import { EEXIST, EINVAL, ENOENT, type Ret } from '../errno.js';
import { VfioContainer, type VfioBackend } from './container.js';

export class IommufdContainer extends VfioContainer {
  readonly backend: VfioBackend = 'iommufd';

  /** iommufd has no per-container entry limit of type1's kind: QEMU reads 0. */
  override get dmaMaxMappings(): number {
    return 0;
  }

  protected override kernelMap(iova: number, size: number, hostOffset: number): Ret {
    const bad = this.checkMapArgs(iova, size, hostOffset);
    if (bad !== 0) return bad;
    if (this.mappings.intersects(iova, size)) return -EEXIST;
    return this.insertPinned(iova, size, hostOffset);
  }

  /**
   * `iopt_unmap_iova_range`: walk the areas in the range in ascending order,
   * unmapping each one that lies wholly inside; the first area only partly
   * covered stops the walk with -ENOENT (areas before it stay unmapped). A
   * range with nothing mapped is -ENOENT too.
   */
  protected override kernelUnmap(iova: number, size: number): Ret {
    if (size === 0) return -EINVAL;
    const end = iova + size;
    let unmappedBytes = 0;
    let cutAt = -1;
    this.mappings.forEachIntersecting(iova, size, (mIova, mSize) => {
      if (mIova < iova || mIova + mSize > end) {
        cutAt = mIova;
        return false;
      }
      return true;
    });
    const stop = cutAt < 0 ? end : cutAt;
    if (stop > iova) unmappedBytes = this.removeContained(iova, stop - iova);
    if (cutAt >= 0) return -ENOENT;
    return unmappedBytes > 0 ? 0 : -ENOENT;
  }

  /**
   * `iommufd_backend_unmap_dma`: "unmapping nonexistent mapping is treated
   * as deleting a nonexistent object and return ENOENT ... treat them as
   * success". Every -ENOENT becomes 0, including a partial unmap whose
   * mapping stays in place [inferred from the two code paths].
   */
  protected override qemuUnmapRet(kernelRet: Ret): Ret {
    return kernelRet === -ENOENT ? 0 : kernelRet;
  }
}
