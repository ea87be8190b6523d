/** `convsim run`: the protocol on real threads, under a guest workload. */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { RunConfig, WorkloadName } from '../../actors/run-config.js';
import { SELFTEST_EXPECTS, WORKLOADS } from '../../actors/run-config.js';
import { BACKING_MODES } from '../../core/guest-memory.js';
import { INPLACE_ORDERS } from '../../core/kvm-convert-memory.js';
import { SHARED_BACKINGS } from '../../core/shared-backing.js';
import { isFatal } from '../../core/qemu-outcome.js';
import { PLATFORMS } from '../../actors/vcpu/conversion-exits.js';
import { ROLLBACK_POLICIES } from '../../core/ram-block-attributes.js';
import { formatSize } from '../../core/units.js';
import { RunAbortedError, runThreaded, type RunOptions, type RunReport } from '../../runtime/threaded-run.js';
import { parseChoice, parseCount } from '../option-values.js';
import { checkWorkloadFits, parseContainers, parseFaults, parseGuestMem, REGISTRATION_ORDERS } from '../machine-options.js';
import { LAYOUTS, type LayoutName } from '../../core/machine-layout.js';
import { withLayout } from '../../explore/machine.js';
import { EXIT_OK, EXIT_REFUSED, EXIT_RUNTIME, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';
import { describeAutoLimit, refusedAtStartup, withLayoutAutoLimits } from '../../actors/device-realize.js';
import { describeEstimate, KVM_X86_MAX_MEMSLOTS } from '../../core/vfio/dma-mapping-estimate.js';
import { ProgressLine } from '../progress.js';
import { renderHtmlReport } from '../../report/html-report.js';
import { reportData } from '../../report/report-data.js';

export const RUN_HELP = `convsim run [options]
  Run the protocol on real threads (one worker per vCPU, KVM exit handler,
  RamBlockAttributes owner and VFIO container).
  --vcpus N            vCPU threads (default 4)
  --containers LIST    back-ends (default type1:auto,iommufd). type1 has the kernel's
                       default dma_entry_limit 65535, type1:N sets it, type1:auto
                       raises it to the smallest limit QEMU's mapping estimate accepts
  --memslots N         kvm_get_max_memslots() for that estimate (default 32764, x86 KVM;
                       QEMU without KVM uses 512)
  --guest-mem SIZE     guest RAM, e.g. 1G (default), 64M, 1T
  --mode M             ${BACKING_MODES.join('|')} (default legacy)
  --shared-backing B   ${SHARED_BACKINGS.join('|')} (default anonymous): hugetlb shared pages are not
                       discarded on a conversion to private (QEMU's kvm_convert_memory)
  --order O            in-place order ${INPLACE_ORDERS.join('|')} (default explicit)
  --rollback R         ${ROLLBACK_POLICIES.join('|')} (default none)
  --platform P         ${PLATFORMS.join('|')}: how conversions exit (default tdx; sw-protected
                       for --workload selftest): TDX MapGPA 2 MiB pieces with KVM's RETRY,
                       SNP page-state-change lists, one KVM_HC_MAP_GPA_RANGE exit
  --in-flight N        conversions in flight at the KVM exit handler (default 1)
  --registration R     ${REGISTRATION_ORDERS.join('|')} (default serialized): whether listener
                       (un)registration may interleave with state changes
  --layout L           ${LAYOUTS.join('|')} (default x86): x86 = ram-below-4g and ram-above-4g,
                       one VFIO listener each; flat = one section at GPA 0; random = seeded
                       sections with holes and varied GPA/IOVA offsets
  --faults RATE        seeded fault injection, each kernel call fails with probability RATE
  --fault-kinds LIST   map,unmap,attributes,discard (default map,attributes,discard)
  --hotplug            hot-unplug and plug the devices again while the guest runs
  --conversions N      total conversions (default 20000)
  --seed S             seed of the workloads (default 1)
  --workload W         ${WORKLOADS.join('|')} (default storm)
  --selftest-expect E  ${SELFTEST_EXPECTS.join('|')} (default qemu): the selftest's expectations, or QEMU's
                       (QEMU frees the shared page on a conversion to private; kvm runs the host as
                       the Linux selftest's own, which never does)
  --check-every N      conversions between quiescent checks (default 2000)
  --profile            per-phase latency (p50/p90/p99/p99.9/max) and counters
  --trace FILE         write a Chrome trace (open in ui.perfetto.dev or chrome://tracing)
  --trace-limit N      at most N trace events (default 200000; a note says when reached)
  --report FILE.html   write a self-contained HTML report (memory map over time, conversions/s,
                       live IOMMU mappings, latency histograms); samples the run every ~100 ms
  --json               one JSON object on stdout (always includes the profile)
  Exit: 0 no violation, 1 violations, 2 bad options, 3 the run broke (crash, hang, deadlock),
        4 QEMU would not run on: it refuses a device at start-up (realize-failed; one line says why;
          nothing ran), or exits or aborts during the run (qemu-exit, qemu-abort: the summary's outcome).`;

/** Parse `run` options into a RunConfig (exported for tests). */
export function parseRunOptions(argv: string[]): {
  config: RunConfig; json: boolean; profile: boolean; trace: { file: string; limit: number } | undefined; report: string | undefined;
} {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      vcpus: { type: 'string', default: '4' },
      containers: { type: 'string', default: 'type1:auto,iommufd' },
      memslots: { type: 'string', default: String(KVM_X86_MAX_MEMSLOTS) },
      'guest-mem': { type: 'string', default: '1G' },
      mode: { type: 'string', default: 'legacy' },
      'shared-backing': { type: 'string', default: 'anonymous' },
      order: { type: 'string', default: 'explicit' },
      rollback: { type: 'string', default: 'none' },
      'in-flight': { type: 'string', default: '1' },
      registration: { type: 'string', default: 'serialized' },
      layout: { type: 'string', default: 'x86' },
      faults: { type: 'string' },
      'fault-kinds': { type: 'string' },
      hotplug: { type: 'boolean', default: false },
      platform: { type: 'string' },
      conversions: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '1' },
      workload: { type: 'string', default: 'storm' },
      'check-every': { type: 'string', default: '2000' },
      'selftest-expect': { type: 'string', default: 'qemu' },
      json: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      trace: { type: 'string' },
      'trace-limit': { type: 'string', default: '200000' },
      report: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`run: unexpected argument ${JSON.stringify(positionals[0])}`);
  const blockSize = 4096;
  const guestMem = parseGuestMem(values['guest-mem']!);
  const maxMemslots = parseCount('memslots', values.memslots!, 1, 32767);
  const containers = parseContainers(values.containers!, { guestMem, gpaBase: 0, blockSize, maxMemslots });
  const vcpus = parseCount('vcpus', values.vcpus!, 1, 64);
  const workload = parseChoice<WorkloadName>('workload', values.workload!, WORKLOADS);
  checkWorkloadFits(workload, vcpus, guestMem);
  const faults = parseFaults(values.faults, values['fault-kinds']);
  const layout = parseChoice<LayoutName>('layout', values.layout!, LAYOUTS);
  const base: RunConfig = {
    vcpus,
    containers,
    guestMem,
    blockSize,
    gpaBase: 0,
    mode: parseChoice('mode', values.mode!, BACKING_MODES),
    order: parseChoice('order', values.order!, INPLACE_ORDERS),
    rollback: parseChoice('rollback', values.rollback!, ROLLBACK_POLICIES),
    inFlight: parseCount('in-flight', values['in-flight']!, 1, 1024),
    conversions: parseCount('conversions', values.conversions!, 1, 1e9),
    seed: parseCount('seed', values.seed!, 0, 2 ** 31 - 1),
    workload,
    checkEvery: parseCount('check-every', values['check-every']!, 1),
    maxMemslots,
    registrationOrder: parseChoice('registration', values.registration!, REGISTRATION_ORDERS),
    ...(faults === undefined || faults.rate === 0 ? {} : { faults }),
    ...(values.hotplug === true ? { hotplug: true } : {}),
    sharedBacking: parseChoice('shared-backing', values['shared-backing']!, SHARED_BACKINGS),
    selftestExpect: parseChoice('selftest-expect', values['selftest-expect']!, SELFTEST_EXPECTS),
    // The Linux selftest runs as a KVM_X86_SW_PROTECTED_VM.
    platform: values.platform === undefined ? (workload === 'selftest' ? 'sw-protected' : 'tdx') : parseChoice('platform', values.platform, PLATFORMS),
  };
  const config = withLayoutAutoLimits(withLayout(base, layout, base.seed));
  const trace = values.trace === undefined ? undefined : { file: values.trace, limit: parseCount('trace-limit', values['trace-limit']!, 100) };
  if (values.report === '') throw new UsageError('--report: needs a file name');
  return { config, json: values.json!, profile: values.profile!, trace, report: values.report };
}


