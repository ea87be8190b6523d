/**
 * The configuration of a threaded (or deterministic) run, shared by every
 * actor, plus the SharedArrayBuffers they share.
 */
import type { BackingMode, GuestMemoryBuffers } from '../core/guest-memory.js';
import type { InplaceOrder } from '../core/kvm-convert-memory.js';
import type { RollbackPolicy } from '../core/ram-block-attributes.js';
import { buildLayout, type MachineLayout } from '../core/machine-layout.js';
import { Prng } from '../core/prng.js';
import type { SharedBacking } from '../core/shared-backing.js';
import type { Platform } from './vcpu/conversion-exits.js';
import type { VfioBackend } from '../core/vfio/container.js';
import type { FaultSpec } from '../core/fault-plan.js';
import type { ProtocolPolicy } from '../core/protocol-policy.js';
import type { Topology } from './actor.js';

export type WorkloadName = 'storm' | 'adversarial' | 'selftest' | 'hotplug' | 'overlap' | 'swiotlb';
export const WORKLOADS: readonly WorkloadName[] = ['storm', 'adversarial', 'selftest', 'hotplug', 'overlap', 'swiotlb'];

/**
 * What kind of guest each workload is (for `--help` and the README): a
 * well-behaved guest never converts a page another of its vCPUs is
 * converting; a malicious one races them on purpose.
 */
export const WORKLOAD_KINDS: Readonly<Record<WorkloadName, string>> = {
  storm: 'well-behaved Linux guest: vCPUs convert disjoint pages at once, often in one 256 KiB bitmap word',
  adversarial: 'malicious guest: vCPUs race opposite conversions of the same pages on purpose',
  selftest: 'well-behaved: Linux\'s private_mem_conversions_test, each vCPU on its own chunk',
  hotplug: 'well-behaved (storm) while devices are unplugged and plugged again',
  overlap: 'malicious: every vCPU converts one 2 MiB window back and forth, ranges shifted',
  swiotlb: 'well-behaved: a bounce-buffer pool made shared at boot, then DMA',
};

/** The workload help lines: `name  kind`, indented for a command's help. */
export function workloadHelp(indent: string): string {
  return WORKLOADS.map((w) => `${indent}${w.padEnd(12)} ${WORKLOAD_KINDS[w]}`).join('\n');
}

export interface ContainerSpec {
  readonly backend: VfioBackend;
  /** type1 only. */
  readonly dmaEntryLimit: number;
  /**
   * Where the type1 limit came from: the kernel's default (`type1`), the
   * user (`type1:N`), or raised to fit the mapping estimate (`type1:auto`).
   */
  readonly limitSource?: 'default' | 'set' | 'auto';
}

export interface RunConfig {
  readonly vcpus: number;
  readonly containers: readonly ContainerSpec[];
  readonly guestMem: number;
  readonly blockSize: number;
  readonly gpaBase: number;
  readonly mode: BackingMode;
  readonly order: InplaceOrder;
  readonly rollback: RollbackPolicy;
  /**
   * `kvm_convert_memory` calls that may run at once: the vCPU threads that
   * can be converting together (p-queue concurrency at the KVM exit
   * handler; default every vCPU). The conversion lock may allow fewer.
   */
  readonly inFlight: number;
  /** Total conversions across vCPUs. */
  readonly conversions: number;
  readonly seed: number;
  readonly workload: WorkloadName;
  /** Conversions between quiescent checks. */
  readonly checkEvery: number;
  /** `kvm_get_max_memslots()` for the VFIO mapping estimate (x86 KVM: 32764). */
  readonly maxMemslots: number;
  /** The concurrency policies (lock, bitmap ops, registration, listener list); default QEMU as merged. */
  readonly protocol: ProtocolPolicy;
  readonly variant?: ProtocolVariant;
  /**
   * The guest-physical map and each container's VFIO sections (resolved, so
   * a replay token carries it exactly). Absent: `flat` at `gpaBase`.
   */
  readonly layout?: MachineLayout;
  /** Seeded fault injection (absent: none). */
  readonly faults?: FaultSpec;
  /**
   * Devices are hot-unplugged and plugged again while the guest runs (every
   * section's listener unregistered, then registered again), whatever the
   * workload; the `hotplug` workload always does it.
   */
  readonly hotplug?: boolean;
  /** Record per-phase latency histograms (default true; exploration turns it off). */
  readonly profile?: boolean;
  /**
   * Shrinking: per vCPU, indices of workload actions to skip (the action is
   * drawn, so later random choices stay the same, but not performed).
   */
  readonly skipActions?: ReadonlyArray<readonly number[]>;
  /** Deterministic `hotplug` workload: deliveries between hot-plug cycles (default 97). */
  readonly hotplugEvery?: number;
  /**
   * Deterministic runs: the host's and the devices' own actions become
   * scheduling choices with a budget, instead of a hot-plug every
   * `hotplugEvery` deliveries and a device access armed after every
   * delivery. The scheduler places each of them, so a systematic search
   * covers every position (and the run stays finite). See
   * {@link ScheduledEvents}.
   */
  readonly scheduledEvents?: ScheduledEvents;
  /** Shrinking: per vCPU, the number of workload actions after which it stops. */
  readonly actionLimit?: readonly number[];
  /** The shared half's backend (default `anonymous`); `hugetlb` pages are not discarded on a conversion to private. */
  readonly sharedBacking?: SharedBacking;
  /** How guest conversion requests exit to userspace (default `tdx`; see conversion-exits.ts). */
  readonly platform?: Platform;
  /**
   * `selftest` workload: whose semantics its checks expect. `qemu` (default):
   * QEMU's host, which frees the page left behind on each conversion. `kvm`:
   * the Linux selftest's own host (never frees shared memory; punches
   * guest_memfd only on request), which the KVM exit handler then follows.
   */
  readonly selftestExpect?: SelftestExpect;
}

