/**
 * One confidential VM as the protocol sees it: a guest_memfd RAMBlock with
 * its RamBlockAttributes, KVM's memory attributes, the backing pages, and
 * the VFIO containers with their listeners. Single-threaded and
 * synchronous: the actor runtime splits the same objects across threads.
 */
import { qemuDiscard } from './conversion-discard.js';
import { NO_CONVERSION_FAULTS, type ConversionFaults } from './conversion-faults.js';
import { type Ret, retName } from './errno.js';
import { sharedBackingPageSize, type SharedBacking } from './shared-backing.js';
import { EventBus } from './events.js';
import { GuestMemory, type BackingMode } from './guest-memory.js';
import { KvmConversionListener } from './kvm-conversion-listener.js';
import { kvmConvertMemory, type ConversionContext, type InplaceOrder } from './kvm-convert-memory.js';
import { KvmMemoryAttributes } from './kvm-memory-attributes.js';
import type { MemoryRegionSection } from './memory-region-section.js';
import { RamBlockAttributes, type RollbackPolicy } from './ram-block-attributes.js';
import { formatSize } from './units.js';
import type { DmaOutcome, VfioBackend, VfioContainer } from './vfio/container.js';
import { KVM_X86_MAX_MEMSLOTS } from './vfio/dma-mapping-estimate.js';
import { IommufdContainer } from './vfio/iommufd-container.js';
import { Type1Container, TYPE1_DEFAULT_DMA_ENTRY_LIMIT } from './vfio/type1-container.js';
import {
  vfioRamDiscardRegisterListener,
  type DmaLimitCheck,
  type RegisterResult,
  type VfioRamDiscardListener,
} from './vfio/vfio-ram-discard-listener.js';

/** Name of the one guest_memfd memory region. */
export const GUEST_MR = 'ram0';

export interface VmConfig {
  /** Bytes of guest RAM in the guest_memfd region. */
  readonly regionSize: number;
  /** RamBlockAttributes block size (the host page size, 4096). */
  readonly blockSize: number;
  /** Guest physical address where the region starts. */
  readonly gpaBase: number;
  readonly rollback: RollbackPolicy;
  readonly mode: BackingMode;
  /** Only used in `inplace` mode. */
  readonly inplaceOrder: InplaceOrder;
  /** `kvm_get_max_memslots()` for the VFIO mapping estimate (x86 KVM: 32764; 512 without KVM). */
  readonly maxMemslots: number;
  /** What the VFIO mapping estimate does when exceeded. */
  readonly dmaLimitCheck: DmaLimitCheck;
  /** The shared half's memory backend (default `anonymous`); `hugetlb` is not discarded on a conversion to private. */
  readonly sharedBacking?: SharedBacking;
}

export const DEFAULT_VM_CONFIG: Omit<VmConfig, 'regionSize'> = {
  blockSize: 4096,
  gpaBase: 0,
  rollback: 'none',
  mode: 'legacy',
  inplaceOrder: 'explicit',
  maxMemslots: KVM_X86_MAX_MEMSLOTS,
  dmaLimitCheck: 'error',
};

/** A VFIO registration request: region offset, size, and the IOVA it maps to. */
export interface SectionSpec {
  readonly offset: number;
  readonly size: number;
  readonly iova: number;
}

export class ConfidentialVm {
  readonly config: VmConfig;
  readonly bus = new EventBus();
  readonly kvm: KvmMemoryAttributes;
  readonly memory: GuestMemory;
  readonly rba: RamBlockAttributes;
  readonly containers = new Map<string, VfioContainer>();
  /** Per container, its VFIO listeners, newest first (`vrdl_list`). */
  readonly vfioListeners = new Map<string, VfioRamDiscardListener[]>();
  readonly kvmListener: KvmConversionListener | undefined;
  #stopReason: string | undefined;
  readonly #conversion: ConversionContext;

