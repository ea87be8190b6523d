/**
 * `convsim verify`: the design table of which fix closes which race. Rows
 * are protocol variants, columns guests (see `explore/verify-table.ts`);
 * each cell is an exploration of seeded schedules on varied machines that
 * stops at the first failure, shrinks it and writes its replay token, plus
 * one short run of the same row and guest on real threads.
 *
 * @module
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { RunConfig } from '../../actors/run-config.js';
import { groupViolations } from '../../core/violation-groups.js';
import { isFatal } from '../../core/qemu-outcome.js';
import { createExplorePool, explorePool, type ExploreInput } from '../../explore/explore-pool.js';
import { iterationCase, type IterationResult } from '../../explore/iteration-task.js';
import { shrinkCase } from '../../explore/shrink.js';
import {
  cellInput, cellKey, VERIFY_COLUMNS, VERIFY_ROWS, type CellInput, type VerifyColumn, type VerifyRow,
} from '../../explore/verify-table.js';
import { RunAbortedError, runThreaded } from '../../runtime/threaded-run.js';
import type { StrategyName } from '../../runtime/deterministic/strategy.js';
import { checkWritable } from '../check-writable.js';
import { parseCommandLine } from '../command-line.js';
import { FAILURE_DIR } from '../failure-tokens.js';
import { parseChoice, parseCount, parseDuration, parseShard } from '../option-values.js';
import {
  DFS_CONVERSIONS, DFS_GUEST_MEM, DFS_OPTIONS, dfsMachine, parseDfsOptions, rejectDfsOnly, type DfsOptionValues,
} from '../explore-dfs-options.js';
import { shardSeeds, type Shard } from '../../explore/shard.js';
import { runDfs } from '../../explore/dfs/dfs-pool.js';
import { exploreConfig } from '../../explore/explore-case.js';
import { KVM_X86_MAX_MEMSLOTS } from '../../core/vfio/dma-mapping-estimate.js';
import { ProgressLine } from '../progress.js';
import { showValue } from '../show-value.js';
import { EXIT_OK, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';
import { compareExpectations, expectationsFile, readExpectations, type ComparedCell, type Expectations, type ExpectationsMade } from '../verify-expect.js';
import { renderVerify, type VerifyReport } from '../verify-report.js';
import { replayCase } from './replay.js';
import { parseRunOptions, signalExitCode } from './run.js';
import { shrinkReport, storySteps } from './shrink.js';

/**
 * Random schedules, not PCT. Measured on this table (README, "convsim
 * verify"): over 100 schedules per cell, random scheduling found every race
 * PCT at depth 3 found, each within 7 schedules, and also the lost update of
 * the well-behaved storm guest (merged, +serialized, +rcu rows) that PCT
 * depth 3 missed in all 100. PCT's own guarantee at depth 3, 1/(n k^2) with
 * k of 300 to 34,000 steps, is at most 3e-6 per schedule: it promises
 * nothing at these counts, and measuring k costs 8 sample runs per cell.
 */
export const VERIFY_STRATEGY: StrategyName = 'random';
/** Schedules per cell: `--quick`, and the default. */
export const QUICK_SCHEDULES = 25;
export const DEFAULT_SCHEDULES = 500;
/** Shrinking attempts per violated cell (re-runs of the case). */
const QUICK_SHRINK_ATTEMPTS = 200;
const DEFAULT_SHRINK_ATTEMPTS = 1500;
/** Conversions of each cell's real-thread run. */
const QUICK_THREADED_CONVERSIONS = 40;
const DEFAULT_THREADED_CONVERSIONS = 300;
const MAX_SEED = 2 ** 31 - 1;
/** A DFS cell's time when no --time-budget is given. */
export const DFS_CELL_BUDGET_S = 20;

const rowIds = VERIFY_ROWS.map((r) => r.id);
const columnIds = VERIFY_COLUMNS.map((c) => c.id);