/** Budgets of the actions the scheduler places (`RunConfig.scheduledEvents`). */
export interface ScheduledEvents {
  /** Hot-plug cycles of any container (unplug every listener, plug every section again), in total. */
  readonly hotplugs: number;
  /** DMA accesses each device makes on its own while the guest runs. */
  readonly deviceAccesses: number;
}

export type SelftestExpect = 'kvm' | 'qemu';
export const SELFTEST_EXPECTS: readonly SelftestExpect[] = ['kvm', 'qemu'];

/**
 * Alternative code paths a developer could plausibly write, or that QEMU
 * had at some point (the bug zoo), plus fault injection. The default run
 * uses none of them. Each is a real difference in what the actors do;
 * none of them reports anything by itself.
 */
export interface ProtocolVariant {
  /** VFIO maps at this granularity instead of the manager's 4 KiB (coarse mappings). */
  readonly vfioGranularity?: number;
  /** RamBlockAttributes tells listeners before it writes the bitmap. */
  readonly notifyBeforeBitmap?: boolean;
  /** Priority listeners walked in the opposite directions (reverse to shared, forward to private). */
  readonly invertPriorityWalk?: boolean;
  /** Fault injection: container `container` fails every map after its first `afterMaps` with -errno. */
  readonly failMaps?: { readonly container: number; readonly afterMaps: number; readonly errno: number };
  /** Older QEMU only warned when the VFIO mapping estimate exceeded the limit. */
  readonly dmaLimitWarnOnly?: boolean;
}

/** Everything shared between threads. */
export interface SharedState {
  /** RamBlockAttributes bitmap (1 = shared). Written by the converting vCPUs' threads (bitmap steps). */
  readonly bitmap: SharedArrayBuffer;
  /** Per block, the value the last write meaning to change it wrote: the `lost-update` check (bitmap-executor.ts). */
  readonly intended: SharedArrayBuffer;
  /** One Int32: the lock of that check's store-record-compare. */
  readonly bitmapCheckLock: SharedArrayBuffer;
  /** KVM memory attributes (1 = shared). Written by the KVM exit handler only. */
  readonly kvmShared: SharedArrayBuffer;
  readonly memory: GuestMemoryBuffers;
}

/** What every actor is constructed from. */
export interface ActorSetup {
  readonly config: RunConfig;
  readonly topology: Topology;
  readonly shared: SharedState;
  /** For containers: which one; for vCPUs: which one. */
  readonly index: number;
}

/** Whether containers are hot-plugged during the run. */
export function hotplugsDevices(config: RunConfig): boolean {
  return config.workload === 'hotplug' || config.hotplug === true;
}

/** The run's machine layout: the configured one, or `flat` at `gpaBase`. */
export function layoutOf(config: RunConfig): MachineLayout {
  return config.layout ?? buildLayout('flat', {
    guestMem: config.guestMem, blockSize: config.blockSize, gpaBase: config.gpaBase, containers: config.containers.length,
  }, new Prng(0));
}
