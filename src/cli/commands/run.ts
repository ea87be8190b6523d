/** `convsim run`: the protocol on real threads, under a guest workload. */
import { writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { ContainerSpec, RunConfig, WorkloadName } from '../../actors/run-config.js';
import { WORKLOADS } from '../../actors/run-config.js';
import { actorName } from '../../actors/create-actor.js';
import { BACKING_MODES } from '../../core/guest-memory.js';
import { INPLACE_ORDERS } from '../../core/kvm-convert-memory.js';
import { ROLLBACK_POLICIES } from '../../core/ram-block-attributes.js';
import { formatSize, isAligned } from '../../core/units.js';
import { VFIO_BACKENDS, type VfioBackend } from '../../core/vfio/container.js';
import { RunAbortedError, runThreaded, type RunOptions, type RunReport } from '../../runtime/threaded-run.js';
import { GUEST_MEM_ALIGNMENT, MAX_GUEST_MEM, RUN_LIMITS, SHARED_BYTES_PER_BLOCK, workloadFitProblem } from '../../actors/run-limits.js';
import { parseCommandLine } from '../command-line.js';
import { checkWritable } from '../check-writable.js';
import { parseChoice, parseCount, parseSize, parseLimited } from '../option-values.js';
import { showValue } from '../show-value.js';
import { EXIT_OK, EXIT_RUNTIME, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';
import { ProgressLine } from '../progress.js';
import { renderHtmlReport } from '../../report/html-report.js';
import { reportData } from '../../report/report-data.js';

export const RUN_HELP = `convsim run [options]
  Run the protocol on real threads (one worker per vCPU, KVM exit handler,
  RamBlockAttributes owner and VFIO container).
  --vcpus N            vCPU threads (default 4)
  --containers LIST    back-ends, e.g. type1,iommufd (default); type1:LIMIT sets
                       dma_entry_limit (default: raised to fit the guest)
  --guest-mem SIZE     guest RAM, e.g. 1G (default), 64M, 1T
  --mode M             ${BACKING_MODES.join('|')} (default legacy)
  --order O            in-place order ${INPLACE_ORDERS.join('|')} (default explicit)
  --rollback R         ${ROLLBACK_POLICIES.join('|')} (default none)
  --in-flight N        conversions in flight at the KVM exit handler (default 1)
  --conversions N      total conversions (default 20000)
  --seed S             seed of the workloads (default 1)
  --workload W         ${WORKLOADS.join('|')} (default storm)
  --check-every N      conversions between quiescent checks (default 2000)
  --profile            per-phase latency (p50/p90/p99/p99.9/max) and counters
  --trace FILE         write a Chrome trace (open in ui.perfetto.dev or chrome://tracing)
  --trace-limit N      at most N trace events (default 200000; a note says when reached)
  --report FILE.html   write a self-contained HTML report (memory map over time, conversions/s,
                       live IOMMU mappings, latency histograms); samples the run every ~100 ms
  --json               one JSON object on stdout (always includes the profile)
  Exit: 0 no violation, 1 violations, 2 bad options, 3 the run broke (crash, hang, deadlock).`;

/** Parse `run` options into a RunConfig (exported for tests). */
export function parseRunOptions(argv: string[]): {
  config: RunConfig; json: boolean; profile: boolean; trace: { file: string; limit: number } | undefined; report: string | undefined;
} {
  const { values, positionals } = parseCommandLine('run', argv, {
      vcpus: { type: 'string', default: '4' },
      containers: { type: 'string', default: 'type1,iommufd' },
      'guest-mem': { type: 'string', default: '1G' },
      mode: { type: 'string', default: 'legacy' },
      order: { type: 'string', default: 'explicit' },
      rollback: { type: 'string', default: 'none' },
      'in-flight': { type: 'string', default: '1' },
      conversions: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '1' },
      workload: { type: 'string', default: 'storm' },
      'check-every': { type: 'string', default: '2000' },
      json: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      trace: { type: 'string' },
      'trace-limit': { type: 'string', requires: 'trace' },
      report: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`run: unexpected argument ${showValue(positionals[0])} (run takes only options)`);
  const blockSize = 4096;
  const guestMem = parseSize('guest-mem', values['guest-mem']!);
  if (!isAligned(guestMem, GUEST_MEM_ALIGNMENT)) throw new UsageError(`--guest-mem: ${showValue(values['guest-mem'])} must be a multiple of 2M`);
  if (guestMem > MAX_GUEST_MEM) throw new UsageError(`--guest-mem: ${showValue(values['guest-mem'])} is more than ${formatSize(MAX_GUEST_MEM)}, the largest guest convsim runs`);
  const blocks = guestMem / blockSize;
  const needed = blocks * SHARED_BYTES_PER_BLOCK;
  if (needed > totalmem() / 2) {
    throw new UsageError(`--guest-mem: ${formatSize(guestMem)} needs about ${Math.ceil(needed / 2 ** 20)} MiB of shared state, more than half of this machine's ${Math.floor(totalmem() / 2 ** 20)} MiB`);
  }
  const containers = values.containers!.split(',').map((item): ContainerSpec => {
    const parts = item.split(':');
    if (parts.length > 2) throw new UsageError(`--containers: ${showValue(item)} has more than one :LIMIT (write BACKEND or type1:LIMIT)`);
    const [backend = '', limit] = parts;
    const b = parseChoice<VfioBackend>('containers', backend, VFIO_BACKENDS);
    if (limit !== undefined && b !== 'type1') throw new UsageError(`--containers: only type1 takes a limit (${showValue(item)})`);
    return { backend: b, dmaEntryLimit: limit === undefined ? blocks + 1024 : parseLimited('containers', limit, RUN_LIMITS.dmaEntryLimit) };
  });
  if (containers.length > RUN_LIMITS.containers.max) throw new UsageError(`--containers: at most ${RUN_LIMITS.containers.max} containers, got ${containers.length}`);
  const vcpus = parseLimited('vcpus', values.vcpus!, RUN_LIMITS.vcpus);
  const workload = parseChoice<WorkloadName>('workload', values.workload!, WORKLOADS);
  const misfit = workloadFitProblem({ workload, vcpus, guestMem });
  if (misfit !== undefined) throw new UsageError(`--guest-mem: ${misfit}`);
  const config: RunConfig = {
    vcpus,
    containers,
    guestMem,
    blockSize,
    gpaBase: 0,
    mode: parseChoice('mode', values.mode!, BACKING_MODES),
    order: parseChoice('order', values.order!, INPLACE_ORDERS),
    rollback: parseChoice('rollback', values.rollback!, ROLLBACK_POLICIES),
    inFlight: parseLimited('in-flight', values['in-flight']!, RUN_LIMITS.inFlight),
    conversions: parseLimited('conversions', values.conversions!, RUN_LIMITS.conversions),
    seed: parseLimited('seed', values.seed!, RUN_LIMITS.seed),
    workload,
    checkEvery: parseLimited('check-every', values['check-every']!, RUN_LIMITS.checkEvery),
    maxMemslots: 512,
    registrationOrder: 'serialized',
  };
  const trace = values.trace === undefined ? undefined : { file: values.trace, limit: parseCount('trace-limit', values['trace-limit'] ?? '200000', 100, 1e8) };
  return { config, json: values.json!, profile: values.profile!, trace, report: values.report };
}

/**
 * Test hook: `CONVSIM_INJECT_FAULT=ACTOR:HOW:AFTER` (e.g. `c0:throw:200`)
 * makes one actor fail after AFTER messages, to exercise crash, hang and
 * deadlock handling end to end. HOW is throw, exit, hang or mute.
 */
export function injectedFault(config: RunConfig, spec = process.env['CONVSIM_INJECT_FAULT']): RunOptions['crash'] {
  if (spec === undefined || spec === '') return undefined;
  const parts = spec.split(':');
  if (parts.length !== 3) throw new UsageError(`CONVSIM_INJECT_FAULT: ${showValue(spec)} must be ACTOR:HOW:AFTER (e.g. c0:throw:300)`);
  const [actor = '', how = '', after = ''] = parts;
  const actors = actorNames(config);
  if (!actors.includes(actor)) throw new UsageError(`CONVSIM_INJECT_FAULT: no actor ${showValue(actor)} in this run (actors: ${actors.join(', ')})`);
  const hows = ['throw', 'exit', 'hang', 'mute'] as const;
  return { actor, how: parseChoice('CONVSIM_INJECT_FAULT', how, hows), after: parseCount('CONVSIM_INJECT_FAULT', after, 0) };
}

/** The actors of a run, by the names faults and reports use. */
function actorNames(config: RunConfig): string[] {
  return [actorName('kvm-exit', 0), actorName('ram-block-attributes', 0),
    ...config.containers.map((_, i) => actorName('vfio-container', i)), ...Array.from({ length: config.vcpus }, (_, i) => actorName('vcpu', i))];
}

export async function runCommand(argv: string[]): Promise<number> {
  const { config, json, profile, trace, report } = parseRunOptions(argv);
  const crash = injectedFault(config);
  if (trace !== undefined) checkWritable('trace', trace.file);
  if (report !== undefined) checkWritable('report', report);
  const progress = !json && process.stderr.isTTY ? new ProgressLine(config.conversions) : undefined;
  let result: RunReport;
  try {
    result = await runThreaded(config, {
      ...(progress === undefined ? {} : { onProgress: (n: number, violations: number) => progress.update(n, violations) }),
      ...(crash === undefined ? {} : { crash }),
      ...(trace === undefined ? {} : { traceLimit: trace.limit }),
      ...(report === undefined ? {} : { sample: { intervalMs: 100 } }),
    });
  } catch (error) {
    progress?.clear();
    if (error instanceof RunAbortedError) {
      process.stderr.write(`convsim run: ${error.message}\n`);
      return EXIT_RUNTIME;
    }
    throw error;
  }
  progress?.clear();
  if (trace !== undefined && result.trace !== undefined) {
    writeFileSync(trace.file, JSON.stringify(result.trace));
    const note = result.trace.otherData['note'];
    if (typeof note === 'string') process.stderr.write(`convsim run: ${note}\n`);
  }
  if (report !== undefined) writeFileSync(report, renderHtmlReport(reportData(config, result)));
  const { trace: _trace, series: _series, histograms: _histograms, ...printable } = result;
  result = printable;
  const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  const output = { config, ...result, peakRssMiB };
  if (json) process.stdout.write(`${JSON.stringify(output)}\n`);
  else {
    process.stdout.write(summary(config, result, peakRssMiB));
    if (profile) process.stdout.write(profileTable(result));
  }
  return result.violations.length > 0 ? EXIT_VIOLATIONS : EXIT_OK;
}

function summary(config: RunConfig, r: RunReport, peakRssMiB: number): string {
  const lines = [
    `convsim run: ${config.workload}, ${config.vcpus} vCPUs, ${config.containers.map((c) => c.backend).join('+')}, ` +
      `${formatSize(config.guestMem)} guest, ${config.mode}${config.mode === 'inplace' ? ` (${config.order})` : ''}, ` +
      `rollback ${config.rollback}, ${config.inFlight} in flight, seed ${config.seed}`,
    `actors:       ${r.actors.map((a) => `${a.id}@t${a.threadId}`).join(' ')}`,
    `conversions:  ${r.conversions} in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.conversionsPerSec.toFixed(0)}/s), ${r.quiescentChecks} quiescent checks`,
    `DMA:          ${r.dmaMaps} maps, ${r.dmaUnmaps} unmaps; device accesses ok ${r.dmaAccesses.ok}, fault ${r.dmaAccesses.fault}, ` +
      `to-private ${r.dmaAccesses['dma-to-private']}, to-stale ${r.dmaAccesses['dma-to-stale']}`,
    `VM:           ${r.vmStopped ? `stopped: ${r.stopReason ?? 'conversion failed'}` : 'running'}; peak RSS ${peakRssMiB} MiB`,
    `violations:   ${r.violations.length === 0 ? 'none' : r.violations.length}`,
    ...r.violations.slice(0, 10).map((v) => `  ${v.invariant}: ${v.message}`),
  ];
  if (r.violations.length > 10) lines.push(`  ... ${r.violations.length - 10} more (see --json)`);
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
  return ['', 'latency (us, exit to resume and its phases):', ...lines.map((l) => `  ${l}`), '', 'counters:', ...counters, ''].join('\n');
}