/**
 * Test hook: `CONVSIM_INJECT_FAULT=ACTOR:HOW:AFTER` (e.g. `c0:throw:200`)
 * makes one actor fail after AFTER messages, to exercise crash, hang and
 * deadlock handling end to end. HOW is throw, exit, hang or mute.
 */
function injectedFault(): RunOptions['crash'] {
  const spec = process.env['CONVSIM_INJECT_FAULT'];
  if (spec === undefined || spec === '') return undefined;
  const [actor = '', how = '', after = ''] = spec.split(':');
  const hows = ['throw', 'exit', 'hang', 'mute'] as const;
  return { actor, how: parseChoice('CONVSIM_INJECT_FAULT', how, hows), after: parseCount('CONVSIM_INJECT_FAULT', after, 0) };
}

export async function runCommand(argv: string[]): Promise<number> {
  const { config, json, profile, trace, report } = parseRunOptions(argv);
  const refused = refusedAtStartup(config);
  if (refused !== undefined) {
    // QEMU fails device realize: the VM never starts, no conversion runs.
    const line = describeEstimate(`c${refused.index}`, refused.estimate);
    if (json) process.stdout.write(`${JSON.stringify({ config, outcome: 'realize-failed', refused: { container: `c${refused.index}`, ...refused.estimate }, message: line })}\n`);
    else process.stdout.write(`convsim run: realize-failed: ${line}\n`);
    return EXIT_REFUSED;
  }
  const progress = !json && process.stderr.isTTY ? new ProgressLine(config.conversions) : undefined;
  const crash = injectedFault();
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
  const output = { config, ...result, peakRssMiB, ...(config.workload === 'selftest' ? { selftest: { expect: config.selftestExpect ?? 'qemu', cases: selftestByCase(result) } } : {}) };
  if (json) process.stdout.write(`${JSON.stringify(output)}\n`);
  else {
    process.stdout.write(summary(config, result, peakRssMiB));
    if (profile) process.stdout.write(profileTable(result));
  }
  // QEMU exited or aborted during the run (e.g. a hot-plug re-registration's replay failed): the run ended there.
  if (isFatal(result.outcome)) return EXIT_REFUSED;
  return result.violations.length > 0 ? EXIT_VIOLATIONS : EXIT_OK;
}

