/**
 * Samples a threaded run for the HTML report, from the host thread: every
 * ~100 ms it reads the RamBlockAttributes bitmap straight from its
 * SharedArrayBuffer (downsampled to address buckets with `countSet`), asks
 * every actor for its gauges (live mappings, violations, conversions) and
 * collects the KVM exit handler's recent conversions. Memory stays bounded
 * on long runs (see {@link DecimatedSeries}); when reading the bitmap gets
 * expensive (a 1 TiB guest) the interval stretches so sampling stays under
 * a tenth of the host's time.
 */
import type { ConversionBatch } from '../actors/kvm-exit/conversion-log.js';
import type { SharedBitmap } from '../core/shared-bitmap.js';
import type { ActorGauges } from '../workers/actor-worker.js';
import { DecimatedSeries } from './decimated-series.js';

/** Where the sampler reads from (comlink remotes in a run; plain functions in tests). */
export interface SamplerSources {
  /** The shared bitmap (1 = shared), read directly. */
  readonly bitmap: SharedBitmap;
  /** Gauges of every actor. */
  gauges(): Promise<ActorGauges[]>;
  /** The KVM exit handler's conversions after sequence number `after`. */
  recentConversions(after: number): Promise<ConversionBatch>;
}

/** What to sample and how often. */
export interface SamplerOptions {
  /** Target interval between samples (default 100 ms). */
  readonly intervalMs?: number;
  /** Address buckets of the memory map (default 128). */
  readonly buckets?: number;
  /** Most samples kept (default 1500). */
  readonly maxSamples?: number;
  /** Most conversion marks kept (default 20000). */
  readonly maxConversions?: number;
}

/** One sample. */
export interface RunSample {
  /** Milliseconds since sampling started. */
  readonly t: number;
  /** Conversions finished so far. */
  readonly conversions: number;
  /** Violations found so far, over every actor (not de-duplicated). */
  readonly violations: number;
  /** Shared pages in the bitmap. */
  readonly sharedPages: number;
  /** Fraction of each address bucket that is shared (0..1, 3 decimals). */
  readonly shared: number[];
  /** Every actor's gauges, merged (e.g. `live mappings c0`). */
  readonly gauges: Record<string, number>;
  /** Each actor's time spent handling messages so far (ms, cumulative), by actor index. */
  readonly busyMs: number[];
}

/** A finished conversion, on the samples' time axis. */
export interface SampledConversion {
  /** Milliseconds since sampling started. */
  readonly t: number;
  readonly gpa: number;
  readonly size: number;
  readonly toPrivate: boolean;
  readonly ok: boolean;
}

/** Everything sampled during a run. */
export interface RunSeries {
  readonly intervalMs: number;
  readonly buckets: number;
  /** Blocks (pages) in the bitmap. */
  readonly blocks: number;
  readonly samples: RunSample[];
  readonly conversions: SampledConversion[];
  /** Conversions the KVM exit handler finished while sampling. */
  readonly conversionsSeen: number;
  /** Conversions the bounded log had overwritten before the sampler read them. */
  readonly conversionsLost: number;
}

/** Nanoseconds on the clock every thread of the process shares (`process.hrtime`). */
function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/**
 * The bitmap downsampled: the fraction shared of each bucket (bucket i covers
 * blocks [floor(i n / b), floor((i + 1) n / b)) of n), and the set bits in all.
 *
 * Reads the words with plain (not atomic) loads: a sample taken while the
 * owner writes may see some words before and others after a state change,
 * which a picture does not mind, and it is about 7 times faster than
 * `SharedBitmap.countSet` on a 1 TiB guest (2^28 bits: ~12 ms instead of ~85).
 */
