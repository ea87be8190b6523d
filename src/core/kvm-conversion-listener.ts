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
  /** First CONVERT_PRIVATE failure since the last `takeError` (discards cannot return errors). */
  #error: Ret = 0;

  constructor(kvm: KvmMemoryAttributes, memory: GuestMemory, bus?: EventBus) {
    this.#kvm = kvm;
    this.#memory = memory;
    this.#bus = bus;
  }

  /** To shared: KVM attribute, then guest_memfd CONVERT_SHARED. */
  notifyPopulate(section: MemoryRegionSection): Ret {
    const { offsetWithinRegion: offset, size } = section;
    const gpa = this.#kvm.gpaBase + offset;
    this.#kvm.set(gpa, size, false);
    this.#bus?.emit({ kind: 'kvmSetAttributes', gpa, size, private: false });
    const ret = this.#memory.convertShared(offset, size);
    this.#bus?.emit({ kind: 'gmemConvertShared', offset, size, ret });
    return ret;
  }

  /** To private: KVM attribute, then guest_memfd CONVERT_PRIVATE (-EAGAIN while pinned). */
  notifyDiscard(section: MemoryRegionSection): void {
    const { offsetWithinRegion: offset, size } = section;
    const gpa = this.#kvm.gpaBase + offset;
    this.#kvm.set(gpa, size, true);
    this.#bus?.emit({ kind: 'kvmSetAttributes', gpa, size, private: true });
    const ret = this.#memory.convertPrivate(offset, size);
    this.#bus?.emit({ kind: 'gmemConvertPrivate', offset, size, ret });
    if (ret !== 0 && this.#error === 0) this.#error = ret;
  }

  /** The first conversion error since the last call, then reset. */
  takeError(): Ret {
    const error = this.#error;
    this.#error = 0;
    return error;
  }
}
