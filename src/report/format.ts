/** Human-readable numbers for chart labels. */

const UNITS: ReadonlyArray<readonly [string, number]> = [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]];

/** A byte count or guest address: 0, 512K, 1.5M, 64M, 1T. */
export function formatBytes(bytes: number): string {
  for (const [unit, scale] of UNITS) {
    if (bytes >= scale) {
      const v = bytes / scale;
      return `${Number.isInteger(v) ? v : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, '')}${unit}`;
    }
  }
  return String(Math.round(bytes));
}

/** A duration given in nanoseconds: 850 ns, 12.3 µs, 4.5 ms, 1.20 s. */
export function formatNs(ns: number): string {
  if (ns < 1e3) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${trim(ns / 1e3)} µs`;
  if (ns < 1e9) return `${trim(ns / 1e6)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

/** A count: 950, 12.3k, 4.5M. */
export function formatCount(n: number): string {
  if (Math.abs(n) < 1e3) return String(Math.round(n * 10) / 10);
  if (Math.abs(n) < 1e6) return `${trim(n / 1e3)}k`;
  return `${trim(n / 1e6)}M`;
}

/** Seconds from milliseconds, for time axes. */
export function formatSeconds(ms: number): string {
  return `${trim(ms / 1000)} s`;
}

/** Three significant digits at most, no trailing zeros. */
function trim(x: number): string {
  return x >= 100 ? x.toFixed(0) : String(Number(x.toFixed(x >= 10 ? 1 : 2)));
}
