/**
 * Expected verdicts of `convsim verify` (`--expect FILE`, `--write-expect
 * FILE`): per row and column, `held` or the invariant (or fatal QEMU
 * outcome) found first. Only the deterministic verdicts are expected; the
 * real-thread runs are not reproducible and are never compared.
 *
 * ```json
 * { "schemaVersion": 1,
 *   "made": { "command": "convsim verify --quick --write-expect verify-expected.json", ... },
 *   "cells": { "merged": { "storm": "lost-update", "adversarial": "lost-update" },
 *              "all-fixes": { "storm": "held" } } }
 * ```
 *
 * @module
 */
import { INVARIANT_GLOSSARY } from '../core/invariant-glossary.js';
import { QEMU_OUTCOMES, isFatal } from '../core/qemu-outcome.js';
import type { VerifyColumn, VerifyRow } from '../explore/verify-table.js';
import { parseJsonInput } from './parse-json-input.js';
import { readInputFile } from './read-input-file.js';
import { showValue } from './show-value.js';
import { UsageError } from './usage-error.js';

export const EXPECT_SCHEMA_VERSION = 1;

/** What a cell may be expected to be: held, or what it finds first. */
export const VERDICTS: readonly string[] = ['held', ...Object.keys(INVARIANT_GLOSSARY), ...QEMU_OUTCOMES.filter(isFatal)];

/** Expected verdict by row id, then column id. */
export type Expectations = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** How the expectations were made (what `--write-expect` records), when the file says. */
export interface ExpectationsMade {
  readonly schedules?: number;
  readonly seed?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Read and check an expectations file.
 * @throws UsageError (one line) for an unreadable file, invalid JSON, an unknown row, column or verdict.
 */
export function readExpectations(file: string, rows: readonly VerifyRow[], columns: readonly VerifyColumn[]): { expected: Expectations; made: ExpectationsMade | undefined } {
  const bad = (what: string): never => {
    throw new UsageError(`--expect: ${showValue(file)}: ${what}`);
  };
  const parsed = parseJsonInput(`--expect: ${showValue(file)}`, readInputFile('verify', file));
  if (!isObject(parsed)) return bad('not a JSON object (see convsim verify --help for the format)');
  for (const key of Object.keys(parsed)) {
    if (!['schemaVersion', 'made', 'cells'].includes(key)) bad(`unknown field ${showValue(key)} (fields: schemaVersion, made, cells)`);
  }
  if (parsed['schemaVersion'] !== EXPECT_SCHEMA_VERSION) bad(`schemaVersion ${showValue(parsed['schemaVersion'])} is not ${EXPECT_SCHEMA_VERSION}`);
  const made = parsed['made'];
  if (made !== undefined && !isObject(made)) bad('made: not an object');
  const count = (key: string): number | undefined => {
    const v = (made as Record<string, unknown> | undefined)?.[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) bad(`made.${key}: ${showValue(v)} is not a count`);
    return v as number | undefined;
  };
  const madeSchedules = count('schedules');
  const madeSeed = count('seed');
  const cells = parsed['cells'];
  if (!isObject(cells)) return bad('cells: not an object of rows');
  const out = new Map<string, Map<string, string>>();
  for (const [rowId, byColumn] of Object.entries(cells)) {
    if (!rows.some((r) => r.id === rowId)) bad(`cells.${showValue(rowId)}: unknown row (rows: ${rows.map((r) => r.id).join(', ')})`);
    if (!isObject(byColumn)) return bad(`cells.${rowId}: not an object of columns`);
    const row = new Map<string, string>();
    for (const [columnId, verdict] of Object.entries(byColumn)) {
      if (!columns.some((c) => c.id === columnId)) bad(`cells.${rowId}.${showValue(columnId)}: unknown column (columns: ${columns.map((c) => c.id).join(', ')})`);
      if (typeof verdict !== 'string' || !VERDICTS.includes(verdict)) bad(`cells.${rowId}.${columnId}: ${showValue(verdict)} is not one of ${VERDICTS.join(', ')}`);
      row.set(columnId, verdict as string);
    }
    out.set(rowId, row);
  }
  return {
    expected: out,
    made: made === undefined ? undefined : { ...(madeSchedules === undefined ? {} : { schedules: madeSchedules }), ...(madeSeed === undefined ? {} : { seed: madeSeed }) },
  };
}

/** One finished cell as the comparison sees it. */
export interface ComparedCell {
  readonly row: VerifyRow;
  readonly column: VerifyColumn;
  readonly verdict: string;
  /** How the verdict was reached, for the difference line (e.g. `at schedule 3, .convsim/verify-merged-storm.token`). */
  readonly detail: string;
}

/** One line per cell whose verdict is not the expected one (or that the file does not mention). */
export function compareExpectations(expected: Expectations, file: string, cells: readonly ComparedCell[]): string[] {
  const lines: string[] = [];
  for (const cell of cells) {
    const want = expected.get(cell.row.id)?.get(cell.column.id);
    const where = `${cell.row.label} x ${cell.column.label}`;
    if (want === undefined) lines.push(`${where}: ${file} expects nothing (found ${cell.verdict}${cell.detail})`);
    else if (want !== cell.verdict) lines.push(`${where}: expected ${want}, found ${cell.verdict}${cell.detail}`);
  }
  return lines;
}

/** The expectations file of a run's verdicts (what `--write-expect` writes). */
export function expectationsFile(cells: readonly ComparedCell[], made: Record<string, unknown>): string {
  const byRow: Record<string, Record<string, string>> = {};
  for (const cell of cells) (byRow[cell.row.id] ??= {})[cell.column.id] = cell.verdict;
  return `${JSON.stringify({ schemaVersion: EXPECT_SCHEMA_VERSION, made, cells: byRow }, null, 2)}\n`;
}
