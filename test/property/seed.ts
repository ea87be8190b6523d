/**
 * Seed handling for fast-check property tests.
 *
 * - `CONVSIM_SEED=<integer>` fixes the seed (to reproduce a failure);
 *   otherwise one is derived from `Date.now()` once per test file.
 * - `CONVSIM_NUM_RUNS=<integer>` sets the number of runs (default 200).
 *
 * The seed is printed with `console.log` and included in the failure
 * message of `assertProperty`, so any failing run can be replayed with
 * `CONVSIM_SEED=<seed> npx vitest run <file>`.
 */
import fc from 'fast-check';
import type { IAsyncProperty, IProperty, Parameters } from 'fast-check';

const DEFAULT_NUM_RUNS = 200;

let cachedSeed: number | undefined;

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const v = Number(raw);
  if (!Number.isSafeInteger(v)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return v;
}

/** The property-test seed: `CONVSIM_SEED` if set, else derived from `Date.now()` (stable within a test file). */
export function propertySeed(): number {
  if (cachedSeed === undefined) {
    const fromEnv = envInt('CONVSIM_SEED');
    cachedSeed = fromEnv ?? Date.now() % 0x7fffffff;
    console.log(`[property] seed=${cachedSeed}${fromEnv === undefined ? ' (from Date.now(); set CONVSIM_SEED to reproduce)' : ' (from CONVSIM_SEED)'}`);
  }
  return cachedSeed;
}

/** fast-check parameters: `{ seed, numRuns }` (numRuns from `CONVSIM_NUM_RUNS`, default 200). */
export function propertyParams(): { seed: number; numRuns: number } {
  const numRuns = envInt('CONVSIM_NUM_RUNS') ?? DEFAULT_NUM_RUNS;
  if (numRuns < 1) throw new Error(`CONVSIM_NUM_RUNS must be >= 1, got ${numRuns}`);
  return { seed: propertySeed(), numRuns };
}

function withSeed(name: string, seed: number, err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  return new Error(`property "${name}" failed with seed ${seed} (reproduce: CONVSIM_SEED=${seed})\n${msg}`, { cause: err });
}

/**
 * `fc.assert` with `propertyParams()` (plus `extra` overrides), logging the
 * seed and putting it in the failure message.
 */
export function assertProperty<Ts>(name: string, property: IProperty<Ts>, extra?: Parameters<Ts>): void {
  const params = { ...propertyParams(), ...extra };
  console.log(`[property] ${name}: seed=${params.seed} numRuns=${params.numRuns}`);
  try {
    fc.assert(property, params);
  } catch (err) {
    throw withSeed(name, params.seed, err);
  }
}

/** Async variant of {@link assertProperty}. */
export async function assertAsyncProperty<Ts>(
  name: string,
  property: IAsyncProperty<Ts>,
  extra?: Parameters<Ts>,
): Promise<void> {
  const params = { ...propertyParams(), ...extra };
  console.log(`[property] ${name}: seed=${params.seed} numRuns=${params.numRuns}`);
  try {
    await fc.assert(property, params);
  } catch (err) {
    throw withSeed(name, params.seed, err);
  }
}
