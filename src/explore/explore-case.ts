/**
 * One explorable case: a run configuration and a schedule (a seeded
 * strategy, or explicit deviations from the default order). A case
 * serialises to a replay token that reproduces the run exactly.
 */
import { ALL_FIXES_PROTOCOL, MERGED_PROTOCOL, type ProtocolPolicy } from '../core/protocol-policy.js';
import type { RunConfig, WorkloadName } from '../actors/run-config.js';
import type { BackingMode } from '../core/guest-memory.js';
import type { InplaceOrder } from '../core/kvm-convert-memory.js';
import { MiB } from '../core/units.js';
import { runDeterministic, type DeterministicResult } from '../runtime/deterministic/deterministic-run.js';
import { DeviationStrategy, PctStrategy, RandomStrategy, type Strategy, type StrategyName } from '../runtime/deterministic/strategy.js';
import { applyMachine, drawMachine, withLayout, type MachineChoice } from './machine.js';
import { autoDmaEntryLimit } from '../actors/device-realize.js';
import type { Platform } from '../actors/vcpu/conversion-exits.js';
import { KVM_X86_MAX_MEMSLOTS } from '../core/vfio/dma-mapping-estimate.js';
import { findMutant } from './mutants.js';
import { checkCase } from './check-case.js';
import { createHash } from 'node:crypto';

export interface ExploreCase {
  readonly config: RunConfig;
  /** `replay` follows `deviations` (steps where the schedule left the default first-candidate order). */
  readonly strategy: StrategyName | 'replay';
  readonly depth: number;
  /** PCT's k: the expected number of steps, where change points are drawn. */
  readonly expectedSteps: number;
  /** Seed of the scheduler (the workloads use `config.seed`). */
  readonly scheduleSeed: number;
  readonly deviations?: ReadonlyArray<readonly [number, number]>;
  /** The bug-zoo entry this case runs, for reports. */
  readonly mutant?: string;
}

/** Steps before a case is declared livelocked. */
export const MAX_STEPS = 2_000_000;

/** The small machine exploration runs on: cheap iterations, still two of everything. */
export function exploreConfig(options: {
  workload: WorkloadName; seed: number; mode?: BackingMode; order?: InplaceOrder; mutant?: string; conversions?: number;
  /** Machine options the user fixed; the rest are the small machine's, or drawn from the seed with `vary`. */
  machine?: MachineChoice; vary?: boolean;
  /** `kvm_get_max_memslots()` (default 32764, x86 KVM). */
  maxMemslots?: number;
  /** Conversion exits (default tdx; sw-protected for the selftest). */
  platform?: Platform;
  /**
   * The protocol's policies. Default: QEMU as merged; with a mutant, every
   * fix, so that what is found is the mutant's own bug.
   */
  protocol?: ProtocolPolicy;
}): RunConfig {
  const guestMem = options.machine?.guestMem ?? 64 * MiB;
  const maxMemslots = options.maxMemslots ?? KVM_X86_MAX_MEMSLOTS;
  const type1Limit = autoDmaEntryLimit({ guestMem, gpaBase: 0, blockSize: 4096, maxMemslots });
  const base: RunConfig = {
    vcpus: 2,
    containers: [{ backend: 'type1', dmaEntryLimit: type1Limit, limitSource: 'auto' }, { backend: 'iommufd', dmaEntryLimit: 0 }],
    guestMem,
    blockSize: 4096,
    gpaBase: 0,
    mode: options.mode ?? 'legacy',
    order: options.order ?? 'explicit',
    rollback: 'none',
    inFlight: 1,
    conversions: options.conversions ?? 40,
    seed: options.seed,
    workload: options.workload,
    checkEvery: 1_000_000,
    maxMemslots,
    protocol: options.protocol ?? (options.mutant === undefined ? MERGED_PROTOCOL : ALL_FIXES_PROTOCOL),
    profile: false,
    platform: options.platform ?? (options.workload === 'selftest' ? 'sw-protected' : 'tdx'),
  };
  // --mode and --order are machine options too: fixed when given, drawn with `vary` when not.
  const fixed: MachineChoice = {
    ...options.machine,
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    ...(options.order === undefined ? {} : { order: options.order }),
  };
  const machine = options.vary === true ? drawMachine(options.seed, fixed, guestMem, base.blockSize, base.maxMemslots) : fixed;
  let config = applyMachine(base, machine);
  if (options.mutant !== undefined) {
    const mutant = findMutant(options.mutant);
    if (mutant === undefined) throw new RangeError(`unknown mutant ${options.mutant}`);
    config = mutant.apply(config);
  }
  // The layout last: a mutant may change the containers.
  return withLayout(config, machine.layout ?? 'flat', options.seed);
}

