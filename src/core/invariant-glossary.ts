/**
 * What each invariant name means and what to do when it fails: the text of
 * `convsim invariants` and of the README glossary.
 */
import type { InvariantName } from './invariants.js';

/** One glossary entry. */
export interface InvariantEntry {
  /** What the check asserts, in one sentence. */
  readonly means: string;
  /** Where to look first when it fails. */
  readonly whatToDo: string;
}

/** Every invariant, plus `deadlock` (explore and replay report it as a failure without an invariant of its own). */
export const INVARIANT_GLOSSARY: Readonly<Record<InvariantName | 'deadlock', InvariantEntry>> = {
  'stale-mapping': {
    means: 'a VFIO container maps an IOVA whose block is private, at a quiescent point, at a map (bitmap or KVM attributes private), or when QEMU frees the shared page while a container still maps (pins) it',
    whatToDo: 'check that every discard reaches every listener and that the bitmap is updated before populate notifications (the notify-before-bitmap mutant)',
  },
  'dma-to-private': {
    means: 'a device access reached a block whose KVM attribute is private',
    whatToDo: 'look for a conversion to private that did not unmap the IOMMU entry first, or a guest workload that gives the device private memory',
  },
  'dma-to-stale': {
    means: 'a device access went through a mapping the bitmap no longer backs (stale page)',
    whatToDo: 'as stale-mapping: find the discard that did not unmap',
  },
  disagreement: {
    means: 'at a quiescent point, KVM attributes and the bitmap, or a container\'s mappings and the bitmap over its sections, disagree',
    whatToDo: 'a conversion was lost or half-applied: look for overlapping conversions (--in-flight above 1) or a registration racing with a state change',
  },
  'entry-limit': {
    means: 'a type1 container holds more mappings than its dma_entry_limit',
    whatToDo: 'only a broken container model can do this (the kernel refuses the map with -ENOSPC (-28) first)',
  },
  'partial-unmap': {
    means: 'an unmap cut a mapping in two and left part of it mapped',
    whatToDo: 'iommufd unmaps whole areas: check the back-end\'s handling of -ENOENT (-2)',
  },
  'inplace-order': {
    means: 'in-place mode: CONVERT_PRIVATE ran while a page was still mapped (pinned) for DMA, or a page was mapped while guest_memfd held it private',
    whatToDo: 'unmap before CONVERT_PRIVATE and map after CONVERT_SHARED: use the explicit or priority order, not v6',
  },
  rollback: {
    means: 'after a failed populate, the bitmap and the mappings are not what the rollback policy promises',
    whatToDo: 'compare the listeners notified before the failing one with the discards sent back (--rollback listener or full)',
  },
  validity: {
    means: 'a request that returned -EINVAL (-22) changed state anyway',
    whatToDo: 'move the validity check before any state change, as ram_block_attributes_state_change does',
  },
  'data-integrity': {
    means: 'the guest read back data it did not write (the selftest workload\'s pattern check)',
    whatToDo: 'legacy mode discards a page on conversion; in place, shared data must survive a private round trip: see which conversion lost it',
  },
  'incomplete-conversion': {
    means: 'a conversion returned 0 to the guest, but KVM\'s memory attributes (and guest_memfd, in place) do not cover the whole range the guest asked for (checked where the workload says the vCPU owns the range)',
    whatToDo: 'look at how kvm_convert_memory and the exits split the request: the GPA to offset translation (memory_region_find), the size passed on, the TDX/SNP pieces and retries',
  },
  'conversion-failed': {
    means: 'a valid conversion (page aligned, all of it RAM) failed although no fault was injected: QEMU stops the VM for nothing',
    whatToDo: 'read the errno: -EINVAL points at a wrong offset or size reaching ram_block_attributes_state_change, -ENOSPC at the type1 entry limit, -EEXIST at a double map',
  },
  'lost-update': {
    means: 'a store of a 64-bit bitmap word wrote back a block its thread did not mean to change, with a value other than the one the last state change writing that block wrote (two vCPUs converting disjoint pages of one 256 KiB word with the non-atomic bitmap ops)',
    whatToDo: 'make the bitmap writes of ram_block_attributes_state_change atomic (--bitmap-ops atomic) or serialise state changes (--conversion-lock rba-mutex or bql); the story names the two threads, the word, their loads and stores',
  },
  'use-after-free': {
    means: 'a walk of rdl_list (a state change notifying listeners) stepped on from a listener that vfio_ram_discard_unregister_listener had unlinked and freed meanwhile',
    whatToDo: 'keep unregistration away from walks: RCU for rdl_list (--listener-list rcu), or the BQL around conversions (--conversion-lock bql); serialising registration alone (--registration serialized) also closes it',
  },
  deadlock: {
    means: 'every actor waits for a message, every inbox is empty, yet a vCPU still waits for a reply',
    whatToDo: 'replay the token and read the last messages of the story: a reply was never sent (or an actor went silent)',
  },
};
