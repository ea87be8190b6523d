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
    case 'adversarial':
      return adversarial(ctx);
    default: {
      const unreachable: never = name;
      throw new Error(`unknown workload ${String(unreachable)}`);
    }
  }
}

const randomInt = (ctx: WorkloadContext, n: number): number => Math.floor(ctx.random() * n);

/** One QEMU bitmap word (64 blocks of 4 KiB): 256 KiB of guest. */
const BITMAP_WORD_SPAN = 64 * PAGE;
/** The well-behaved guest's small buffers: stripes of 4 pages, dealt to the vCPUs in turn. */
const STRIPE = 4 * PAGE;

/**
 * A well-behaved Linux guest (`storm`): no vCPU ever converts a page
 * another of its vCPUs may be converting, but they convert disjoint pages
 * at the same time, often inside one 256 KiB bitmap word, as swiotlb and
 * `set_memory_decrypted` on different CPUs do. Its memory:
 * - a shared area of small buffers: stripes of 16 KiB dealt to the vCPUs in
 *   turn, a few bitmap words in all, so concurrent conversions of different
 *   vCPUs meet in one word; each converts 4 to 16 KiB of its own stripes,
 *   and takes memory faults on them;
 * - one large area per vCPU for large conversions (mostly 4 KiB to 64 KiB,
 *   some 2 MiB and more) and memory faults;
 * - one DMA buffer area per vCPU: convert to shared, let the device write,
 *   check, convert back to private.
 * Every conversion is in memory the vCPU owns (`owned`: it must end as
 * asked).
 */
export function* storm(ctx: WorkloadContext): Workload {
  const ownSize = Math.max(16 * PAGE, Math.floor(ctx.guestMem / 4 / ctx.vcpus / PAGE) * PAGE);
  const stripedSize = Math.max(2, ctx.vcpus) * BITMAP_WORD_SPAN;
  const largeSize = Math.max(PAGE, Math.floor((ctx.guestMem - ownSize * ctx.vcpus - stripedSize) / ctx.vcpus / PAGE) * PAGE);
  const largeBase = ctx.gpaBase + stripedSize + ctx.vcpu * largeSize;
  const ownBase = ctx.gpaBase + stripedSize + largeSize * ctx.vcpus + ctx.vcpu * ownSize;
  // This vCPU's stripes: k * vcpus + vcpu.
  const stripes = Math.floor(stripedSize / STRIPE / ctx.vcpus);
  const stripeGpa = (k: number): number => ctx.gpaBase + (k * ctx.vcpus + ctx.vcpu) * STRIPE;
  let conversions = 0;
  const run = function* (action: GuestAction): Generator<GuestAction, ActionResult, ActionResult> {
    const result = yield action;
    conversions += result.exits;
    return result;
  };
  while (conversions < ctx.budget) {
    const r = ctx.random();
    if (r < 0.35) {
      const gpa = stripeGpa(randomInt(ctx, stripes));
      const pages = 1 + randomInt(ctx, STRIPE / PAGE);
      const first = randomInt(ctx, STRIPE / PAGE - pages + 1);
      if ((yield* run({ kind: 'mapGpa', gpa: gpa + first * PAGE, size: pages * PAGE, toPrivate: ctx.random() < 0.5, owned: true })).ret !== 0) return;
    } else if (r < 0.5) {
      const size = Math.min(stormSize(ctx), largeSize);
      const gpa = largeBase + randomInt(ctx, (largeSize - size) / PAGE + 1) * PAGE;
      if ((yield* run({ kind: 'mapGpa', gpa, size, toPrivate: ctx.random() < 0.5, owned: true })).ret !== 0) return;
    } else if (r < 0.75) {
      const gpa = ctx.random() < 0.5
        ? stripeGpa(randomInt(ctx, stripes)) + randomInt(ctx, STRIPE / PAGE) * PAGE
        : largeBase + randomInt(ctx, largeSize / PAGE) * PAGE;
      if ((yield* run({ kind: 'access', gpa, size: PAGE, private: ctx.random() < 0.5, owned: true })).ret !== 0) return;
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

/**
 * A malicious confidential guest (`adversarial`): every vCPU converts the
 * same few bitmap words, in both directions, with sizes from 4 KiB to
 * 2 MiB and memory faults of either kind, to race opposite conversions of
 * the same pages on purpose. The confidential-computing threat model
 * distrusts the guest: whatever it does, the host must stay consistent
 * (KVM, the bitmap and the IOMMU agree) and no device may reach memory
 * that is private or freed. Nothing is `owned`: a conversion may be undone
 * by another vCPU before it returns.
 */
export function* adversarial(ctx: WorkloadContext): Workload {
  const window = Math.min(4 * BITMAP_WORD_SPAN, ctx.guestMem);
  let conversions = 0;
  while (conversions < ctx.budget) {
    const r = ctx.random();
    let result: ActionResult;
    if (r < 0.7) {
      const size = r < 0.1 ? Math.min(CHUNK, ctx.guestMem) : (1 + randomInt(ctx, 16)) * PAGE;
      const span = Math.max(window, size);
      const gpa = ctx.gpaBase + randomInt(ctx, (span - size) / PAGE + 1) * PAGE;
      result = yield { kind: 'mapGpa', gpa, size, toPrivate: ctx.random() < 0.5 };
    } else {
      const gpa = ctx.gpaBase + randomInt(ctx, window / PAGE) * PAGE;
      result = yield { kind: 'access', gpa, size: PAGE, private: ctx.random() < 0.5, contested: true };
    }
    conversions += result.exits;
    if (result.ret !== 0) return;
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

/** 2 MiB chunks of each vCPU's share of the swiotlb pool (half the guest): its conversions, one per chunk. */
export function swiotlbPoolChunks(guestMem: number, vcpus: number): number {
  return Math.floor(guestMem / 2 / vcpus / CHUNK);
}

/**
 * The most conversions a workload makes whatever `--conversions` asks, when
 * it has such a bound: `swiotlb` converts its pool once (one conversion per
 * 2 MiB chunk), then only DMAs. Undefined: the workload runs to its share.
 */
export function workloadConversionCap(name: WorkloadName, guestMem: number, vcpus: number): number | undefined {
  return name === 'swiotlb' ? swiotlbPoolChunks(guestMem, vcpus) * vcpus : undefined;
}

/**
 * A bounce-buffer pool (swiotlb) the size of half the guest, split among
 * the vCPUs, converted to shared at boot, then used for DMA: with 4 KiB
 * mappings this is the entry count a type1 container must hold.
 */
export function* swiotlb(ctx: WorkloadContext): Workload {
  const pool = swiotlbPoolChunks(ctx.guestMem, ctx.vcpus) * CHUNK;
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
