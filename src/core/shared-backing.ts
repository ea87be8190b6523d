/**
 * The memory backend behind the shared half of a guest_memfd RAMBlock
 * (legacy two-page backing). What matters to `kvm_convert_memory` is its
 * page size against the host's: with hugetlb (`rb->page_size !=
 * qemu_real_host_page_size()`) the shared page is pre-allocated and QEMU
 * does not discard it on a conversion to private, so it keeps its data and
 * stays allocated while the page is private.
 */
import { MiB, PAGE_SIZE } from './units.js';

export type SharedBacking = 'anonymous' | 'hugetlb';
export const SHARED_BACKINGS: readonly SharedBacking[] = ['anonymous', 'hugetlb'];

/** `rb->page_size` of the RAMBlock for each backing (hugetlb: 2 MiB pages). */
export function sharedBackingPageSize(backing: SharedBacking): number {
  return backing === 'hugetlb' ? 2 * MiB : PAGE_SIZE;
}
