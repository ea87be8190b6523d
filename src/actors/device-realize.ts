/**
 * Whether QEMU would realize each VFIO device of a run: the mapping
 * estimate of `vfio_ram_discard_register_listener` for the sections every
 * container registers at start-up, checked before any thread starts, and
 * the `type1:auto` limit that makes it fit.
 */
import { vfioDmaMappingEstimate, type DmaMappingEstimate } from '../core/vfio/dma-mapping-estimate.js';
import { TYPE1_DEFAULT_DMA_ENTRY_LIMIT } from '../core/vfio/type1-container.js';
import type { ContainerSpec, RunConfig } from './run-config.js';

/** A section a container registers: region offset, size, IOVA. */
export interface StartupSection {
  readonly offset: number;
  readonly size: number;
  readonly iova: number;
}

/**
 * The sections container `index` registers at start-up: its sections of
 * the machine layout, or (without a layout, or before one is built) the
 * whole guest RAM at IOVA = GPA, the most a container can register.
 */
export function startupSections(config: Pick<RunConfig, 'guestMem' | 'gpaBase'> & { layout?: RunConfig['layout'] }, index?: number): readonly StartupSection[] {
  const sections = index === undefined ? undefined : config.layout?.vfio[index];
  return sections ?? [{ offset: 0, size: config.guestMem, iova: config.gpaBase }];
}

type EstimateInput = Pick<RunConfig, 'guestMem' | 'gpaBase' | 'blockSize' | 'maxMemslots' | 'variant'> & { layout?: RunConfig['layout'] };

/** The estimate once all of a container's start-up sections are registered (the whole RAM when `index` is not given). */
export function startupEstimate(config: EstimateInput, dmaEntryLimit: number, index?: number): DmaMappingEstimate {
  const granularity = config.variant?.vfioGranularity ?? config.blockSize;
  const sections = startupSections(config, index).map((s) => ({ offsetWithinAddressSpace: s.iova, size: s.size, granularity }));
  return vfioDmaMappingEstimate(sections, config.maxMemslots, dmaEntryLimit);
}

/**
 * `type1:auto`: the kernel's default limit (65535) when the estimate fits,
 * otherwise the smallest limit that does (what a user raises
 * `vfio_iommu_type1.dma_entry_limit` to).
 */
export function autoDmaEntryLimit(config: EstimateInput): number {
  return Math.max(TYPE1_DEFAULT_DMA_ENTRY_LIMIT, startupEstimate(config, TYPE1_DEFAULT_DMA_ENTRY_LIMIT).smallestLimit);
}

/**
 * `type1:auto` limits sized for the sections each container registers in
 * the configuration's layout (parsing sizes them for the whole RAM before
 * the layout exists; with several listeners the estimate is smaller).
 */
export function withLayoutAutoLimits(config: RunConfig): RunConfig {
  const containers = config.containers.map((spec, index): ContainerSpec => spec.limitSource !== 'auto' ? spec : {
    ...spec, dmaEntryLimit: Math.max(TYPE1_DEFAULT_DMA_ENTRY_LIMIT, startupEstimate(config, TYPE1_DEFAULT_DMA_ENTRY_LIMIT, index).smallestLimit),
  });
  return { ...config, containers };
}

/** The first container QEMU would refuse at start-up (device realize fails), if any. */
export function refusedAtStartup(config: RunConfig): { index: number; estimate: DmaMappingEstimate } | undefined {
  for (const [index, spec] of config.containers.entries()) {
    if (spec.backend !== 'type1') continue;
    const estimate = startupEstimate(config, spec.dmaEntryLimit, index);
    if (estimate.exceeded) return { index, estimate };
  }
  return undefined;
}

/** What `type1:auto` did for a container, in one line (undefined for other containers). */
export function describeAutoLimit(config: RunConfig, index: number, spec: ContainerSpec): string | undefined {
  if (spec.limitSource !== 'auto') return undefined;
  const e = startupEstimate(config, TYPE1_DEFAULT_DMA_ENTRY_LIMIT, index);
  if (spec.dmaEntryLimit === TYPE1_DEFAULT_DMA_ENTRY_LIMIT) {
    return `c${index}: type1:auto kept the kernel default dma_entry_limit ${TYPE1_DEFAULT_DMA_ENTRY_LIMIT} (${e.worstCase} possible DMA mappings fit)`;
  }
  return `c${index}: type1:auto raised dma_entry_limit from the kernel default ${TYPE1_DEFAULT_DMA_ENTRY_LIMIT} to ${spec.dmaEntryLimit}: ` +
    `${e.blocks} blocks + ${e.maxMemslots} memslots - ${e.listeners} listener${e.listeners === 1 ? '' : 's'} = ${e.worstCase} ` +
    `possible DMA mappings, which QEMU would refuse with the default`;
}
