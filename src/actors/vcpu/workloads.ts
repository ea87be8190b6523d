/**
 * Guest workloads. Each vCPU runs one, seeded through its context.
 */
import { MiB, KiB } from '../../core/units.js';
import type { WorkloadName } from '../run-config.js';
import type { ActionResult, GuestAction, Workload, WorkloadContext } from './guest-actions.js';
import { selftest } from './selftest-workload.js';

const PAGE = 4 * KiB;
const CHUNK = 2 * MiB;

export function workload(name: WorkloadName, ctx: WorkloadContext): Workload {
  switch (name) {
    case 'storm':
    case 'hotplug':
      return storm(ctx);
    case 'selftest':
      return selftest(ctx);
    case 'overlap':
      return overlap(ctx);
    case 'swiotlb':
      return swiotlb(ctx);
    default: {
      const unreachable: never = name;
      throw new Error(`unknown workload ${String(unreachable)}`);
    }
  }
}

const randomInt = (ctx: WorkloadContext, n: number): number => Math.floor(ctx.random() * n);

/**
 * Random conversions of random sizes from every vCPU over a common area
 * (ranges overlap across vCPUs), memory-fault conversions of single pages,
 * and DMA cycles in a buffer area each vCPU owns: convert to shared, let
 * the device write, check, convert back to private.
 */
export function* storm(ctx: WorkloadContext): Workload {
  const ownSize = Math.max(16 * PAGE, Math.floor(ctx.guestMem / 4 / ctx.vcpus / PAGE) * PAGE);
  const commonSize = ctx.guestMem - ownSize * ctx.vcpus;
  const ownBase = ctx.gpaBase + commonSize + ctx.vcpu * ownSize;
  let conversions = 0;
  const run = function* (action: GuestAction): Generator<GuestAction, ActionResult, ActionResult> {
    const result = yield action;
    conversions += result.exits;
    return result;
  };
  while (conversions < ctx.budget) {
    const r = ctx.random();
    if (r < 0.5) {
      const size = Math.min(stormSize(ctx), commonSize);
      const gpa = ctx.gpaBase + randomInt(ctx, (commonSize - size) / PAGE + 1) * PAGE;
      if ((yield* run({ kind: 'mapGpa', gpa, size, toPrivate: ctx.random() < 0.5 })).ret !== 0) return;
    } else if (r < 0.75) {
      const gpa = ctx.gpaBase + randomInt(ctx, commonSize / PAGE) * PAGE;
      if ((yield* run({ kind: 'access', gpa, size: PAGE, private: ctx.random() < 0.5 })).ret !== 0) return;
    } else {
      const size = (1 + randomInt(ctx, Math.min(16, ownSize / PAGE))) * PAGE;
      const gpa = ownBase + randomInt(ctx, (ownSize - size) / PAGE + 1) * PAGE;
      const pattern = 1 + randomInt(ctx, 254);
      if ((yield* run({ kind: 'mapGpa', gpa, size, toPrivate: false, owned: true })).ret !== 0) return;
      const dma = yield* run({ kind: 'dma', container: randomInt(ctx, ctx.containers), gpa, size, pattern });
      if (dma.ret !== 0) return;
      if (dma.outcome === 'ok') yield* run({ kind: 'check', gpa, size, view: 'shared', expect: pattern, what: 'device write through the IOMMU' });
      if ((yield* run({ kind: 'mapGpa', gpa, size, toPrivate: true, owned: true })).ret !== 0) return;
    }
  }
}

/** Conversion sizes: mostly 4 KiB, some up to 64 KiB, some 2 MiB and larger. */
function stormSize(ctx: WorkloadContext): number {
  const r = ctx.random();
  if (r < 0.4) return PAGE;
  if (r < 0.7) return (2 + randomInt(ctx, 15)) * PAGE;
  if (r < 0.85) return CHUNK;
  return CHUNK + (1 + randomInt(ctx, 1024)) * PAGE;
}

/**
 * Every vCPU converts the same 2 MiB window (shifted by 0 to 2 pages per
 * vCPU, so the ranges overlap without being equal) back and forth, odd vCPUs starting the other way: the
 * opposite conversions of overlapping ranges that QEMU's unlocked
 * conversion path lets interleave.
 */
export function* overlap(ctx: WorkloadContext): Workload {
  const window = ctx.gpaBase + CHUNK;
  let toPrivate = ctx.vcpu % 2 === 1;
  let conversions = 0;
  while (conversions < ctx.budget) {
    const gpa = window + (ctx.vcpu % 3) * PAGE;
    const result = yield { kind: 'mapGpa', gpa, size: CHUNK, toPrivate };
    conversions += result.exits;
    if (result.ret !== 0) return;
    toPrivate = !toPrivate;
  }
}

/**
 * A bounce-buffer pool (swiotlb) the size of half the guest, split among
 * the vCPUs, converted to shared at boot, then used for DMA: with 4 KiB
 * mappings this is the entry count a type1 container must hold.
 */
export function* swiotlb(ctx: WorkloadContext): Workload {
  const pool = Math.floor(ctx.guestMem / 2 / ctx.vcpus / CHUNK) * CHUNK;
  const base = ctx.gpaBase + ctx.vcpu * pool;
  let conversions = 0;
  for (let at = base; at < base + pool && conversions < ctx.budget; at += CHUNK) {
    const result = yield { kind: 'mapGpa', gpa: at, size: CHUNK, toPrivate: false, owned: true };
    conversions += result.exits;
    if (result.ret !== 0) return;
  }
  for (let i = 0; i < 4; i++) {
    const gpa = base + randomInt(ctx, pool / PAGE) * PAGE;
    yield { kind: 'dma', container: randomInt(ctx, ctx.containers), gpa, size: PAGE, pattern: 0x5a };
  }
}
