/**
 * `kvm_convert_memory(start, size, to_private)` (accel/kvm/kvm-all.c), the
 * path a vCPU takes on a memory-fault exit or a MapGPA hypercall.
 */
import type { ConversionDiscard } from './conversion-discard.js';
import type { ConversionFaults } from './conversion-faults.js';
import { EINVAL, type Ret } from './errno.js';
import type { EventBus } from './events.js';
import type { BackingMode, GuestMemory } from './guest-memory.js';
import type { KvmConversionListener } from './kvm-conversion-listener.js';
import type { KvmMemoryAttributes } from './kvm-memory-attributes.js';
import { isValidBlockRange } from './ram-block-attributes.js';
import { isAligned } from './units.js';

/**
 * Order of VFIO notification against guest_memfd's in-place conversion:
 * - `v6`: the merged order unchanged: guest_memfd converts, then the state
 *   change notifies listeners (unmap comes too late for CONVERT_PRIVATE).
 * - `priority`: v4 priority listeners; the KVM/guest_memfd change is the
 *   priority-0 listener (forward walk to shared, reverse to private).
 * - `explicit`: Aug 2025 POC: state change before CONVERT_PRIVATE, after
 *   CONVERT_SHARED.
 */
export type InplaceOrder = 'v6' | 'priority' | 'explicit';
export const INPLACE_ORDERS: readonly InplaceOrder[] = ['v6', 'priority', 'explicit'];

/** Everything `kvm_convert_memory` touches. */
export interface ConversionContext {
  readonly regionSize: number;
  /** `qemu_real_host_page_size()`. */
  readonly pageSize: number;
  /** Which page is freed after a conversion (QEMU's rule, with hugetlb; or the selftest host's). */
  readonly discard: ConversionDiscard;
  /** Failures of the attribute ioctl and of discards (default: none; see `NO_CONVERSION_FAULTS`). */
  readonly faults: ConversionFaults;
  readonly mode: BackingMode;
  readonly inplaceOrder: InplaceOrder;
  readonly kvm: KvmMemoryAttributes;
  readonly memory: GuestMemory;
  /** Registered with `rba` in `priority` order only. */
  readonly kvmListener: KvmConversionListener | undefined;
  readonly bus: EventBus | undefined;
}

/**
 * The one call `kvm_convert_memory` makes into RamBlockAttributes. Yielded
 * so that the same algorithm runs synchronously and on the actor runtime
 * (where it is a message to the RamBlockAttributes owner).
 */
export interface StateChangeCall {
  readonly kind: 'stateChange';
  readonly offset: number;
  readonly size: number;
  readonly toDiscard: boolean;
}

export type ConversionSteps = Generator<StateChangeCall, Ret, Ret>;

/**
 * Convert `[start, start + size)` (guest physical) to private or shared.
 * Returns 0 or an error; a caller (the vCPU loop) stops the VM on error.
 * `fallocate` is the Linux selftest's flag (only its host's discard rule
 * looks at it; QEMU has none).
 *
 * Legacy order: KVM attribute -> bitmap + listeners -> free the page on the
 * side being left. In-place: see {@link InplaceOrder}.
 */
export function* kvmConvertMemory(ctx: ConversionContext, start: number, size: number, toPrivate: boolean, fallocate = false): ConversionSteps {
  // Current QEMU returns -EINVAL for bad arguments and for "no region, to private" (older QEMU: -1).
  if (!isAligned(start, ctx.pageSize) || !isAligned(size, ctx.pageSize) || size === 0) return -EINVAL;

  // memory_region_find(): the model has one guest_memfd RAMBlock, shown by the sections of
  // the guest-physical map; nothing else is RAM.
  const found = ctx.kvm.physMap.find(start, size);
  if (found === undefined) {
    // Converting unassigned memory to shared is ignored (emulated MMIO); to private is an error.
    return toPrivate ? -EINVAL : 0;
  }
  // QEMU derives the offset from the section found but keeps the caller's size.
  const offset = found.offset;
  const stateChange: StateChangeCall = { kind: 'stateChange', offset, size, toDiscard: toPrivate };

  if (ctx.mode === 'inplace' && ctx.inplaceOrder === 'priority') {
    // The KVM attribute and guest_memfd conversion happen inside the walk.
    const ret = yield stateChange;
    const conversionError = ctx.kvmListener?.takeError(offset, size) ?? 0;
    return ret !== 0 ? ret : conversionError;
  }

  // kvm_set_memory_attributes_private/shared: an ioctl error is returned as it is, nothing changed.
  const setRet = ctx.faults.failSetAttributes(start, size, toPrivate);
  if (setRet !== 0) return setRet;
  ctx.kvm.set(start, size, toPrivate);
  ctx.bus?.emit({ kind: 'kvmSetAttributes', gpa: start, size, private: toPrivate });

  if (ctx.mode === 'legacy') {
    const ret = yield stateChange;
    if (ret !== 0) return ret; // "Failed to notify the listener the state change"
    if (toPrivate) {
      // Shared memory backed by hugetlb is pre-allocated and not discarded: it keeps its data.
      if (!ctx.discard.discardShared(fallocate)) return 0;
      const discardRet = ctx.faults.failDiscard(offset, size, toPrivate);
      if (discardRet !== 0) return discardRet;
      ctx.memory.discardShared(offset, size); // ram_block_discard_range
      ctx.bus?.emit({ kind: 'discardShared', offset, size });
    } else {
      if (!ctx.discard.discardPrivate(fallocate)) return 0;
      const discardRet = ctx.faults.failDiscard(offset, size, toPrivate);
      if (discardRet !== 0) return discardRet;
      ctx.memory.discardPrivate(offset, size); // ram_block_discard_guest_memfd_range
      ctx.bus?.emit({ kind: 'discardPrivate', offset, size });
    }
    return 0;
  }

  const convertFirst = ctx.inplaceOrder === 'v6' || !toPrivate;
  if (convertFirst) {
    const ret = gmemConvert(ctx, offset, size, toPrivate);
    if (ret !== 0) return ret;
    return yield stateChange;
  }
  const ret = yield stateChange;
  if (ret !== 0) return ret;
  return gmemConvert(ctx, offset, size, toPrivate);
}

/** guest_memfd's in-place `CONVERT_PRIVATE` / `CONVERT_SHARED`. */
function gmemConvert(ctx: ConversionContext, offset: number, size: number, toPrivate: boolean): Ret {
  if (!isValidBlockRange(offset, size, ctx.pageSize, ctx.regionSize)) {
    ctx.bus?.emit({ kind: toPrivate ? 'gmemConvertPrivate' : 'gmemConvertShared', offset, size, ret: -EINVAL });
    return -EINVAL;
  }
  if (toPrivate) {
    const ret = ctx.memory.convertPrivate(offset, size);
    ctx.bus?.emit({ kind: 'gmemConvertPrivate', offset, size, ret });
    return ret;
  }
  const ret = ctx.memory.convertShared(offset, size);
  ctx.bus?.emit({ kind: 'gmemConvertShared', offset, size, ret });
  return ret;
}
