/**
 * One explorable case: a run configuration and a schedule (a seeded
 * strategy, or explicit deviations from the default order). A case
 * serialises to a replay token that reproduces the run exactly.
 */
import type { RunConfig, WorkloadName } from '../actors/run-config.js';
import type { BackingMode } from '../core/guest-memory.js';
import type { InplaceOrder } from '../core/kvm-convert-memory.js';
import { MiB } from '../core/units.js';
import { runDeterministic, type DeterministicResult } from '../runtime/deterministic/deterministic-run.js';
import { DeviationStrategy, PctStrategy, RandomStrategy, type Strategy, type StrategyName } from '../runtime/deterministic/strategy.js';
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
}): RunConfig {
  const guestMem = 64 * MiB;
  const base: RunConfig = {
    vcpus: 2,
    containers: [{ backend: 'type1', dmaEntryLimit: guestMem / 4096 + 1024 }, { backend: 'iommufd', dmaEntryLimit: 0 }],
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
    maxMemslots: 512,
    registrationOrder: 'serialized',
    profile: false,
  };
  if (options.mutant === undefined) return base;
  const mutant = findMutant(options.mutant);
  if (mutant === undefined) throw new RangeError(`unknown mutant ${options.mutant}`);
  return mutant.apply(base);
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
export function runCase(c: ExploreCase, options: { recordTrace?: boolean; recordChoices?: boolean; stopAtViolation?: boolean; maxSteps?: number } = {}): DeterministicResult {
  return runDeterministic(c.config, {
    strategy: strategyOf(c),
    maxSteps: options.maxSteps ?? MAX_STEPS,
    recordTrace: options.recordTrace ?? false,
    recordChoices: options.recordChoices ?? false,
    stopAtViolation: options.stopAtViolation ?? true,
  });
}

/** The token format: `convsim2.` + base64url JSON of the case + `.` + its checksum. */
export const TOKEN_PREFIX = 'convsim2.';
/** Tokens from before the checksum (still accepted, with every field checked). */
const LEGACY_TOKEN_PREFIX = 'convsim1.';
/** Either prefix: what makes a string (or a line of a file) a token. */
export const TOKEN_PREFIXES: readonly string[] = [TOKEN_PREFIX, LEGACY_TOKEN_PREFIX];

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
  } else if (text.startsWith(LEGACY_TOKEN_PREFIX)) {
    payload = text.slice(LEGACY_TOKEN_PREFIX.length);
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
