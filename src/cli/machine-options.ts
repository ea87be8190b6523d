/**
 * The machine options shared by `run` and `explore`: vCPUs, containers,
 * guest size, rollback, conversions in flight, layout
 * and fault injection. Every mistake is a one-line UsageError.
 */
import { autoDmaEntryLimit } from '../actors/device-realize.js';
import type { ContainerSpec, WorkloadName } from '../actors/run-config.js';
import { workloadFitProblem } from '../actors/run-limits.js';
import { TYPE1_DEFAULT_DMA_ENTRY_LIMIT } from '../core/vfio/type1-container.js';
import { FAULT_KINDS, type FaultKind, type FaultSpec } from '../core/fault-plan.js';
import { LAYOUTS, type LayoutName } from '../core/machine-layout.js';
import { ROLLBACK_POLICIES } from '../core/ram-block-attributes.js';
import { isAligned, MiB } from '../core/units.js';
import { VFIO_BACKENDS, type VfioBackend } from '../core/vfio/container.js';
import type { MachineChoice } from '../explore/machine.js';
import { parseChoice, parseCount, parseSize } from './option-values.js';
import { showValue } from './show-value.js';
import { UsageError } from './usage-error.js';

/** `util.parseArgs` definitions of the machine options (no defaults: absent means "the command's default"). */
export const MACHINE_OPTIONS = {
  vcpus: { type: 'string' },
  containers: { type: 'string' },
  'guest-mem': { type: 'string' },
  rollback: { type: 'string' },
  'in-flight': { type: 'string' },
  layout: { type: 'string' },
  faults: { type: 'string' },
  'fault-kinds': { type: 'string' },
  hotplug: { type: 'boolean' },
} as const;

export type MachineOptionValues = { readonly [K in Exclude<keyof typeof MACHINE_OPTIONS, 'hotplug'>]?: string | undefined } & { readonly hotplug?: boolean | undefined };

/** Help lines for the machine options, aligned like the commands' own. */
export const MACHINE_HELP = `  --vcpus N            vCPUs (1 to 64)
  --containers LIST    back-ends, e.g. type1:auto,iommufd; type1 has the kernel's default
                       dma_entry_limit 65535, type1:N sets it, type1:auto raises it to fit
  --guest-mem SIZE     guest RAM, a multiple of 2M (e.g. 64M, 1G)
  --rollback R         ${ROLLBACK_POLICIES.join('|')}
  --in-flight N        vCPU threads that may be in kvm_convert_memory at once (default: all;
                       the conversion lock may allow fewer)
  --layout L           ${LAYOUTS.join('|')}: flat = one section at GPA 0; x86 = ram-below-4g and
                       ram-above-4g (one VFIO listener each, IOVA != offset above the split);
                       random = seeded sections with holes and varied GPA/IOVA offsets
  --faults RATE        seeded fault injection: each kernel call of the injected kinds fails
                       with probability RATE (0 to 1) with an errno the kernel returns
  --fault-kinds LIST   ${FAULT_KINDS.join(',')} (default map,attributes,discard; unmap makes
                       QEMU keep a stale mapping: it only logs a failed unmap)
  --hotplug            hot-unplug and plug the devices again while the guest runs`;

/** A fault rate: a decimal from 0 to 1. */
export function parseRate(option: string, value: string): number {
  const n = /^(0|1|0?\.\d+|0\.\d+|1\.0+)$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 1)) throw new UsageError(`--${option}: ${showValue(value)} must be a number from 0 to 1 (e.g. 0.01)`);
  return n;
}

/**
 * `type1,iommufd,type1:65535,type1:auto`: `type1` has the kernel's default
 * dma_entry_limit (65535), `type1:N` sets it, `type1:auto` raises it to the
 * smallest limit QEMU's mapping estimate accepts for `sizing`.
 */
