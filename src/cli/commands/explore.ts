/**
 * `convsim explore`: deterministic exploration of schedules on a piscina
 * pool; on a failure, the shrunk story and a replay token.
 */
import { ALL_FIXES_PROTOCOL, describeProtocol } from '../../core/protocol-policy.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine } from '../command-line.js';
import type { WorkloadName } from '../../actors/run-config.js';
import { workloadHelp, WORKLOADS } from '../../actors/run-config.js';
import { BACKING_MODES, type BackingMode } from '../../core/guest-memory.js';
import { INPLACE_ORDERS, type InplaceOrder } from '../../core/kvm-convert-memory.js';
import { actorCount, exploreConfig, runCase } from '../../explore/explore-case.js';
import { createExplorePool, explorePool, type ExploreInput, type PoolRunResult } from '../../explore/explore-pool.js';
import { addCoverage, iterationCase, type IterationResult } from '../../explore/iteration-task.js';
import { coverageLines } from '../../explore/coverage.js';
import { findMutant, MUTANTS } from '../../explore/mutants.js';
import { pctBound, STRATEGIES, type StrategyName } from '../../runtime/deterministic/strategy.js';
import { checkWorkloadFits, MACHINE_HELP, MACHINE_OPTIONS, parseMachineOptions } from '../machine-options.js';
import { PROTOCOL_HELP, PROTOCOL_OPTIONS, parseProtocolOptions, protocolGiven } from '../protocol-options.js';
import type { MachineChoice } from '../../explore/machine.js';
import { MiB } from '../../core/units.js';
import { KVM_X86_MAX_MEMSLOTS } from '../../core/vfio/dma-mapping-estimate.js';
import { parseChoice, parseCount } from '../option-values.js';
import { ProgressLine } from '../progress.js';
import { EXIT_OK, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';
import { shrinkReport, shrinkSummary, shrinkWithProgress, unshrunkReport, type ShrinkReport } from './shrink.js';
import { PLATFORMS, type Platform } from '../../actors/vcpu/conversion-exits.js';
import type { ProtocolPolicy } from '../../core/protocol-policy.js';
import { parseDuration, parseShard } from '../option-values.js';
import type { Shard } from '../../explore/shard.js';
import { exploreSystematic, searchKey } from './explore-systematic.js';
import { shardLabel, shardSeeds } from '../../explore/shard.js';
import {
  DFS_CONVERSIONS, DFS_GUEST_MEM, DFS_HELP, DFS_OPTIONS, dfsMachine, parseDfsOptions, rejectDfsOnly, type DfsOptionValues,
} from '../explore-dfs-options.js';

export const EXPLORE_HELP = `convsim explore [options]
  Explore schedules deterministically: each iteration runs the actors in one
  thread under a seeded scheduler (seed S+i for iteration i), on a piscina
  pool. Stops at the first failure (the lowest failing seed), shrinks it,
  prints the invariant, the replay tokens and the story, and writes the
  token to .convsim/failure-<invariant>-<seed>[-<mutant>][-<order>].token
  in the current directory (the original, unshrunk token next to it).
  --workload W         the guest (default storm):
${workloadHelp('                         ')}
  --strategy S         ${[...STRATEGIES, 'dfs'].join('|')} (default random); dfs explores every
                       schedule of one machine systematically (see "Systematic search" below)
  --depth D            PCT bug depth: D-1 priority change points (default 2)
  --iterations N       schedules to explore (default 10000; not with dfs)
  --seed S             first seed (default 1)
  --mutant M           a bug-zoo entry (list them: convsim mutants)
  --mode M             ${BACKING_MODES.join('|')} (default legacy)
  --order O            in-place order ${INPLACE_ORDERS.join('|')} (default explicit)
  --per-order          in-place ordering verification: explore each of
                       ${INPLACE_ORDERS.join(', ')} and report per order whether
                       inplace-order held (default with --mode inplace and no --order)
  --conversions N      conversions per iteration (default 40)
  --memslots N         kvm_get_max_memslots() for VFIO's mapping estimate (default 32764, x86 KVM)
  --platform P         ${PLATFORMS.join('|')}: conversion exits (default tdx; sw-protected for selftest)
  --vary               (default) each iteration draws the machine options not given
                       from its seed: layout, 1 to 4 vCPUs, 1 to 3 containers of mixed
                       back-ends, rollback policy, fault rate; the token records it
  --no-vary            keep the machine fixed: 64M guest, 2 vCPUs, type1 + iommufd,
                       flat layout, rollback none, no faults (the default with --mutant)
  Machine options (fixed for every iteration when given):
${MACHINE_HELP}
  Protocol (default QEMU as merged; with --mutant, every fix unless given):
${PROTOCOL_HELP}
  --expected-steps K   PCT's k (default: the longest of 8 sample runs)
  --threads T          pool threads (default ${availableParallelism()}, the available parallelism)
  --keep-going         do not stop at the first failure
  --time-budget D      stop cleanly after D (e.g. 90s, 10m, 1h) and report what was covered
  --shard I/N          run only the I-th of N parts (seed ranges; dfs: subtrees), for a CI
                       matrix or a Kubernetes Indexed Job; put them together with convsim merge
  --json               one JSON object on stdout
  Systematic search (--strategy dfs), on one machine whose workload the seed fixes:
${DFS_HELP}
  Ctrl-C stops it: failures found so far are reported (the unshrunk token is
  printed and written before shrinking starts, so Ctrl-C while shrinking,
  which ends it at once, loses nothing).
  Exit: 0 nothing found, 1 a failure was found, 2 bad options, 130/143 interrupted with nothing found.`;

export interface ExploreOptions {
  readonly workload: WorkloadName;
  readonly strategy: StrategyName | 'dfs';
  readonly depth: number;
  readonly iterations: number;
  readonly seed: number;
  readonly mutant: string | undefined;
  readonly mode: BackingMode | undefined;
  readonly order: InplaceOrder | undefined;
  readonly perOrder: boolean;
  readonly conversions: number | undefined;
  /** Machine options given on the command line. */
  readonly machine: MachineChoice;
  readonly vary: boolean;
  readonly maxMemslots: number | undefined;
  readonly platform: Platform | undefined;
  /** The protocol's policies; undefined with a mutant and no protocol option (every fix). */
  readonly protocol?: ProtocolPolicy;
  readonly expectedSteps: number | undefined;
  readonly threads: number;
  readonly keepGoing: boolean;
  readonly json: boolean;
  /** Stop cleanly after this long (ms). */
  readonly timeBudgetMs: number | undefined;
  readonly shard: Shard | undefined;
  /** `--strategy dfs` only. */
  readonly dfs: DfsOptionValues | undefined;
}

const MAX_SEED = 2 ** 31 - 1;

/** Parse `explore` options (exported for tests); every mistake is a one-line UsageError. */
export function parseExploreOptions(argv: string[]): ExploreOptions {
  const { values, positionals } = parseCommandLine('explore', argv, {
      workload: { type: 'string', default: 'storm' },
      strategy: { type: 'string', default: 'random' },
      depth: { type: 'string', default: '2' },
      iterations: { type: 'string', default: '10000' },
      seed: { type: 'string', default: '1' },
      mutant: { type: 'string' },
      mode: { type: 'string' },
      order: { type: 'string' },
      'per-order': { type: 'boolean', default: false },
      conversions: { type: 'string' },
      vary: { type: 'boolean' },
      'no-vary': { type: 'boolean' },
      ...MACHINE_OPTIONS,
      ...PROTOCOL_OPTIONS,
      memslots: { type: 'string' },
      platform: { type: 'string' },
      'expected-steps': { type: 'string' },
      threads: { type: 'string' },
      'keep-going': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'time-budget': { type: 'string' },
      shard: { type: 'string' },
      ...DFS_OPTIONS,
  });
  const strategy = parseChoice('strategy', values.strategy!, [...STRATEGIES, 'dfs'] as const);
  const dfs = strategy === 'dfs' ? parseDfsOptions(values, argv) : undefined;
  if (dfs === undefined) rejectDfsOnly(values);
  if (positionals.length > 0) throw new UsageError(`explore: unexpected argument ${JSON.stringify(positionals[0])}`);
  const mutant = values.mutant === undefined ? undefined : parseChoice('mutant', values.mutant, MUTANTS.map((m) => m.name));
  const mode = values.mode === undefined ? undefined : parseChoice('mode', values.mode, BACKING_MODES);
  const order = values.order === undefined ? undefined : parseChoice('order', values.order, INPLACE_ORDERS);
  const iterations = parseCount('iterations', values.iterations!, 1, 1e9);
  const seed = parseCount('seed', values.seed!, 0, MAX_SEED);
  if (seed + iterations - 1 > MAX_SEED) throw new UsageError(`--seed: seeds ${seed}..${seed + iterations - 1} pass ${MAX_SEED}`);
  let perOrder = values['per-order']!;
  if (perOrder && order !== undefined) throw new UsageError('--per-order explores every order: drop --order');
  if (perOrder && mode === 'legacy') throw new UsageError('--per-order verifies the in-place orders: it needs --mode inplace');
  if (perOrder && mutant !== undefined && fixesOrder(mutant)) throw new UsageError(`--per-order: mutant ${mutant} sets the order itself`);
  // In-place mode without an order: verify every order.
  if (mode === 'inplace' && order === undefined && mutant === undefined) perOrder = true;
  if (values.vary === true && values['no-vary'] === true) throw new UsageError('--vary and --no-vary: give one of them');
  const maxMemslots = values.memslots === undefined ? undefined : parseCount('memslots', values.memslots, 1, 32767);
  const given = parseMachineOptions(values, { guestMem: dfs === undefined ? 64 * MiB : DFS_GUEST_MEM, blockSize: 4096, maxMemslots: maxMemslots ?? KVM_X86_MAX_MEMSLOTS });
  // A systematic search explores one machine: the small machine, unless options say otherwise.
  const machine = dfs === undefined ? given : dfsMachine(given, maxMemslots ?? KVM_X86_MAX_MEMSLOTS);
  if (dfs !== undefined && values.vary === true) throw new UsageError('--strategy dfs explores one machine: drop --vary');
  // The bug zoo's entries are tuned for the fixed machine: a mutant keeps it unless --vary is given.
  const vary = dfs === undefined && (values.vary ?? (values['no-vary'] !== true && mutant === undefined));
  const workload = parseChoice('workload', values.workload!, WORKLOADS);
  checkWorkloadFits(workload, machine.vcpus ?? (vary ? 4 : 2), machine.guestMem ?? 64 * MiB);
  return {
    workload,
    strategy,
    depth: parseCount('depth', values.depth!, 1, 16),
    iterations,
    seed,
    mutant,
    mode: perOrder ? 'inplace' : mode,
    order,
    perOrder,
    conversions: values.conversions === undefined ? (dfs === undefined ? undefined : DFS_CONVERSIONS) : parseCount('conversions', values.conversions, 1, 1e6),
    machine,
    vary,
    maxMemslots,
    platform: values.platform === undefined ? undefined : parseChoice('platform', values.platform, PLATFORMS),
    ...(protocolGiven(values) || mutant === undefined ? { protocol: parseProtocolOptions(values) } : {}),
    expectedSteps: values['expected-steps'] === undefined ? undefined : parseCount('expected-steps', values['expected-steps'], 1, 1e9),
    threads: values.threads === undefined ? availableParallelism() : parseCount('threads', values.threads, 1, 256),
    keepGoing: values['keep-going']!,
    json: values.json!,
    timeBudgetMs: values['time-budget'] === undefined ? undefined : parseDuration('time-budget', values['time-budget']),
    shard: values.shard === undefined ? undefined : parseShard('shard', values.shard),
    dfs,
  };
}

/** Whether a mutant sets the in-place order whatever the command line says. */
function fixesOrder(mutant: string): boolean {
  const m = findMutant(mutant)!;
  const base = exploreConfig({ workload: 'storm', seed: 1 });
  return m.apply({ ...base, order: 'v6' }).order === m.apply({ ...base, order: 'explicit' }).order;
}

/** Sample runs measured for PCT's k. */
const STEP_SAMPLES = 8;

/**
 * PCT's k: the longest of a few sample runs (random schedules, seeds from
 * `seed`, run to the end), rounded up to a multiple of 100.
 */
export function measureExpectedSteps(input: ExploreInput, seed: number): number {
  let longest = 0;
  for (let i = 0; i < STEP_SAMPLES; i++) {
    const c = iterationCase({ ...input, strategy: 'random' }, seed + i);
    longest = Math.max(longest, runCase(c, { stopAtViolation: false, maxSteps: 1_000_000 }).steps);
  }
  return Math.max(100, Math.ceil(longest / 100) * 100);
}

export interface PctReport {
  readonly actors: number;
  readonly expectedSteps: number;
  readonly depth: number;
  /** Lower bound on the chance that one iteration finds a given bug of depth <= d. */
  readonly bound: number;
  /** Upper bound on the chance that all iterations done miss it. */
  readonly missProbability: number;
  /** Iterations for 95% confidence: ln(20) / bound. */
  readonly iterationsFor95: number;
  readonly text: string;
}

function formatProbability(p: number): string {
  if (p < 1e-4) return p.toExponential(1);
  if (p > 0.9999) return `1 - ${(1 - p).toExponential(1)}`;
  return p.toFixed(4);
}

/** The PCT guarantee of a run, in numbers and in words. */
export function pctReport(actors: number, expectedSteps: number, depth: number, iterations: number): PctReport {
  const bound = pctBound(actors, expectedSteps, depth);
  const missProbability = Math.exp(iterations * Math.log1p(-Math.min(bound, 1 - 1e-16)));
  const iterationsFor95 = Math.ceil(Math.log(20) / bound);
  const formula = depth === 1 ? `1/n = 1/${actors}` : `1/(n·k${depth === 2 ? '' : `^${depth - 1}`}) = 1/(${actors}·${expectedSteps}${depth === 2 ? '' : `^${depth - 1}`})`;
  const text = `PCT guarantee: each iteration finds any bug of depth ${depth} or less that shows within k = ${expectedSteps} steps ` +
    `with probability at least ${formula} = ${bound.toExponential(2)} (n = ${actors} actors); ` +
    `after ${iterations} iterations such a bug is missed with probability at most ${formatProbability(missProbability)}` +
    ` (95% confidence takes ${iterationsFor95} iterations).`;
  return { actors, expectedSteps, depth, bound, missProbability, iterationsFor95, text };
}

export interface FailureReport extends ShrinkReport {
  readonly seed: number;
  /** 1-based position of the failing seed among the iterations. */
  readonly iteration: number;
  readonly originalReplay: string;
  readonly originalTraceHash: string;
  readonly originalSteps: number;
  readonly originalMessage: string;
  /** Where the shrunk token was written (and the original, next to it). */
  readonly tokenFile: string;
  readonly originalTokenFile: string;
}

interface OrderRun {
  readonly order: InplaceOrder | undefined;
  readonly input: ExploreInput;
  readonly expectedSteps: number;
  readonly actors: number;
  readonly run: PoolRunResult;
}

/** Shrink a failure found by the pool, write its tokens, describe it. */
function reportFailure(found: IterationResult, input: ExploreInput, firstSeed: number, order: InplaceOrder | undefined, perOrder: boolean,
  announce?: (line: string) => void): FailureReport {
  const c = iterationCase(input, found.seed);
  const invariant = found.invariant ?? 'unknown';
  const dir = join(process.cwd(), '.convsim');
  mkdirSync(dir, { recursive: true });
  // failure-<invariant>-<seed>, then the mutant and the order when they are part of the case (so runs do not overwrite each other's tokens).
  const stem = `failure-${invariant}-${found.seed}${input.mutant === undefined ? '' : `-${input.mutant}`}${perOrder && order !== undefined ? `-${order}` : ''}`;
  const tokenFile = join(dir, `${stem}.token`);
  const originalTokenFile = join(dir, `${stem}.original.token`);
  const original = found.token!;
  // The unshrunk token is kept before shrinking starts: Ctrl-C while shrinking loses nothing.
  writeFileSync(originalTokenFile, `${original}\n`);
  announce?.(`found ${invariant} at seed ${found.seed}; unshrunk token written to ${originalTokenFile}; shrinking (Ctrl-C keeps it): ${original}`);
  let shrunk: ShrinkReport;
  if (found.invariant === 'deadlock') {
    // Shrinking needs an invariant that fails; a deadlock is reported as found.
    shrunk = unshrunkReport(c, { invariant, message: found.message ?? '', token: original, traceHash: found.traceHash, steps: found.steps }, null);
  } else {
    // Progress while shrinking where the rest of explore shows progress (not with --json).
    shrunk = shrinkReport(c, shrinkWithProgress(c, announce !== undefined));
  }
  writeFileSync(tokenFile, `${shrunk.replay}\n`);
  return {
    ...shrunk,
    seed: found.seed,
    iteration: found.seed - firstSeed + 1,
    originalReplay: original,
    originalTraceHash: found.traceHash,
    originalSteps: found.steps,
    originalMessage: found.message ?? '',
    tokenFile,
    originalTokenFile,
  };
}

/** Failures to shrink: the first, or with --keep-going the first of each invariant. */
function failuresToReport(run: PoolRunResult, keepGoing: boolean): IterationResult[] {
  if (!keepGoing) return run.failures.slice(0, 1);
  const seen = new Set<string>();
  return run.failures.filter((f) => {
    const key = f.invariant ?? 'unknown';
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function failureLines(f: FailureReport, cwdRelative: (p: string) => string): string[] {
  return [
    `FOUND ${f.invariant} at seed ${f.seed} (iteration ${f.iteration})`,
    `  ${f.originalMessage}`,
    `replay token (shrunk):   ${f.replay}`,
    `replay token (original): ${f.originalReplay}`,
    `written to ${cwdRelative(f.tokenFile)} (original: ${cwdRelative(f.originalTokenFile)}); run: convsim replay ${cwdRelative(f.tokenFile)}`,
    `traceHash ${f.traceHash} (shrunk, ${f.steps} deliveries); original ${f.originalTraceHash} (${f.originalSteps} deliveries)`,
    ...shrinkSummary(f),
    'story (shrunk):',
    ...f.story,
  ];
}

export async function exploreCommand(argv: string[]): Promise<number> {
  const parsed = parseExploreOptions(argv);
  if (parsed.dfs !== undefined) return exploreSystematic(parsed, parsed.dfs);
  const o = { ...parsed, strategy: parsed.strategy as StrategyName };
  const started = performance.now();
  const orders: Array<InplaceOrder | undefined> = o.perOrder ? [...INPLACE_ORDERS] : [o.order];
  const showProgress = !o.json && process.stderr.isTTY;
  const runs: OrderRun[] = [];
  const pool = createExplorePool(o.threads);
  // Ctrl-C / SIGTERM stop the exploration; failures found so far are still shrunk and reported.
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => interrupt.abort(signal);
  // The time budget stops the exploration the way Ctrl-C does, but it is a clean end, not an interruption.
  const budget = o.timeBudgetMs === undefined ? undefined : setTimeout(() => interrupt.abort('time-budget'), o.timeBudgetMs);
  // A shard runs its own contiguous range of the seeds (iteration numbers stay those of the whole run).
  const seeds = o.shard === undefined ? { firstSeed: o.seed, iterations: o.iterations } : shardSeeds(o.seed, o.iterations, o.shard);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (const order of orders) {
      if (interrupt.signal.aborted) break;
      const base = {
        workload: o.workload,
        strategy: o.strategy,
        depth: o.depth,
        ...(o.mode === undefined ? {} : { mode: o.mode }),
        ...(order === undefined ? {} : { order }),
        ...(o.mutant === undefined ? {} : { mutant: o.mutant }),
        ...(o.conversions === undefined ? {} : { conversions: o.conversions }),
        machine: o.machine,
        vary: o.vary,
        ...(o.maxMemslots === undefined ? {} : { maxMemslots: o.maxMemslots }),
        ...(o.platform === undefined ? {} : { platform: o.platform }),
        ...(o.protocol === undefined ? {} : { protocol: o.protocol }),
      };
      const expectedSteps = o.expectedSteps ?? measureExpectedSteps({ ...base, expectedSteps: 1 }, o.seed);
      const input: ExploreInput = { ...base, expectedSteps };
      const actors = actorCount(iterationCase(input, o.seed).config);
      if (showProgress && o.perOrder) process.stderr.write(`order ${order}:\n`);
      const progress = o.json ? undefined : new ProgressLine(seeds.iterations, { label: 'iterations', tty: showProgress });
      try {
        const run = await explorePool(pool, {
          input,
          firstSeed: seeds.firstSeed,
          iterations: seeds.iterations,
          keepGoing: o.keepGoing,
          signal: interrupt.signal,
          ...(progress === undefined ? {} : { onProgress: (n: number) => progress.update(n) }),
        });
        runs.push({ order, input, expectedSteps, actors, run });
      } finally {
        progress?.clear();
      }
    }
  } finally {
    if (budget !== undefined) clearTimeout(budget);
    await pool.destroy();
    // Shrinking runs synchronously: from here Ctrl-C ends the process at once (the unshrunk tokens are written first).
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const exploredMs = performance.now() - started;
  const stopReason = interrupt.signal.aborted ? String(interrupt.signal.reason) : undefined;
  const budgetReached = stopReason === 'time-budget';
  const interrupted = budgetReached ? undefined : stopReason;
  const announce = o.json ? undefined : (line: string): void => {
    process.stdout.write(`${line}\n`);
  };

  const perOrder = runs.map((r) => {
    const failures = failuresToReport(r.run, o.keepGoing).map((f) => reportFailure(f, r.input, o.seed, r.order, o.perOrder, announce));
    const cfg = iterationCase(r.input, o.seed).config;
    return {
      order: r.order ?? cfg.order,
      mode: cfg.mode,
      iterations: r.run.iterations,
      expectedSteps: r.expectedSteps,
      actors: r.actors,
      pct: o.strategy === 'pct' ? pctReport(r.actors, r.expectedSteps, o.depth, r.run.iterations) : null,
      deliveries: r.run.deliveries,
      stepLimits: r.run.stepLimits,
      failureCount: r.run.failures.length,
      byInvariant: countBy(r.run.failures.map((f) => f.invariant ?? 'unknown')),
      inplaceOrderHeld: !r.run.failures.some((f) => f.invariant === 'inplace-order'),
      failures,
      elapsedMs: Math.round(r.run.elapsedMs),
    };
  });
  const first = perOrder.find((p) => p.failures.length > 0)?.failures[0];
  const found = perOrder.some((p) => p.failureCount > 0);
  const main = perOrder[0]!;
  const iterations = perOrder.reduce((sum, p) => sum + p.iterations, 0);
  const elapsedMs = Math.round(performance.now() - started);
  const coverage: Record<string, number> = {};
  for (const r of runs) addCoverage(coverage, r.run.coverage);
  const traceHashes = new Set<string>();
  for (const r of runs) for (const h of r.run.traceHashes) traceHashes.add(h);

  if (o.json) {
    const out: Record<string, unknown> = {
      schemaVersion: 2,
      command: 'explore',
      searchKey: searchKey(o),
      shard: o.shard === undefined ? null : { index: o.shard.index + 1, count: o.shard.count, firstSeed: seeds.firstSeed, iterations: seeds.iterations },
      found,
      interrupted: interrupted ?? null,
      timeBudgetReached: budgetReached,
      iterations,
      plannedIterations: seeds.iterations * orders.length,
      distinctTraces: traceHashes.size,
      // Shards carry their traces' hashes, so that merged shards count distinct traces exactly.
      ...(o.shard === undefined ? {} : { traceHashes: [...traceHashes].sort() }),
      elapsedMs,
      exploreMs: Math.round(exploredMs),
      pctBound: main.pct?.bound ?? null,
      pctGuarantee: main.pct?.text ?? null,
      strategy: o.strategy,
      depth: o.depth,
      expectedSteps: main.expectedSteps,
      expectedStepsFrom: o.expectedSteps === undefined ? `longest of ${STEP_SAMPLES} sample runs` : '--expected-steps',
      actors: main.actors,
      workload: o.workload,
      mode: o.vary && o.mode === undefined ? 'varied' : main.mode,
      order: o.perOrder || (o.vary && o.mode === undefined && o.order === undefined) ? null : main.order,
      mutant: o.mutant ?? null,
      protocol: o.protocol ?? ALL_FIXES_PROTOCOL,
      seed: o.seed,
      threads: o.threads,
      deliveries: perOrder.reduce((sum, p) => sum + p.deliveries, 0),
      stepLimits: perOrder.reduce((sum, p) => sum + p.stepLimits, 0),
      failureCount: perOrder.reduce((sum, p) => sum + p.failureCount, 0),
      vary: o.vary,
      machine: o.machine,
      coverage,
    };
    if (first !== undefined) out['failure'] = first;
    if (o.keepGoing) out['failures'] = perOrder.flatMap((p) => p.failures);
    if (o.perOrder) {
      out['orders'] = perOrder.map((p) => ({
        order: p.order,
        iterations: p.iterations,
        inplaceOrderHeld: p.inplaceOrderHeld,
        found: p.failureCount > 0,
        byInvariant: p.byInvariant,
        expectedSteps: p.expectedSteps,
        pctBound: p.pct?.bound ?? null,
        failure: p.failures[0] ?? null,
      }));
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return exploreExit(found, interrupted);
  }

  const rel = (p: string): string => (p.startsWith(process.cwd() + '/') ? p.slice(process.cwd().length + 1) : p);
  const lines: string[] = interrupted === undefined ? [] : [`INTERRUPTED (${interrupted}) after ${iterations} of ${seeds.iterations * orders.length} iterations: what was explored so far`];
  if (budgetReached) lines.push(`time budget reached after ${iterations} of ${seeds.iterations * orders.length} iterations: what was explored so far`);
  if (o.shard !== undefined) lines.push(`shard ${shardLabel(o.shard)}: seeds ${seeds.firstSeed}..${seeds.firstSeed + seeds.iterations - 1} of ${o.seed}..${o.seed + o.iterations - 1} (put the shards together with convsim merge)`);
  const modeText = o.vary && o.mode === undefined ? 'varied machines (legacy and in place)'
    : `${main.mode}${o.perOrder ? '' : main.mode === 'inplace' ? ` (${main.order} order)` : ''}${o.vary ? ', varied machines' : ''}`;
  const what = `${o.workload}, ${modeText}, ${o.strategy}${o.strategy === 'pct' ? ` depth ${o.depth}` : ''} schedules` +
    `${o.mutant === undefined ? '' : `, mutant ${o.mutant}`}, protocol ${describeProtocol(o.protocol ?? ALL_FIXES_PROTOCOL)}, ${o.threads} thread(s)`;
  if (o.perOrder) {
    lines.push(`convsim explore: in-place ordering verification (${what}), seeds from ${o.seed}, ${(elapsedMs / 1000).toFixed(1)} s`);
    for (const p of perOrder) {
      const verdict = p.inplaceOrderHeld ? `inplace-order held over ${p.iterations} schedules` : `inplace-order VIOLATED (within ${p.iterations} schedules)`;
      const others = Object.entries(p.byInvariant).filter(([k]) => k !== 'inplace-order').map(([k, v]) => `${k} x${v}`);
      lines.push(`  ${p.order.padEnd(9)} ${verdict}${others.length > 0 ? `; other failures: ${others.join(', ')}` : ''}`);
    }
  } else {
    lines.push(`convsim explore: ${found ? 'FOUND a failure' : 'no violation'} in ${iterations} iterations (${what}), seeds from ${seeds.firstSeed}, ${(elapsedMs / 1000).toFixed(1)} s, ${main.deliveries} deliveries, ${traceHashes.size} distinct traces`);
  }
  lines.push(...coverageLines(coverage, iterations));
  for (const p of perOrder) {
    if (p.pct !== null) lines.push(`${o.perOrder ? `[${p.order}] ` : ''}${p.pct.text}`);
    else {
      lines.push(`${o.perOrder ? `[${p.order}] ` : ''}random schedules: no probabilistic bound is claimed (--strategy pct gives one); ` +
        `the longest of ${STEP_SAMPLES} sample runs took ${p.expectedSteps} steps (rounded up)`);
    }
    if (p.stepLimits > 0) lines.push(`warning: ${p.stepLimits} iteration(s) hit the step limit (livelock?) without a violation`);
    if (p.failureCount > 1) lines.push(`${p.failureCount} failing iterations: ${Object.entries(p.byInvariant).map(([k, v]) => `${k} x${v}`).join(', ')}`);
    for (const f of p.failures) {
      lines.push('');
      if (o.perOrder) lines.push(`[${p.order}]`);
      lines.push(...failureLines(f, rel));
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return exploreExit(found, interrupted);
}

/** 1 a failure was found (interrupted or not), else 130/143 when interrupted, else 0. */
function exploreExit(found: boolean, interrupted: string | undefined): number {
  if (found) return EXIT_VIOLATIONS;
  if (interrupted !== undefined) return interrupted === 'SIGTERM' ? 143 : 130;
  return EXIT_OK;
}

function countBy(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}
