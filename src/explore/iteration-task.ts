/**
 * The piscina task of `convsim explore`: deterministic iterations on a pool
 * thread. Input and output are plain JSON (cheap to transfer); the case is
 * rebuilt here from the workload, seed and options, exactly as `replay`
 * rebuilds it from a token.
 *
 * One task runs a batch of `count` consecutive seeds (default 1), stopping
 * at the first failure of the batch unless `keepGoing`: one iteration takes
 * a few milliseconds, so batching keeps the per-task messaging small.
 *
 * Compiled to `dist/explore/iteration-task.js`; see {@link iterationTaskFile}.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkloadName } from '../actors/run-config.js';
import type { BackingMode } from '../core/guest-memory.js';
import type { InplaceOrder } from '../core/kvm-convert-memory.js';
import type { DeterministicOutcome } from '../runtime/deterministic/deterministic-run.js';
import type { StrategyName } from '../runtime/deterministic/strategy.js';
import { packageRoot } from '../workers/worker-url.js';
import type { Platform } from '../actors/vcpu/conversion-exits.js';
import { firstFailure } from './failure.js';
import { encodeToken, exploreConfig, runCase, type ExploreCase } from './explore-case.js';
import { machineCoverage, type MachineChoice } from './machine.js';
import type { ProtocolPolicy } from '../core/protocol-policy.js';

export interface IterationInput {
  readonly workload: WorkloadName;
  readonly strategy: StrategyName;
  readonly depth: number;
  readonly expectedSteps: number;
  /** The first seed: both the workload seed and the scheduler seed. */
  readonly seed: number;
  readonly mode?: BackingMode;
  readonly order?: InplaceOrder;
  readonly mutant?: string;
  readonly conversions?: number;
  /** Machine options the user fixed. */
  readonly machine?: MachineChoice;
  /** Draw the machine options left open from each iteration's seed. */
  readonly vary?: boolean;
  /** `kvm_get_max_memslots()` (default 32764). */
  readonly maxMemslots?: number;
  readonly platform?: Platform;
  /** The protocol's policies (default: merged, or every fix with a mutant). */
  readonly protocol?: ProtocolPolicy;
  /** Seeds `seed .. seed + count - 1` (default 1). */
  readonly count?: number;
  /** Run the whole batch even after a failure. */
  readonly keepGoing?: boolean;
}

/**
 * A failure is an invariant violation, or a deadlock (the actors stopped
 * with a vCPU still waiting): `invariant` is then `'deadlock'`.
 */
export interface IterationResult {
  readonly seed: number;
  readonly found: boolean;
  readonly invariant?: string;
  readonly message?: string;
  readonly outcome: DeterministicOutcome;
  readonly steps: number;
  readonly traceHash: string;
  /** Hash of the run's partial order: runs that only reorder independent steps share it (distinct traces). */
  readonly partialOrderHash: string;
  /** Replay token of the (unshrunk) case, when found. */
  readonly token?: string;
  /**
   * What the iteration covered: its machine (`layout:x86`, `container:type1`,
   * ...), device accesses by outcome, faults injected, and for each
   * invariant how many times it was checked (`checked:<invariant>`).
   */
  readonly coverage: Record<string, number>;
}

/** The case of one seed of an input. */
export function iterationCase(input: Omit<IterationInput, 'seed' | 'count' | 'keepGoing'>, seed: number): ExploreCase {
  const config = exploreConfig({
    workload: input.workload,
    seed,
    ...(input.mode === undefined ? {} : { mode: input.mode }),
    ...(input.order === undefined ? {} : { order: input.order }),
    ...(input.mutant === undefined ? {} : { mutant: input.mutant }),
    ...(input.conversions === undefined ? {} : { conversions: input.conversions }),
    ...(input.machine === undefined ? {} : { machine: input.machine }),
    ...(input.vary === undefined ? {} : { vary: input.vary }),
    ...(input.maxMemslots === undefined ? {} : { maxMemslots: input.maxMemslots }),
    ...(input.platform === undefined ? {} : { platform: input.platform }),
    ...(input.protocol === undefined ? {} : { protocol: input.protocol }),
  });
  return {
    config,
    strategy: input.strategy,
    depth: input.depth,
    expectedSteps: input.expectedSteps,
    scheduleSeed: seed,
    ...(input.mutant === undefined ? {} : { mutant: input.mutant }),
  };
}

/** One deterministic iteration (seed `seed`), stopping at its first violation. */
export function runIteration(input: IterationInput, seed = input.seed): IterationResult {
  const c = iterationCase(input, seed);
  const r = runCase(c, { stopAtViolation: true, footprints: true });
  // An invariant violation, or QEMU exiting, aborting or refusing the device (named by the outcome).
  const first = firstFailure(r);
  const base = { seed, outcome: r.outcome, steps: r.steps, traceHash: r.traceHash, partialOrderHash: r.partialOrderHash ?? '', coverage: iterationCoverage(c, r.stats) };
  if (first !== undefined) {
    return { ...base, found: true, invariant: first.name, message: first.message, token: encodeToken(c) };
  }
  if (r.outcome === 'deadlock') {
    return { ...base, found: true, invariant: 'deadlock', message: 'the actors stopped with a vCPU still waiting for a reply', token: encodeToken(c) };
  }
  return { ...base, found: false };
}

/** Counter names (from the actors' stats) that coverage reports, as they are. */
const COVERAGE_COUNTERS = [
  'deviceAccesses', 'deviceOk', 'deviceFault', 'deviceToStale', 'deviceToPrivate', 'deviceSharedPageOfPrivateBlock',
  'dmaMapErrors', 'dmaUnmapErrors', 'failedConversions', 'conversions', 'faultsInjected:map', 'faultsInjected:unmap',
  'faultsInjected:attributes', 'faultsInjected:discard',
];

function iterationCoverage(c: ExploreCase, stats: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const out = machineCoverage(c.config);
  for (const actor of stats) {
    for (const [key, value] of Object.entries(actor)) {
      if (key.startsWith('checked:') || COVERAGE_COUNTERS.includes(key)) out[key] = (out[key] ?? 0) + value;
    }
  }
  return out;
}

/** Add one coverage record into another. */
export function addCoverage(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
}

/** The piscina entry point: a batch of consecutive seeds. */
export default function runIterations(input: IterationInput): IterationResult[] {
  const count = input.count ?? 1;
  const results: IterationResult[] = [];
  for (let i = 0; i < count; i++) {
    const result = runIteration(input, input.seed + i);
    results.push(result);
    if (result.found && input.keepGoing !== true) break;
  }
  return results;
}

/** Path of the compiled task module, for `new Piscina({ filename })`. */
export function iterationTaskFile(): string {
  const file = join(packageRoot(), 'dist', 'explore', 'iteration-task.js');
  if (!existsSync(file)) throw new Error(`explore task not built: ${file} is missing (run \`npm run build\`)`);
  return file;
}
