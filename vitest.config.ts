import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that assert a wall-clock bound or act after a fixed delay (a 5 s
 * broken-run bound, SIGINT after 3 s, a progress line after 10 s, a
 * --trace-window in seconds, per-operation time limits, stress workers with
 * deadlines). They run one at a time, after everything else, so a second
 * test file never competes with them for the two cores.
 */
const TIMED = [
  'test/integration/run.test.ts',
  'test/integration/trace.test.ts',
  'test/integration/mailbox.test.ts',
  'test/unit/core-vfio.test.ts',
  'test/unit/mapping-store.test.ts',
  'test/unit/run-sampler.test.ts',
];

/**
 * The slowest files (about 10-40 s each on this 2-core machine), longest first. Two workers
 * finish soonest when the long files start first; vitest orders by the durations it cached
 * on an earlier run, and a fresh `npm ci` has none, so it would start with the largest
 * files, not the slowest, and could leave readme-examples (the longest) for last.
 */
const SLOWEST_FIRST = [
  'test/readme-examples.test.ts',
  'test/explore/zoo.test.ts',
  'test/explore/correct-protocol.test.ts',
  'test/cli-ops.test.ts',
  'test/explore/cli.test.ts',
  'test/cli-first-contact.test.ts',
  'test/explore/verify.test.ts',
  'test/explore/shard-examples.test.ts',
  'test/explore/interrupt.test.ts',
  'test/property/rba-rollback.property.test.ts',
  'test/explore/protocol-policies.test.ts',
];

class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification): number => {
      const at = SLOWEST_FIRST.findIndex((path) => file.moduleId.endsWith(`/${path}`));
      return at < 0 ? SLOWEST_FIRST.length : at;
    };
    return sorted.map((file, at) => ({ file, at, rank: rank(file) }))
      .sort((a, b) => a.rank - b.rank || a.at - b.at)
      .map(({ file }) => file);
  }
}

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    sequence: { sequencer: SlowestFirst },
    projects: [
      {
        extends: true,
        // Everything else: two files at a time (vitest's default in `run` mode is one worker per
        // core minus one, i.e. a single worker on this 2-core machine, which left a core idle
        // while one file waited on its CLI child processes). Worker threads rather than forked
        // processes: quicker to start per file (26 unit and property files: 22 s instead of 28-33 s).
        test: { name: 'parallel', include: ['test/**/*.test.ts'], exclude: TIMED, pool: 'threads', maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'timed', include: TIMED, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
