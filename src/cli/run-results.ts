/**
 * What `convsim run` leaves behind, for a finished run and for one that
 * broke or was interrupted alike: the trace file, the HTML report, and the
 * summary (text or `--json`), each saying how the run ended and listing the
 * files written.
 */
import { describeProtocol } from '../core/protocol-policy.js';
import { writeFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, totalmem } from 'node:os';
import { convsimVersion } from './convsim-version.js';
import { layoutOf, type RunConfig } from '../actors/run-config.js';
import { describeAutoLimit } from '../actors/device-realize.js';
import { formatSize } from '../core/units.js';
import { renderHtmlReport } from '../report/html-report.js';
import { reportData } from '../report/report-data.js';
import type { RunReport } from '../runtime/threaded-run.js';
import { groupViolations } from '../core/violation-groups.js';
import { workloadConversionCap } from '../actors/vcpu/workloads.js';

/** Version of the `--json` object's shape; raised when a field changes meaning or goes away. */
export const RUN_JSON_SCHEMA_VERSION = 2;

/** How a run ended. */
export type RunEnd =
  | { readonly status: 'complete' }
  | { readonly status: 'interrupted' | 'broken'; readonly reason: string };

/** Where the results go. */
export interface RunOutputs {
  readonly json: boolean;
  readonly profile: boolean;
  readonly traceFile: string | undefined;
  readonly reportFile: string | undefined;
}

/** A file written, and how to open it. */
interface WrittenFile {
  readonly path: string;
  readonly kind: 'trace' | 'report';
  readonly open: string;
}

const withJsonNote = (note: string | undefined): { conversionsNote?: string } => (note === undefined ? {} : { conversionsNote: note });
const withNote = (note: string | undefined): string => (note === undefined ? '' : ` (${note})`);

/**
 * Why the conversions that ran are not the `--conversions` asked for, in
 * words (undefined when they are): a workload with a bound of its own
 * (`swiotlb` converts its pool once), a run that ended early, or the last
 * guest action of each vCPU going past its share.
 */
export function conversionsNote(config: RunConfig, r: Pick<RunReport, 'conversions' | 'vmStopped' | 'outcome'>, end: RunEnd): string | undefined {
  const asked = config.conversions;
  if (r.conversions === asked) return undefined;
  const cap = workloadConversionCap(config.workload, config.guestMem, config.vcpus);
  const ranShort = r.conversions < asked;
  if (end.status !== 'complete' && ranShort) return `asked for ${asked}: the run was ${end.status} before the end`;
  if (ranShort && (r.vmStopped || r.outcome !== 'running')) return `asked for ${asked}: the run ended early (${r.vmStopped ? 'the VM stopped' : r.outcome})`;
  if (cap !== undefined && asked > cap && ranShort) {
    return `asked for ${asked}: the ${config.workload} guest converts its bounce-buffer pool to shared once, half the guest in 2M chunks, ` +
      `${cap} conversion(s) on this guest, then only DMAs; a larger --guest-mem converts more`;
  }
  if (ranShort) return `asked for ${asked}: the guests' workloads ended before their shares`;
  return `asked for ${asked}: each vCPU stops after the guest action that reaches its share, and one action can take several exits`;
}

