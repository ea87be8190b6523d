/**
 * The machine an exploration iteration runs on: what the user fixed on the
 * command line, the rest drawn from the iteration's seed when `--vary` is
 * on (the default of `explore`). The resolved machine is part of the case's
 * RunConfig, so a replay token carries it exactly, and shrinking can make
 * it smaller.
 */
import type { ContainerSpec, RunConfig } from '../actors/run-config.js';
import type { FaultKind, FaultSpec } from '../core/fault-plan.js';
import { buildLayout, type LayoutName, LAYOUTS } from '../core/machine-layout.js';
import { Prng } from '../core/prng.js';
import type { RollbackPolicy } from '../core/ram-block-attributes.js';
import { ROLLBACK_POLICIES } from '../core/ram-block-attributes.js';
import type { VfioBackend } from '../core/vfio/container.js';
import type { BackingMode } from '../core/guest-memory.js';
import type { InplaceOrder } from '../core/kvm-convert-memory.js';

/** Machine options; each one left undefined is the default (fixed machine) or drawn (`vary`). */
export interface MachineChoice {
  readonly vcpus?: number;
  readonly containers?: readonly ContainerSpec[];
  readonly guestMem?: number;
  readonly rollback?: RollbackPolicy;
  readonly inFlight?: number;
  readonly layout?: LayoutName;
  readonly faults?: FaultSpec;
  /** Hot-plug the devices while the guest runs. */
  readonly hotplug?: boolean;
  /** Backing: legacy two-page, or in-place conversion (with its order). */
  readonly mode?: BackingMode;
  readonly order?: InplaceOrder;
}

/**
 * Fault rates `--vary` draws from (0 in two draws out of five). A rate is
 * per kernel call, and a 2 MiB populate makes 512 maps per container.
 */
const VARY_FAULT_RATES = [0, 0, 0.0002, 0.001, 0.005];
/**
 * Fault kinds `--vary` injects. Map failures go through every rollback
 * policy's error path; `unmap` is left out because QEMU as merged keeps a
 * stale mapping after a failed unmap (it only logs it), which would make
 * every varied run report that one known gap. With rollback `none`, map
 * failures are left out too: merged QEMU then leaves the containers
 * disagreeing by design (spec section 7; the `no-rollback-two-containers`
 * zoo entry shows it), so a varied run with them would only rediscover it.
 * `--faults` with `--fault-kinds` injects any kind, on any policy.
 */
function variedFaultKinds(rollback: RollbackPolicy): FaultKind[] {
  return rollback === 'none' ? ['attributes', 'discard'] : ['map', 'attributes', 'discard'];
}

const BACKENDS: readonly VfioBackend[] = ['type1', 'iommufd'];

/** A type1 entry limit that fits every 4 KiB block of the guest (the estimate's worst case too). */
export function fittingEntryLimit(guestMem: number, blockSize: number, maxMemslots: number): number {
  return guestMem / blockSize + maxMemslots + 1024;
}

/**
 * Draw the machine options the user left open, from `seed`: layout, 1 to 4
 * vCPUs, 1 to 3 containers of mixed back-ends, rollback policy, fault rate,
 * device hot-plug during the run (one iteration in three), and legacy or
 * in-place backing (explicit or priority order).
 */
export function drawMachine(seed: number, fixed: MachineChoice, guestMem: number, blockSize: number, maxMemslots: number): MachineChoice {
  const prng = new Prng((seed * 2654435761) ^ 0x3ac41e);
  const layout = fixed.layout ?? LAYOUTS[prng.int(LAYOUTS.length)]!;
  const vcpus = fixed.vcpus ?? 1 + prng.int(4);
  const containers = fixed.containers ?? Array.from({ length: 1 + prng.int(3) }, (): ContainerSpec => {
    const backend = BACKENDS[prng.int(BACKENDS.length)]!;
    return { backend, dmaEntryLimit: backend === 'type1' ? fittingEntryLimit(guestMem, blockSize, maxMemslots) : 0 };
  });
  const rollback = fixed.rollback ?? ROLLBACK_POLICIES[prng.int(ROLLBACK_POLICIES.length)]!;
  const rate = VARY_FAULT_RATES[prng.int(VARY_FAULT_RATES.length)]!;
  const faults = fixed.faults ?? (rate === 0 ? undefined : { rate, kinds: variedFaultKinds(rollback) });
  const hotplug = fixed.hotplug ?? prng.int(3) === 0;
  // Half the machines convert in place, with the orders that keep unmap-before-CONVERT_PRIVATE
  // (explicit, priority); the merged order (v6) is known to break it and is asked for by name.
  const inplace = fixed.mode === undefined ? prng.int(2) === 1 : fixed.mode === 'inplace';
  const mode: BackingMode = inplace ? 'inplace' : 'legacy';
  const order: InplaceOrder = fixed.order ?? (prng.int(2) === 0 ? 'explicit' : 'priority');
  return { ...fixed, layout, vcpus, containers, rollback, hotplug, mode, order, ...(faults === undefined ? {} : { faults }) };
}

