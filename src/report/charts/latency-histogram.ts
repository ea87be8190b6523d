/**
 * One phase's latency histogram: log-scaled time on x (four bins per power
 * of two, regrouped from the HDR-style buckets), conversions on y, stacked
 * by conversion size class, with p50 / p99 / max drawn as lines.
 */
import { LatencyHistogram, type SparseHistogram } from '../../core/latency-histogram.js';
import { bottomAxis, leftAxis, type Frame } from '../axes.js';
import { SIZE_CLASS_COLORS } from '../colors.js';
import { formatCount, formatNs } from '../format.js';
import { linearScale, logScale } from '../scale.js';
import { el, escapeXml, text, title } from '../svg.js';

/** Bins per power of two. */
const BINS_PER_OCTAVE = 4;
/** Stacking order of the size classes. */
const CLASSES = ['4K', '2M', 'other'];

/** What {@link latencyHistogramChart} draws. */
export interface LatencyHistogramSpec {
  readonly phase: string;
  /** Size class (`4K`, `2M`, `other`) -> histogram (nanoseconds). */
  readonly byClass: Readonly<Record<string, SparseHistogram>>;
  readonly width: number;
  readonly height: number;
}

const binOf = (ns: number): number => Math.floor(Math.log2(Math.max(1, ns)) * BINS_PER_OCTAVE);
const binStart = (bin: number): number => 2 ** (bin / BINS_PER_OCTAVE);

/** Render the histogram as an `<svg>` element. */
export function latencyHistogramChart(spec: LatencyHistogramSpec): string {
  const frame: Frame = { left: 56, top: 34, width: spec.width - 56 - 14, height: spec.height - 34 - 40 };
  const classes = CLASSES.filter((c) => spec.byClass[c] !== undefined);
  const bins = new Map<number, number[]>();
  const all = new LatencyHistogram();
  for (const [ci, cls] of classes.entries()) {
    const sparse = spec.byClass[cls]!;
    all.merge(LatencyHistogram.fromSparse(sparse));
    for (const [index, count] of sparse.buckets) {
      const bin = binOf(LatencyHistogram.valueAt(index));
      const row = bins.get(bin) ?? new Array<number>(classes.length).fill(0);
      row[ci]! += count;
      bins.set(bin, row);
    }
  }
  const keys = [...bins.keys()];
  const lo = keys.length === 0 ? 0 : Math.min(...keys);
  const hi = keys.length === 0 ? 1 : Math.max(...keys) + 1;
  const x = logScale([binStart(lo), binStart(hi)], [frame.left, frame.left + frame.width]);
  const peak = Math.max(1, ...[...bins.values()].map((row) => row.reduce((a, b) => a + b, 0)));
  const y = linearScale([0, peak * 1.1], [frame.top + frame.height, frame.top]);
  const bars: string[] = [];
  for (const [bin, row] of bins) {
    const bx = x.map(binStart(bin));
    const w = Math.max(1, x.map(binStart(bin + 1)) - bx - 0.5);
    let stacked = 0;
    row.forEach((count, ci) => {
      if (count === 0) return;
      const top = y.map(stacked + count);
      bars.push(el('rect', { x: bx, y: top, width: w, height: y.map(stacked) - top, fill: SIZE_CLASS_COLORS[classes[ci]!] ?? '#888' },
        title(`${classes[ci]}: ${count} in ${formatNs(binStart(bin))} – ${formatNs(binStart(bin + 1))}`)));
      stacked += count;
    });
  }
  const s = all.summary();
  const lines = ([['p50', s.p50, '#333'], ['p99', s.p99, '#c0392b'], ['max', s.max, '#7f8c8d']] as const).map(([name, v, color]) => {
    const lx = x.map(Math.max(v, binStart(lo)));
    return el('line', { x1: lx, y1: frame.top, x2: lx, y2: frame.top + frame.height, stroke: color, 'stroke-dasharray': '3 3', 'stroke-width': 1.2 },
      title(`${name} ${formatNs(v)}`));
  });
  const heading = `${spec.phase}  n=${formatCount(s.count)}  p50 ${formatNs(s.p50)}  p99 ${formatNs(s.p99)}  max ${formatNs(s.max)}`;
  return el('svg', { class: 'chart latency-histogram', width: spec.width, height: spec.height, viewBox: `0 0 ${spec.width} ${spec.height}`, role: 'img', 'data-phase': spec.phase },
    text(frame.left, 16, heading, { class: 'heading' }),
    leftAxis(frame, y, y.ticks(4), formatCount),
    bottomAxis(frame, x, x.ticks(6), formatNs),
    el('g', { class: 'bars' }, ...bars),
    ...lines,
    el('desc', {}, escapeXml(heading)));
}
