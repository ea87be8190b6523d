/** What the HTML report shows, gathered from a run's configuration and report. */
import { describeProtocol } from '../core/protocol-policy.js';
import type { PhaseHistograms, PhaseRow } from '../actors/phase-profile.js';
import type { RunConfig } from '../actors/run-config.js';
import type { RunReport } from '../runtime/threaded-run.js';
import type { RunSeries } from '../runtime/run-sampler.js';
import { formatBytes } from './format.js';
import { groupViolations } from '../core/violation-groups.js';
import type { Violation } from '../core/invariants.js';
import type { ViolationSpot } from './charts/memory-map.js';

/** A VFIO container of the run. */
export interface ReportContainer {
  /** Actor name, e.g. `c0`; the gauge is `live mappings <name>`. */
  readonly name: string;
  readonly backend: string;
  /** type1's `dma_entry_limit`; absent for iommufd. */
  readonly dmaEntryLimit?: number;
}

/** Everything the HTML report is made from (plain data). */
export interface ReportData {
  readonly title: string;
  /** One line describing the configuration. */
  readonly subtitle: string;
  /** When the report was written (ISO 8601). */
  readonly generatedAt: string;
  /** What made it: convsim's version, Node, the machine and the command line (one line). */
  readonly provenance: string;
  /** Headline figures, label and value. */
  readonly summary: ReadonlyArray<readonly [string, string]>;
  readonly violations: ReadonlyArray<{ readonly invariant: string; readonly message: string }>;
  readonly guestMem: number;
  readonly gpaBase: number;
  readonly containers: readonly ReportContainer[];
  readonly phases: readonly PhaseRow[];
  readonly histograms: PhaseHistograms;
  readonly series: RunSeries;
  /** Mean conversions per second over the run. */
  readonly conversionsPerSec: number;
  /** Actor names by actor index (the order of each sample's `busyMs`). */
  readonly actors: readonly string[];
  /** Where violations were found, for the memory map (distinct ranges, in the order found per actor). */
  readonly violationSpots: readonly ViolationSpot[];
}

/** Most distinct violation ranges kept for the memory map. */
const MAX_SPOTS = 200;

/**
 * Where each violation is on the RAMBlock (its offset, or its IOVA when it
 * has no offset: a container's finding), distinct ranges only.
 */
export function violationSpots(violations: readonly Violation[], blockSize: number): ViolationSpot[] {
  const seen = new Set<string>();
  const spots: ViolationSpot[] = [];
  for (const v of violations) {
    const offset = v.offset ?? v.iova;
    if (offset === undefined) continue;
    const size = v.size ?? blockSize;
    const key = `${v.invariant}:${v.container ?? ''}@${offset}+${size}`;
    if (seen.has(key)) continue;
    seen.add(key);
    spots.push({ offset, size, label: `${v.invariant}${v.container === undefined ? '' : ` (${v.container})`}: ${v.message}` });
    if (spots.length >= MAX_SPOTS) break;
  }
  return spots;
}

/**
 * Gather the report's data from a run made with `sample` set.
 * @throws Error when the run was not sampled.
 */
export function reportData(config: RunConfig, report: RunReport, generatedAt = new Date(), provenance = 'convsim', status = ''): ReportData {
  if (report.series === undefined || report.histograms === undefined) throw new Error('the run was not sampled (RunOptions.sample)');
  const containers = config.containers.map((c, i): ReportContainer => (c.backend === 'type1'
    ? { name: `c${i}`, backend: c.backend, dmaEntryLimit: c.dmaEntryLimit }
    : { name: `c${i}`, backend: c.backend }));
  const a = report.dmaAccesses;
  return {
    title: `convsim run: ${config.workload}${status === '' ? '' : ` (${status})`}`,
    subtitle: `${config.vcpus} vCPUs, ${config.containers.map((c) => c.backend).join(' + ')}, ${formatBytes(config.guestMem)} guest, ` +
      `${config.mode}${config.mode === 'inplace' ? ` (${config.order})` : ''}, rollback ${config.rollback}, ${config.inFlight} in flight, protocol ${describeProtocol(config.protocol)}, seed ${config.seed}`,
    generatedAt: generatedAt.toISOString(),
    provenance,
    summary: [
      ['conversions', String(report.conversions)],
      ['conversions/s', report.conversionsPerSec.toFixed(0)],
      ['elapsed', `${(report.elapsedMs / 1000).toFixed(2)} s`],
      ['violations', String(report.violations.length)],
      ['DMA maps / unmaps', `${report.dmaMaps} / ${report.dmaUnmaps}`],
      ['device accesses', `ok ${a.ok}, fault ${a.fault}, to-private ${a['dma-to-private']}, to-stale ${a['dma-to-stale']}`],
      ['VM', report.vmStopped ? `stopped: ${report.stopReason ?? 'conversion failed'}` : 'running'],
      ['quiescent checks', String(report.quiescentChecks)],
    ],
    // Grouped by invariant, with counts and the first occurrence (4,000 of one kind are one line).
    violations: groupViolations(report.violations).map((g) => ({ invariant: `${g.invariant} x${g.count}`, message: `first: ${g.first}` })),
    guestMem: config.guestMem,
    gpaBase: config.gpaBase,
    containers,
    phases: report.phases,
    histograms: report.histograms,
    series: report.series,
    conversionsPerSec: report.conversionsPerSec,
    actors: report.actors.map((actor) => actor.id),
    violationSpots: violationSpots(report.violations, config.blockSize),
  };
}
