/**
 * Benchmarks for the bitmap and mapping-store data structures.
 *
 * 1. Full scan of a sparse 2^22-bit `SharedBitmap` enumerating every set bit:
 *    word-at-a-time `findNextBit` vs a naive `test(i)` loop, same run,
 *    median of several repetitions.
 * 2. `MappingStore` memory per mapping for 4,194,304 live 4 KiB mappings
 *    (a 16 GiB guest populated 4 KiB at a time), inserted in ascending and in
 *    seeded-random order, with insert/remove timings and
 *    `process.memoryUsage()` deltas.
 *
 * @module
 */
import os from 'node:os';
import { SharedBitmap } from '../core/shared-bitmap.js';
import { MappingStore } from '../core/vfio/mapping-store.js';
import { median } from './median.js';

export interface ScanTiming {
  /** Median nanoseconds per full scan. */
  medianNs: number;
  /** Bits covered per second (bitmap size / median scan time). */
  bitsPerSecond: number;
  /** Every repetition, in ns. */
  samplesNs: number[];
}

export interface MemoryDelta {
  heapUsedBytes: number;
  arrayBuffersBytes: number;
  externalBytes: number;
  rssBytes: number;
}

export interface MappingFillResult {
  order: 'ascending' | 'random';
  count: number;
  insertMs: number;
  insertNsPerOp: number;
  bytesAllocated: number;
  bytesPerMapping: number;
  /** `process.memoryUsage()` after fill minus before (includes garbage unless run with --expose-gc). */
  memoryDelta: MemoryDelta;
  /** Heap + array-buffer delta divided by count. */
  measuredBytesPerMapping: number;
  /** Time to remove every mapping one 4 KiB at a time, in ascending order. */
  removeAscendingMs: number;
}

export interface BitmapBenchResult {
  machine: { cpus: number; node: string; platform: string; arch: string; gcExposed: boolean };
  scan: {
    bits: number;
    setBits: number;
    repetitions: number;
    findNextBit: ScanTiming;
    bitByBit: ScanTiming;
    /** bitByBit median / findNextBit median. */
    ratio: number;
  };
  mappingStore: {
    pageSize: number;
    ascending: MappingFillResult;
    random: MappingFillResult & { seed: number };
  };
  goals: {
    scanRatioAtLeast20: boolean;
    ascendingBytesPerMappingAtMost32: boolean;
    ascendingInsertUnder2s: boolean;
    ascendingRemoveUnder2s: boolean;
  };
}

