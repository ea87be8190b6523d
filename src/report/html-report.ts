/**
 * The HTML report of a run: one self-contained file (inline CSS, SVG and a
 * small script; nothing fetched) with the guest memory map over time and
 * the conversions and violations on it, conversions per second, live IOMMU
 * mappings per container against type1's entry limit and less the shared
 * pages (one chart per container), each actor's busy/idle timeline, and
 * latency histograms per phase.
 * A pure function: data in, string out.
 */
import { PHASE_ORDER, type PhaseRow } from '../actors/phase-profile.js';
import type { SparseHistogram } from '../core/latency-histogram.js';
import { lineChart, type EventMarker, type LineSeries, type ReferenceLine } from './charts/line-chart.js';
import { latencyHistogramChart } from './charts/latency-histogram.js';
import { memoryMapChart } from './charts/memory-map.js';
import { busyColor, busyTimelineChart } from './charts/busy-timeline.js';
import { ALERT, heatColor, seriesColor, SIZE_CLASS_COLORS, TO_PRIVATE, TO_SHARED } from './colors.js';
import { formatCount, formatNs, formatSeconds } from './format.js';
import type { ReportData } from './report-data.js';
import { REPORT_SCRIPT } from './report-script.js';
import { REPORT_STYLE } from './report-style.js';
import { el, escapeXml } from './svg.js';

const WIDTH = 1100;

/** Render the report as a complete HTML document. */
export function renderHtmlReport(data: ReportData): string {
  const body = [
    el('header', {}, el('h1', {}, escapeXml(data.title)), el('p', { class: 'subtitle' }, escapeXml(data.subtitle)),
      el('p', { class: 'generated' }, escapeXml(`generated ${data.generatedAt} by ${data.provenance}`))),
    summaryCards(data),
    violationList(data),
    section('Guest memory map', 'Each column is a sample of the RamBlockAttributes bitmap (read from shared memory every ~100 ms), ' +
      'each row a slice of guest physical addresses; the colour is the fraction of its pages that are shared. ' +
      'Markers are conversions as the KVM exit handler finished them; red dashed bands with a triangle on the right are where violations were found ' +
      '(their address range; hover for the invariant and message).',
    memoryMapLegend(),
    memoryMapChart({ width: WIDTH, height: 420, series: data.series, guestMem: data.guestMem, gpaBase: data.gpaBase, readoutId: 'memory-map-readout',
      violations: data.violationSpots }),
    el('p', { id: 'memory-map-readout', class: 'readout' }, 'move the pointer over the map')),
    section('Conversions per second', `Finished conversions between consecutive samples (light) and over the last second (dark); dashed: the run's mean. Triangles: a violation was found in that interval.`,
      conversionRateChart(data)),
    section('Live IOMMU mappings per container', 'Mappings each VFIO container holds, sampled; dashed: type1 dma_entry_limit; grey: shared pages in the bitmap.',
      mappingsChart(data)),
    section('Mappings minus shared pages, per container', 'Each container on its own: its live mappings less the shared pages of the bitmap. ' +
      'Zero when it maps exactly what is shared; above zero it maps more (conversions to private not yet unmapped, or stale mappings), below it maps less ' +
      '(conversions to shared not yet mapped, or sections it does not cover).',
    ...mappingsDeltaCharts(data)),
    section('Busy and idle, per actor', 'Each actor\'s thread, one row each: the share of each sampling interval it spent handling messages ' +
      '(white idle, dark blue busy; hover for the figure). Idle time is waiting on, or spinning over, an empty inbox.',
    busyLegend(), busyTimelineChart({ width: WIDTH, actors: data.actors, samples: data.series.samples })),
    section('Latency per phase', 'From the vCPU exit to its resume and each phase on the way, every conversion recorded in log-linear histograms; ' +
      'bars stacked by conversion size; dashed: p50, p99 (red), max.',
    sizeClassLegend(), el('div', { class: 'histograms' }, ...histogramPanels(data)), phaseTable(data.phases)),
    el('footer', {}, escapeXml(samplingNote(data))),
  ];
  return ['<!DOCTYPE html>', el('html', { lang: 'en' },
    el('head', {}, '<meta charset="utf-8">', el('title', {}, escapeXml(`${data.title} — convsim report`)), el('style', {}, REPORT_STYLE)),
    el('body', {}, ...body, el('script', {}, REPORT_SCRIPT))), ''].join('\n');
}