export const VERIFY_HELP = `convsim verify [options]
  The design table: which protocol variant (row) holds under which guest
  (column). Each cell explores seeded schedules on varied machines (layout,
  vCPUs, containers, rollback, faults drawn from each schedule's seed; the
  mode and in-place order fixed by the cell; devices hot-plugged in the
  hotplug column only) on a piscina pool, stops at the first failure,
  shrinks it (a bounded number of attempts) and writes its replay token to
  .convsim/verify-<row>-<column>.token (convsim replay FILE runs it; a held
  cell's old token is removed).
  Schedules are random, not PCT: on this table random scheduling found every
  race PCT depth 3 found, each within 7 schedules, and also the storm guest's
  lost update, which PCT depth 3 missed in 100 schedules; PCT's depth-3 bound,
  1/(n k^2) with k of 300 to 34,000 steps, is at most 3e-6 per schedule, a
  guarantee that promises nothing at these counts.
  Each cell also gets one short run of the same row and guest on real threads
  (2 vCPUs, 64M, type1 + iommufd; ${QUICK_THREADED_CONVERSIONS} conversions with --quick, else ${DEFAULT_THREADED_CONVERSIONS}): a clean
  threaded run proves nothing; it shows whether the race is reachable at real
  speed. The output gives its convsim run command line, to run it longer.
  Rows:    ${rowIds.join(', ')}
  Columns: ${columnIds.join(', ')}
  --quick              ${QUICK_SCHEDULES} schedules per cell, shorter shrinking and threaded runs
                       (the whole table in under 2 minutes on 2 cores)
  --schedules N        schedules per cell (default ${DEFAULT_SCHEDULES}; ${QUICK_SCHEDULES} with --quick)
  --rows LIST          rows to run, comma-separated ids (default all)
  --columns LIST       columns to run, comma-separated ids (default all)
  --seed S             first seed of every cell (default 1)
  --threads T          pool threads (default ${availableParallelism()}, the available parallelism)
  --strategy S         random (default) | dfs: each cell a systematic search of the small machine
                       (2 vCPUs, 3 conversions each, one type1 container, 16M, one device access
                       placed anywhere, one hot-plug in the hotplug column), ${DFS_CELL_BUDGET_S} s per cell unless
                       --time-budget says otherwise; the DFS options of convsim explore apply
  --time-budget D      the whole table's exploration time (e.g. 10m), D / cells per cell (shrinking
                       and real-thread runs come on top); a cell it stops holds over what it explored
  --shard I/N          run only the I-th of N parts of every cell (seed ranges; dfs: subtrees);
                       real-thread runs only in shard 1; put the parts together with convsim merge
  --json               one JSON object on stdout (schema version, units, every cell)
  --markdown           the table as GitHub markdown
  --expect FILE        compare the verdicts with FILE ({"schemaVersion": 1, "cells":
                       {"<row>": {"<column>": "held" | "<invariant>"}}}); each difference is
                       one line; the real-thread runs are never compared
  --write-expect FILE  write this run's verdicts as such a file
  Ctrl-C stops it and prints the cells finished so far, marked interrupted.
  Exit: 0 the table is made (and matches --expect), 1 a verdict differs from --expect,
  2 bad options, 130/143 interrupted.`;

export interface VerifyOptions {
  readonly rows: readonly VerifyRow[];
  readonly columns: readonly VerifyColumn[];
  readonly quick: boolean;
  readonly schedules: number;
  readonly seed: number;
  readonly threads: number;
  readonly format: 'text' | 'json' | 'markdown';
  readonly strategy: 'random' | 'dfs';
  /** The systematic search's options (`--strategy dfs`). */
  readonly dfs: DfsOptionValues | undefined;
  readonly timeBudgetMs: number | undefined;
  readonly shard: Shard | undefined;
  readonly expect: { readonly file: string; readonly expected: Expectations; readonly made: ExpectationsMade | undefined } | undefined;
  readonly writeExpect: string | undefined;
  /** The command line as given, for the report and the expectations file. */
  readonly argv: readonly string[];
}

/** A comma-separated list of ids (or labels) of `all`, in the table's order. */
function parseSelection<T extends { readonly id: string; readonly label: string }>(option: string, value: string | undefined, all: readonly T[]): T[] {
  if (value === undefined) return [...all];
  const picked = new Set<T>();
  for (const name of value.split(',')) {
    const item = all.find((x) => x.id === name.trim() || x.label === name.trim());
    if (item === undefined) throw new UsageError(`--${option}: ${showValue(name)} is not one of ${all.map((x) => x.id).join(', ')}`);
    picked.add(item);
  }
  return all.filter((x) => picked.has(x));
}

