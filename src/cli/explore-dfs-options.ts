/**
 * The options of a systematic search (`explore --strategy dfs`, `verify
 * --strategy dfs`) and the small machine it explores by default.
 */
import { autoDmaEntryLimit } from '../actors/device-realize.js';
import { DEFAULT_SPLIT_DEPTH, PREEMPTION_UNITS, REDUCTIONS, type PreemptionUnit, type Reduction } from '../explore/dfs/bounded-dfs.js';
import type { MachineChoice } from '../explore/machine.js';
import { MiB } from '../core/units.js';
import { parseChoice, parseCount } from './option-values.js';
import { UsageError } from './usage-error.js';

/** `util.parseArgs` definitions. */
export const DFS_OPTIONS = {
  'preemption-bound': { type: 'string' },
  'preemption-unit': { type: 'string' },
  por: { type: 'string' },
  'device-accesses': { type: 'string' },
  hotplugs: { type: 'string' },
  'split-depth': { type: 'string' },
  'state-cache': { type: 'string' },
} as const;

export type DfsOptionNames = keyof typeof DFS_OPTIONS;

export interface DfsOptionValues {
  /** Undefined: unbounded. */
  readonly preemptionBound: number | undefined;
  readonly preemptionUnit: PreemptionUnit;
  readonly reduction: Reduction;
  readonly deviceAccesses: number;
  readonly hotplugs: number;
  readonly splitDepth: number;
  readonly stateCache: boolean;
}

/** The small machine's guest: 16 MiB (the smallest the storm accepts) keeps an execution near a millisecond. */
export const DFS_GUEST_MEM = 16 * MiB;
/** The small machine's conversions: 3 per vCPU. */
export const DFS_CONVERSIONS = 6;
export const DEFAULT_PREEMPTION_BOUND = 2;

export const DFS_HELP = `  --preemption-bound K preemptions per execution (default ${DEFAULT_PREEMPTION_BOUND}; none = unbounded). A preemption
                       is a choice of another thread while the one that just ran still has a
                       step waiting (CHESS's context bounding); a device never does
  --preemption-unit U  ${PREEMPTION_UNITS.join('|')} (default thread): a thread is the QEMU thread a step
                       runs for (a conversion's every message is its vCPU's, a hot-plug's the
                       main loop's); actor counts by receiving actor, which leaves nearly
                       every choice free
  --por R              ${REDUCTIONS.join('|')} (default sleep-sets): partial-order reduction; steps
                       of different actors touching disjoint shared memory commute
  --device-accesses N  DMA accesses each device makes on its own, each placed anywhere (default 1)
  --hotplugs N         hot-plug cycles placed anywhere (default 1)
  --split-depth D      branching levels above the subtrees --shard deals out (default ${DEFAULT_SPLIT_DEPTH})
  --state-cache C      on|off (default on): do not explore again a state already explored with
                       as many preemptions to spare (states named by the partial order of the
                       steps that led there, so equivalent prefixes meet; kept per subtree)
  The machine defaults to the small one: 2 vCPUs, 3 conversions each, one type1
  container, a 16 MiB guest, one hot-plug, the seed's workload (--seed, default 1).`;

/** Parse the systematic search's options; sampling-only options are refused. */
export function parseDfsOptions(values: { readonly [K in DfsOptionNames]?: string | undefined } & { readonly 'per-order'?: boolean | undefined; readonly 'keep-going'?: boolean | undefined }, argv: readonly string[]): DfsOptionValues {
  for (const option of ['iterations', 'depth', 'expected-steps']) {
    if (argv.some((a) => a === `--${option}` || a.startsWith(`--${option}=`))) {
      throw new UsageError(`--${option} is for sampling strategies: --strategy dfs explores every schedule (bound it with --preemption-bound or --time-budget)`);
    }
  }
  if (values['keep-going'] === true) throw new UsageError('--keep-going is for sampling strategies: --strategy dfs stops at its first failure');
  if (values['per-order'] === true) throw new UsageError('--per-order is for sampling strategies: run --strategy dfs once per --order');
  const bound = values['preemption-bound'];
  return {
    preemptionBound: bound === 'none' ? undefined : bound === undefined ? DEFAULT_PREEMPTION_BOUND : parseCount('preemption-bound', bound, 0, 64),
    preemptionUnit: values['preemption-unit'] === undefined ? 'thread' : parseChoice('preemption-unit', values['preemption-unit'], PREEMPTION_UNITS),
    reduction: values.por === undefined ? 'sleep-sets' : parseChoice('por', values.por, REDUCTIONS),
    deviceAccesses: values['device-accesses'] === undefined ? 1 : parseCount('device-accesses', values['device-accesses'], 0, 64),
    hotplugs: values.hotplugs === undefined ? 1 : parseCount('hotplugs', values.hotplugs, 0, 64),
    splitDepth: values['split-depth'] === undefined ? DEFAULT_SPLIT_DEPTH : parseCount('split-depth', values['split-depth'], 1, 64),
    stateCache: values['state-cache'] === undefined ? true : parseChoice('state-cache', values['state-cache'], ['on', 'off']) === 'on',
  };
}

/** A systematic search's option given without `--strategy dfs`: one line saying so. */
export function rejectDfsOnly(values: { readonly [K in DfsOptionNames]?: string | undefined }): void {
  for (const option of Object.keys(DFS_OPTIONS) as DfsOptionNames[]) {
    if (values[option] !== undefined) throw new UsageError(`--${option} is an option of the systematic search: add --strategy dfs`);
  }
}

/** The small machine, with what the user fixed on top. */
export function dfsMachine(given: MachineChoice, maxMemslots: number): MachineChoice {
  const guestMem = given.guestMem ?? DFS_GUEST_MEM;
  return {
    vcpus: 2,
    containers: [{ backend: 'type1', dmaEntryLimit: autoDmaEntryLimit({ guestMem, gpaBase: 0, blockSize: 4096, maxMemslots }), limitSource: 'auto' }],
    guestMem,
    ...given,
  };
}
