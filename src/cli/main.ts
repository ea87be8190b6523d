#!/usr/bin/env node
/**
 * `convsim`: entry point. Dispatches to a command; turns user mistakes into
 * one line on stderr and exit status 2.
 */
import { opsCommand, OPS_HELP } from './commands/ops.js';
import { benchCommand, BENCH_HELP } from './commands/bench.js';
import { runCommand, RUN_HELP } from './commands/run.js';
import { exploreCommand, EXPLORE_HELP } from './commands/explore.js';
import { replayCommand, REPLAY_HELP } from './commands/replay.js';
import { shrinkCommand, SHRINK_HELP } from './commands/shrink.js';
import { mutantsCommand, MUTANTS_HELP } from './commands/mutants.js';
import { EXIT_USAGE, UsageError } from './usage-error.js';

type Command = (argv: string[]) => number | Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  run: { run: runCommand, help: RUN_HELP },
  ops: { run: opsCommand, help: OPS_HELP },
  bench: { run: benchCommand, help: BENCH_HELP },
  explore: { run: exploreCommand, help: EXPLORE_HELP },
  replay: { run: replayCommand, help: REPLAY_HELP },
  shrink: { run: shrinkCommand, help: SHRINK_HELP },
  mutants: { run: mutantsCommand, help: MUTANTS_HELP },
};

function usage(): string {
  return [
    'convsim: a simulation of QEMU/KVM/VFIO private<->shared memory conversion',
    '',
    ...Object.values(COMMANDS).map((c) => c.help),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    throw new UsageError(`unknown command ${JSON.stringify(name)} (allowed: ${Object.keys(COMMANDS).join(', ')})`);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help}\n`);
    return 0;
  }
  return command.run(rest);
}

/** node's parseArgs errors are user errors too. */
function isArgError(error: unknown): error is Error {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || isArgError(error)) {
      process.stderr.write(`convsim: ${error.message}\n`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    process.stderr.write(`convsim: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 70;
  },
);
