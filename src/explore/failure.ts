/**
 * What a deterministic run found first: an invariant violation, or QEMU
 * ending (`qemu-exit`, `realize-failed`, `qemu-abort`) where the process
 * would be gone. Exploration reports, shrinks and replays both the same way.
 */
import type { DeterministicResult } from '../runtime/deterministic/deterministic-run.js';

export interface Failure {
  /** The invariant, or the fatal outcome. */
  readonly name: string;
  readonly message: string;
  /** The delivery after which it was found. */
  readonly step: number;
}

export function firstFailure(r: DeterministicResult): Failure | undefined {
  const violation = r.violations[0];
  // A fatal outcome that an injected fault explains is how QEMU ends, not a finding.
  const fatal = r.fatal === undefined || r.fatal.injected ? undefined : { name: r.qemuOutcome, message: r.fatal.message, step: r.fatal.step };
  if (violation !== undefined && (fatal === undefined || r.violationStep <= fatal.step)) {
    return { name: violation.invariant, message: violation.message, step: r.violationStep };
  }
  return fatal;
}