function summary(config: RunConfig, r: RunReport, peakRssMiB: number): string {
  const lines = [
    `convsim run: ${config.workload}, ${config.vcpus} vCPUs, ${config.containers.map((c) => c.backend).join('+')}, ` +
      `${formatSize(config.guestMem)} guest, ${config.mode}${config.mode === 'inplace' ? ` (${config.order})` : ''}` +
      `${config.sharedBacking === 'hugetlb' ? ', hugetlb shared backing' : ''}, ` +
      `rollback ${config.rollback}, ${config.inFlight} in flight, seed ${config.seed}`,
    ...config.containers.flatMap((c, i) => {
      const note = describeAutoLimit(config, i, c);
      return note === undefined ? [] : [`limits:       ${note}`];
    }),
    `actors:       ${r.actors.map((a) => `${a.id}@t${a.threadId}`).join(' ')}`,
    `exits:        ${config.platform ?? 'tdx'}: ${sumStat(r, 'mapGpaExits')} conversion exits (${sumStat(r, 'mapGpaRetries')} TDX RETRY), ` +
      `${sumStat(r, 'memoryFaultExits')} memory faults`,
    `conversions:  ${r.conversions} in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.conversionsPerSec.toFixed(0)}/s), ${r.quiescentChecks} quiescent checks`,
    `DMA:          ${r.dmaMaps} maps, ${r.dmaUnmaps} unmaps; device accesses ok ${r.dmaAccesses.ok}, fault ${r.dmaAccesses.fault}, ` +
      `to-private ${r.dmaAccesses['dma-to-private']}, to-stale ${r.dmaAccesses['dma-to-stale']}`,
    `VM:           ${r.vmStopped ? `stopped: ${r.stopReason ?? 'conversion failed'}` : 'running'}; peak RSS ${peakRssMiB} MiB`,
    `outcome:      ${r.outcome}${r.fatalMessage === undefined ? '' : ` (${r.fatalMessage}; the run ended there)`}`,
    ...(config.workload === 'selftest' ? selftestLines(config, r) : []),
    `violations:   ${r.violations.length === 0 ? 'none' : r.violations.length}`,
    ...r.violations.slice(0, 10).map((v) => `  ${v.invariant}: ${v.message}`),
  ];
  if (r.violations.length > 10) lines.push(`  ... ${r.violations.length - 10} more (see --json)`);
  return `${lines.join('\n')}\n`;
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