/** Apply machine options to a configuration (the layout is resolved later, by {@link withLayout}). */
export function applyMachine(config: RunConfig, machine: MachineChoice): RunConfig {
  return {
    ...config,
    ...(machine.vcpus === undefined ? {} : { vcpus: machine.vcpus }),
    ...(machine.containers === undefined ? {} : { containers: machine.containers }),
    ...(machine.guestMem === undefined ? {} : { guestMem: machine.guestMem }),
    ...(machine.rollback === undefined ? {} : { rollback: machine.rollback }),
    // Every vCPU thread may be converting unless the user says otherwise (the lock decides the rest).
    inFlight: machine.inFlight ?? machine.vcpus ?? config.vcpus,
    ...(machine.faults === undefined || machine.faults.rate === 0 ? {} : { faults: machine.faults }),
    ...(machine.hotplug === true ? { hotplug: true } : {}),
    ...(machine.mode === undefined ? {} : { mode: machine.mode }),
    ...(machine.order === undefined ? {} : { order: machine.order }),
  };
}

/** Resolve the layout for the configuration's containers and guest (seeded for `random`). */
export function withLayout(config: RunConfig, name: LayoutName, seed: number): RunConfig {
  const layout = buildLayout(name, {
    guestMem: config.guestMem, blockSize: config.blockSize, gpaBase: config.gpaBase, containers: config.containers.length,
  }, new Prng((seed * 40503) ^ 0x1a7047));
  return { ...config, layout };
}

// --- shrinking the machine -------------------------------------------------

/** One vCPU fewer. */
export function withoutLastVcpu(config: RunConfig): RunConfig {
  return { ...config, vcpus: config.vcpus - 1 };
}

/** The last container gone, with its sections. */
export function withoutLastContainer(config: RunConfig): RunConfig {
  const containers = config.containers.slice(0, -1);
  if (config.layout === undefined) return { ...config, containers };
  return { ...config, containers, layout: { ...config.layout, vfio: config.layout.vfio.slice(0, containers.length) } };
}

/** No hot-plug (unless the workload is `hotplug`). */
export function withoutHotplug(config: RunConfig): RunConfig {
  const { hotplug: _dropped, ...rest } = config;
  return rest;
}

/** No fault injection. */
export function withoutFaults(config: RunConfig): RunConfig {
  const { faults: _dropped, ...rest } = config;
  return rest;
}

/** Container `container` without its section `section` (when it has more than one). */
export function withoutSection(config: RunConfig, container: number, section: number): RunConfig | undefined {
  const layout = config.layout;
  const sections = layout?.vfio[container];
  if (layout === undefined || sections === undefined || sections.length <= 1) return undefined;
  const vfio = layout.vfio.map((s, i) => (i === container ? s.filter((_, k) => k !== section) : s));
  return { ...config, layout: { ...layout, vfio } };
}

/** What the explored machines covered, for reports: counts by kind. */
export function machineCoverage(config: RunConfig): Record<string, number> {
  const layout = config.layout;
  const sections = layout?.vfio.reduce((n, s) => n + s.length, 0) ?? config.containers.length;
  const remapped = layout?.vfio.some((s) => s.some((x) => {
    const ram = layout.ram.find((m) => x.offset >= m.offset && x.offset < m.offset + m.size);
    return ram !== undefined && x.iova !== ram.gpa + x.offset - ram.offset;
  })) ?? false;
  const offsetDiffers = layout?.vfio.some((s) => s.some((x) => x.iova !== x.offset)) ?? config.gpaBase !== 0;
  const out: Record<string, number> = {
    [`layout:${layout?.name ?? 'flat'}`]: 1,
    [`sections:${sections}`]: 1,
    [`vcpus:${config.vcpus}`]: 1,
    [`rollback:${config.rollback}`]: 1,
    [`faults:${config.faults === undefined ? 'none' : config.faults.rate}`]: 1,
    [`hotplug:${config.hotplug === true || config.workload === 'hotplug' ? 'yes' : 'no'}`]: 1,
    [`mode:${config.mode === 'inplace' ? `inplace-${config.order}` : 'legacy'}`]: 1,
    'iova-differs-from-offset': offsetDiffers ? 1 : 0,
    'iova-differs-from-gpa': remapped ? 1 : 0,
  };
  for (const c of config.containers) out[`container:${c.backend}`] = (out[`container:${c.backend}`] ?? 0) + 1;
  return out;
}
