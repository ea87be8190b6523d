/**
 * The protocol as a value: the four concurrency policies of the conversion
 * path, each a choice QEMU made (the merged code) or a fix a locking patch
 * could make. A run, an exploration case and a `verify` row carry one
 * {@link ProtocolPolicy}; the code that differs per policy lives in one
 * place per policy (see each type), never as flags spread through the core.
 *
 * What QEMU as merged does (read from `accel/kvm/kvm-all.c`,
 * `system/ram-block-attributes.c`, `include/qemu/bitops.h`,
 * `hw/vfio/listener.c`; `../shared/spec/qemu-concurrency.md`):
 * - `kvm_cpu_exec` drops the BQL before KVM_RUN and calls
 *   `kvm_convert_memory` for KVM_EXIT_MEMORY_FAULT and MapGPA without it:
 *   several vCPU threads convert at once, nothing held;
 * - `ram_block_attributes_state_change` classifies the range with two
 *   bitmap scans, then writes with the non-atomic `bitmap_set`/`set_bit`
 *   (load a 64-bit word, or, store it back), then walks `rdl_list`;
 * - listeners are registered from `vfio_listener_region_add` on the main
 *   loop under the BQL, which the converting vCPUs do not hold;
 * - `vfio_ram_discard_unregister_listener` unlinks (`QLIST_REMOVE`) and
 *   `g_free`s a listener a vCPU may be walking past.
 *
 * @module
 */

/**
 * Who may be inside the conversion path at once.
 * - `none` (merged): each vCPU converts on its own thread; nothing is held.
 * - `bql`: `kvm_convert_memory` runs under the BQL, which registration
 *   holds too: one conversion at a time, never beside a registration.
 * - `rba-mutex`: a mutex inside `ram_block_attributes_state_change` only:
 *   state changes one at a time; KVM's attribute ioctl, the discard and
 *   registration are not covered.
 */
export type ConversionLock = 'none' | 'bql' | 'rba-mutex';
export const CONVERSION_LOCKS: readonly ConversionLock[] = ['none', 'bql', 'rba-mutex'];

/**
 * How `ram_block_attributes_state_change` writes its bitmap.
 * - `nonatomic` (merged): `set_bit`/`clear_bit`/`bitmap_set`/`bitmap_clear`,
 *   a 64-bit load, then a store of the changed word: another thread's store
 *   in between is lost.
 * - `atomic`: atomic word updates (`qatomic_or`/`qatomic_and` per word), as
 *   `set_bit_atomic`, `clear_bit_atomic` and `bitmap_set_atomic` do; QEMU
 *   has no `bitmap_clear_atomic`, so a fix would add one (or use
 *   `bitmap_test_and_clear_atomic`): modelled as an atomic and-not per word.
 */
export type BitmapOps = 'nonatomic' | 'atomic';
export const BITMAP_OPS: readonly BitmapOps[] = ['nonatomic', 'atomic'];

/**
 * Whether listener (un)registration may run beside state changes.
 * - `racy` (merged): registration runs on the main loop under the BQL while
 *   vCPUs convert without it; a replay reads the bitmap while bits flip.
 * - `serialized`: registration and state changes exclude each other.
 */
export type RegistrationOrder = 'racy' | 'serialized';
export const REGISTRATION_ORDERS: readonly RegistrationOrder[] = ['racy', 'serialized'];

/**
 * What unregistration does to a walk in progress over `rdl_list`.
 * - `free` (merged): `QLIST_REMOVE` then `g_free`: a walk standing on the
 *   listener reads freed memory when it steps on (`use-after-free`).
 * - `rcu`: `QLIST_REMOVE_RCU` and `call_rcu`: an unlinked listener keeps
 *   its `next` pointer and lives until every walk that could stand on it
 *   has ended.
 */
export type ListenerListPolicy = 'free' | 'rcu';
export const LISTENER_LISTS: readonly ListenerListPolicy[] = ['free', 'rcu'];

/** The concurrency policies of one protocol variant. */
export interface ProtocolPolicy {
  readonly conversionLock: ConversionLock;
  readonly bitmapOps: BitmapOps;
  readonly registration: RegistrationOrder;
  readonly listenerList: ListenerListPolicy;
}

/** QEMU as merged: the default of `run`, `explore` and `verify`. */
export const MERGED_PROTOCOL: ProtocolPolicy = {
  conversionLock: 'none', bitmapOps: 'nonatomic', registration: 'racy', listenerList: 'free',
};

/** Every fix at once: conversions under the BQL, atomic bitmap ops, serialized registration, RCU list. */
export const ALL_FIXES_PROTOCOL: ProtocolPolicy = {
  conversionLock: 'bql', bitmapOps: 'atomic', registration: 'serialized', listenerList: 'rcu',
};

/** Named starting points (`--protocol`); the four options then override one policy each. */
export const PROTOCOL_PRESETS = { merged: MERGED_PROTOCOL, fixed: ALL_FIXES_PROTOCOL } as const;
export type ProtocolPreset = keyof typeof PROTOCOL_PRESETS;

/** Whether state changes may overlap one another in RamBlockAttributes. */
export function stateChangesOverlap(policy: ProtocolPolicy): boolean {
  return policy.conversionLock === 'none';
}

/** Whether registration is kept apart from state changes (BQL held by both, or the serialized order). */
export function registrationExcludesStateChanges(policy: ProtocolPolicy): boolean {
  return policy.conversionLock === 'bql' || policy.registration === 'serialized';
}

/** `kvm_convert_memory` calls that may run at once, with `vcpus` vCPU threads. */
export function conversionsAtOnce(policy: ProtocolPolicy, inFlight: number): number {
  return policy.conversionLock === 'bql' ? 1 : inFlight;
}

/** How a policy differs from the merged protocol, e.g. `bql+atomic` (`merged` when it does not). */
export function describeProtocol(policy: ProtocolPolicy): string {
  const parts: string[] = [];
  if (policy.conversionLock !== MERGED_PROTOCOL.conversionLock) parts.push(policy.conversionLock);
  if (policy.bitmapOps !== MERGED_PROTOCOL.bitmapOps) parts.push(policy.bitmapOps);
  if (policy.registration !== MERGED_PROTOCOL.registration) parts.push(policy.registration);
  if (policy.listenerList !== MERGED_PROTOCOL.listenerList) parts.push(policy.listenerList);
  return parts.length === 0 ? 'merged' : parts.join('+');
}
