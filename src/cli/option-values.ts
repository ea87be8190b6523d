/** Parsing of option values shared by commands; every failure is a one-line UsageError. */
import { GiB, KiB, MiB, TiB } from '../core/units.js';
import { showValue } from './show-value.js';
import { UsageError } from './usage-error.js';

/** `--name` must be one of `allowed`. */
export function parseChoice<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${option}: ${showValue(value)} is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** A positive (or, with `min: 0`, non-negative) safe integer. */
export function parseCount(option: string, value: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${option}: ${showValue(value)} must be an integer from ${min} to ${max}`);
  }
  return n;
}

const SUFFIX: Record<string, number> = { '': 1, K: KiB, M: MiB, G: GiB, T: TiB };

/** A size like `1G`, `512M`, `4096`, `1T` (binary units). */
export function parseSize(option: string, value: string): number {
  const match = /^(\d+)([KMGT]?)i?B?$/i.exec(value);
  const bytes = match === null ? NaN : Number(match[1]) * SUFFIX[match[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UsageError(`--${option}: ${showValue(value)} is not a size (examples: 4096, 64M, 1G, 1T)`);
  }
  return bytes;
}

/** An integer within `limits` (a row of a limits table such as `RUN_LIMITS`). */
export function parseLimited(option: string, value: string, limits: { readonly min: number; readonly max: number }): number {
  return parseCount(option, value, limits.min, limits.max);
}

/** A time window `START-END` in seconds (decimals allowed, START < END), as milliseconds. */
export function parseTimeWindow(option: string, value: string): { fromMs: number; toMs: number } {
  const match = /^(\d{1,7}(?:\.\d{1,3})?)-(\d{1,7}(?:\.\d{1,3})?)$/.exec(value);
  const fromMs = match === null ? NaN : Number(match[1]) * 1000;
  const toMs = match === null ? NaN : Number(match[2]) * 1000;
  if (!(fromMs < toMs)) throw new UsageError(`--${option}: ${showValue(value)} must be START-END in seconds with START < END, e.g. 2-5 or 0.5-1.5`);
  return { fromMs, toMs };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Longest duration accepted: a week. */
const MAX_DURATION_MS = 7 * 24 * 3_600_000;

/** A duration like `90s`, `10m`, `1.5h`, `500ms` or a bare number of seconds, as milliseconds. */
export function parseDuration(option: string, value: string): number {
  const match = /^(\d{1,9}(?:\.\d{1,3})?)(ms|s|m|h)?$/.exec(value);
  const ms = match === null ? NaN : Number(match[1]) * DURATION_UNITS[match[2] ?? 's']!;
  if (!(ms > 0 && ms <= MAX_DURATION_MS)) {
    throw new UsageError(`--${option}: ${showValue(value)} must be a duration from 1ms to 7 days, e.g. 90s, 10m, 1.5h, 500ms`);
  }
  return ms;
}

/** A shard `I/N`: the I-th of N parts (1 <= I <= N <= 4096), as `{ index: I - 1, count: N }`. */
export function parseShard(option: string, value: string): { index: number; count: number } {
  const match = /^(\d{1,4})\/(\d{1,4})$/.exec(value);
  const index = match === null ? NaN : Number(match[1]);
  const count = match === null ? NaN : Number(match[2]);
  if (!(index >= 1 && count >= 1 && index <= count && count <= 4096)) {
    throw new UsageError(`--${option}: ${showValue(value)} must be I/N with 1 <= I <= N <= 4096, e.g. 1/4 (the first of four shards)`);
  }
  return { index: index - 1, count };
}