function section(heading: string, description: string, ...content: string[]): string {
  const id = heading.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return el('section', { id }, el('h2', {}, escapeXml(heading)), el('p', { class: 'description' }, escapeXml(description)), ...content);
}

function summaryCards(data: ReportData): string {
  return el('div', { class: 'cards' }, ...data.summary.map(([label, value]) =>
    el('div', { class: `card${label === 'violations' && value !== '0' ? ' bad' : ''}` },
      el('div', { class: 'value' }, escapeXml(value)), el('div', { class: 'name' }, escapeXml(label)))));
}

function violationList(data: ReportData): string {
  if (data.violations.length === 0) return '';
  const shown = data.violations.slice(0, 20).map((v) => el('li', {}, el('b', {}, escapeXml(v.invariant)), ' ', escapeXml(v.message)));
  if (data.violations.length > 20) shown.push(el('li', {}, escapeXml(`... ${data.violations.length - 20} more (see --json)`)));
  return el('section', { class: 'violations' }, el('h2', {}, 'Violations'), el('ul', {}, ...shown));
}

function memoryMapLegend(): string {
  const stops = [0, 0.25, 0.5, 0.75, 1].map((f) => el('stop', { offset: `${f * 100}%`, 'stop-color': heatColor(f) })).join('');
  return el('svg', { class: 'legend-bar', width: 560, height: 22, viewBox: '0 0 560 22' },
    el('defs', {}, el('linearGradient', { id: 'heat-gradient' }, stops)),
    el('text', { x: 0, y: 15, class: 'tick' }, 'private'),
    el('rect', { x: 48, y: 4, width: 160, height: 14, fill: 'url(#heat-gradient)' }),
    el('text', { x: 214, y: 15, class: 'tick' }, 'shared'),
    el('rect', { x: 280, y: 4, width: 4, height: 14, fill: TO_PRIVATE }), el('text', { x: 290, y: 15, class: 'tick' }, 'to private'),
    el('rect', { x: 370, y: 4, width: 4, height: 14, fill: TO_SHARED }), el('text', { x: 380, y: 15, class: 'tick' }, 'to shared'),
    el('rect', { x: 456, y: 4, width: 4, height: 14, fill: ALERT }), el('text', { x: 466, y: 15, class: 'tick' }, 'failed'));
}

function sizeClassLegend(): string {
  const items = Object.entries(SIZE_CLASS_COLORS).flatMap(([cls, color], i) => [
    el('rect', { x: i * 120, y: 4, width: 14, height: 14, fill: color }),
    el('text', { x: i * 120 + 20, y: 15, class: 'tick' }, escapeXml(cls === 'other' ? 'other sizes' : `${cls} conversions`)),
  ]);
  return el('svg', { class: 'legend-bar', width: 380, height: 22, viewBox: '0 0 380 22' }, ...items);
}

function conversionRateChart(data: ReportData): string {
  const samples = data.series.samples;
  const points: Array<[number, number]> = [];
  const markers: EventMarker[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const dt = b.t - a.t;
    if (dt > 0) points.push([b.t, ((b.conversions - a.conversions) / dt) * 1000]);
    if (b.violations > a.violations) markers.push({ x: b.t, label: `${b.violations - a.violations} violation(s) by ${formatSeconds(b.t)}`, color: ALERT });
  }
  const series: LineSeries[] = [
    { name: 'conversions/s (per sample)', color: '#9ecae1', points, area: true, width: 1.2 },
    { name: 'conversions/s (1 s moving mean)', color: seriesColor(0), points: movingMean(samples, 1000), width: 2.2 },
  ];
  const references: ReferenceLine[] = [{ label: `mean ${data.conversionsPerSec.toFixed(0)}/s`, value: data.conversionsPerSec, color: '#555' }];
  return lineChart({ width: WIDTH, height: 260, xLabel: 'time since start', yLabel: 'conversions/s', xFormat: formatSeconds, yFormat: formatCount,
    series, references, markers, className: 'conversion-rate' });
}

/** Conversions per second over a trailing window of `windowMs`, at each sample. */
function movingMean(samples: ReadonlyArray<{ readonly t: number; readonly conversions: number }>, windowMs: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let from = 0;
  for (let i = 1; i < samples.length; i++) {
    const b = samples[i]!;
    while (from < i - 1 && b.t - samples[from + 1]!.t >= windowMs) from++;
    const a = samples[from]!;
    if (b.t > a.t) out.push([b.t, ((b.conversions - a.conversions) / (b.t - a.t)) * 1000]);
  }
  return out;
}

