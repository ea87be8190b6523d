/**
 * The RamDiscardManager interface (include/system/memory.h) as implemented by
 * RamBlockAttributes: populated = shared, discarded = private.
 */
import type { Ret } from './errno.js';
import type { MemoryRegionSection } from './memory-region-section.js';

/**
 * `RamDiscardListener`: a subscriber to populate/discard notifications for one
 * section of the region (VFIO registers one per container and section).
 */
export interface RamDiscardListener {
  /** Display name in traces (for VFIO: the container id). */
  readonly name: string;
  /**
   * VFIO sets this: one discard for the whole section on unregister is fine,
   * even where parts are already discarded.
   */
  readonly doubleDiscardSupported: boolean;
  /**
   * Priority for the v4 priority-listener design: lower runs first when
   * populating, last when discarding. Ignored unless priorities are enabled.
   */
  readonly priority: number;
  /** Map (make available) the section. 0 or a negative errno. */
  notifyPopulate(section: MemoryRegionSection): Ret;
  /** Unmap the section. Cannot fail (failures are only logged). */
  notifyDiscard(section: MemoryRegionSection): void;
}

/** Priority of the KVM/guest_memfd conversion listener in the v4 design. */
export const RAM_DISCARD_LISTENER_PRIORITY_MIN = 0;
/** Priority of VFIO listeners in the v4 design. */
export const RAM_DISCARD_LISTENER_PRIORITY_COMMON = 10;

/** Callback of `replayPopulated`/`replayDiscarded`: non-zero stops the replay. */
export type ReplayFn = (section: MemoryRegionSection) => Ret;

/** The operations QEMU's RamDiscardManager class exposes. */
export interface RamDiscardManager {
  getMinGranularity(): number;
  isPopulated(section: MemoryRegionSection): boolean;
  replayPopulated(section: MemoryRegionSection, fn: ReplayFn): Ret;
  replayDiscarded(section: MemoryRegionSection, fn: ReplayFn): Ret;
  registerListener(listener: RamDiscardListener, section: MemoryRegionSection): Ret;
  unregisterListener(listener: RamDiscardListener): void;
}
