/**
 * Reference VFIO RamDiscardListener (spec section 4) and the glue a
 * confidential VM provides: containers, per-container listener lists,
 * register/unregister, state changes.
 */
import { RefContainer, type RefBackend } from './containers.js';
import { ENOSPC, type RefEvent, type RefSection } from './events.js';
import { RefRamBlockAttributes, type RefListener, type RefRollback } from './ram-block-attributes.js';

/** `kvm_get_max_memslots()` as the spec gives it. */
export const REF_MAX_MEMSLOTS = 512;

/**
 * The VFIO listener: maps a populated section in granularity-sized chunks
 * aligned inside the region; on a failed map, one unmap of the whole
 * notified section and the error. Discard: one unmap of the section.
 */
export class RefVfioListener implements RefListener {
  readonly container: RefContainer;
  readonly section: RefSection;
  readonly granularity: number;

  constructor(container: RefContainer, section: RefSection, granularity: number) {
    this.container = container;
    this.section = section;
    this.granularity = granularity;
  }

  get name(): string {
    return this.container.id;
  }

  populate(s: RefSection): number {
    let start = s.offset;
    while (start < s.offset + s.size) {
      const next = Math.min((Math.floor(start / this.granularity) + 1) * this.granularity, s.offset + s.size);
      const ret = this.container.map(s.iova + (start - s.offset), next - start, start);
      if (ret !== 0) {
        this.discard(s);
        return ret;
      }
      start = next;
    }
    return 0;
  }

  discard(s: RefSection): void {
    this.container.unmap(s.iova, s.size);
  }
}

export interface RefContainerSpec {
  readonly id: string;
  readonly backend: RefBackend;
  readonly limit: number;
}

export class RefVm {
  readonly events: RefEvent[] = [];
  readonly rba: RefRamBlockAttributes;
  readonly containers = new Map<string, RefContainer>();
  /** Per container, its VFIO listeners newest first. */
  readonly listeners = new Map<string, RefVfioListener[]>();

  constructor(regionSize: number, blockSize: number, rollback: RefRollback, containers: readonly RefContainerSpec[]) {
    this.rba = new RefRamBlockAttributes(regionSize, blockSize, rollback, this.events);
    for (const c of containers) {
      this.containers.set(c.id, new RefContainer(c.id, c.backend, c.limit, this.events));
      this.listeners.set(c.id, []);
    }
  }

  container(id: string): RefContainer {
    const c = this.containers.get(id);
    if (c === undefined) throw new Error(`reference: no container ${id}`);
    return c;
  }

  /** Take (and forget) the events since the last call. */
  takeEvents(): RefEvent[] {
    return this.events.splice(0);
  }

  /**
   * `vfio_ram_discard_register_listener`: register (replaying populated runs),
   * link into the container's list; a replay error is returned as is; then
   * the worst-case estimate (blocks of all the container's sections +
   * memslots - listeners) against `dma_max_mappings` -> -ENOSPC. The
   * listener stays registered either way.
   */
  register(containerId: string, section: RefSection): number {
    const container = this.container(containerId);
    const listener = new RefVfioListener(container, section, this.rba.blockSize);
    const ret = this.rba.register(listener, section);
    const list = [listener, ...this.listeners.get(containerId)!];
    this.listeners.set(containerId, list);
    if (ret !== 0) return ret;
    const max = container.maxMappings;
    if (max > 0) {
      const g = this.rba.blockSize;
      let worst = 0;
      for (const l of list) {
        const first = Math.floor(l.section.iova / g);
        const last = Math.ceil((l.section.iova + l.section.size) / g);
        worst += last - first;
      }
      if (worst + REF_MAX_MEMSLOTS - list.length > max) return -ENOSPC;
    }
    return 0;
  }

  /** Every listener of the container, newest first. */
  unregister(containerId: string): void {
    const list = this.listeners.get(containerId)!;
    this.listeners.set(containerId, []);
    for (const l of list) this.rba.unregister(l);
  }

  stateChange(offset: number, size: number, toDiscard: boolean): number {
    return this.rba.stateChange(offset, size, toDiscard);
  }
}
