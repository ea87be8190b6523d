/**
 * Conformance vectors (`test/vectors/*.json`): an ops script wrapped with
 * what it must produce, `{description, input: {config, ops}, expect}`.
 * `convsim ops` runs a vector's `input`; with `--check` it compares the
 * output with `expect` by the rules below.
 *
 * Comparison rules: `results`, `events`, `final` (each key given) by deep
 * equality; a `vmStop` event without `reason` in the expectation matches
 * any reason; `violations` as the list of `{invariant, op}`; `exitCode` 0
 * without violations, 1 with; `eventCount`, `eventsHead` and `eventsTail`
 * stand in for the full list of a huge run.
 */
import { isDeepStrictEqual } from 'node:util';
import type { OpsOutput } from './run-ops.js';

/** What a vector expects (every key but `exitCode` and `results` optional). */
export interface VectorExpectation {
  readonly exitCode: number;
  readonly results: readonly unknown[];
  readonly events?: ReadonlyArray<Record<string, unknown>>;
  readonly final?: Readonly<Record<string, unknown>>;
  readonly violations?: ReadonlyArray<{ readonly invariant: string; readonly op: number }>;
  readonly eventCount?: number;
  readonly eventsHead?: ReadonlyArray<Record<string, unknown>>;
  readonly eventsTail?: ReadonlyArray<Record<string, unknown>>;
}

/** A document is a vector when it has `input` and `expect` (and no `ops`). */
export function isVectorDocument(doc: unknown): doc is { input: unknown; expect: unknown; description?: unknown } {
  return typeof doc === 'object' && doc !== null && !Array.isArray(doc) &&
    Object.hasOwn(doc, 'input') && Object.hasOwn(doc, 'expect') && !Object.hasOwn(doc, 'ops');
}

/** Events with the free-text reason of `vmStop` dropped where the expectation gives none. */
function normaliseEvents(actual: readonly object[], expected: ReadonlyArray<Record<string, unknown>>): object[] {
  return actual.map((event, i) => {
    const e = event as Record<string, unknown>;
    const want = expected[i];
    if (e['kind'] === 'vmStop' && want?.['kind'] === 'vmStop' && !Object.hasOwn(want, 'reason')) return { kind: 'vmStop' };
    return e;
  });
}

/** The ways `output` differs from `expect`, one short phrase each (empty: it matches). */
export function compareWithVector(output: OpsOutput, expect: VectorExpectation): string[] {
  const differences: string[] = [];
  const same = (what: string, actual: unknown, wanted: unknown): void => {
    if (!isDeepStrictEqual(actual, wanted)) differences.push(`${what} differ`);
  };
  same('results', output.results, expect.results);
  if (expect.events !== undefined) same('events', normaliseEvents(output.events, expect.events), expect.events);
  if (expect.eventCount !== undefined) {
    const count = output.events.length + (output.eventsOmitted?.count ?? 0);
    if (count !== expect.eventCount) differences.push(`event count ${count}, expected ${expect.eventCount}`);
  }
  if (expect.eventsHead !== undefined) {
    same('first events', normaliseEvents(output.events.slice(0, expect.eventsHead.length), expect.eventsHead), expect.eventsHead);
  }
  if (expect.eventsTail !== undefined) {
    same('last events', normaliseEvents(output.events.slice(-expect.eventsTail.length), expect.eventsTail), expect.eventsTail);
  }
  if (expect.final !== undefined) {
    for (const [key, value] of Object.entries(expect.final)) {
      same(`final.${key}`, (output.final as unknown as Record<string, unknown>)[key], value);
    }
  }
  if (expect.violations !== undefined) {
    same('violations', output.violations.map((v) => ({ invariant: v.invariant, op: v.op })), expect.violations);
  }
  const exitCode = output.violations.length > 0 ? 1 : 0;
  if (exitCode !== expect.exitCode) differences.push(`exit code ${exitCode}, expected ${expect.exitCode}`);
  return differences;
}