export function parseContainers(list: string, sizing: Parameters<typeof autoDmaEntryLimit>[0]): ContainerSpec[] {
  const containers = list.split(',').map((item): ContainerSpec => {
    const [backend = '', limit, extra] = item.split(':');
    const b = parseChoice<VfioBackend>('containers', backend, VFIO_BACKENDS);
    if (extra !== undefined) throw new UsageError(`--containers: ${showValue(item)} is not type1, type1:N, type1:auto or iommufd`);
    if (limit !== undefined && b !== 'type1') throw new UsageError(`--containers: only type1 takes a limit (${showValue(item)})`);
    if (b === 'iommufd') return { backend: b, dmaEntryLimit: 0 };
    if (limit === undefined) return { backend: b, dmaEntryLimit: TYPE1_DEFAULT_DMA_ENTRY_LIMIT, limitSource: 'default' };
    if (limit === 'auto') return { backend: b, dmaEntryLimit: autoDmaEntryLimit(sizing), limitSource: 'auto' };
    return { backend: b, dmaEntryLimit: parseCount('containers', limit, 1, 2 ** 32 - 1), limitSource: 'set' };
  });
  if (containers.length > 16) throw new UsageError('--containers: at most 16 containers');
  return containers;
}

/** The guest size, checked: a multiple of 2 MiB. */
export function parseGuestMem(value: string): number {
  const guestMem = parseSize('guest-mem', value);
  if (!isAligned(guestMem, 2 * MiB)) throw new UsageError(`--guest-mem: ${value} must be a multiple of 2M`);
  return guestMem;
}

/** The workload fits the guest and vCPUs (checked up front, before anything runs). */
export function checkWorkloadFits(workload: WorkloadName, vcpus: number, guestMem: number): void {
  const misfit = workloadFitProblem({ workload, vcpus, guestMem });
  if (misfit !== undefined) throw new UsageError(`--guest-mem: ${misfit}`);
}

/** The fault spec of `--faults` and `--fault-kinds` (undefined without `--faults`). */
export function parseFaults(rate: string | undefined, kinds: string | undefined): FaultSpec | undefined {
  if (rate === undefined) {
    if (kinds !== undefined) throw new UsageError('--fault-kinds: needs --faults RATE');
    return undefined;
  }
  const list = kinds === undefined
    ? (['map', 'attributes', 'discard'] as FaultKind[])
    : kinds.split(',').map((k) => parseChoice<FaultKind>('fault-kinds', k, FAULT_KINDS));
  return { rate: parseRate('faults', rate), kinds: [...new Set(list)] };
}

/**
 * Parse the machine options given; those absent stay undefined. `guestMem`
 * is the command's default guest size (for type1's fitting limit).
 */
export function parseMachineOptions(values: MachineOptionValues, defaults: { guestMem: number; blockSize: number; maxMemslots: number }): MachineChoice {
  const guestMem = values['guest-mem'] === undefined ? undefined : parseGuestMem(values['guest-mem']);
  const sizing = { guestMem: guestMem ?? defaults.guestMem, gpaBase: 0, blockSize: defaults.blockSize, maxMemslots: defaults.maxMemslots };
  const faults = parseFaults(values.faults, values['fault-kinds']);
  const pick = <T>(value: string | undefined, parse: (v: string) => T): T | undefined => (value === undefined ? undefined : parse(value));
  const choice: MachineChoice = {
    vcpus: pick(values.vcpus, (v) => parseCount('vcpus', v, 1, 64)),
    containers: pick(values.containers, (v) => parseContainers(v, sizing)),
    guestMem,
    rollback: pick(values.rollback, (v) => parseChoice('rollback', v, ROLLBACK_POLICIES)),
    inFlight: pick(values['in-flight'], (v) => parseCount('in-flight', v, 1, 1024)),
    layout: pick(values.layout, (v) => parseChoice<LayoutName>('layout', v, LAYOUTS)),
    faults,
    hotplug: values.hotplug,
  };
  // Drop the undefined ones, so that spreading a choice never overwrites a default with undefined.
  return Object.fromEntries(Object.entries(choice).filter(([, v]) => v !== undefined)) as MachineChoice;
}
