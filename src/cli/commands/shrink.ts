/** `convsim shrink TOKEN|FILE [--json]`: the shortest failing story. */
import { encodeToken, type ExploreCase } from '../../explore/explore-case.js';
import { describeShrinkProgress, shrinkCase, type ShrinkResult } from '../../explore/shrink.js';
import { ProgressLine } from '../progress.js';
import { story } from '../../explore/story.js';
import { firstFailure } from '../../explore/failure.js';
import { EXIT_OK, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';
import { readCaseArgument } from './replay.js';
import { parseCommandLine } from '../command-line.js';

export const SHRINK_HELP = `convsim shrink TOKEN|FILE|DIR|--last [--json]
  Reduce a failing case while the same invariant still fails first: fewer
  conversions, vCPUs and containers, fewer workload actions, fewer and
  shorter deviations from the default schedule. Prints the minimal story
  (numbered), the shrunk replay token, the invariant and the attempts.
  Exit: 1 a failure was shrunk, 0 the case does not fail, 2 bad token or file.`;

export interface ShrinkReport {
  readonly invariant: string;
  readonly message: string;
  readonly replay: string;
  readonly traceHash: string;
  /** Deliveries of the shrunk case up to its violation. */
  readonly steps: number;
  readonly story: string[];
  /** Numbered lines of the story. */
  readonly storySteps: number;
  readonly attempts: number;
  readonly original: { readonly replay: string; readonly conversions: number; readonly vcpus: number; readonly containers: number; readonly deviations: number | null };
  readonly shrunk: { readonly conversions: number; readonly vcpus: number; readonly containers: number; readonly deviations: number };
}

/**
 * Shrink with a progress line on stderr (when `show`): on a terminal once
 * shrinking has lasted a second, elsewhere a line every 10 s; what is
 * known so far (the reduction tried, attempts, the case's size, where it
 * fails) and the time elapsed. The line is erased when shrinking ends.
 */
export function shrinkWithProgress(c: ExploreCase, show: boolean): ShrinkResult {
  if (!show) return shrinkCase(c);
  const progress = new ProgressLine(0);
  const original = { conversions: c.config.conversions, vcpus: c.config.vcpus, containers: c.config.containers.length };
  try {
    return shrinkCase(c, undefined, (p) => progress.status(describeShrinkProgress(p, original)));
  } finally {
    progress.clear();
  }
}

/** The numbered lines of a story (the closing `=>` line is not a step). */
export function storySteps(lines: readonly string[]): number {
  return lines.filter((line) => /^\s*\d+\. /.test(line)).length;
}

/** Shrink, and describe the result as `convsim shrink` and `convsim explore` print it. */
/**
 * A failure reported as found, not shrunk (a deadlock: shrinking needs an
 * invariant that fails); its story is to be had by replaying the token.
 */
export function unshrunkReport(c: ExploreCase, found: { readonly invariant: string; readonly message: string; readonly token: string; readonly traceHash: string; readonly steps: number },
  deviations: number | null): ShrinkReport {
  const size = { conversions: c.config.conversions, vcpus: c.config.vcpus, containers: c.config.containers.length };
  return {
    invariant: found.invariant, message: found.message, replay: found.token, traceHash: found.traceHash, steps: found.steps,
    story: [`(a ${found.invariant} is not shrunk: replay the token for its full story)`], storySteps: 0, attempts: 0,
    original: { replay: found.token, ...size, deviations }, shrunk: { ...size, deviations: deviations ?? 0 },
  };
}

export function shrinkReport(c: ExploreCase, shrunk: ShrinkResult = shrinkCase(c)): ShrinkReport {
  const lines = story(shrunk.result);
  return {
    invariant: shrunk.invariant,
    message: firstFailure(shrunk.result)?.message ?? '',
    replay: encodeToken(shrunk.shrunk),
    traceHash: shrunk.result.traceHash,
    steps: shrunk.result.steps,
    story: lines,
    storySteps: storySteps(lines),
    attempts: shrunk.attempts,
    original: {
      replay: encodeToken(c),
      conversions: c.config.conversions,
      vcpus: c.config.vcpus,
      containers: c.config.containers.length,
      deviations: c.deviations?.length ?? null,
    },
    shrunk: {
      conversions: shrunk.shrunk.config.conversions,
      vcpus: shrunk.shrunk.config.vcpus,
      containers: shrunk.shrunk.config.containers.length,
      deviations: shrunk.shrunk.deviations?.length ?? 0,
    },
  };
}

/** The human-readable lines of a shrink report (without the story). */
export function shrinkSummary(r: ShrinkReport): string[] {
  const o = r.original;
  const s = r.shrunk;
  return [
    `shrunk in ${r.attempts} attempts: conversions ${o.conversions} -> ${s.conversions}, vCPUs ${o.vcpus} -> ${s.vcpus}, containers ${o.containers} -> ${s.containers}, ` +
      `${s.deviations} deviation(s) from the default order; story of ${r.storySteps} steps (${r.steps} deliveries), traceHash ${r.traceHash}`,
  ];
}

export function shrinkCommand(argv: string[]): number {
  const { values, positionals } = parseCommandLine('shrink', argv, {
    json: { type: 'boolean', default: false },
    last: { type: 'boolean', default: false },
  });
  if (positionals.length > 1) throw new UsageError('shrink: give exactly one TOKEN, FILE or DIRECTORY, or --last');
  const { case: c } = readCaseArgument('shrink', positionals[0], values.last);
  let shrunk: ShrinkResult;
  try {
    shrunk = shrinkWithProgress(c, !values.json);
  } catch (error) {
    if (error instanceof RangeError && /does not fail/.test(error.message)) {
      process.stdout.write(values.json ? `${JSON.stringify({ found: false })}\n` : 'shrink: no violation reproduces: nothing to shrink\n');
      return EXIT_OK;
    }
    throw new UsageError(`shrink: the token does not describe a runnable case (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
  }
  const report = shrinkReport(c, shrunk);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ found: true, ...report })}\n`);
  } else {
    process.stdout.write([
      `shrink: ${report.invariant}: ${report.message}`,
      ...shrinkSummary(report),
      '',
      ...report.story,
      '',
      `replay (shrunk): ${report.replay}`,
      '',
    ].join('\n'));
  }
  return EXIT_VIOLATIONS;
}