/** mulberry32: a small seeded PRNG returning uint32 values. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function nowNs(): number {
  return Number(process.hrtime.bigint());
}


function tryGc(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') {
    // twice: array-buffer backing stores are released by a later sweep
    g();
    g();
    return true;
  }
  return false;
}

function memDelta(before: NodeJS.MemoryUsage, after: NodeJS.MemoryUsage): MemoryDelta {
  return {
    heapUsedBytes: after.heapUsed - before.heapUsed,
    arrayBuffersBytes: after.arrayBuffers - before.arrayBuffers,
    externalBytes: after.external - before.external,
    rssBytes: after.rss - before.rss,
  };
}

function timing(samples: number[], bits: number): ScanTiming {
  const med = median(samples);
  return { medianNs: Math.round(med), bitsPerSecond: Math.round((bits / med) * 1e9), samplesNs: samples.map(Math.round) };
}

function scanBench(repetitions: number): BitmapBenchResult['scan'] {
  const bits = 1 << 22;
  const bm = new SharedBitmap(bits);
  // One bit per 4096-bit stretch at a deterministic pseudo-random offset.
  for (let i = 0; i < bits / 4096; i++) {
    bm.set(i * 4096 + (Math.imul(i, 2654435761) >>> 20));
  }
  const expected = bm.countSet();
  let sink = 0;
  const fast = (): number => {
    let n = 0;
    for (let b = bm.findNextBit(0); b < bits; b = bm.findNextBit(b + 1)) n++;
    return n;
  };
  const slow = (): number => {
    let n = 0;
    for (let i = 0; i < bits; i++) if (bm.test(i)) n++;
    return n;
  };
  // Warm up both paths.
  for (let r = 0; r < 3; r++) sink += fast() + slow();
  const fastNs: number[] = [];
  const slowNs: number[] = [];
  for (let r = 0; r < repetitions; r++) {
    let t = nowNs();
    const nf = fast();
    fastNs.push(nowNs() - t);
    t = nowNs();
    const ns = slow();
    slowNs.push(nowNs() - t);
    if (nf !== expected || ns !== expected) throw new Error(`scan mismatch: ${nf} ${ns} ${expected}`);
    sink += nf + ns;
  }
  if (sink < 0) throw new Error('unreachable');
  const findNextBit = timing(fastNs, bits);
  const bitByBit = timing(slowNs, bits);
  return {
    bits,
    setBits: expected,
    repetitions,
    findNextBit,
    bitByBit,
    ratio: Math.round((bitByBit.medianNs / findNextBit.medianNs) * 10) / 10,
  };
}

function fill(order: 'ascending' | 'random', count: number, pageSize: number, seed: number): MappingFillResult {
  let perm: Uint32Array | undefined;
  if (order === 'random') {
    perm = new Uint32Array(count);
    for (let i = 0; i < count; i++) perm[i] = i;
    const rnd = mulberry32(seed);
    for (let i = count - 1; i > 0; i--) {
      const k = rnd() % (i + 1);
      const t = perm[i] as number;
      perm[i] = perm[k] as number;
      perm[k] = t;
    }
  }
  tryGc();
  const before = process.memoryUsage();
  const store = new MappingStore(pageSize);
  const t0 = nowNs();
  for (let i = 0; i < count; i++) {
    const p = perm === undefined ? i : (perm[i] as number);
    // Host offsets deliberately not equal to iova (a second RAM block base).
    if (!store.insert(p * pageSize, pageSize, (p + 0x100000) * pageSize, 1)) {
      throw new Error(`unexpected overlap at ${p}`);
    }
  }
  const insertNs = nowNs() - t0;
  tryGc();
  const after = process.memoryUsage();
  // Keep the permutation alive across both snapshots so it cancels out of the delta.
  if (perm !== undefined && perm.length !== count) throw new Error('unreachable');
  const bytesAllocated = store.bytesAllocated();
  if (store.count !== count) throw new Error(`count ${store.count} != ${count}`);
  const delta = memDelta(before, after);
  const t1 = nowNs();
  for (let i = 0; i < count; i++) {
    const r = store.removeContained(i * pageSize, pageSize);
    if (r.count !== 1) throw new Error(`remove ${i} removed ${r.count}`);
  }
  const removeNs = nowNs() - t1;
  if (store.count !== 0 || store.bytesAllocated() !== 0) throw new Error('store not empty after removal');
  return {
    order,
    count,
    insertMs: Math.round(insertNs / 1e4) / 100,
    insertNsPerOp: Math.round(insertNs / count),
    bytesAllocated,
    bytesPerMapping: Math.round((bytesAllocated / count) * 100) / 100,
    memoryDelta: delta,
    measuredBytesPerMapping: Math.round(((delta.heapUsedBytes + delta.arrayBuffersBytes) / count) * 100) / 100,
    removeAscendingMs: Math.round(removeNs / 1e4) / 100,
  };
}

export function runBitmapBench(): BitmapBenchResult {
  const gcExposed = typeof (globalThis as { gc?: unknown }).gc === 'function';
  const scan = scanBench(9);
  const pageSize = 4096;
  const count = 4_194_304;
  const seed = 0xc0ffee;
  const ascending = fill('ascending', count, pageSize, seed);
  const random = { ...fill('random', count, pageSize, seed), seed };
  return {
    machine: { cpus: os.cpus().length, node: process.version, platform: process.platform, arch: process.arch, gcExposed },
    scan,
    mappingStore: { pageSize, ascending, random },
    goals: {
      scanRatioAtLeast20: scan.ratio >= 20,
      ascendingBytesPerMappingAtMost32: ascending.bytesPerMapping <= 32,
      ascendingInsertUnder2s: ascending.insertMs < 2000,
      ascendingRemoveUnder2s: ascending.removeAscendingMs < 2000,
    },
  };
}
