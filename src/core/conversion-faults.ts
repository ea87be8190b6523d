/**
 * Failures `kvm_convert_memory` can meet outside RamBlockAttributes, as an
 * injectable policy chosen at construction: the KVM_SET_MEMORY_ATTRIBUTES
 * ioctl (`kvm_set_memory_attributes_private/shared`) and the discard of the
 * page left behind (`ram_block_discard_range` on a conversion to private,
 * `ram_block_discard_guest_memfd_range` to shared). QEMU returns each error
 * to its caller as it gets it; the vCPU loop then stops the VM.
 *
 * A policy returns 0 (no failure) or a negative errno, and must be
 * deterministic for a given seed (it runs inside the deterministic
 * scheduler too): draw from a seeded PRNG, never `Math.random`.
 */
import type { Ret } from './errno.js';

export interface ConversionFaults {
  /** KVM_SET_MEMORY_ATTRIBUTES for `[gpa, gpa + size)` fails with this (0: it succeeds). Nothing changes on failure. */
  failSetAttributes(gpa: number, size: number, toPrivate: boolean): Ret;
  /**
   * The discard of `[offset, offset + size)` of the RAMBlock on the side
   * being left (`toPrivate`: the shared page; otherwise guest_memfd) fails
   * with this (0: it succeeds). Nothing is discarded on failure.
   */
  failDiscard(offset: number, size: number, toPrivate: boolean): Ret;
}

/** The default: nothing fails. */
export const NO_CONVERSION_FAULTS: ConversionFaults = {
  failSetAttributes: () => 0,
  failDiscard: () => 0,
};
