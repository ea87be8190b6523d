/**
 * The machine options of `explore` and `run`, parsed in-process: every bad
 * value is one UsageError line naming the option and what is allowed;
 * good values reach the configuration (and so the replay token).
 */
import { describe, expect, it } from 'vitest';
import { parseExploreOptions } from '../../src/cli/commands/explore.js';
import { parseRunOptions } from '../../src/cli/commands/run.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { decodeToken, encodeToken } from '../../src/explore/explore-case.js';
import { iterationCase } from '../../src/explore/iteration-task.js';

const bad: Array<[string[], RegExp]> = [
  [['--layout', 'moon'], /--layout: "moon" is not one of flat, x86, random/],
  [['--faults', '2'], /--faults: "2" must be a number from 0 to 1/],
  [['--faults', 'lots'], /--faults: "lots" must be a number from 0 to 1/],
  [['--fault-kinds', 'map'], /--fault-kinds: needs --faults RATE/],
  [['--faults', '0.1', '--fault-kinds', 'map,bogus'], /--fault-kinds: "bogus" is not one of map, unmap, attributes, discard/],
  [['--registration', 'sometimes'], /--registration: "sometimes" is not one of racy, serialized/],
  [['--conversion-lock', 'giant'], /--conversion-lock: "giant" is not one of none, bql, rba-mutex/],
  [['--bitmap-ops', 'locked'], /--bitmap-ops: "locked" is not one of nonatomic, atomic/],
  [['--listener-list', 'srcu'], /--listener-list: "srcu" is not one of free, rcu/],
  [['--protocol', 'v7'], /--protocol: "v7" is not one of merged, fixed/],
  [['--rollback', 'partial'], /--rollback: "partial" is not one of none, listener, full/],
  [['--containers', 'type1:65535:7'], /--containers: "type1:65535:7" is not type1, type1:N, type1:auto or iommufd/],
  [['--containers', 'iommufd:5'], /--containers: only type1 takes a limit/],
  [['--guest-mem', '3M'], /--guest-mem: 3M must be a multiple of 2M/],
  [['--vcpus', '0'], /--vcpus: "0" must be an integer from 1 to 64/],
  [['--in-flight', 'x'], /--in-flight: "x" must be an integer from 1 to 1024/],
];

describe('machine options', () => {
  for (const [args, message] of bad) {
    it(`explore ${args.join(' ')}: one line naming the option`, () => {
      expect(() => parseExploreOptions(args)).toThrow(UsageError);
      expect(() => parseExploreOptions(args)).toThrow(message);
    });
  }

  it('run takes the same bad values with the same messages', () => {
    for (const [args, message] of bad) {
      if (args[0] === '--guest-mem' || args[0] === '--vcpus' || args[0] === '--in-flight' || args[0] === '--rollback') continue;
      // run's option table says itself that --fault-kinds goes with --faults.
      expect(() => parseRunOptions(args), args.join(' ')).toThrow(args[0] === '--fault-kinds' && args.length === 2 ? /--fault-kinds .*--faults/ : message);
    }
  });

  it('--vary is the default, --no-vary and --mutant keep the machine fixed, and both together are refused', () => {
    expect(parseExploreOptions([]).vary).toBe(true);
    expect(parseExploreOptions(['--no-vary']).vary).toBe(false);
    expect(parseExploreOptions(['--mutant', 'register-race']).vary).toBe(false);
    expect(parseExploreOptions(['--mutant', 'register-race', '--vary']).vary).toBe(true);
    expect(() => parseExploreOptions(['--vary', '--no-vary'])).toThrow(/give one of them/);
  });

  it('the machine drawn by --vary is in the token: a replay rebuilds it exactly', () => {
    const o = parseExploreOptions(['--layout', 'random', '--faults', '0.01', '--rollback', 'full']);
    const c = iterationCase({ workload: 'storm', strategy: 'random', depth: 2, expectedSteps: 100, machine: o.machine, vary: o.vary }, 42);
    expect(c.config.layout?.name).toBe('random');
    expect(c.config.rollback).toBe('full');
    expect(c.config.faults).toEqual({ rate: 0.01, kinds: ['map', 'attributes', 'discard'] });
    expect(decodeToken(encodeToken(c))).toEqual(c);
  });

  it('run --layout x86 registers one listener per section: two per container', () => {
    const { config } = parseRunOptions(['--layout', 'x86', '--guest-mem', '256M']);
    expect(config.layout?.vfio.map((s) => s.length)).toEqual([2, 2]);
    expect(config.layout?.vfio[0]?.[1]).toEqual({ offset: 128 * 1024 * 1024, size: 128 * 1024 * 1024, iova: 4 * 1024 ** 3 });
  });
});
