/** `convsim replay TOKEN|FILE [--json]`: run a replay token again, exactly. */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { decodeToken, runCase, type ExploreCase } from '../../explore/explore-case.js';
import { deterministicChromeTrace } from '../../explore/deterministic-chrome-trace.js';
import { story } from '../../explore/story.js';
import type { DeterministicOutcome } from '../../runtime/deterministic/deterministic-run.js';
import { firstFailure } from '../../explore/failure.js';
import { EXIT_OK, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';

export const REPLAY_HELP = `convsim replay TOKEN|FILE [--json] [--trace FILE]
  Run a replay token (from explore or shrink, or a file holding one) again,
  with the trace recorded: prints the violated invariant (or "no violation"),
  the traceHash, the steps and the numbered story. The same token gives the
  same trace and traceHash every time. --trace writes the run as a Chrome
  trace (the format of convsim run --trace; one step = 1 us), for Perfetto.
  Exit: 1 the violation reproduces, 0 no violation, 2 bad token or unreadable file.`;

const TOKEN_START = 'convsim1.';

/**
 * The case named by a command-line argument: a token, or the path of a file
 * holding one (the first line that is a token, else the whole text).
 * @throws UsageError (one line) for an unreadable file or a damaged token.
 */
export function readCaseArgument(command: string, argument: string): { case: ExploreCase; token: string; source: string } {
  let text = argument;
  let source = 'argument';
  if (!argument.trim().startsWith(TOKEN_START)) {
    try {
      text = readFileSync(argument, 'utf8');
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new UsageError(`${command}: ${JSON.stringify(argument)} is neither a replay token (${TOKEN_START}...) nor a readable file${typeof code === 'string' ? ` (${code})` : ''}`);
    }
    source = argument;
    text = text.split(/\r?\n/).find((line) => line.trim().startsWith(TOKEN_START)) ?? text;
  }
  try {
    return { case: decodeToken(text), token: text.trim(), source };
  } catch (error) {
    throw new UsageError(`${command}: ${error instanceof Error ? error.message : String(error)}`);
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
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, trace: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError('replay: give exactly one TOKEN or FILE');
  const { case: c } = readCaseArgument('replay', positionals[0]!);
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
