/**
 * The v4 `CVMPrivateSharedListener`: in the priority-listener design the KVM
 * attribute change and the guest_memfd in-place conversion are themselves a
 * listener of RamBlockAttributes, at the lowest priority, so that a forward
 * walk (to shared) converts before VFIO maps and a reverse walk (to private)
 * converts after VFIO unmaps.
 */
import type { Ret } from './errno.js';
import type { EventBus } from './events.js';
import type { GuestMemory } from './guest-memory.js';
import type { KvmMemoryAttributes } from './kvm-memory-attributes.js';
import type { MemoryRegionSection } from './memory-region-section.js';
import { RAM_DISCARD_LISTENER_PRIORITY_MIN, type RamDiscardListener } from './ram-discard-manager.js';

export class KvmConversionListener implements RamDiscardListener {
  readonly name = 'kvm';
  readonly doubleDiscardSupported = true;
  readonly priority = RAM_DISCARD_LISTENER_PRIORITY_MIN;
  readonly #kvm: KvmMemoryAttributes;
  readonly #memory: GuestMemory;
  readonly #bus: EventBus | undefined;
  /**
   * CONVERT_PRIVATE failures not yet claimed, with the range they were for
   * (a discard cannot return an error, so the conversion collects it after
   * its state change). Kept per range so that conversions in flight at once
   * each get their own.
   */
  #errors: Array<{ readonly offset: number; readonly size: number; readonly ret: Ret }> = [];

  constructor(kvm: KvmMemoryAttributes, memory: GuestMemory, bus?: EventBus) {
    this.#kvm = kvm;
    this.#memory = memory;
    this.#bus = bus;
  }

  /** To shared: KVM attribute, then guest_memfd CONVERT_SHARED. */
  notifyPopulate(section: MemoryRegionSection): Ret {
    const { offsetWithinRegion: offset, size } = section;
    const gpa = this.#kvm.physMap.gpaOf(offset) ?? offset;
    this.#kvm.setOffsets(offset, size, false);
    this.#bus?.emit({ kind: 'kvmSetAttributes', gpa, size, private: false });
    const ret = this.#memory.convertShared(offset, size);
    this.#bus?.emit({ kind: 'gmemConvertShared', offset, size, ret });
    return ret;
  }

  /** To private: KVM attribute, then guest_memfd CONVERT_PRIVATE (-EAGAIN while pinned). */
  notifyDiscard(section: MemoryRegionSection): void {
    const { offsetWithinRegion: offset, size } = section;
    const gpa = this.#kvm.physMap.gpaOf(offset) ?? offset;
    this.#kvm.setOffsets(offset, size, true);
    this.#bus?.emit({ kind: 'kvmSetAttributes', gpa, size, private: true });
    const ret = this.#memory.convertPrivate(offset, size);
    this.#bus?.emit({ kind: 'gmemConvertPrivate', offset, size, ret });
    if (ret !== 0) this.#errors.push({ offset, size, ret });
  }

  /** The first failure within `[offset, offset + size)`, claiming every failure there; 0 if none. */
  takeError(offset: number, size: number): Ret {
    const mine = this.#errors.filter((e) => e.offset < offset + size && e.offset + e.size > offset);
    if (mine.length === 0) return 0;
    this.#errors = this.#errors.filter((e) => !mine.includes(e));
    return mine[0]!.ret;
  }
}