  /**
   * @param faults failures of KVM's attribute ioctl and of discards inside
   *   `kvm_convert_memory` (default: none).
   */
  constructor(config: VmConfig, faults: ConversionFaults = NO_CONVERSION_FAULTS) {
    this.config = config;
    this.kvm = new KvmMemoryAttributes(config.gpaBase, config.regionSize, config.blockSize);
    this.memory = new GuestMemory(config.mode, config.regionSize, config.blockSize, this.kvm);
    const priority = config.mode === 'inplace' && config.inplaceOrder === 'priority';
    this.rba = new RamBlockAttributes({
      mr: GUEST_MR,
      regionSize: config.regionSize,
      blockSize: config.blockSize,
      rollback: config.rollback,
      priorities: priority,
      bus: this.bus,
    });
    if (priority) {
      this.kvmListener = new KvmConversionListener(this.kvm, this.memory, this.bus);
      this.rba.registerListener(this.kvmListener, this.wholeRegion());
    }
    this.#conversion = {
      regionSize: config.regionSize,
      pageSize: config.blockSize,
      discard: qemuDiscard(sharedBackingPageSize(config.sharedBacking ?? 'anonymous'), config.blockSize),
      faults,
      mode: config.mode,
      inplaceOrder: config.inplaceOrder,
      kvm: this.kvm,
      memory: this.memory,
      kvmListener: this.kvmListener,
      bus: this.bus,
    };
  }

  get vmStopped(): boolean {
    return this.#stopReason !== undefined;
  }

  get stopReason(): string | undefined {
    return this.#stopReason;
  }

  /** The region as one section at IOVA = region offset. */
  wholeRegion(): MemoryRegionSection {
    return this.section({ offset: 0, size: this.config.regionSize, iova: this.config.gpaBase });
  }

  section(spec: SectionSpec): MemoryRegionSection {
    return { mr: GUEST_MR, offsetWithinRegion: spec.offset, size: spec.size, offsetWithinAddressSpace: spec.iova, readonly: false };
  }

  /** Create a container. `dmaEntryLimit` applies to type1 only. */
  addContainer(id: string, backend: VfioBackend, dmaEntryLimit = TYPE1_DEFAULT_DMA_ENTRY_LIMIT): VfioContainer {
    if (this.containers.has(id)) throw new RangeError(`container ${id} already exists`);
    const container = backend === 'type1'
      ? new Type1Container(id, this.memory, dmaEntryLimit, this.bus)
      : new IommufdContainer(id, this.memory, this.bus);
    this.containers.set(id, container);
    this.vfioListeners.set(id, []);
    return container;
  }

  container(id: string): VfioContainer {
    const container = this.containers.get(id);
    if (container === undefined) throw new RangeError(`no container ${id}`);
    return container;
  }

  /**
   * `vfio_ram_discard_register_listener` for one section of the region.
   * `listener` names it (default: the container id); the result says
   * which step failed, which decides how QEMU ends (see `registerOutcome`).
   */
  registerListener(containerId: string, spec: SectionSpec, listener?: string): RegisterResult {
    const container = this.container(containerId);
    const listeners = this.vfioListeners.get(containerId)!;
    const name = listener ?? containerId;
    return vfioRamDiscardRegisterListener(container, listeners, this.rba, this.section(spec),
      { maxMemslots: this.config.maxMemslots, dmaLimitCheck: this.config.dmaLimitCheck, name });
  }

  /** {@link registerListener}, returning only 0 or the error. */
  register(containerId: string, spec: SectionSpec, listener?: string): Ret {
    return this.registerListener(containerId, spec, listener).ret;
  }

  /** `vfio_ram_discard_unregister_listener` for every listener of the container, newest first. */
  unregister(containerId: string): void {
    const listeners = this.vfioListeners.get(containerId);
    if (listeners === undefined) throw new RangeError(`no container ${containerId}`);
    for (const l of listeners.splice(0)) this.rba.unregisterListener(l);
  }

  /**
   * `vfio_ram_discard_unregister_listener` for the container's listeners
   * named `name`, newest first. Returns how many there were; none is the
   * case where QEMU calls `hw_error("vfio: Trying to unregister missing RAM
   * discard listener")`.
   */
  unregisterNamed(containerId: string, name: string): number {
    const listeners = this.vfioListeners.get(containerId);
    if (listeners === undefined) throw new RangeError(`no container ${containerId}`);
    const named = listeners.filter((l) => l.name === name);
    for (const l of named) {
      listeners.splice(listeners.indexOf(l), 1);
      this.rba.unregisterListener(l);
    }
    return named.length;
  }

  /** `ram_block_attributes_state_change`, called directly. */
  stateChange(offset: number, size: number, toDiscard: boolean): Ret {
    return this.rba.stateChange(offset, size, toDiscard);
  }

  /** The whole `kvm_convert_memory` path; an error stops the VM. */
  convert(gpa: number, size: number, toPrivate: boolean): Ret {
    const steps = kvmConvertMemory(this.#conversion, gpa, size, toPrivate);
    let step = steps.next();
    while (!step.done) step = steps.next(this.rba.stateChange(step.value.offset, step.value.size, step.value.toDiscard));
    const ret = step.value;
    if (ret !== 0) {
      this.stop(`kvm_convert_memory(0x${gpa.toString(16)}, ${formatSize(size)}, to ${toPrivate ? 'private' : 'shared'}) failed: ${retName(ret)}`);
    }
    return ret;
  }

  /** `vm_stop(RUN_STATE_INTERNAL_ERROR)`: the guest pauses, the process stays. */
  stop(reason: string): void {
    if (this.#stopReason !== undefined) return;
    this.#stopReason = reason;
    this.bus.emit({ kind: 'vmStop', reason });
  }

  /** A device behind the container accesses guest memory through the IOMMU. */
  dma(containerId: string, iova: number, size: number): DmaOutcome {
    return this.container(containerId).deviceAccess(iova, size);
  }
}