/** Write the trace and report files and print the summary. */
export function writeRunResults(config: RunConfig, result: RunReport, outputs: RunOutputs, end: RunEnd): void {
  const files: WrittenFile[] = [];
  if (outputs.traceFile !== undefined && result.trace !== undefined) {
    writeFileSync(outputs.traceFile, JSON.stringify(result.trace));
    files.push({ path: outputs.traceFile, kind: 'trace', open: 'open it in ui.perfetto.dev or chrome://tracing' });
    const note = result.trace.otherData['note'];
    if (typeof note === 'string') process.stderr.write(`convsim run: ${note}\n`);
  }
  if (outputs.reportFile !== undefined && result.series !== undefined) {
    const status = end.status === 'complete' ? '' : `${end.status}: results so far`;
    writeFileSync(outputs.reportFile, renderHtmlReport(reportData(config, result, new Date(), provenance(), status)));
    files.push({ path: outputs.reportFile, kind: 'report', open: 'open it in a web browser' });
  }
  const { trace: _trace, series: _series, histograms: _histograms, ...printable } = result;
  const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  if (outputs.json) {
    const output = {
      schemaVersion: RUN_JSON_SCHEMA_VERSION,
      ...end,
      units: { elapsedMs: 'ms', conversionsPerSec: 'conversions/s', phases: 'ns (p50, p90, p99, p999, max)', peakRssMiB: 'MiB', guestMem: 'bytes' },
      config,
      ...printable,
      ...withJsonNote(conversionsNote(config, printable, end)),
      violationsByInvariant: groupViolations(result.violations),
      ...(config.workload === 'selftest' ? { selftest: { expect: config.selftestExpect ?? 'qemu', cases: selftestByCase(result) } } : {}),
      files: files.map((f) => ({ path: f.path, kind: f.kind })),
      peakRssMiB,
    };
    process.stdout.write(`${JSON.stringify(output)}\n`);
    return;
  }
  process.stdout.write(summary(config, printable, peakRssMiB, end, files));
  if (outputs.profile && end.status === 'complete') process.stdout.write(profileTable(printable));
}

/** convsim's version, Node, the machine and the command line, for the report. */
function provenance(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `convsim ${convsimVersion()} on Node ${process.version}, ${platform()} ${arch()}, ${availableParallelism()} x ${cpu}, ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB; command: convsim ${process.argv.slice(2).join(' ')}`;
}

function summary(config: RunConfig, r: RunReport, peakRssMiB: number, end: RunEnd, files: readonly WrittenFile[]): string {
  const lines: string[] = [];
  if (end.status !== 'complete') {
    lines.push(`RUN ${end.status === 'interrupted' ? 'INTERRUPTED' : 'BROKE'}: ${end.reason}`);
    lines.push(`results so far${r.unanswered !== undefined && r.unanswered.length > 0 ? `, without ${r.unanswered.join(', ')} (did not answer)` : ''}:`);
  }
  lines.push(
    `convsim run: ${config.workload}, ${config.vcpus} vCPUs, ${config.containers.map((c) => c.backend).join('+')}, ` +
      `${formatSize(config.guestMem)} guest (${layoutOf(config).name} layout), ${config.mode}${config.mode === 'inplace' ? ` (${config.order})` : ''}` +
      `${config.sharedBacking === 'hugetlb' ? ', hugetlb shared backing' : ''}, ` +
      `rollback ${config.rollback}, ${config.inFlight} in flight, seed ${config.seed}` +
      `${config.faults === undefined ? '' : `, faults ${config.faults.rate} (${config.faults.kinds.join(',')})`}${config.hotplug === true ? ', hot-plug' : ''}`,
    `protocol:     ${describeProtocol(config.protocol)}: conversion lock ${config.protocol.conversionLock}, bitmap ops ${config.protocol.bitmapOps}, ` +
      `registration ${config.protocol.registration}, listener list ${config.protocol.listenerList}`,
    ...config.containers.flatMap((c, i) => {
      const note = describeAutoLimit(config, i, c);
      return note === undefined ? [] : [`limits:       ${note}`];
    }),
    `actors:       ${r.actors.map((a) => `${a.id}@t${a.threadId}`).join(' ')}`,
    `exits:        ${config.platform ?? 'tdx'}: ${sumStat(r, 'mapGpaExits')} conversion exits (${sumStat(r, 'mapGpaRetries')} TDX RETRY), ` +
      `${sumStat(r, 'memoryFaultExits')} memory faults`,
    `conversions:  ${r.conversions}${withNote(conversionsNote(config, r, end))} in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.conversionsPerSec.toFixed(0)}/s), ${r.quiescentChecks} quiescent checks`,
    `DMA:          ${r.dmaMaps} maps, ${r.dmaUnmaps} unmaps; device accesses ok ${r.dmaAccesses.ok}, fault ${r.dmaAccesses.fault}, ` +
      `to-private ${r.dmaAccesses['dma-to-private']}, to-stale ${r.dmaAccesses['dma-to-stale']}`,
    `devices:      ${Object.values(r.deviceAccesses).reduce((a, b) => a + b, 0)} accesses on their own between messages: ok ${r.deviceAccesses.ok}, ` +
      `IOMMU fault ${r.deviceAccesses.fault}, to-private ${r.deviceAccesses['dma-to-private']}, to-stale ${r.deviceAccesses['dma-to-stale']}, ` +
      `legacy shared page of a block KVM holds private ${r.deviceAccesses['shared-page-of-private-block']}`,
    `VM:           ${r.vmStopped ? `stopped: ${r.stopReason ?? 'conversion failed'}` : 'running'}; peak RSS ${peakRssMiB} MiB`,
    `outcome:      ${r.outcome}${r.fatalMessage === undefined ? '' : ` (${r.fatalMessage}; the run ended there)`}`,
    ...(config.workload === 'selftest' ? selftestLines(config, r) : []),
  );
  const groups = groupViolations(r.violations);
  lines.push(`violations:   ${r.violations.length === 0 ? 'none' : `${r.violations.length} (${groups.length} invariant${groups.length === 1 ? '' : 's'}; convsim invariants explains each)`}`);
  for (const g of groups) lines.push(`  ${g.invariant} x${g.count}, first: ${g.first}`);
  if (files.length > 0) {
    lines.push('files written:');
    for (const f of files) lines.push(`  ${f.path} (${f.kind}: ${f.open})`);
  }
  return `${lines.join('\n')}\n`;
}

