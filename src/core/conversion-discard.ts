/**
 * Which page the host frees after a conversion (legacy two-page backing),
 * as a policy chosen at construction:
 *
 * - QEMU (`kvm_convert_memory`): to private, `ram_block_discard_range` on
 *   the shared page unless the shared backing's page size differs from the
 *   host's (hugetlb, pre-allocated); to shared,
 *   `ram_block_discard_guest_memfd_range` always.
 * - The Linux selftest's own host (`handle_exit_hypercall` of
 *   private_mem_conversions_test): never frees shared memory; punches a
 *   hole in guest_memfd only when the guest asks for fallocate on a
 *   conversion to shared.
 */
export interface ConversionDiscard {
  /** After a conversion to private: free the shared page? */
  discardShared(fallocate: boolean): boolean;
  /** After a conversion to shared: free the guest_memfd page? */
  discardPrivate(fallocate: boolean): boolean;
}

/** QEMU's rule, given `rb->page_size` and `qemu_real_host_page_size()`. */
export function qemuDiscard(sharedPageSize: number, hostPageSize: number): ConversionDiscard {
  const sharedIsHugetlb = sharedPageSize !== hostPageSize;
  return {
    discardShared: () => !sharedIsHugetlb,
    discardPrivate: () => true,
  };
}

/** The selftest host's rule. */
export const SELFTEST_HOST_DISCARD: ConversionDiscard = {
  discardShared: () => false,
  discardPrivate: (fallocate) => fallocate,
};
