/**
 * The documented bounds of a run configuration, shared by `convsim run`'s
 * options and the replay tokens' decoder, so a token is held to exactly
 * what the command line accepts.
 */
import { MiB, TiB, formatSize } from '../core/units.js';
import type { RunConfig } from './run-config.js';
import { PER_CPU_DATA_SIZE, PER_CPU_SPACING } from './vcpu/selftest-workload.js';

/** Inclusive integer bounds of the numeric run options. */
export const RUN_LIMITS = {
  vcpus: { min: 1, max: 64 },
  inFlight: { min: 1, max: 1024 },
  conversions: { min: 1, max: 1e9 },
  seed: { min: 0, max: 2 ** 31 - 1 },
  checkEvery: { min: 1, max: 1e9 },
  containers: { min: 1, max: 16 },
  dmaEntryLimit: { min: 1, max: 2 ** 32 - 1 },
} as const;

/** vCPU threads per available core a threaded run allows (see `maxThreadedVcpus`). */
export const VCPUS_PER_CORE = 8;

/** Largest guest: 1 TiB (2^28 blocks of 4 KiB). */
export const MAX_GUEST_MEM = TiB;

/** Guest memory is a whole number of 2 MiB pages. */
export const GUEST_MEM_ALIGNMENT = 2 * MiB;

/** Bytes of shared state per 4 KiB block (five 32-bit counters and three bitmaps), to check a guest fits in memory. */
export const SHARED_BYTES_PER_BLOCK = 21;

/**
 * Why `config`'s workload does not fit its guest (one line), or undefined
 * when it does: selftest needs 2M+4K per vCPU, storm and hotplug 64M,
 * overlap and adversarial 8M, swiotlb 4M per vCPU.
 */
export function workloadFitProblem(config: Pick<RunConfig, 'workload' | 'vcpus' | 'guestMem'>): string | undefined {
  const { workload, vcpus, guestMem } = config;
  if (workload === 'selftest' && (vcpus - 1) * PER_CPU_SPACING + PER_CPU_DATA_SIZE > guestMem) {
    return `selftest needs a 2M+4K chunk every 4M per vCPU: ${vcpus} vCPUs do not fit in ${formatSize(guestMem)}`;
  }
  // The well-behaved guest's stripes, own buffers and large areas (its largest conversions are capped to them).
  if ((workload === 'storm' || workload === 'hotplug') && guestMem < 16 * MiB) return `${workload} needs a guest of at least 16M`;
  if ((workload === 'overlap' || workload === 'adversarial') && guestMem < 8 * MiB) return `${workload} needs a guest of at least 8M`;
  if (workload === 'swiotlb' && guestMem < vcpus * 4 * MiB) return 'swiotlb needs at least 4M of guest per vCPU';
  return undefined;
}
