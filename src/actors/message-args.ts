/**
 * A message as the named arguments of its trace slice: actor names instead
 * of indices, addresses in hex, sizes with units, the direction of a
 * conversion, and every return value as an errno name (`-ENOSPC (-28)`).
 * Used by both traces (`run --trace`, `replay --trace`), so Perfetto shows
 * the same words the story does.
 */
import { retName } from '../core/errno.js';
import type { Violation } from '../core/invariants.js';
import { formatSize } from '../core/units.js';
import { BITMAP_STEP_OPS } from './bitmap-step-message.js';
import { DMA_OUTCOMES, EXIT_MAP_GPA, EXIT_MAP_GPA_FALLOCATE, EXIT_MEMORY_FAULT, EXIT_PUNCH_HOLE, type Message } from './protocol.js';

/** Slice arguments: strings and numbers only (what the Trace Event Format shows as is). */
export type TraceArgs = Record<string, string | number>;

const hex = (n: number): string => `0x${n.toString(16)}`;

/** How each exit reason is named in a trace. */
const EXIT_REASONS: Readonly<Record<number, string>> = {
  [EXIT_MAP_GPA]: 'KVM_HC_MAP_GPA_RANGE',
  [EXIT_MEMORY_FAULT]: 'KVM_EXIT_MEMORY_FAULT',
  [EXIT_MAP_GPA_FALLOCATE]: 'KVM_HC_MAP_GPA_RANGE (fallocate)',
  [EXIT_PUNCH_HOLE]: 'KVM_HC_MAP_GPA_RANGE (punch hole)',
};

/**
 * The named arguments of a message's slice.
 * @param name an actor's name from its index (`vcpu0`, `kvm`, `rba`, `c1`).
 */
export function messageArgs(message: Message, name: (actor: number) => string): TraceArgs {
  const base: TraceArgs = { from: name(message.from), tag: message.tag };
  switch (message.type) {
    case 'exit':
      return { ...base, reason: EXIT_REASONS[message.reason] ?? String(message.reason), gpa: hex(message.gpa), size: formatSize(message.size),
        direction: message.reason === EXIT_PUNCH_HOLE ? 'punch hole' : message.toPrivate ? 'to private' : 'to shared' };
    case 'exitDone':
    case 'stateChangeDone':
    case 'notifyDone':
    case 'registerDone':
      return { ...base, ret: retName(message.ret) };
    case 'stateChange':
      return { ...base, offset: hex(message.offset), size: formatSize(message.size), direction: message.toDiscard ? 'to private (discard)' : 'to shared (populate)',
        vcpu: name(message.vcpu) };
    case 'notifyPopulate':
    case 'notifyDiscard':
      return { ...base, offset: hex(message.offset), size: formatSize(message.size), iova: hex(message.iova),
        direction: message.type === 'notifyPopulate' ? 'populate (map)' : 'discard (unmap)', replay: message.replay ? 'yes' : 'no' };
    case 'bitmapStep':
      return { ...base, op: BITMAP_STEP_OPS[message.op] ?? String(message.op), index: message.index };
    case 'bitmapStepDone':
      return { ...base, result: message.ret };
    case 'register':
      return { ...base, offset: hex(message.offset), size: formatSize(message.size), iova: hex(message.iova), priority: message.priority };
    case 'unregister':
      return { ...base, offset: hex(message.offset), iova: hex(message.iova) };
    case 'dmaRequest':
      return { ...base, iova: hex(message.iova), size: formatSize(message.size), direction: message.write ? 'write' : 'read' };
    case 'dmaDone':
      return { ...base, outcome: DMA_OUTCOMES[message.outcome] ?? String(message.outcome) };
    case 'deviceAccess':
      return { ...base, iova: hex(message.iova), size: formatSize(message.size), direction: 'read', outcome: DMA_OUTCOMES[message.outcome] ?? String(message.outcome) };
    case 'checkDone':
      return { ...base, violations: message.violations };
    case 'hotplug':
      return { ...base, listenersUnregistered: message.listeners, sectionsRegistered: message.sections };
    case 'check':
    case 'start':
      return base;
    default: {
      const unreachable: never = message;
      return { ...base, message: JSON.stringify(unreachable) };
    }
  }
}

/** The named arguments of a violation's instant event: the invariant, its message, and where it is. */
export function violationArgs(v: Violation): TraceArgs {
  return {
    invariant: v.invariant,
    message: v.message,
    ...(v.container === undefined ? {} : { container: v.container }),
    ...(v.listener === undefined ? {} : { listener: v.listener }),
    ...(v.offset === undefined ? {} : { offset: hex(v.offset) }),
    ...(v.iova === undefined ? {} : { iova: hex(v.iova) }),
    ...(v.size === undefined ? {} : { size: formatSize(v.size) }),
  };
}
