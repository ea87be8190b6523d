/** `convsim replay TOKEN|FILE [--json]`: run a replay token again, exactly. */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { decodeToken, runCase, TOKEN_PREFIXES, type ExploreCase } from '../../explore/explore-case.js';
import { deterministicChromeTrace } from '../../explore/deterministic-chrome-trace.js';
import { story } from '../../explore/story.js';
import type { DeterministicOutcome } from '../../runtime/deterministic/deterministic-run.js';
import { firstFailure } from '../../explore/failure.js';
import { parseCommandLine } from '../command-line.js';
import { checkWritable } from '../check-writable.js';
import { FAILURE_DIR, newestFailureToken } from '../failure-tokens.js';
import { readInputFile } from '../read-input-file.js';
import { oneLine, showValue } from '../show-value.js';
import { EXIT_OK, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';

export const REPLAY_HELP = `convsim replay TOKEN|FILE|DIR|--last [--json] [--trace FILE]
  Run a replay token (from explore or shrink, a file holding one, the newest
  failure-*.token of a directory, or with --last of .convsim/) again,
  with the trace recorded: prints the violated invariant (or "no violation"),
  the traceHash, the steps and the numbered story. The same token gives the
  same trace and traceHash every time. --trace writes the run as a Chrome
  trace (the format of convsim run --trace; one step = 1 us), for Perfetto.
  Exit: 1 the violation reproduces, 0 no violation, 2 bad token or unreadable file.`;

/**
 * The case named on a command line: a token, the path of a file holding one
 * (the first line that is a token, else the whole text), a directory (its
 * newest failure token), or with `last` the newest failure in `.convsim/`.
 * @throws UsageError (one line) for an unreadable file or a damaged token.
 */
export function readCaseArgument(command: string, argument: string | undefined, last = false): { case: ExploreCase; token: string; source: string } {
  if (last === (argument !== undefined)) throw new UsageError(`${command}: give exactly one TOKEN, FILE or DIRECTORY, or --last`);
  let text = argument ?? '';
  let source = 'argument';
  if (!TOKEN_PREFIXES.some((prefix) => text.trim().startsWith(prefix))) {
    source = last ? newestFailureToken(command, FAILURE_DIR) : text;
    if (!last && isDirectory(source)) source = newestFailureToken(command, source);
    if (!last && !existsSync(source)) {
      throw new UsageError(`${command}: ${showValue(source)} is neither a replay token (${TOKEN_PREFIXES[0]}...) nor a file or directory`);
    }
    text = readInputFile(command, source);
    text = text.split(/\r?\n/).find((line) => TOKEN_PREFIXES.some((prefix) => line.trim().startsWith(prefix))) ?? text;
  }
  try {
    return { case: decodeToken(text), token: text.trim(), source };
  } catch (error) {
    throw new UsageError(`${command}: ${source === 'argument' ? '' : `${showValue(source)}: `}${error instanceof Error ? oneLine(error.message) : String(error)}`);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export interface ReplayReport {
  readonly found: boolean;
  readonly invariant: string | null;
  readonly message: string | null;
  readonly outcome: DeterministicOutcome;
  readonly traceHash: string;
  /** Deliveries made (up to and including the violation). */
  readonly steps: number;
  /** The numbered story up to the violation (empty when nothing was found). */
  readonly story: string[];
  readonly mutant: string | null;
  readonly workload: string;
  readonly strategy: string;
}

/** Run a case once with its trace recorded (what `convsim replay` prints). */
export function replayCase(c: ExploreCase): ReplayReport {
  const r = runCase(c, { recordTrace: true });
  const first = firstFailure(r);
  // A deadlock is a failure too (as explore reports it), with no invariant of its own.
  const deadlock = first === undefined && r.outcome === 'deadlock';
  const found = first !== undefined || deadlock;
  return {
    found,
    invariant: first?.name ?? (deadlock ? 'deadlock' : null),
    message: first?.message ?? (deadlock ? 'the actors stopped with a vCPU still waiting for a reply' : null),
    outcome: r.outcome,
    traceHash: r.traceHash,
    steps: r.steps,
    story: found ? story(r) : [],
    mutant: c.mutant ?? null,
    workload: c.config.workload,
    strategy: c.strategy,
  };
}

export function replayCommand(argv: string[]): number {
  const { values, positionals } = parseCommandLine('replay', argv, {
    json: { type: 'boolean', default: false },
    trace: { type: 'string' },
    last: { type: 'boolean', default: false },
  });
  if (positionals.length > 1) throw new UsageError('replay: give exactly one TOKEN, FILE or DIRECTORY, or --last');
  const { case: c } = readCaseArgument('replay', positionals[0], values.last);
  if (values.trace !== undefined) checkWritable('trace', values.trace);
  let report: ReplayReport;
  try {
    report = replayCase(c);
  } catch (error) {
    // A token that decodes but describes no runnable case (edited by hand, or from another version).
    throw new UsageError(`replay: the token does not describe a runnable case (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
  }
  if (values.trace !== undefined) {
    const title = `convsim replay (${c.config.workload}${c.mutant === undefined ? '' : `, mutant ${c.mutant}`})`;
    writeFileSync(values.trace, JSON.stringify(deterministicChromeTrace(runCase(c, { recordTrace: true }), title)));
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const what = report.found ? `${report.invariant}: ${report.message}` : 'no violation';
    process.stdout.write([
      `replay: ${what}`,
      `traceHash ${report.traceHash}, ${report.steps} deliveries (${report.outcome}); workload ${report.workload}, schedule ${report.strategy}${report.mutant === null ? '' : `, mutant ${report.mutant}`}`,
      ...(report.found ? ['', ...report.story] : []),
      '',
    ].join('\n'));
  }
  return report.found ? EXIT_VIOLATIONS : EXIT_OK;
}