const us = (ns: number): string => (ns / 1000 >= 100 ? (ns / 1000).toFixed(0) : (ns / 1000).toFixed(1));

/** The `--profile` table: latency per phase and size class (microseconds), then the counters. */
function profileTable(r: RunReport): string {
  const rows = [['phase', 'size', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'],
    ...r.phases.map((p) => [p.phase, p.sizeClass, String(p.count), us(p.p50), us(p.p90), us(p.p99), us(p.p999), us(p.max)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  const counters = Object.entries(r.stats).map(([actor, stats]) =>
    `  ${actor.padEnd(6)} ${Object.entries(stats).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  return ['', 'latency (µs = microseconds; exit to resume and its phases):', ...lines.map((l) => `  ${l}`), '', 'counters:', ...counters, ''].join('\n');
}

/** The selftest's counters by case, summed over the vCPUs (keys `selftest <case>: <what>`). */
export function selftestByCase(r: Pick<RunReport, 'stats'>): Record<string, Record<string, number>> {
  const cases: Record<string, Record<string, number>> = {};
  for (const [actor, stats] of Object.entries(r.stats)) {
    if (!actor.startsWith('vcpu')) continue;
    for (const [key, n] of Object.entries(stats)) {
      const match = /^selftest (.+): (.+)$/.exec(key);
      if (match === null) continue;
      const row = (cases[match[1]!] ??= {});
      row[match[2]!] = (row[match[2]!] ?? 0) + n;
    }
  }
  return cases;
}

function selftestLines(config: RunConfig, r: RunReport): string[] {
  const cases = selftestByCase(r);
  const lines = [`selftest:     ${config.selftestExpect ?? 'qemu'} expectations, by case (summed over vCPUs):`];
  for (const [name, row] of Object.entries(cases)) {
    lines.push(`  ${name.padEnd(30)} ${Object.entries(row).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  }
  return lines;
}

/** A vCPU counter summed over the vCPUs. */
function sumStat(r: RunReport, counter: string): number {
  return Object.entries(r.stats).filter(([actor]) => actor.startsWith('vcpu')).reduce((n, [, stats]) => n + (stats[counter] ?? 0), 0);
}
