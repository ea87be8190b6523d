/**
 * Reference VFIO container back-ends (spec section 4, "Container back-ends"),
 * written from the spec only: the mapping table is a plain array of
 * `{iova, size, host}` kept sorted by iova, and every rule is a linear scan.
 */
import { EEXIST, EINVAL, ENOENT, ENOSPC, PAGE, type RefEvent } from './events.js';

export type RefBackend = 'type1' | 'iommufd';

export interface RefMapping {
  readonly iova: number;
  readonly size: number;
  readonly host: number;
}

const end = (m: { iova: number; size: number }): number => m.iova + m.size;
/** An empty range overlaps nothing. */
const overlaps = (m: RefMapping, iova: number, size: number): boolean => size > 0 && m.iova < iova + size && iova < end(m);

export class RefContainer {
  /** Sorted by iova, never overlapping. */
  mappings: RefMapping[] = [];
  /** Number of (unmap, mapping) pairs where the unmap range cut through the mapping. */
  cuts = 0;
  #failures = 0;
  #failErrno = 0;

  readonly id: string;
  readonly backend: RefBackend;
  /** type1 `dma_entry_limit`; ignored for iommufd. */
  readonly limit: number;
  readonly #log: RefEvent[];

  constructor(id: string, backend: RefBackend, limit: number, log: RefEvent[]) {
    this.id = id;
    this.backend = backend;
    this.limit = limit;
    this.#log = log;
  }

  /** What QEMU reads as `dma_max_mappings`: the type1 limit, 0 (none) for iommufd. */
  get maxMappings(): number {
    return this.backend === 'type1' ? this.limit : 0;
  }

  /** Fault injection: the next `count` maps fail with `-errno` (replaces any earlier request). */
  failNextMaps(count: number, errno: number): void {
    this.#failures = count;
    this.#failErrno = errno;
  }

  /** `dma_map`: the event and the return carry the kernel's answer. */
  map(iova: number, size: number, host: number): number {
    let ret: number;
    if (this.#failures > 0) {
      this.#failures--;
      ret = -this.#failErrno;
    } else {
      ret = this.#kernelMap(iova, size, host);
    }
    this.#log.push({ kind: 'dmaMap', container: this.id, iova, size, ret });
    return ret;
  }

  /** `dma_unmap`: the event carries the kernel's return, the caller gets QEMU's. */
  unmap(iova: number, size: number): number {
    for (const m of this.mappings) {
      if (overlaps(m, iova, size) && (m.iova < iova || end(m) > iova + size)) this.cuts++;
    }
    const kernelRet = this.backend === 'type1' ? this.#type1Unmap(iova, size) : this.#iommufdUnmap(iova, size);
    this.#log.push({ kind: 'dmaUnmap', container: this.id, iova, size, ret: kernelRet });
    // QEMU's iommufd back-end treats every -ENOENT from unmap as success.
    if (this.backend === 'iommufd' && kernelRet === -ENOENT) return 0;
    return kernelRet;
  }

  /** True when every byte of `[iova, iova+size)` is covered by some mapping. */
  covers(iova: number, size: number): boolean {
    for (let at = iova; at < iova + size; at++) {
      // Jump over whole mappings instead of walking byte by byte.
      const m = this.mappings.find((x) => x.iova <= at && at < end(x));
      if (m === undefined) return false;
      at = end(m) - 1;
    }
    return true;
  }

  #kernelMap(iova: number, size: number, host: number): number {
    if (size === 0 || iova % PAGE !== 0 || size % PAGE !== 0 || host % PAGE !== 0) return -EINVAL;
    if (this.mappings.some((m) => overlaps(m, iova, size))) return -EEXIST;
    if (this.backend === 'type1' && this.mappings.length >= this.limit) return -ENOSPC;
    this.mappings.push({ iova, size, host });
    this.mappings.sort((a, b) => a.iova - b.iova);
    return 0;
  }

  /**
   * type1: -EINVAL when the range bisects a mapping at either end (nothing
   * unmapped); otherwise every mapping inside goes, 0 even if none did.
   */
  #type1Unmap(iova: number, size: number): number {
    if (size === 0 || iova % PAGE !== 0 || size % PAGE !== 0) return -EINVAL;
    const last = iova + size;
    const bisectsStart = this.mappings.some((m) => m.iova < iova && iova < end(m));
    const bisectsEnd = this.mappings.some((m) => m.iova < last && last < end(m));
    if (bisectsStart || bisectsEnd) return -EINVAL;
    this.mappings = this.mappings.filter((m) => !(m.iova >= iova && end(m) <= last));
    return 0;
  }

  /**
   * iommufd: walk the areas in the range in ascending order; each one fully
   * inside is unmapped; the first one only partly inside stops the walk with
   * -ENOENT (those before it stay unmapped). Nothing unmapped: -ENOENT.
   */
  #iommufdUnmap(iova: number, size: number): number {
    if (size === 0) return -EINVAL;
    const last = iova + size;
    const removed = new Set<RefMapping>();
    let ret = 0;
    for (const m of this.mappings) {
      if (!overlaps(m, iova, size)) continue;
      if (m.iova < iova || end(m) > last) {
        ret = -ENOENT;
        break;
      }
      removed.add(m);
    }
    this.mappings = this.mappings.filter((m) => !removed.has(m));
    if (ret !== 0) return ret;
    return removed.size > 0 ? 0 : -ENOENT;
  }
}
