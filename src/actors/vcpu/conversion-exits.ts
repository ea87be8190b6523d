/**
 * How a guest's request to convert a range reaches userspace on each
 * platform: the exits KVM makes (each one `KVM_EXIT_HYPERCALL` with
 * `KVM_HC_MAP_GPA_RANGE`, handled by QEMU's `kvm_convert_memory`).
 *
 * - `tdx`: TDG.VP.VMCALL<MapGPA>. KVM (`__tdx_map_gpa`) exits for at most
 *   `TDX_MAP_GPA_MAX_LEN` (2 MiB) from the start GPA; on completion
 *   (`tdx_complete_vmcall_map_gpa`) it advances by 2 MiB and, when the
 *   vCPU has pending events (`kvm_vcpu_has_events`), returns
 *   TDVMCALL_STATUS_RETRY with the next GPA in r11 instead of exiting for
 *   the next piece; the guest then issues MapGPA again for the rest.
 * - `sw-protected` (KVM_X86_SW_PROTECTED_VM, the Linux selftests): the
 *   generic `KVM_HC_MAP_GPA_RANGE` hypercall, one exit for the whole range.
 * - `snp`: the guest's Page State Change request (`set_pages_state`):
 *   entries of 2 MiB where the range is 2 MiB aligned and long enough,
 *   4 KiB elsewhere, at most `VMGEXIT_PSC_MAX_ENTRY` (64) per request. KVM
 *   (`snp_begin_psc`) exits once per run of entries with the same
 *   operation, contiguous GFNs and the same page size.
 */
import { KiB, MiB } from '../../core/units.js';

export type Platform = 'tdx' | 'snp' | 'sw-protected';
export const PLATFORMS: readonly Platform[] = ['tdx', 'snp', 'sw-protected'];

/** One exit to userspace: the range `kvm_convert_memory` gets. */
export type Exit = readonly [gpa: number, size: number];

const PAGE = 4 * KiB;
/** `TDX_MAP_GPA_MAX_LEN`. */
export const TDX_MAP_GPA_MAX_LEN = 2 * MiB;
/** `VMGEXIT_PSC_MAX_ENTRY` in the Linux guest (the PSC descriptor lives on its stack). */
export const VMGEXIT_PSC_MAX_ENTRY = 64;
const HUGE = 2 * MiB;

/**
 * TDX MapGPA: the pieces KVM exits for, 2 MiB *lengths* from the start GPA
 * (size = min(remaining, 2 MiB), next += 2 MiB), whatever the alignment.
 */
export function tdxMapGpaPieces(gpa: number, size: number): Exit[] {
  const pieces: Exit[] = [];
  for (let at = gpa; at < gpa + size; at += TDX_MAP_GPA_MAX_LEN) pieces.push([at, Math.min(TDX_MAP_GPA_MAX_LEN, gpa + size - at)]);
  return pieces;
}

/** One Page State Change entry: a GFN's page of 4 KiB or 2 MiB. */
export interface PscEntry {
  readonly gpa: number;
  readonly huge: boolean;
}

/** The guest's PSC requests for a range (Linux `set_pages_state` / `__set_pages_state`). */
export function snpPscRequests(gpa: number, size: number): PscEntry[][] {
  const requests: PscEntry[][] = [];
  let current: PscEntry[] = [];
  for (let at = gpa; at < gpa + size;) {
    const huge = at % HUGE === 0 && at + HUGE <= gpa + size;
    current.push({ gpa: at, huge });
    at += huge ? HUGE : PAGE;
    if (current.length === VMGEXIT_PSC_MAX_ENTRY) {
      requests.push(current);
      current = [];
    }
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

/**
 * KVM's `snp_begin_psc` over one request: each run of entries with
 * contiguous GFNs and the same page size is one exit (the operation is the
 * same for every entry of a request here).
 */
export function snpPscExits(entries: readonly PscEntry[]): Exit[] {
  const exits: Exit[] = [];
  let i = 0;
  while (i < entries.length) {
    const start = entries[i]!;
    const step = start.huge ? HUGE : PAGE;
    let size = step;
    while (i + 1 < entries.length && entries[i + 1]!.huge === start.huge && entries[i + 1]!.gpa === start.gpa + size) {
      size += step;
      i++;
    }
    exits.push([start.gpa, size]);
    i++;
  }
  return exits;
}

/**
 * The exits of one guest conversion request, in order, before any TDX
 * retry (a retry re-issues the rest and meets the same pieces again).
 */
export function conversionExits(platform: Platform, gpa: number, size: number): Exit[] {
  switch (platform) {
    case 'tdx': return tdxMapGpaPieces(gpa, size);
    case 'sw-protected': return [[gpa, size]];
    case 'snp': return snpPscRequests(gpa, size).flatMap(snpPscExits);
    default: {
      const unreachable: never = platform;
      throw new Error(`unknown platform ${String(unreachable)}`);
    }
  }
}
