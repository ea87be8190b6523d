/**
 * Each actor's busy/idle timeline: one row per actor (its thread), one
 * column per sampling interval, the colour the fraction of that interval
 * the actor spent handling messages (white idle, dark busy). Intervals
 * are merged into at most `maxColumns` columns; each cell's tooltip gives
 * the figure.
 */
import { bottomAxis, type Frame } from '../axes.js';
import { formatSeconds } from '../format.js';
import { linearScale } from '../scale.js';
import { el, text, title } from '../svg.js';
import type { RunSample } from '../../runtime/run-sampler.js';

/** What {@link busyTimelineChart} draws. */
export interface BusyTimelineSpec {
  readonly width: number;
  /** Actor names, by actor index (the order of each sample's `busyMs`). */
  readonly actors: readonly string[];
  readonly samples: readonly RunSample[];
  /** Most columns drawn (default 320). */
  readonly maxColumns?: number;
}

const ROW = 18;

/** The colour of a busy fraction (0 idle .. 1 busy), as `rgb(...)`: white to dark blue. */
export function busyColor(fraction: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  const from = [247, 251, 255];
  const to = [8, 48, 107];
  return `rgb(${from.map((v, i) => Math.round(v + (to[i]! - v) * f)).join(',')})`;
}

/**
 * Busy fraction of each actor in each of at most `max` columns: busy time
 * over elapsed time between the column's first sample and the next
 * column's (clamped to 0..1: the host reads each actor at a slightly
 * different moment).
 */
export function busyFractions(samples: readonly RunSample[], actors: number, max: number): Array<{ t0: number; t1: number; busy: number[] }> {
  const n = samples.length;
  if (n < 2) return [];
  const count = Math.max(1, Math.min(max, n - 1));
  const out: Array<{ t0: number; t1: number; busy: number[] }> = [];
  for (let c = 0; c < count; c++) {
    const a = samples[Math.floor((c * (n - 1)) / count)]!;
    const b = samples[Math.floor(((c + 1) * (n - 1)) / count)]!;
    const dt = b.t - a.t;
    const busy = Array.from({ length: actors }, (_, k) => {
      const used = (b.busyMs[k] ?? 0) - (a.busyMs[k] ?? 0);
      return dt > 0 ? Math.min(1, Math.max(0, used / dt)) : 0;
    });
    out.push({ t0: a.t, t1: b.t, busy });
  }
  return out;
}

/** Render the timeline as an `<svg>` element. */
export function busyTimelineChart(spec: BusyTimelineSpec): string {
  const height = 12 + spec.actors.length * ROW + 46;
  const frame: Frame = { left: 72, top: 12, width: spec.width - 72 - 24, height: spec.actors.length * ROW };
  const cols = busyFractions(spec.samples, spec.actors.length, spec.maxColumns ?? 320);
  const tStart = cols[0]?.t0 ?? 0;
  const tEnd = Math.max(cols.at(-1)?.t1 ?? 1, tStart + 1);
  const x = linearScale([tStart, tEnd], [frame.left, frame.left + frame.width]);
  const cells: string[] = [];
  for (const col of cols) {
    const cx = x.map(col.t0);
    const w = Math.max(0.5, x.map(col.t1) - cx);
    col.busy.forEach((f, k) => {
      cells.push(el('rect', { x: cx, y: frame.top + k * ROW, width: w + 0.3, height: ROW - 2, fill: busyColor(f) },
        title(`${spec.actors[k]}: ${Math.round(f * 100)}% busy, ${formatSeconds(col.t0)}-${formatSeconds(col.t1)}`)));
    });
  }
  const labels = spec.actors.map((name, k) => text(frame.left - 6, frame.top + k * ROW + ROW / 2 + 2, name, { 'text-anchor': 'end', class: 'tick' }));
  const totals = spec.actors.map((_, k) => {
    const first = spec.samples[0]?.busyMs[k] ?? 0;
    const last = spec.samples.at(-1)?.busyMs[k] ?? 0;
    return (last - first) / Math.max(1, tEnd - tStart);
  });
  return el('svg', { class: 'chart busy-timeline', width: spec.width, height, viewBox: `0 0 ${spec.width} ${height}`, role: 'img',
    'data-busy': totals.map((f) => f.toFixed(3)).join(',') },
  el('g', { class: 'cells', 'shape-rendering': 'crispEdges' }, ...cells),
  el('g', {}, ...labels),
  bottomAxis(frame, x, x.ticks(8), formatSeconds, 'time since start'),
  cols.length === 0 ? text(frame.left, frame.top + 14, 'the run was too short to sample twice', { class: 'tick' }) : '');
}
