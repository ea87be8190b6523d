/** Colours of the report: the private/shared heat ramp and a series palette. */

/** Stops of the heat ramp, from all private (0) to all shared (1). */
const HEAT: ReadonlyArray<readonly [number, readonly [number, number, number]]> = [
  [0, [45, 30, 80]],
  [0.5, [42, 157, 143]],
  [1, [244, 211, 94]],
];

/** The heat-strip colour of a shared fraction (0..1), as `rgb(...)`. */
export function heatColor(fraction: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  for (let i = 1; i < HEAT.length; i++) {
    const [f1, c1] = HEAT[i]!;
    const [f0, c0] = HEAT[i - 1]!;
    if (f <= f1) {
      const k = (f - f0) / (f1 - f0);
      const c = c0.map((v, j) => Math.round(v + (c1[j]! - v) * k));
      return `rgb(${c.join(',')})`;
    }
  }
  return 'rgb(244,211,94)';
}

/** Markers of conversions on the memory map. */
export const TO_PRIVATE = '#ff3d8b';
export const TO_SHARED = '#7de2ff';
/** Violations and failures. */
export const ALERT = '#d62728';

/** Distinct series colours, by index. */
export function seriesColor(index: number): string {
  const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];
  return palette[index % palette.length]!;
}

/** Size classes of the latency histograms. */
export const SIZE_CLASS_COLORS: Readonly<Record<string, string>> = { '4K': '#4c78a8', '2M': '#f58518', other: '#54a24b' };
