/**
 * The guest memory map over time: a heat strip (x = time, y = guest address
 * bucket, colour = fraction of the bucket shared in the RamBlockAttributes
 * bitmap), with each sampled conversion drawn as a marker where and when it
 * finished. Carries its grid in `data-*` attributes so the page's script can
 * show the value under the pointer.
 */
import { bottomAxis, leftAxis, type Frame } from '../axes.js';
import { heatColor, TO_PRIVATE, TO_SHARED, ALERT } from '../colors.js';
import { formatBytes, formatSeconds } from '../format.js';
import { linearScale } from '../scale.js';
import { el, num, text, title } from '../svg.js';
import type { RunSeries } from '../../runtime/run-sampler.js';

/** What {@link memoryMapChart} draws. */
export interface MemoryMapSpec {
  readonly width: number;
  readonly height: number;
  readonly series: RunSeries;
  readonly guestMem: number;
  readonly gpaBase: number;
  /** Most time columns drawn; samples are averaged into them (default 320). */
  readonly maxColumns?: number;
  /** Most conversion markers drawn, evenly thinned (default 4000). */
  readonly maxMarkers?: number;
  /** Id of the element the page's script writes the value under the pointer into. */
  readonly readoutId?: string;
  /** Where violations were found (RAMBlock offsets, the map's address axis), drawn on the map. */
  readonly violations?: ReadonlyArray<ViolationSpot>;
}

/** A violation's place on the map: a range of the RAMBlock and what it was. */
export interface ViolationSpot {
  readonly offset: number;
  readonly size: number;
  /** `invariant: message`, the marker's tooltip. */
  readonly label: string;
}

/** Most violation markers drawn (the first ones of the list). */
const MAX_SPOTS = 200;

/** Colour levels of the heat strip (the fraction is quantised to this many steps). */
const LEVELS = 20;

interface Column {
  readonly t0: number;
  readonly t1: number;
  readonly levels: number[];
}

/** Average samples into at most `max` columns, each spanning from its first sample to the next column's. */
function columns(series: RunSeries, max: number): Column[] {
  const samples = series.samples;
  const n = samples.length;
  if (n === 0) return [];
  const count = Math.max(1, Math.min(max, n - 1));
  const out: Column[] = [];
  for (let c = 0; c < count; c++) {
    const from = Math.floor((c * (n - 1)) / count);
    const to = Math.max(from + 1, Math.floor(((c + 1) * (n - 1)) / count));
    const sums = new Array<number>(series.buckets).fill(0);
    for (let i = from; i < to; i++) samples[i]!.shared.forEach((f, j) => { sums[j]! += f; });
    const t1 = n === 1 ? samples[0]!.t + series.intervalMs : samples[Math.min(to, n - 1)]!.t;
    out.push({ t0: samples[from]!.t, t1, levels: sums.map((s) => Math.round((s / (to - from)) * LEVELS)) });
  }
  return out;
}

/** Render the memory map as an `<svg>` element. */
export function memoryMapChart(spec: MemoryMapSpec): string {
  const frame: Frame = { left: 72, top: 12, width: spec.width - 72 - 24, height: spec.height - 12 - 46 };
  const cols = columns(spec.series, spec.maxColumns ?? 320);
  const tEnd = cols.length === 0 ? 1 : cols.at(-1)!.t1;
  const tStart = cols.length === 0 ? 0 : cols[0]!.t0;
  const x = linearScale([tStart, Math.max(tEnd, tStart + 1)], [frame.left, frame.left + frame.width]);
  const addr = linearScale([0, spec.guestMem], [frame.top, frame.top + frame.height]);
  const rowH = frame.height / spec.series.buckets;
  const cells: string[] = [];
  for (const col of cols) {
    const cx = x.map(col.t0);
    const w = Math.max(0.5, x.map(col.t1) - cx);
    // One rectangle per run of equal colour down the column.
    let start = 0;
    for (let j = 1; j <= col.levels.length; j++) {
      if (j < col.levels.length && col.levels[j] === col.levels[start]) continue;
      cells.push(el('rect', { x: cx, y: frame.top + start * rowH, width: w + 0.3, height: (j - start) * rowH + 0.3, fill: heatColor(col.levels[start]! / LEVELS) }));
      start = j;
    }
  }
  const marks = spec.series.conversions;
  const maxMarkers = spec.maxMarkers ?? 4000;
  const stride = Math.max(1, Math.ceil(marks.length / maxMarkers));
  const markers: string[] = [];
  for (let i = 0; i < marks.length; i += stride) {
    const m = marks[i]!;
    const my = addr.map(m.gpa - spec.gpaBase);
    const h = Math.max(1.5, addr.map(m.gpa - spec.gpaBase + m.size) - my);
    markers.push(el('rect', { x: x.map(m.t) - 1, y: my, width: 2, height: h, fill: m.ok ? (m.toPrivate ? TO_PRIVATE : TO_SHARED) : ALERT }));
  }
  // Violations: where (not when: a violation carries no time) — a dashed line across the map at
  // the range's address and a triangle at the right edge pointing at it, each with its tooltip.
  const spots = (spec.violations ?? []).slice(0, MAX_SPOTS).map((v) => {
    const vy = addr.map(v.offset);
    const vh = Math.max(1.5, addr.map(v.offset + Math.max(v.size, 1)) - vy);
    const right = frame.left + frame.width;
    return el('g', { class: 'violation' }, title(v.label),
      el('rect', { x: frame.left, y: vy, width: frame.width, height: vh, fill: 'none', stroke: ALERT, 'stroke-width': 1, 'stroke-dasharray': '4 3' }),
      el('path', { d: `M${num(right + 10)},${num(vy + vh / 2 - 5)} L${num(right + 10)},${num(vy + vh / 2 + 5)} L${num(right + 1)},${num(vy + vh / 2)} Z`, fill: ALERT }));
  });
  const addrTicks = Array.from({ length: 9 }, (_, k) => (spec.guestMem * k) / 8);
  const grid = cols.map((c) => c.levels.map((l) => String.fromCharCode(97 + l)).join('')).join('|');
  return el('svg', {
    class: 'chart memory-map', 'aria-describedby': spec.readoutId, width: spec.width, height: spec.height, viewBox: `0 0 ${spec.width} ${spec.height}`, role: 'img',
    'data-left': frame.left, 'data-top': frame.top, 'data-width': frame.width, 'data-height': frame.height,
    'data-t0': tStart, 'data-t1': Math.max(tEnd, tStart + 1), 'data-mem': spec.guestMem, 'data-base': spec.gpaBase, 'data-levels': LEVELS,
    'data-times': cols.map((c) => num(c.t0)).join(','), 'data-grid': grid,
  },
  el('g', { class: 'heat', 'shape-rendering': 'crispEdges' }, ...cells),
  el('g', { class: 'conversions' }, ...markers),
  el('g', { class: 'violations' }, ...spots),
  leftAxis(frame, addr, addrTicks, (v) => formatBytes(v + spec.gpaBase), 'guest address', false),
  bottomAxis(frame, x, x.ticks(8), formatSeconds, 'time since start'),
  text(frame.left + frame.width, frame.top + frame.height + 32,
    stride > 1 ? `1 in ${stride} of ${marks.length} sampled conversions drawn` : `${marks.length} conversions drawn`, { 'text-anchor': 'end', class: 'tick' }));
}
