/** `convsim run`: the protocol on real threads, under a guest workload. */
import { availableParallelism, totalmem } from 'node:os';
import type { RunConfig, WorkloadName } from '../../actors/run-config.js';
import { SELFTEST_EXPECTS, workloadHelp, WORKLOADS } from '../../actors/run-config.js';
import { actorName } from '../../actors/create-actor.js';
import { BACKING_MODES } from '../../core/guest-memory.js';
import { INPLACE_ORDERS } from '../../core/kvm-convert-memory.js';
import { ROLLBACK_POLICIES } from '../../core/ram-block-attributes.js';
import { SHARED_BACKINGS } from '../../core/shared-backing.js';
import { isFatal } from '../../core/qemu-outcome.js';
import { LAYOUTS, type LayoutName } from '../../core/machine-layout.js';
import { PLATFORMS } from '../../actors/vcpu/conversion-exits.js';
import { describeEstimate, KVM_X86_MAX_MEMSLOTS } from '../../core/vfio/dma-mapping-estimate.js';
import { refusedAtStartup, withLayoutAutoLimits } from '../../actors/device-realize.js';
import { withLayout } from '../../explore/machine.js';
import { formatSize, isAligned } from '../../core/units.js';
import { RunAbortedError, runThreaded, type RunOptions } from '../../runtime/threaded-run.js';
import { GUEST_MEM_ALIGNMENT, MAX_GUEST_MEM, RUN_LIMITS, SHARED_BYTES_PER_BLOCK, VCPUS_PER_CORE } from '../../actors/run-limits.js';
import { checkWorkloadFits, parseContainers, parseFaults } from '../machine-options.js';
import { PROTOCOL_HELP, PROTOCOL_OPTIONS, parseProtocolOptions } from '../protocol-options.js';
import { parseCommandLine } from '../command-line.js';
import { checkWritable } from '../check-writable.js';
import { parseChoice, parseCount, parseSize, parseLimited, parseTimeWindow } from '../option-values.js';
import { showValue } from '../show-value.js';
import { EXIT_OK, EXIT_REFUSED, EXIT_RUNTIME, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';
import { ProgressLine } from '../progress.js';
import { writeRunResults, type RunOutputs } from '../run-results.js';

export const RUN_HELP = `convsim run [options]
  Run the protocol on real threads (one worker per vCPU, KVM exit handler,
  RamBlockAttributes owner and VFIO container).
  --vcpus N            vCPU threads (default 4; at most 64, and 8 per core: ${maxThreadedVcpus()} here)
  --containers LIST    back-ends (default type1:auto,iommufd). type1 has the kernel's
                       default dma_entry_limit 65535, type1:N sets it, type1:auto
                       raises it to the smallest limit QEMU's mapping estimate accepts
  --memslots N         kvm_get_max_memslots() for that estimate (default 32764, x86 KVM;
                       QEMU without KVM uses 512)
  --guest-mem SIZE     guest RAM, e.g. 1G (default), 64M, 1T
  --layout L           ${LAYOUTS.join('|')} (default x86): x86 = ram-below-4g and ram-above-4g,
                       one VFIO listener each; flat = one section at GPA 0; random = seeded
                       sections with holes and varied GPA/IOVA offsets
  --mode M             ${BACKING_MODES.join('|')} (default legacy)
  --shared-backing B   ${SHARED_BACKINGS.join('|')} (default anonymous): hugetlb shared pages are not
                       discarded on a conversion to private (QEMU's kvm_convert_memory)
  --order O            in-place order ${INPLACE_ORDERS.join('|')} (default explicit)
  --rollback R         ${ROLLBACK_POLICIES.join('|')} (default none)
  --platform P         ${PLATFORMS.join('|')}: how conversions exit (default tdx; sw-protected
                       for --workload selftest): TDX MapGPA 2 MiB pieces with KVM's RETRY,
                       SNP page-state-change lists, one KVM_HC_MAP_GPA_RANGE exit
  --in-flight N        vCPU threads that may be in kvm_convert_memory at once (default: every
                       vCPU; the conversion lock may allow fewer)
${PROTOCOL_HELP}
  --faults RATE        seeded fault injection, each kernel call fails with probability RATE
  --fault-kinds LIST   map,unmap,attributes,discard (default map,attributes,discard)
  --hotplug            hot-unplug and plug the devices again while the guest runs
  --conversions N      total conversions (default 20000; swiotlb converts its pool once, at
                       most one per 2M of half the guest: the summary says what ran and why)
  --seed S             seed of the workloads (default 1)
  --workload W         the guest (default storm):
${workloadHelp('                         ')}
  --selftest-expect E  ${SELFTEST_EXPECTS.join('|')} (default qemu): the selftest's expectations, or QEMU's
                       (QEMU frees the shared page on a conversion to private; kvm runs the host as
                       the Linux selftest's own, which never does)
  --check-every N      conversions between quiescent checks (default 2000)
  --profile            per-phase latency (p50/p90/p99/p99.9/max) and counters
  --trace FILE         write a Chrome trace (open in ui.perfetto.dev or chrome://tracing)
  --trace-limit N      at most N trace events (default 200000); past it each worker keeps
                       its recent events in full and an even sample of older ones (the
                       file and stderr say what was dropped and each track's coverage)
  --trace-window S-E   trace only from S to E seconds after the start, e.g. 2-5 (in full,
                       within --trace-limit)
  --report FILE.html   write a self-contained HTML report (memory map over time, conversions/s,
                       live IOMMU mappings, latency histograms); samples the run every ~100 ms
  --json               one JSON object on stdout (always includes the profile)
  Exit: 0 no violation, 1 violations, 2 bad options, 3 the run broke (crash, hang, deadlock),
  4 QEMU would not run on: it refuses a device at start-up (realize-failed; one line says why;
  nothing ran), or exits or aborts during the run (qemu-exit, qemu-abort: the summary's outcome),
  130/143 interrupted (SIGINT/SIGTERM); a broken or interrupted run still writes its summary,
  --json, trace and report of what happened so far, marked as such.`;

/** Parse `run` options into a RunConfig (exported for tests). */
export function parseRunOptions(argv: string[]): {
  config: RunConfig; json: boolean; profile: boolean; report: string | undefined;
  trace: { file: string; limit: number; window: { fromMs: number; toMs: number } | undefined } | undefined;
} {
  const { values, positionals } = parseCommandLine('run', argv, {
      vcpus: { type: 'string', default: '4' },
      containers: { type: 'string', default: 'type1:auto,iommufd' },
      memslots: { type: 'string', default: String(KVM_X86_MAX_MEMSLOTS) },
      'guest-mem': { type: 'string', default: '1G' },
      layout: { type: 'string', default: 'x86' },
      mode: { type: 'string', default: 'legacy' },
      'shared-backing': { type: 'string', default: 'anonymous' },
      order: { type: 'string', default: 'explicit' },
      rollback: { type: 'string', default: 'none' },
      platform: { type: 'string' },
      'in-flight': { type: 'string' },
      ...PROTOCOL_OPTIONS,
      faults: { type: 'string' },
      'fault-kinds': { type: 'string', requires: 'faults' },
      hotplug: { type: 'boolean', default: false },
      'selftest-expect': { type: 'string', default: 'qemu' },
      conversions: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '1' },
      workload: { type: 'string', default: 'storm' },
      'check-every': { type: 'string', default: '2000' },
      json: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      trace: { type: 'string' },
      'trace-limit': { type: 'string', requires: 'trace' },
      'trace-window': { type: 'string', requires: 'trace' },
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
  const maxMemslots = parseCount('memslots', values.memslots!, 1, 32767);
  const containers = parseContainers(values.containers!, { guestMem, gpaBase: 0, blockSize, maxMemslots });
  const vcpus = parseLimited('vcpus', values.vcpus!, RUN_LIMITS.vcpus);
  if (vcpus > maxThreadedVcpus()) {
    throw new UsageError(`--vcpus: ${vcpus} threads would starve on ${availableParallelism()} core(s): at most ${maxThreadedVcpus()} here (${VCPUS_PER_CORE} per core; convsim explore runs any count up to 64 in one thread)`);
  }
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
    inFlight: values['in-flight'] === undefined ? vcpus : parseLimited('in-flight', values['in-flight'], RUN_LIMITS.inFlight),
    conversions: parseLimited('conversions', values.conversions!, RUN_LIMITS.conversions),
    seed: parseLimited('seed', values.seed!, RUN_LIMITS.seed),
    workload,
    checkEvery: parseLimited('check-every', values['check-every']!, RUN_LIMITS.checkEvery),
    maxMemslots,
    protocol: parseProtocolOptions(values),
    ...(faults === undefined || faults.rate === 0 ? {} : { faults }),
    ...(values.hotplug === true ? { hotplug: true } : {}),
    sharedBacking: parseChoice('shared-backing', values['shared-backing']!, SHARED_BACKINGS),
    selftestExpect: parseChoice('selftest-expect', values['selftest-expect']!, SELFTEST_EXPECTS),
    // The Linux selftest runs as a KVM_X86_SW_PROTECTED_VM.
    platform: values.platform === undefined ? (workload === 'selftest' ? 'sw-protected' : 'tdx') : parseChoice('platform', values.platform, PLATFORMS),
  };
  const config = withLayoutAutoLimits(withLayout(base, layout, base.seed));
  const trace = values.trace === undefined ? undefined : {
    file: values.trace,
    limit: parseCount('trace-limit', values['trace-limit'] ?? '200000', 100, 1e8),
    window: values['trace-window'] === undefined ? undefined : parseTimeWindow('trace-window', values['trace-window']),
  };
  return { config, json: values.json!, profile: values.profile!, trace, report: values.report };
}

/**
 * Most vCPU threads a threaded run takes on this machine: 64, and at most
 * {@link VCPUS_PER_CORE} per available core. Beyond that every actor waits
 * seconds for a core (64 vCPUs on 2 cores ran at 1 conversion/s and ended in
 * a false hang); `convsim explore` runs any count in one thread.
 */
export function maxThreadedVcpus(cores = availableParallelism()): number {
  return Math.min(RUN_LIMITS.vcpus.max, VCPUS_PER_CORE * Math.max(1, cores));
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
  const refused = refusedAtStartup(config);
  if (refused !== undefined) {
    // QEMU fails device realize: the VM never starts, no conversion runs.
    const line = describeEstimate(`c${refused.index}`, refused.estimate);
    if (json) process.stdout.write(`${JSON.stringify({ config, outcome: 'realize-failed', refused: { container: `c${refused.index}`, ...refused.estimate }, message: line })}\n`);
    else process.stdout.write(`convsim run: realize-failed: ${line}\n`);
    return EXIT_REFUSED;
  }
  if (trace !== undefined) checkWritable('trace', trace.file);
  if (report !== undefined) checkWritable('report', report);
  const outputs: RunOutputs = { json, profile, traceFile: trace?.file, reportFile: report };
  const progress = json ? undefined : new ProgressLine(config.conversions, { label: 'conversions' });
  // Ctrl-C or SIGTERM stops the run and keeps its results; a second one exits at once.
  const interrupt = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled !== undefined) process.exit(signalExitCode(signal));
    signalled = signal;
    interrupt.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runThreaded(config, {
      ...(progress === undefined ? {} : { onProgress: (n: number, violations: number) => progress.update(n, violations) }),
      ...(crash === undefined ? {} : { crash }),
      ...(trace === undefined ? {} : { traceLimit: trace.limit }),
      ...(trace?.window === undefined ? {} : { traceWindow: trace.window }),
      ...(report === undefined ? {} : { sample: { intervalMs: 100 } }),
      signal: interrupt.signal,
    });
    progress?.clear();
    writeRunResults(config, result, outputs, { status: 'complete' });
    // QEMU exited or aborted during the run (e.g. a hot-plug re-registration's replay failed): the run ended there.
    if (isFatal(result.outcome)) return EXIT_REFUSED;
    return result.violations.length > 0 ? EXIT_VIOLATIONS : EXIT_OK;
  } catch (error) {
    progress?.clear();
    if (!(error instanceof RunAbortedError)) throw error;
    process.stderr.write(`convsim run: ${error.message}\n`);
    const end = { status: error.interrupted ? 'interrupted' : 'broken', reason: error.message } as const;
    if (error.partial !== undefined) writeRunResults(config, error.partial, outputs, end);
    else process.stderr.write('convsim run: no actor answered: nothing to keep\n');
    return error.interrupted ? signalExitCode(signalled ?? 'SIGINT') : EXIT_RUNTIME;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The shell's convention: 128 + the signal number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? 143 : 130;
}