function mappingsChart(data: ReportData): string {
  const samples = data.series.samples;
  const series: LineSeries[] = data.containers.map((c, i) => ({
    name: `${c.name} (${c.backend})`,
    color: seriesColor(i),
    // Containers often hold the same mappings: earlier lines wider, so every one shows.
    width: 1.8 + 2.5 * (data.containers.length - 1 - i),
    points: samples.map((s): [number, number] => [s.t, s.gauges[`live mappings ${c.name}`] ?? 0]),
  }));
  series.push({ name: 'shared pages', color: '#999', dashed: true, points: samples.map((s): [number, number] => [s.t, s.sharedPages]) });
  const references: ReferenceLine[] = data.containers.flatMap((c, i) => (c.dmaEntryLimit === undefined ? []
    : [{ label: `${c.name} dma_entry_limit ${c.dmaEntryLimit}`, value: c.dmaEntryLimit, color: seriesColor(i) }]));
  return lineChart({ width: WIDTH, height: 300, xLabel: 'time since start', yLabel: 'live mappings', xFormat: formatSeconds, yFormat: formatCount,
    series, references, className: 'mappings' });
}

/** One small chart per container: live mappings less shared pages (containers that hold the same mappings stay apart). */
function mappingsDeltaCharts(data: ReportData): string[] {
  const samples = data.series.samples;
  return data.containers.map((c, i) => lineChart({
    width: WIDTH, height: 170, xLabel: 'time since start', yLabel: 'mappings - shared', xFormat: formatSeconds, yFormat: formatCount,
    series: [{ name: `${c.name} (${c.backend}): live mappings - shared pages`, color: seriesColor(i), area: true,
      points: samples.map((s): [number, number] => [s.t, (s.gauges[`live mappings ${c.name}`] ?? 0) - s.sharedPages]) }],
    className: 'mappings-delta',
  }));
}

function busyLegend(): string {
  const stops = [0, 0.5, 1].map((f) => el('stop', { offset: `${f * 100}%`, 'stop-color': busyColor(f) })).join('');
  return el('svg', { class: 'legend-bar', width: 260, height: 22, viewBox: '0 0 260 22' },
    el('defs', {}, el('linearGradient', { id: 'busy-gradient' }, stops)),
    el('text', { x: 0, y: 15, class: 'tick' }, 'idle'),
    el('rect', { x: 32, y: 4, width: 160, height: 14, fill: 'url(#busy-gradient)', stroke: '#ccc' }),
    el('text', { x: 198, y: 15, class: 'tick' }, 'busy'));
}

function histogramPanels(data: ReportData): string[] {
  const byPhase = new Map<string, Record<string, SparseHistogram>>();
  for (const [key, h] of Object.entries(data.histograms)) {
    const [phase = key, cls = 'other'] = key.split('|');
    const entry = byPhase.get(phase) ?? {};
    entry[cls] = h;
    byPhase.set(phase, entry);
  }
  const rank = (p: string): number => (PHASE_ORDER.includes(p) ? PHASE_ORDER.indexOf(p) : PHASE_ORDER.length);
  return [...byPhase.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([phase, byClass]) => latencyHistogramChart({ phase, byClass, width: 540, height: 220 }));
}

function phaseTable(rows: readonly PhaseRow[]): string {
  const head = el('tr', {}, ...['phase', 'size', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max', 'mean'].map((h) => el('th', {}, h)));
  const body = rows.map((r) => el('tr', {}, el('td', {}, escapeXml(r.phase)), el('td', {}, escapeXml(r.sizeClass)), el('td', {}, String(r.count)),
    ...[r.p50, r.p90, r.p99, r.p999, r.max, r.mean].map((v) => el('td', {}, escapeXml(formatNs(v))))));
  return el('table', { class: 'phases' }, el('thead', {}, head), el('tbody', {}, ...body));
}

function samplingNote(data: ReportData): string {
  const s = data.series;
  const lost = s.conversionsLost > 0 ? `, ${s.conversionsLost} overwritten in the KVM exit handler's log before they were read` : '';
  return `${s.samples.length} samples (target interval ${s.intervalMs} ms, ${s.buckets} address buckets of ${s.blocks} pages); ` +
    `${s.conversions.length} of ${s.conversionsSeen} conversions kept for the map${lost}.`;
}
