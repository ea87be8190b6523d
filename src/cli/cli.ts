/**
 * The command line as a function: dispatches to a command and turns every
 * failure into an exit status and (for user mistakes) one line on stderr.
 * `main.ts` only calls it; tests call it in-process.
 */
import { opsCommand, OPS_HELP } from './commands/ops.js';
import { benchCommand, BENCH_HELP } from './commands/bench.js';
import { runCommand, RUN_HELP } from './commands/run.js';
import { exploreCommand, EXPLORE_HELP } from './commands/explore.js';
import { replayCommand, REPLAY_HELP } from './commands/replay.js';
import { shrinkCommand, SHRINK_HELP } from './commands/shrink.js';
import { mutantsCommand, MUTANTS_HELP } from './commands/mutants.js';
import { invariantsCommand, INVARIANTS_HELP } from './commands/invariants.js';
import { verifyCommand, VERIFY_HELP } from './commands/verify.js';
import { mergeCommand, MERGE_HELP } from './commands/merge.js';
import { didYouMean } from './command-line.js';
import { convsimVersion } from './convsim-version.js';
import { oneLine, showValue } from './show-value.js';
import { EXIT_USAGE, UsageError } from './usage-error.js';

type Command = (argv: string[]) => number | Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  run: { run: runCommand, help: RUN_HELP },
  ops: { run: opsCommand, help: OPS_HELP },
  bench: { run: benchCommand, help: BENCH_HELP },
  explore: { run: exploreCommand, help: EXPLORE_HELP },
  verify: { run: verifyCommand, help: VERIFY_HELP },
  merge: { run: mergeCommand, help: MERGE_HELP },
  replay: { run: replayCommand, help: REPLAY_HELP },
  shrink: { run: shrinkCommand, help: SHRINK_HELP },
  mutants: { run: mutantsCommand, help: MUTANTS_HELP },
  invariants: { run: invariantsCommand, help: INVARIANTS_HELP },
};

/** Exit status of an internal error (a bug in convsim): EX_SOFTWARE. */
export const EXIT_INTERNAL = 70;


function usage(): string {
  return [
    `convsim ${convsimVersion()}: a simulation of QEMU/KVM/VFIO private<->shared memory conversion`,
    'usage: convsim COMMAND [options]   (convsim COMMAND --help for its options; convsim --version)',
    '',
    ...Object.values(COMMANDS).map((c) => c.help),
  ].join('\n');
}

async function dispatch(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`convsim ${convsimVersion()}\n`);
    return 0;
  }
  if (name === undefined) {
    // Misuse: the usage goes to stderr, so nothing lands on stdout.
    process.stderr.write(`${usage()}\n`);
    return EXIT_USAGE;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    const guess = didYouMean(name, Object.keys(COMMANDS));
    throw new UsageError(`unknown command ${showValue(name)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}; commands: ${Object.keys(COMMANDS).join(', ')}`);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help}\n`);
    return 0;
  }
  return command.run(rest);
}

/** Whether an error is the user's: a UsageError, or one of node's parseArgs errors. */
export function isUserError(error: unknown): error is Error {
  if (error instanceof UsageError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/** The exit status and stderr line of an error thrown by a command. */
export function describeFailure(error: unknown): { code: number; message: string } {
  if (isUserError(error)) return { code: EXIT_USAGE, message: `convsim: ${oneLine(error.message, 400)}` };
  return { code: EXIT_INTERNAL, message: `convsim: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}` };
}

/** Run convsim with `argv` (without `node` and the script); resolves to the exit status. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (error) {
    const { code, message } = describeFailure(error);
    process.stderr.write(`${message}\n`);
    return code;
  }
}