export function bucketFractions(bitmap: SharedBitmap, buckets: number): { fractions: number[]; total: number } {
  const n = bitmap.size;
  const words = new Int32Array(bitmap.buffer, 0, Math.ceil(n / 32));
  const b = Math.max(1, Math.min(buckets, n));
  const fractions: number[] = [];
  let total = 0;
  for (let i = 0; i < b; i++) {
    const start = Math.floor((i * n) / b);
    const end = Math.floor(((i + 1) * n) / b);
    const set = countBits(words, start, end);
    total += set;
    fractions.push(end === start ? 0 : round3(set / (end - start)));
  }
  return { fractions, total };
}

/** Set bits in [start, end), plain reads, zero words skipped. */
function countBits(words: Int32Array, start: number, end: number): number {
  if (end <= start) return 0;
  const fw = Math.floor(start / 32);
  const lw = Math.floor((end - 1) / 32);
  const headMask = -1 << (start - fw * 32);
  const tailMask = -1 >>> (31 - (end - 1 - lw * 32));
  if (fw === lw) return popcount(words[fw]! & headMask & tailMask);
  let n = popcount(words[fw]! & headMask) + popcount(words[lw]! & tailMask);
  for (let w = fw + 1; w < lw; w++) {
    const v = words[w]!;
    if (v !== 0) n += popcount(v);
  }
  return n;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Samples a run until {@link RunSampler.stop}. */
export class RunSampler {
  readonly #sources: SamplerSources;
  readonly #intervalMs: number;
  readonly #buckets: number;
  readonly #samples: DecimatedSeries<RunSample>;
  readonly #conversions: DecimatedSeries<SampledConversion>;
  readonly #origin = nowNs();
  #lastSeq = 0;
  #lost = 0;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(sources: SamplerSources, options: SamplerOptions = {}) {
    this.#sources = sources;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#buckets = options.buckets ?? 128;
    this.#samples = new DecimatedSeries(options.maxSamples ?? 1500);
    this.#conversions = new DecimatedSeries(options.maxConversions ?? 20000);
  }

  /** Take a first sample now, then one every interval. */
  start(): void {
    this.#schedule(0);
  }

  /** Stop, take a last sample, and return the series. */
  async stop(): Promise<RunSeries> {
    this.cancel();
    await this.#tick;
    await this.#sample();
    return this.partial();
  }

  /** The series sampled so far, without a last sample (for a run that broke or was interrupted). */
  partial(): RunSeries {
    this.cancel();
    return {
      intervalMs: this.#intervalMs,
      buckets: Math.max(1, Math.min(this.#buckets, this.#sources.bitmap.size)),
      blocks: this.#sources.bitmap.size,
      samples: this.#samples.toArray(),
      conversions: this.#conversions.toArray(),
      conversionsSeen: this.#lastSeq,
      conversionsLost: this.#lost,
    };
  }

  /** Stop without a last sample (the run broke). */
  cancel(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#tick = this.#sample().then((costMs) => this.#schedule(Math.max(this.#intervalMs, 10 * costMs)), () => undefined);
    }, delayMs);
  }

  /** One sample; returns the milliseconds the bitmap scan took. */
  async #sample(): Promise<number> {
    const scanStarted = nowNs();
    const { fractions: shared, total: sharedPages } = bucketFractions(this.#sources.bitmap, this.#buckets);
    const costMs = (nowNs() - scanStarted) / 1e6;
    const t = (scanStarted - this.#origin) / 1e6;
    const [gauges, batch] = await Promise.all([this.#sources.gauges(), this.#sources.recentConversions(this.#lastSeq)]);
    const merged: Record<string, number> = {};
    let violations = 0;
    let conversions = 0;
    for (const g of gauges) {
      Object.assign(merged, g.gauges);
      violations += g.violations;
      conversions += g.conversions;
    }
    this.#samples.push({ t: round3(t), conversions, violations, sharedPages, shared, gauges: merged, busyMs: gauges.map((g) => round3(g.busyMs)) });
    this.#lost += batch.lost;
    this.#lastSeq = batch.last;
    for (const m of batch.marks) {
      this.#conversions.push({ t: round3((m.t - this.#origin) / 1e6), gpa: m.gpa, size: m.size, toPrivate: m.toPrivate, ok: m.ok });
    }
    return costMs;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
