/** `convsim run`: the protocol on real threads, under a guest workload. */
import { availableParallelism, totalmem } from 'node:os';
import type { ContainerSpec, RunConfig, WorkloadName } from '../../actors/run-config.js';
import { WORKLOADS } from '../../actors/run-config.js';
import { actorName } from '../../actors/create-actor.js';
import { BACKING_MODES } from '../../core/guest-memory.js';
import { INPLACE_ORDERS } from '../../core/kvm-convert-memory.js';
import { ROLLBACK_POLICIES } from '../../core/ram-block-attributes.js';
import { formatSize, isAligned } from '../../core/units.js';
import { VFIO_BACKENDS, type VfioBackend } from '../../core/vfio/container.js';
import { RunAbortedError, runThreaded, type RunOptions } from '../../runtime/threaded-run.js';
import { GUEST_MEM_ALIGNMENT, MAX_GUEST_MEM, RUN_LIMITS, SHARED_BYTES_PER_BLOCK, VCPUS_PER_CORE, workloadFitProblem } from '../../actors/run-limits.js';
import { parseCommandLine } from '../command-line.js';
import { checkWritable } from '../check-writable.js';
import { parseChoice, parseCount, parseSize, parseLimited, parseTimeWindow } from '../option-values.js';
import { showValue } from '../show-value.js';
import { EXIT_OK, EXIT_RUNTIME, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';
import { ProgressLine } from '../progress.js';
import { writeRunResults, type RunOutputs } from '../run-results.js';

export const RUN_HELP = `convsim run [options]
  Run the protocol on real threads (one worker per vCPU, KVM exit handler,
  RamBlockAttributes owner and VFIO container).
  --vcpus N            vCPU threads (default 4; at most 64, and 8 per core: ${maxThreadedVcpus()} here)
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
  --trace-limit N      at most N trace events (default 200000); past it each worker keeps
                       its recent events in full and an even sample of older ones (the
                       file and stderr say what was dropped and each track's coverage)
  --trace-window S-E   trace only from S to E seconds after the start, e.g. 2-5 (in full,
                       within --trace-limit)
  --report FILE.html   write a self-contained HTML report (memory map over time, conversions/s,
                       live IOMMU mappings, latency histograms); samples the run every ~100 ms
  --json               one JSON object on stdout (always includes the profile)
  Exit: 0 no violation, 1 violations, 2 bad options, 3 the run broke (crash, hang, deadlock),
  130/143 interrupted (SIGINT/SIGTERM); a broken or interrupted run still writes its summary,
  --json, trace and report of what happened so far, marked as such.`;

/** Parse `run` options into a RunConfig (exported for tests). */
export function parseRunOptions(argv: string[]): {
  config: RunConfig; json: boolean; profile: boolean; report: string | undefined;
  trace: { file: string; limit: number; window: { fromMs: number; toMs: number } | undefined } | undefined;
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
  if (vcpus > maxThreadedVcpus()) {
    throw new UsageError(`--vcpus: ${vcpus} threads would starve on ${availableParallelism()} core(s): at most ${maxThreadedVcpus()} here (${VCPUS_PER_CORE} per core; convsim explore runs any count up to 64 in one thread)`);
  }
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
function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? 143 : 130;
}
