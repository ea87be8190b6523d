/** A multi-series line chart over time, with optional horizontal reference lines and event markers. */
import { bottomAxis, leftAxis, type Frame } from '../axes.js';
import { linearScale } from '../scale.js';
import { el, num, text, title } from '../svg.js';

/** One line. */
export interface LineSeries {
  readonly name: string;
  readonly color: string;
  /** `[x, y]`, x ascending. */
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly dashed?: boolean;
  /** Fill the area under the line. */
  readonly area?: boolean;
  /** Stroke width (default 1.8); wider lines drawn first stay visible under ones that coincide. */
  readonly width?: number;
}

/** A horizontal line at a value (a limit, a mean). */
export interface ReferenceLine {
  readonly label: string;
  readonly value: number;
  readonly color: string;
}

/** A vertical tick at the top of the plot (e.g. a violation found). */
export interface EventMarker {
  readonly x: number;
  readonly label: string;
  readonly color: string;
}

/** What {@link lineChart} draws. */
export interface LineChartSpec {
  readonly width: number;
  readonly height: number;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xFormat: (x: number) => string;
  readonly yFormat: (y: number) => string;
  readonly series: readonly LineSeries[];
  readonly references?: readonly ReferenceLine[];
  readonly markers?: readonly EventMarker[];
  /** Class of the root `<svg>` (tests and scripts find charts by it). */
  readonly className: string;
}

/** Render the chart as an `<svg>` element. */
export function lineChart(spec: LineChartSpec): string {
  const frame: Frame = { left: 72, top: 34, width: spec.width - 72 - 24, height: spec.height - 34 - 46 };
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [...spec.series.flatMap((s) => s.points.map((p) => p[1])), ...(spec.references ?? []).map((r) => r.value)];
  const x0 = xs.length === 0 ? 0 : Math.min(...xs);
  const x1 = xs.length === 0 ? 1 : Math.max(...xs, x0 + 1);
  const y1 = Math.max(1, ...ys) * 1.08;
  // Below zero only when a value is (a difference of two counts).
  const y0 = Math.min(0, ...ys) * 1.08;
  const x = linearScale([x0, x1], [frame.left, frame.left + frame.width]);
  const y = linearScale([y0, y1], [frame.top + frame.height, frame.top]);
  const parts = [
    leftAxis(frame, y, y.ticks(5), spec.yFormat, spec.yLabel),
    bottomAxis(frame, x, x.ticks(8), spec.xFormat, spec.xLabel),
  ];
  for (const s of spec.series) {
    if (s.points.length === 0) continue;
    const path = s.points.map((p) => `${num(x.map(p[0]))},${num(y.map(p[1]))}`).join(' ');
    if (s.area === true) {
      const base = num(y.map(0));
      parts.push(el('polygon', { points: `${num(x.map(s.points[0]![0]))},${base} ${path} ${num(x.map(s.points.at(-1)![0]))},${base}`, fill: s.color, opacity: 0.15 }));
    }
    parts.push(el('polyline', { points: path, fill: 'none', stroke: s.color, 'stroke-width': s.width ?? 1.8, 'stroke-linejoin': 'round', 'stroke-dasharray': s.dashed === true ? '5 4' : undefined },
      title(s.name)));
  }
  for (const r of spec.references ?? []) {
    const ry = y.map(r.value);
    parts.push(el('line', { x1: frame.left, y1: ry, x2: frame.left + frame.width, y2: ry, stroke: r.color, 'stroke-width': 1.5, 'stroke-dasharray': '8 4', class: 'reference' }, title(r.label)));
    parts.push(text(frame.left + frame.width - 4, ry - 4, r.label, { 'text-anchor': 'end', class: 'tick', fill: r.color }));
  }
  for (const m of spec.markers ?? []) {
    const mx = x.map(m.x);
    parts.push(el('path', { d: `M${num(mx - 4)},${frame.top - 8} L${num(mx + 4)},${frame.top - 8} L${num(mx)},${frame.top} Z`, fill: m.color, class: 'marker' }, title(m.label)));
  }
  parts.push(legend(spec, frame));
  return el('svg', { class: `chart ${spec.className}`, width: spec.width, height: spec.height, viewBox: `0 0 ${spec.width} ${spec.height}`, role: 'img' }, ...parts);
}

function legend(spec: LineChartSpec, frame: Frame): string {
  const items = spec.series.map((s) => ({ name: s.name, color: s.color, dashed: s.dashed === true }));
  let lx = frame.left;
  const parts: string[] = [];
  for (const item of items) {
    parts.push(el('line', { x1: lx, y1: 12, x2: lx + 18, y2: 12, stroke: item.color, 'stroke-width': 2.5, 'stroke-dasharray': item.dashed ? '5 3' : undefined }));
    parts.push(text(lx + 22, 16, item.name, { class: 'tick' }));
    lx += 30 + item.name.length * 6.5;
  }
  return el('g', { class: 'legend' }, ...parts);
}
