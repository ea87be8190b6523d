/**
 * Every message the actors exchange, as one discriminated union on `type`.
 * All fields are numbers or booleans so that each message has a fixed
 * binary encoding (see codec.ts): no JSON on the data path.
 *
 * `from` is the sender's actor index; `tag` matches a reply to its request.
 */

/** How a vCPU exit reached the KVM exit handler. */
export const EXIT_MAP_GPA = 0;
export const EXIT_MEMORY_FAULT = 1;
/** The Linux selftest's MapGPA with its DO_FALLOCATE flag (its own host punches or allocates guest_memfd). */
export const EXIT_MAP_GPA_FALLOCATE = 2;
/** The Linux selftest's MapGPA with SHARED | DO_FALLOCATE but not SET_ATTRIBUTES: a hole in guest_memfd, attributes unchanged. */
export const EXIT_PUNCH_HOLE = 3;

/** Outcomes of a device access, by index (codec-friendly). */
export const DMA_OUTCOMES = ['ok', 'fault', 'dma-to-private', 'dma-to-stale'] as const;

export type Message =
  // vCPU -> KVM exit handler: KVM_EXIT_HYPERCALL(MAP_GPA_RANGE) or KVM_EXIT_MEMORY_FAULT.
  | { type: 'exit'; from: number; tag: number; reason: number; gpa: number; size: number; toPrivate: boolean }
  // KVM exit handler -> vCPU: the exit is handled, the vCPU may resume (ret of kvm_convert_memory; 1 = VM stopped).
  | { type: 'exitDone'; from: number; tag: number; ret: number }
  // KVM exit handler -> RamBlockAttributes owner: ram_block_attributes_state_change(), run for
  // the vCPU (actor index `vcpu`) whose thread converts: its bitmap accesses are made there.
  | { type: 'stateChange'; from: number; tag: number; offset: number; size: number; toDiscard: boolean; vcpu: number }
  | { type: 'stateChangeDone'; from: number; tag: number; ret: number }
  // RamBlockAttributes owner -> listener (container or, in priority order, the KVM exit handler).
  // `replay`: the call is part of a listener's (un)registration, not of a state change.
  | { type: 'notifyPopulate'; from: number; tag: number; offset: number; size: number; iova: number; replay: boolean }
  | { type: 'notifyDiscard'; from: number; tag: number; offset: number; size: number; iova: number; replay: boolean }
  | { type: 'notifyDone'; from: number; tag: number; ret: number }
  // RamBlockAttributes owner -> the converting vCPU: one bitmap access of the state change, made on
  // the vCPU's thread (see bitmap-ops.ts). `op` indexes BITMAP_STEP_OPS; `index` is the word
  // (load, store, atomic) or the first bit (find); `a`/`b` the mask halves, or `a` the find limit.
  | { type: 'bitmapStep'; from: number; tag: number; op: number; index: number; a: number; b: number }
  | { type: 'bitmapStepDone'; from: number; tag: number; ret: number }
  // Container -> RamBlockAttributes owner: ram_discard_manager_(un)register_listener().
  | { type: 'register'; from: number; tag: number; offset: number; size: number; iova: number; priority: number }
  | { type: 'unregister'; from: number; tag: number; offset: number; iova: number }
  | { type: 'registerDone'; from: number; tag: number; ret: number }
  // vCPU -> container's device: DMA into [iova, iova + size), writing `pattern` when `write`.
  | { type: 'dmaRequest'; from: number; tag: number; iova: number; size: number; pattern: number; write: boolean }
  | { type: 'dmaDone'; from: number; tag: number; outcome: number }
  // KVM exit handler -> container at a quiescent point: check your mappings.
  | { type: 'check'; from: number; tag: number }
  | { type: 'checkDone'; from: number; tag: number; violations: number }
  // Never sent: what a device did on its own (`ActorLogic.background`), recorded as a step of the
  // deterministic runtime's trace. `outcome` indexes DMA_OUTCOMES.
  | { type: 'deviceAccess'; from: number; tag: number; iova: number; size: number; outcome: number }
  // Never sent: the host thread hot-unplugging container `from`'s devices (its `listeners`
  // unregistered) and plugging them again (`sections` registered), when the scheduler places
  // hot-plugs (RunConfig.scheduledEvents); recorded as a step like `deviceAccess`.
  | { type: 'hotplug'; from: number; tag: number; listeners: number; sections: number }
  // Host -> any actor: begin (vCPUs start their workload).
  | { type: 'start'; from: number; tag: number };

export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;
