/**
 * The design table of `convsim verify`, as data: which protocol variant
 * (row) holds under which guest (column). A row is a {@link ProtocolPolicy}
 * plus the backing mode and in-place order it runs with; a column is a
 * guest workload and what it fixes of the machine. {@link cellInput} joins
 * one of each into the exploration input of that cell; nothing else about
 * a row or a column is decided in code.
 *
 * @module
 */
import type { WorkloadName } from '../actors/run-config.js';
import type { BackingMode } from '../core/guest-memory.js';
import type { InplaceOrder } from '../core/kvm-convert-memory.js';
import { ALL_FIXES_PROTOCOL, MERGED_PROTOCOL, type ProtocolPolicy } from '../core/protocol-policy.js';
import type { MachineChoice } from './machine.js';

export interface VerifyRow {
  /** What `--rows` takes, and the row's part of token file names. */
  readonly id: string;
  /** The row's name in the table. */
  readonly label: string;
  readonly protocol: ProtocolPolicy;
  /** In-place rows run every column in place with this order; legacy rows run legacy except the in-place column. */
  readonly inplaceOrder?: InplaceOrder;
  /** What the row changes in QEMU's terms (the legend; from protocol-policy.ts and kvm-convert-memory.ts). */
  readonly changes: string;
}

export interface VerifyColumn {
  readonly id: string;
  readonly label: string;
  readonly workload: WorkloadName;
  /** The in-place ordering column: storm converting in place (legacy rows: with the explicit order). */
  readonly inplace: boolean;
  /**
   * Devices hot-plugged while the guest runs. Only the hotplug column has
   * them; the others fix `hotplug: false` on their varied machines, so that
   * a registration race shows in that column alone.
   */
  readonly hotplug: boolean;
  readonly guest: string;
}

/** The order a legacy row's in-place ordering column runs with. */
export const LEGACY_ROW_INPLACE_ORDER: InplaceOrder = 'explicit';

const merged = MERGED_PROTOCOL;

export const VERIFY_ROWS: readonly VerifyRow[] = [
  {
    id: 'merged', label: 'merged', protocol: merged,
    changes: 'QEMU as merged: vCPU threads run kvm_convert_memory with nothing held (the BQL is dropped before KVM_RUN); ' +
      'ram_block_attributes_state_change writes the bitmap with set_bit/bitmap_set (load a 64-bit word, store it back); ' +
      'VFIO registers listeners on the main loop beside the converting vCPUs; unregistration does QLIST_REMOVE then g_free',
  },
  {
    id: 'bql', label: '+bql', protocol: { ...merged, conversionLock: 'bql' },
    changes: 'kvm_convert_memory runs under the BQL, which registration holds too: one conversion at a time, never beside a registration',
  },
  {
    id: 'rba-mutex', label: '+rba-mutex', protocol: { ...merged, conversionLock: 'rba-mutex' },
    changes: 'a mutex inside ram_block_attributes_state_change only: state changes one at a time; KVM\'s attribute ioctl, the discard and registration are not covered',
  },
  {
    id: 'atomic', label: '+atomic', protocol: { ...merged, bitmapOps: 'atomic' },
    changes: 'the bitmap is written with the _atomic variants (qatomic_or/qatomic_and per word): no store of a stale word',
  },
  {
    id: 'serialized', label: '+serialized', protocol: { ...merged, registration: 'serialized' },
    changes: 'listener registration and unregistration exclude state changes: a replay never reads the bitmap while bits flip',
  },
  {
    id: 'rcu', label: '+rcu', protocol: { ...merged, listenerList: 'rcu' },
    changes: 'rdl_list under RCU (QLIST_REMOVE_RCU + call_rcu): an unlinked listener keeps its next pointer and is freed only after every walk that could stand on it has ended',
  },
  {
    id: 'all-fixes', label: 'all fixes', protocol: ALL_FIXES_PROTOCOL,
    changes: 'the four fixes at once: bql, atomic, serialized, rcu',
  },
  {
    id: 'inplace-v6', label: 'in-place v6', protocol: ALL_FIXES_PROTOCOL, inplaceOrder: 'v6',
    changes: 'all fixes, guest_memfd converted in place, v6 order: guest_memfd converts, then the state change notifies listeners (VFIO unmaps after CONVERT_PRIVATE)',
  },
  {
    id: 'inplace-priority', label: 'in-place priority', protocol: ALL_FIXES_PROTOCOL, inplaceOrder: 'priority',
    changes: 'all fixes, in place, v4 priority listeners: the guest_memfd change is the priority-0 listener (forward walk to shared, reverse to private)',
  },
  {
    id: 'inplace-explicit', label: 'in-place explicit', protocol: ALL_FIXES_PROTOCOL, inplaceOrder: 'explicit',
    changes: 'all fixes, in place, explicit order (Aug 2025 POC): the state change before CONVERT_PRIVATE, after CONVERT_SHARED',
  },
];

export const VERIFY_COLUMNS: readonly VerifyColumn[] = [
  { id: 'storm', label: 'storm', workload: 'storm', inplace: false, hotplug: false, guest: 'well-behaved: vCPUs convert disjoint pages at once' },
  { id: 'adversarial', label: 'adversarial', workload: 'adversarial', inplace: false, hotplug: false, guest: 'malicious: vCPUs race opposite conversions of the same pages' },
  { id: 'hotplug', label: 'hotplug', workload: 'hotplug', inplace: false, hotplug: true, guest: 'storm while devices are unplugged and plugged again' },
  { id: 'selftest', label: 'selftest', workload: 'selftest', inplace: false, hotplug: false, guest: 'Linux private_mem_conversions_test' },
  {
    id: 'inplace-ordering', label: 'in-place ordering', workload: 'storm', inplace: true, hotplug: false,
    guest: `storm converting in place (order: the row's for in-place rows, ${LEGACY_ROW_INPLACE_ORDER} otherwise)`,
  },
];

/** What one cell explores: the exploration input's guest, machine and protocol parts. */
export interface CellInput {
  readonly workload: WorkloadName;
  readonly mode: BackingMode;
  readonly order: InplaceOrder;
  readonly machine: MachineChoice;
  readonly vary: true;
  readonly protocol: ProtocolPolicy;
}

/** The exploration of (row, column): varied machines with the mode, order and hot-plug the cell fixes. */
export function cellInput(row: VerifyRow, column: VerifyColumn): CellInput {
  const inplace = row.inplaceOrder !== undefined || column.inplace;
  const mode: BackingMode = inplace ? 'inplace' : 'legacy';
  const order = row.inplaceOrder ?? LEGACY_ROW_INPLACE_ORDER;
  return {
    workload: column.workload,
    mode,
    order,
    machine: { mode, order, hotplug: column.hotplug },
    vary: true,
    protocol: row.protocol,
  };
}

/** A key equal for two cells that explore exactly the same thing (e.g. in-place explicit's storm and in-place ordering). */
export function cellKey(input: CellInput): string {
  return JSON.stringify([input.workload, input.mode, input.order, input.machine, input.protocol]);
}
