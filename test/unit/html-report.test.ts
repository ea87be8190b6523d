/** The HTML report as a pure function: charts present, text escaped, sizes bounded. */
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/core/latency-histogram.js';
import { renderHtmlReport } from '../../src/report/html-report.js';
import type { ReportData } from '../../src/report/report-data.js';
import type { RunSample, SampledConversion } from '../../src/runtime/run-sampler.js';
import { niceTicks, logScale } from '../../src/report/scale.js';
import { formatBytes, formatNs } from '../../src/report/format.js';

const MiB = 2 ** 20;

function histogram(values: number[]): ReturnType<LatencyHistogram['toSparse']> {
  const h = new LatencyHistogram();
  for (const v of values) h.record(v);
  return h.toSparse();
}

function data(samples: number, conversions: number): ReportData {
  const s: RunSample[] = Array.from({ length: samples }, (_, i) => ({
    t: i * 100, conversions: i * 10, violations: i > samples / 2 ? 1 : 0, sharedPages: i * 4,
    shared: Array.from({ length: 16 }, (_, j) => ((i + j) % 5) / 4), gauges: { 'live mappings c0': i * 4, 'live mappings c1': i * 3 },
    busyMs: [i * 50, i * 10],
  }));
  const marks: SampledConversion[] = Array.from({ length: conversions }, (_, i) => ({
    t: (i / conversions) * samples * 100, gpa: (i % 32) * 2 * MiB, size: 4096, toPrivate: i % 2 === 0, ok: i !== 3,
  }));
  return {
    title: 'convsim run: storm',
    subtitle: 'test <config>',
    generatedAt: '2026-01-01T00:00:00.000Z',
    provenance: 'convsim 0.1.0 on Node v20.0.0, linux x64; command: convsim run --report r.html',
    summary: [['conversions', '42'], ['violations', '1']],
    violations: [{ invariant: 'disagreement', message: 'bitmap says <shared> & KVM says private' }],
    guestMem: 64 * MiB,
    gpaBase: 0,
    containers: [{ name: 'c0', backend: 'type1', dmaEntryLimit: 17408 }, { name: 'c1', backend: 'iommufd' }],
    phases: [],
    histograms: {
      'map|4K': histogram([3000, 4000, 5000, 120_000]),
      'exit-to-resume|4K': histogram([50_000, 70_000]),
      'exit-to-resume|2M': histogram([900_000]),
    },
    series: { intervalMs: 100, buckets: 16, blocks: 16384, samples: s, conversions: marks, conversionsSeen: conversions, conversionsLost: 0 },
    conversionsPerSec: 100,
    actors: ['kvm', 'rba'],
    violationSpots: [{ offset: 32 * MiB, size: 2 * MiB, label: 'stale-mapping (c1): <mapped> while private' }],
  };
}

describe('renderHtmlReport', () => {
  it('draws every chart, the type1 limit and no iommufd limit, and escapes text', () => {
    const html = renderHtmlReport(data(30, 200));
    for (const cls of ['memory-map', 'conversion-rate', 'mappings']) expect(html).toContain(`class="chart ${cls}"`);
    expect(html.match(/class="chart latency-histogram"/g)).toHaveLength(2);
    // exit-to-resume comes before map (the order phases happen in).
    expect(html.indexOf('data-phase="exit-to-resume"')).toBeLessThan(html.indexOf('data-phase="map"'));
    expect(html).toContain('c0 dma_entry_limit 17408');
    // Who made it: version, Node, machine and command line.
    expect(html).toContain('generated 2026-01-01T00:00:00.000Z by convsim 0.1.0 on Node v20.0.0, linux x64; command: convsim run --report r.html');
    expect(html).not.toContain('c1 dma_entry_limit');
    expect(html).toContain('bitmap says &lt;shared&gt; &amp; KVM says private');
    expect(html).not.toContain('<shared>');
    expect(html).toContain('test &lt;config&gt;');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('draws each container apart (mappings minus shared pages), each actor\'s busy share, and violations on the memory map', () => {
    const html = renderHtmlReport(data(30, 200));
    const deltas = html.match(/<svg class="chart mappings-delta"[\s\S]*?<\/svg>/g) ?? [];
    expect(deltas).toHaveLength(2);
    expect(deltas[0]).toContain('c0 (type1): live mappings - shared pages');
    expect(deltas[1]).toContain('c1 (iommufd): live mappings - shared pages');
    // c1 holds 3 mappings per 4 shared pages: its line goes below zero, and the axis with it.
    expect(deltas[1]).toMatch(/>-\d/);
    const busy = /<svg class="chart busy-timeline"[^>]*data-busy="([^"]+)"/.exec(html);
    // kvm is busy 50 ms of every 100, rba 10.
    expect(busy?.[1]).toBe('0.500,0.100');
    expect(html).toContain('kvm: 50% busy');
    const map = /<svg class="chart memory-map"[\s\S]*?<\/svg>/.exec(html)![0];
    const spots = /<g class="violations">([\s\S]*?)<\/g><g/.exec(map)?.[1] ?? '';
    expect(spots).toContain('stale-mapping (c1): &lt;mapped&gt; while private');
    // At half of a 64 MiB map: the plot is 420 - 12 - 46 = 362 px tall from y = 12, so y = 12 + 181.
    expect(spots).toMatch(/<rect x="72" y="193"/);
  });

  it('stays bounded on long runs: at most 320 columns and 4000 conversion markers', () => {
    const html = renderHtmlReport(data(1500, 20000));
    const map = /<svg class="chart memory-map"[\s\S]*?<\/svg>/.exec(html)![0];
    const heat = /<g class="heat"[^>]*>([\s\S]*?)<\/g>/.exec(map)![1]!;
    expect((heat.match(/<rect /g) ?? []).length).toBeLessThanOrEqual(320 * 16);
    const markers = /<g class="conversions">([\s\S]*?)<\/g>/.exec(map)![1]!;
    expect((markers.match(/<rect /g) ?? []).length).toBeLessThanOrEqual(4000);
    expect(map).toContain('1 in 5 of 20000 sampled conversions drawn');
    expect(html.length).toBeLessThan(3_000_000);
  });

  it('copes with a run too short to sample twice', () => {
    const html = renderHtmlReport(data(1, 0));
    expect(html).toContain('class="chart memory-map"');
    expect(html).not.toContain('NaN');
  });
});

describe('report helpers', () => {
  it('niceTicks gives round steps inside the range', () => {
    expect(niceTicks(0, 1000, 5)).toEqual([0, 200, 400, 600, 800, 1000]);
    expect(niceTicks(0, 0.9, 4)).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
  });

  it('logScale maps decades evenly and ticks inside its domain', () => {
    const s = logScale([10, 1000], [0, 200]);
    expect(s.map(100)).toBeCloseTo(100);
    expect(s.ticks(6).every((t) => t >= 10 && t <= 1000)).toBe(true);
  });

  it('formats sizes and durations', () => {
    expect([formatBytes(0), formatBytes(4096), formatBytes(3 * MiB / 2), formatBytes(2 ** 40)]).toEqual(['0', '4K', '1.5M', '1T']);
    expect([formatNs(850), formatNs(12_300), formatNs(4_500_000), formatNs(1.2e9)]).toEqual(['850 ns', '12.3 µs', '4.5 ms', '1.20 s']);
  });
});