export function actorCount(config: RunConfig): number {
  return 2 + config.containers.length + config.vcpus;
}

function strategyOf(c: ExploreCase): Strategy {
  switch (c.strategy) {
    case 'random': return new RandomStrategy(c.scheduleSeed);
    case 'pct': return new PctStrategy(c.scheduleSeed, actorCount(c.config), c.depth, c.expectedSteps);
    case 'replay': return new DeviationStrategy(new Map(c.deviations ?? []));
    default: {
      const unreachable: never = c.strategy;
      throw new Error(`unknown strategy ${String(unreachable)}`);
    }
  }
}

/** Run a case once, deterministically. */
export function runCase(c: ExploreCase, options: { recordTrace?: boolean; recordChoices?: boolean; stopAtViolation?: boolean; maxSteps?: number; footprints?: boolean } = {}): DeterministicResult {
  return runDeterministic(c.config, {
    footprints: options.footprints ?? false,
    strategy: strategyOf(c),
    maxSteps: options.maxSteps ?? MAX_STEPS,
    recordTrace: options.recordTrace ?? false,
    recordChoices: options.recordChoices ?? false,
    stopAtViolation: options.stopAtViolation ?? true,
  });
}

/**
 * The token format: `convsim3.` + base64url JSON of the case + `.` + its
 * checksum. Version 3: state changes run at QEMU's grain (bitmap steps on
 * the vCPU threads) and the case carries its protocol policies.
 */
export const TOKEN_PREFIX = 'convsim3.';
/**
 * Tokens of earlier versions: recognised, and refused with a reason. Their
 * schedules were recorded against coarser state changes (no bitmap steps),
 * so no schedule of this version is the one they name.
 */
const OLDER_TOKEN_PREFIXES = ['convsim2.', 'convsim1.'];
/** Any prefix: what makes a string (or a line of a file) a token. */
export const TOKEN_PREFIXES: readonly string[] = [TOKEN_PREFIX, ...OLDER_TOKEN_PREFIXES];

/** First 12 hex digits of the SHA-256 of the token's payload: a damaged token is refused, never replayed as another case. */
function checksum(payload: string): string {
  return createHash('sha256').update(payload).digest('hex').slice(0, 12);
}

/** A pasteable replay token: the case as base64url JSON, with a checksum. */
export function encodeToken(c: ExploreCase): string {
  const payload = Buffer.from(JSON.stringify(c)).toString('base64url');
  return `${TOKEN_PREFIX}${payload}.${checksum(payload)}`;
}

/** Longest token accepted (characters): far above any real case. */
export const MAX_TOKEN_LENGTH = 4 * 1024 * 1024;

/**
 * Parse and check a token: the checksum, then every field against the
 * bounds of the command line (see `check-case.ts`).
 * @throws RangeError with a one-line reason on anything else.
 */
export function decodeToken(token: string): ExploreCase {
  const text = token.trim();
  if (text.length > MAX_TOKEN_LENGTH) throw new RangeError(`replay token is longer than ${MAX_TOKEN_LENGTH} characters`);
  let payload: string;
  if (text.startsWith(TOKEN_PREFIX)) {
    const body = text.slice(TOKEN_PREFIX.length);
    const dot = body.lastIndexOf('.');
    if (dot < 0) throw new RangeError('replay token is damaged (its checksum is missing: copy the whole token)');
    payload = body.slice(0, dot);
    if (checksum(payload) !== body.slice(dot + 1)) throw new RangeError('replay token is damaged (checksum mismatch: copy the whole token)');
  } else if (OLDER_TOKEN_PREFIXES.some((p) => text.startsWith(p))) {
    throw new RangeError(`replay token of an older convsim (${text.slice(0, 9)}): its schedule was recorded before state changes ran at QEMU's grain and cannot replay on this version (${TOKEN_PREFIX}); run convsim explore again`);
  } else {
    throw new RangeError(`not a convsim replay token (expected it to start with ${TOKEN_PREFIX})`);
  }
  if (!/^[A-Za-z0-9_-]*$/.test(payload)) throw new RangeError('replay token is damaged (not base64url)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new RangeError('replay token is damaged (not base64url JSON)');
  }
  checkCase(parsed);
  return parsed as ExploreCase;
}