/** Parse `verify` options (exported for tests); every mistake is one UsageError line, before any work. */
export function parseVerifyOptions(argv: string[]): VerifyOptions {
  const { values, positionals } = parseCommandLine('verify', argv, {
    quick: { type: 'boolean', default: false },
    schedules: { type: 'string' },
    rows: { type: 'string' },
    columns: { type: 'string' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string' },
    json: { type: 'boolean', default: false },
    markdown: { type: 'boolean', default: false },
    expect: { type: 'string' },
    'write-expect': { type: 'string' },
    strategy: { type: 'string', default: 'random' },
    'time-budget': { type: 'string' },
    shard: { type: 'string' },
    ...DFS_OPTIONS,
  });
  const strategy = parseChoice('strategy', values.strategy!, ['random', 'dfs'] as const);
  if (strategy === 'random') rejectDfsOnly(values);
  else if (values.schedules !== undefined) throw new UsageError('--schedules is for random schedules: --strategy dfs explores every schedule of each cell (bound it with --time-budget)');
  const dfs = strategy === 'dfs' ? parseDfsOptions(values, []) : undefined;
  if (positionals.length > 0) throw new UsageError(`verify: unexpected argument ${showValue(positionals[0])} (verify takes only options)`);
  if (values.json && values.markdown) throw new UsageError('verify: --json and --markdown: give one of them');
  const rows = parseSelection('rows', values.rows, VERIFY_ROWS);
  const columns = parseSelection('columns', values.columns, VERIFY_COLUMNS);
  const quick = values.quick;
  const schedules = values.schedules === undefined ? (quick ? QUICK_SCHEDULES : DEFAULT_SCHEDULES) : parseCount('schedules', values.schedules, 1, 1e6);
  const seed = parseCount('seed', values.seed!, 0, MAX_SEED);
  if (seed + schedules - 1 > MAX_SEED) throw new UsageError(`--seed: seeds ${seed}..${seed + schedules - 1} pass ${MAX_SEED}`);
  const threads = values.threads === undefined ? availableParallelism() : parseCount('threads', values.threads, 1, 256);
  const expect = values.expect === undefined ? undefined : { file: values.expect, ...readExpectations(values.expect, VERIFY_ROWS, VERIFY_COLUMNS) };
  if (values['write-expect'] !== undefined) checkWritable('write-expect', values['write-expect']);
  return {
    rows, columns, quick, schedules, seed, threads,
    format: values.json ? 'json' : values.markdown ? 'markdown' : 'text',
    expect, writeExpect: values['write-expect'], argv,
    strategy, dfs,
    timeBudgetMs: values['time-budget'] === undefined ? undefined : parseDuration('time-budget', values['time-budget']),
    shard: values.shard === undefined ? undefined : parseShard('shard', values.shard),
  };
}

/** What one short run on real threads saw. */
export interface ThreadedVerdict {
  /**
   * The first invariant the run reports (every one is counted in `violations`), else a fatal QEMU
   * outcome (`qemu-exit`, ...), else `clean`; `broken` when a worker crashed or hung or the actors
   * deadlocked, `interrupted` on Ctrl-C.
   */
  readonly verdict: string;
  readonly violations: Record<string, number>;
  readonly conversions: number;
  readonly elapsedMs: number;
  /** The same run as a command line (without the `convsim` in front): run it longer to look harder. */
  readonly command: string;
  readonly reason?: string;
}

export interface CellResult {
  readonly row: VerifyRow;
  readonly column: VerifyColumn;
  readonly input: CellInput;
  /** `interrupted`: Ctrl-C stopped the cell; its verdict is not one. */
  readonly status: 'done' | 'interrupted';
  readonly schedules: number;
  /** `held`, or the invariant (or fatal outcome, or `deadlock`) found first; `interrupted` when stopped. */
  readonly verdict: string;
  readonly message: string | null;
  /** 1-based schedule that failed, and its seed. */
  readonly schedule: number | null;
  readonly seed: number | null;
  /** Numbered steps of the shrunk story. */
  readonly storySteps: number | null;
  readonly shrinkAttempts: number | null;
  /** The token written (shrunk), relative to the working directory, and its traceHash. */
  readonly tokenFile: string | null;
  readonly token: string | null;
  readonly traceHash: string | null;
  /** The traceHash of the unshrunk failing schedule. */
  readonly originalTraceHash: string | null;
  readonly exploreMs: number;
  readonly shrinkMs: number;
  /** The cell this one explores exactly the same as (its results are that cell's). */
  readonly sameAs: { readonly row: string; readonly column: string } | null;
  readonly threaded: ThreadedVerdict | null;
  /** The time budget stopped the cell's exploration (its verdict holds over what was explored). */
  readonly budgetStopped: boolean;
  /** Distinct traces among the schedules run (partial-order hashes). */
  readonly distinctTraces: number;
  /** `--strategy dfs`: every schedule up to the bound was explored (null for random schedules). */
  readonly complete: boolean | null;
  /** For merging shards: the failing execution's place in the search order (dfs), else null. */
  readonly position: number | null;
}

/** The arguments of `convsim run` for a cell's real-thread run. */
export function threadedRunArgs(input: CellInput, seed: number, conversions: number): string[] {
  const p = input.protocol;
  return [
    '--workload', input.workload, '--mode', input.mode, '--order', input.order,
    '--vcpus', '2', '--guest-mem', '64M', '--conversions', String(conversions), '--check-every', '25', '--seed', String(seed),
    '--conversion-lock', p.conversionLock, '--bitmap-ops', p.bitmapOps, '--registration', p.registration, '--listener-list', p.listenerList,
  ];
}

async function threadedVerdict(input: CellInput, seed: number, conversions: number, signal: AbortSignal): Promise<ThreadedVerdict> {
  const args = threadedRunArgs(input, seed, conversions);
  const config: RunConfig = parseRunOptions(args).config;
  const command = `run ${args.join(' ')}`;
  const started = performance.now();
  try {
    const r = await runThreaded(config, { signal });
    const groups = groupViolations(r.violations);
    const violations = Object.fromEntries(groups.map((g) => [g.invariant, g.count]));
    const verdict = groups[0]?.invariant ?? (isFatal(r.outcome) ? r.outcome : 'clean');
    return { verdict, violations, conversions: r.conversions, elapsedMs: Math.round(performance.now() - started), command };
  } catch (error) {
    if (!(error instanceof RunAbortedError)) throw error;
    const violations = Object.fromEntries(groupViolations(error.partial?.violations ?? []).map((g) => [g.invariant, g.count]));
    return {
      verdict: error.interrupted ? 'interrupted' : 'broken', violations, conversions: error.partial?.conversions ?? 0,
      elapsedMs: Math.round(performance.now() - started), command, reason: error.message,
    };
  }
}

const tokenFileOf = (row: VerifyRow, column: VerifyColumn): string => join(FAILURE_DIR, `verify-${row.id}-${column.id}.token`);

/** Shrink a cell's failure (bounded), or for a deadlock keep it as found; the token and its story length. */
function shrunkFailure(input: ExploreInput, found: IterationResult, maxAttempts: number): {
  token: string; traceHash: string; storySteps: number; attempts: number | null; message: string;
} {
  const c = iterationCase(input, found.seed);
  if (found.invariant === 'deadlock') {
    // Shrinking needs an invariant that fails (as in explore): the deadlock is kept as found.
    const replayed = replayCase(c);
    return { token: found.token!, traceHash: replayed.traceHash, storySteps: storySteps(replayed.story), attempts: null, message: found.message ?? '' };
  }
  const report = shrinkReport(c, shrinkCase(c, maxAttempts));
  return { token: report.replay, traceHash: report.traceHash, storySteps: report.storySteps, attempts: report.attempts, message: found.message ?? '' };
}

interface Plan {
  readonly row: VerifyRow;
  readonly column: VerifyColumn;
  readonly input: CellInput;
  /** An earlier cell exploring exactly the same. */
  readonly sameAs: Plan | undefined;
}

function planCells(rows: readonly VerifyRow[], columns: readonly VerifyColumn[]): Plan[] {
  const first = new Map<string, Plan>();
  const plans: Plan[] = [];
  for (const row of rows) {
    for (const column of columns) {
      const input = cellInput(row, column);
      const key = cellKey(input);
      const plan: Plan = { row, column, input, sameAs: first.get(key) };
      if (plan.sameAs === undefined) first.set(key, plan);
      plans.push(plan);
    }
  }
  return plans;
}

export async function verifyCommand(argv: string[]): Promise<number> {
  const o = parseVerifyOptions(argv);
  const started = performance.now();
  const plans = planCells(o.rows, o.columns);
  const shrinkAttempts = o.quick ? QUICK_SHRINK_ATTEMPTS : DEFAULT_SHRINK_ATTEMPTS;
  const threadedConversions = o.quick ? QUICK_THREADED_CONVERSIONS : DEFAULT_THREADED_CONVERSIONS;
  // On stderr: redrawn on a terminal, a line every 10 s elsewhere; none with --json (as explore).
  const progress = o.format === 'json' ? undefined : new ProgressLine(plans.length, { label: 'cells' });
  const interrupt = new AbortController();
  // The first Ctrl-C stops after the current step (a shrink runs to its bounded end) and prints what finished; a second exits at once.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) process.exit(signalExitCode(signal));
    interrupt.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: CellResult[] = [];
  const byPlan = new Map<Plan, CellResult>();
  const pool = createExplorePool(o.threads);
  // The time budget is the exploration's, shared out evenly: shrinking and real-thread runs come on top.
  const cellsToExplore = plans.filter((p) => p.sameAs === undefined).length;
  const share = o.timeBudgetMs === undefined ? undefined : o.timeBudgetMs / Math.max(1, cellsToExplore);
  try {
    for (const plan of plans) {
      if (interrupt.signal.aborted) break;
      const cell = plan.sameAs === undefined
        ? await runCell(plan, o, shrinkAttempts, threadedConversions, interrupt.signal, pool, share)
        : sameCell(byPlan.get(plan.sameAs)!, plan);
      if (cell.status === 'done') writeCellToken(cell);
      byPlan.set(plan, cell);
      results.push(cell);
      progress?.update(results.length);
    }
  } finally {
    progress?.clear();
    await pool.destroy();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const interrupted = interrupt.signal.aborted ? String(interrupt.signal.reason) : null;
  const finished = results.filter((c) => c.status === 'done');
  const compared: ComparedCell[] = finished.map((c) => ({
    row: c.row, column: c.column, verdict: c.verdict,
    detail: c.verdict === 'held' ? ` over ${c.schedules} schedules` : ` at schedule ${c.schedule}, ${c.tokenFile}`,
  }));
  const differences = o.expect === undefined ? [] : compareExpectations(o.expect.expected, o.expect.file, compared);
  if (o.writeExpect !== undefined && interrupted === null) {
    writeFileSync(o.writeExpect, expectationsFile(compared, {
      command: `convsim verify ${o.argv.join(' ')}`.trim(), strategy: VERIFY_STRATEGY, schedules: o.schedules, seed: o.seed,
    }));
  }
  const report: VerifyReport = {
    rows: o.rows, columns: o.columns, cells: results, plannedCells: plans.length,
    strategy: o.strategy === 'dfs' ? `dfs (preemption bound ${o.dfs!.preemptionBound ?? 'none'} by ${o.dfs!.preemptionUnit}, ${o.dfs!.reduction})` : VERIFY_STRATEGY,
    schedules: o.schedules, seed: o.seed, threads: o.threads, quick: o.quick,
    shard: o.shard === undefined ? null : { index: o.shard.index + 1, count: o.shard.count },
    timeBudgetMs: o.timeBudgetMs ?? null,
    searchKey: verifySearchKey(o),
    threadedConversions, shrinkAttempts, elapsedMs: Math.round(performance.now() - started), interrupted,
    command: `convsim verify ${o.argv.join(' ')}`.trim(),
    expect: o.expect === undefined ? null : { file: o.expect.file, differences, note: madeDifferently(o) },
  };
  process.stdout.write(renderVerify(report, o.format));
  if (o.format !== 'text') {
    for (const line of differences) process.stderr.write(`verify: --expect: ${line}\n`);
    if (report.expect?.note != null && differences.length > 0) process.stderr.write(`verify: --expect: note: ${report.expect.note}\n`);
  }
  if (differences.length > 0) return EXIT_VIOLATIONS;
  if (interrupted !== null) return signalExitCode(interrupt.signal.reason as NodeJS.Signals);
  return EXIT_OK;
}

/** What identifies a verify run whatever its shard, threads, output or budget: its shards share it (convsim merge checks it). */
function verifySearchKey(o: VerifyOptions): string {
  const identity = { rows: o.rows.map((r) => r.id), columns: o.columns.map((c) => c.id), schedules: o.schedules, seed: o.seed, quick: o.quick, strategy: o.strategy, dfs: o.dfs };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16);
}

/** When the expectations were made with other schedules or another seed: a note (their verdicts may then differ for that reason). */
function madeDifferently(o: VerifyOptions): string | null {
  const made = o.expect?.made;
  if (made === undefined || (made.schedules === o.schedules && made.seed === o.seed)) return null;
  return `${o.expect!.file} was made with ${made.schedules ?? '?'} schedules per cell from seed ${made.seed ?? '?'}; ` +
    `this run: ${o.schedules} from seed ${o.seed} (a held cell may fail with more schedules, and another seed may find another invariant first)`;
}

type Pool = ReturnType<typeof createExplorePool>;

/**
 * A cell's exploration stops on Ctrl-C (`signal`) or when its share of the
 * time budget is spent: a signal of its own that either aborts, and whether
 * the budget was the reason.
 */
function cellSignal(signal: AbortSignal, budgetMs: number | undefined): { signal: AbortSignal; budgetSpent: () => boolean; done: () => void } {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = budgetMs === undefined ? undefined : setTimeout(() => controller.abort('time-budget'), budgetMs);
  return {
    signal: controller.signal,
    budgetSpent: () => controller.signal.aborted && controller.signal.reason === 'time-budget',
    done: () => {
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    },
  };
}

/** A DFS cell: the small machine with the cell's guest, mode, order and protocol, every device access and hot-plug placed. */
function dfsCellConfig(input: CellInput, seed: number, dfs: DfsOptionValues): RunConfig {
  const machine = dfsMachine({ mode: input.mode, order: input.order }, KVM_X86_MAX_MEMSLOTS);
  const config = exploreConfig({
    workload: input.workload, seed, mode: input.mode, order: input.order, conversions: DFS_CONVERSIONS, vary: false,
    machine: { ...machine, guestMem: DFS_GUEST_MEM }, protocol: input.protocol,
  });
  return { ...config, scheduledEvents: { hotplugs: input.machine.hotplug === true ? dfs.hotplugs : 0, deviceAccesses: dfs.deviceAccesses } };
}

async function runCell(plan: Plan, o: VerifyOptions, shrinkAttempts: number, threadedConversions: number, signal: AbortSignal, pool: Pool,
  budgetMs: number | undefined): Promise<CellResult> {
  if (o.dfs !== undefined) return runDfsCell(plan, o, o.dfs, shrinkAttempts, threadedConversions, signal, budgetMs ?? DFS_CELL_BUDGET_S * 1000);
  const input: ExploreInput = { ...plan.input, strategy: VERIFY_STRATEGY, depth: 1, expectedSteps: 1 };
  const exploreStarted = performance.now();
  const seeds = o.shard === undefined ? { firstSeed: o.seed, iterations: o.schedules } : shardSeeds(o.seed, o.schedules, o.shard);
  const stop = cellSignal(signal, budgetMs);
  const run = await explorePool(pool, { input, ...seeds, keepGoing: false, signal: stop.signal }).finally(stop.done);
  const exploreMs = Math.round(performance.now() - exploreStarted);
  const found = run.failures[0];
  const base = {
    row: plan.row, column: plan.column, input: plan.input, schedules: run.iterations, exploreMs, sameAs: null,
    budgetStopped: stop.budgetSpent(), distinctTraces: run.traceHashes.size, complete: null, position: null,
  };
  const none = { message: null, schedule: null, seed: null, storySteps: null, shrinkAttempts: null, tokenFile: null, token: null, traceHash: null, originalTraceHash: null };
  if (run.interrupted && found === undefined && !stop.budgetSpent()) {
    return { ...base, ...none, status: 'interrupted', verdict: 'interrupted', shrinkMs: 0, threaded: null };
  }
  let failure: Pick<CellResult, 'message' | 'schedule' | 'seed' | 'storySteps' | 'shrinkAttempts' | 'tokenFile' | 'token' | 'traceHash' | 'originalTraceHash'> = none;
  const shrinkStarted = performance.now();
  if (found !== undefined) {
    const s = shrunkFailure(input, found, shrinkAttempts);
    failure = {
      message: s.message, schedule: found.seed - o.seed + 1, seed: found.seed, storySteps: s.storySteps, shrinkAttempts: s.attempts,
      tokenFile: tokenFileOf(plan.row, plan.column), token: s.token, traceHash: s.traceHash, originalTraceHash: found.traceHash,
    };
  }
  const shrinkMs = Math.round(performance.now() - shrinkStarted);
  // The exploration is done (a failure found while interrupted is still one); the threaded run is skipped when
  // interrupted, and made by shard 1 only.
  const threaded = signal.aborted || (o.shard?.index ?? 0) > 0 ? null : await threadedVerdict(plan.input, o.seed, threadedConversions, signal);
  return { ...base, ...failure, status: 'done', verdict: found?.invariant ?? 'held', shrinkMs, threaded };
}

/** A cell as a systematic search (`--strategy dfs`) within its time. */
async function runDfsCell(plan: Plan, o: VerifyOptions, dfs: DfsOptionValues, shrinkAttempts: number, threadedConversions: number, signal: AbortSignal,
  budgetMs: number): Promise<CellResult> {
  const config = dfsCellConfig(plan.input, o.seed, dfs);
  const exploreStarted = performance.now();
  const run = await runDfs({
    config, reduction: dfs.reduction, splitDepth: dfs.splitDepth, stateCache: dfs.stateCache, threads: o.threads, timeBudgetMs: budgetMs, signal,
    ...(dfs.preemptionBound === undefined ? {} : { preemptionBound: dfs.preemptionBound }),
    preemptionUnit: dfs.preemptionUnit,
    ...(o.shard === undefined ? {} : { shard: o.shard }),
  });
  const exploreMs = Math.round(performance.now() - exploreStarted);
  const base = {
    row: plan.row, column: plan.column, input: plan.input, schedules: run.stats.executions, exploreMs, sameAs: null,
    budgetStopped: run.stoppedBy === 'time-budget', distinctTraces: run.distinctTraces, complete: run.stats.complete, position: run.failure?.position ?? null,
  };
  const none = { message: null, schedule: null, seed: null, storySteps: null, shrinkAttempts: null, tokenFile: null, token: null, traceHash: null, originalTraceHash: null };
  if (run.stoppedBy === 'interrupt' && run.failure === undefined) {
    return { ...base, ...none, status: 'interrupted', verdict: 'interrupted', shrinkMs: 0, threaded: null };
  }
  const shrinkStarted = performance.now();
  let failure = none as Pick<CellResult, keyof typeof none>;
  if (run.failure !== undefined) {
    const f = run.failure;
    const s = f.invariant === 'deadlock'
      ? { replay: f.token, traceHash: f.traceHash, storySteps: storySteps(replayCase(f.case).story), attempts: null }
      : shrinkReport(f.case, shrinkCase(f.case, shrinkAttempts));
    failure = {
      message: f.message, schedule: f.execution, seed: o.seed, storySteps: s.storySteps, shrinkAttempts: s.attempts,
      tokenFile: tokenFileOf(plan.row, plan.column), token: s.replay, traceHash: s.traceHash, originalTraceHash: f.traceHash,
    };
  }
  const shrinkMs = Math.round(performance.now() - shrinkStarted);
  const threaded = signal.aborted || (o.shard?.index ?? 0) > 0 ? null : await threadedVerdict(plan.input, o.seed, threadedConversions, signal);
  return { ...base, ...failure, status: 'done', verdict: run.failure?.invariant ?? 'held', shrinkMs, threaded };
}

/** A cell that explores exactly what an earlier one did: its results, under its own name and token file. */
function sameCell(earlier: CellResult, plan: Plan): CellResult {
  return {
    ...earlier, row: plan.row, column: plan.column, sameAs: { row: earlier.row.id, column: earlier.column.id },
    tokenFile: earlier.token === null ? null : tokenFileOf(plan.row, plan.column),
  };
}

/** Write a violated cell's token (or remove a held cell's old one). */
function writeCellToken(cell: CellResult): void {
  const file = tokenFileOf(cell.row, cell.column);
  if (cell.token === null) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(FAILURE_DIR, { recursive: true });
  writeFileSync(file, `${cell.token}\n`);
}
