/**
 * How `convsim verify` prints its table: text for a terminal, GitHub
 * markdown (`--markdown`) or one JSON object (`--json`). One grid of cell
 * texts feeds both tables.
 *
 * @module
 */
import type { VerifyColumn, VerifyRow } from '../explore/verify-table.js';
import type { CellResult } from './commands/verify.js';

export const VERIFY_JSON_SCHEMA_VERSION = 1;

export interface VerifyReport {
  readonly rows: readonly VerifyRow[];
  readonly columns: readonly VerifyColumn[];
  /** Cells finished (or interrupted), in table order. */
  readonly cells: readonly CellResult[];
  readonly plannedCells: number;
  readonly strategy: string;
  readonly schedules: number;
  readonly seed: number;
  readonly threads: number;
  readonly quick: boolean;
  readonly threadedConversions: number;
  readonly shrinkAttempts: number;
  readonly elapsedMs: number;
  /** The signal that stopped it, or null. */
  readonly interrupted: string | null;
  readonly command: string;
  readonly expect: { readonly file: string; readonly differences: readonly string[]; readonly note: string | null } | null;
  /** `--shard I/N` (1-based), for convsim merge. */
  readonly shard: { readonly index: number; readonly count: number } | null;
  readonly timeBudgetMs: number | null;
  /** Equal for the shards of one verify run. */
  readonly searchKey: string;
}

const THREADED_NOTE = 'a clean threaded run proves nothing; it shows whether the race is reachable at real speed';

function cellAt(r: VerifyReport, row: VerifyRow, column: VerifyColumn): CellResult | undefined {
  return r.cells.find((c) => c.row === row && c.column === column);
}

/** The explored verdict of a cell as the table shows it. */
function verdictText(cell: CellResult | undefined, markdown: boolean): string {
  if (cell === undefined) return markdown ? '' : '-';
  if (cell.status === 'interrupted') return 'interrupted';
  if (cell.verdict === 'held') return `held ${cell.schedules}${cell.complete === true ? ' (all)' : ''}${cell.budgetStopped ? ' (budget)' : ''}`;
  return `${markdown ? `**${cell.verdict}**` : cell.verdict} #${cell.schedule}`;
}

function threadedText(cell: CellResult | undefined): string {
  if (cell === undefined) return '-';
  return cell.threaded?.verdict ?? 'not run';
}

function grid(r: VerifyReport, text: (cell: CellResult | undefined) => string): string[][] {
  return r.rows.map((row) => [row.label, ...r.columns.map((column) => text(cellAt(r, row, column)))]);
}

function alignedTable(header: readonly string[], body: readonly string[][], indent = '  '): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string => indent + cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...body.map(line)];
}

function markdownTable(header: readonly string[], body: readonly string[][]): string[] {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...body.map(line)];
}

function headline(r: VerifyReport): string {
  const finished = r.cells.filter((c) => c.status === 'done').length;
  const what = r.strategy.startsWith('dfs')
    ? `a systematic search per cell (${r.strategy}) of the small machine, workload seed ${r.seed}`
    : `up to ${r.schedules} ${r.strategy} schedules per cell on varied machines, seeds from ${r.seed}`;
  const budget = r.timeBudgetMs === null ? '' : `, exploration budget ${(r.timeBudgetMs / 1000).toFixed(0)} s`;
  const shard = r.shard === null ? '' : `, shard ${r.shard.index}/${r.shard.count}`;
  return `convsim verify: ${r.rows.length} protocol variant(s) x ${r.columns.length} guest(s), ${what}, ${r.threads} thread(s)${r.quick ? ', --quick' : ''}` +
    `${budget}${shard}; ${finished} of ${r.plannedCells} cells in ${(r.elapsedMs / 1000).toFixed(1)} s`;
}

function interruptedLine(r: VerifyReport): string[] {
  if (r.interrupted === null) return [];
  const finished = r.cells.filter((c) => c.status === 'done').length;
  return [`INTERRUPTED (${r.interrupted}) after ${finished} of ${r.plannedCells} cells: the cells finished so far`];
}

const KEY = 'held N: no failure in N schedules (all: every schedule up to the bound, dfs; budget: the time budget stopped it); ' +
  'NAME #k: the invariant (or fatal QEMU outcome) NAME failed first, at schedule k';

function violatedLines(r: VerifyReport): string[] {
  return r.cells.filter((c) => c.status === 'done' && c.verdict !== 'held').map((c) =>
    `${c.row.label} x ${c.column.label}: ${c.verdict} at schedule ${c.schedule} (seed ${c.seed}); story of ${c.storySteps} steps` +
    `${c.shrinkAttempts === null ? ' (not shrunk)' : ` (shrunk in ${c.shrinkAttempts} attempts)`}; convsim replay ${c.tokenFile} (traceHash ${c.traceHash})`);
}

function sameAsLines(r: VerifyReport): string[] {
  return r.cells.filter((c) => c.sameAs !== null).map((c) => {
    const other = r.cells.find((o) => o.row.id === c.sameAs!.row && o.column.id === c.sameAs!.column)!;
    return `${c.row.label} x ${c.column.label} explores exactly what ${other.row.label} x ${other.column.label} does: the same results`;
  });
}

/** One threaded run's command line, as an example of all of them. */
function threadedExample(r: VerifyReport): string[] {
  const cell = r.cells.find((c) => c.threaded !== null);
  if (cell === undefined) return [];
  return [`Each is a convsim run (its command line is in --json, threaded.command), e.g. ${cell.row.label} x ${cell.column.label}: convsim ${cell.threaded!.command}`];
}

function legend(r: VerifyReport): { rows: string[][]; columns: string[][] } {
  return {
    rows: r.rows.map((row) => [row.label, row.changes]),
    columns: r.columns.map((column) => [column.label, column.guest]),
  };
}

function renderText(r: VerifyReport): string {
  const header = ['', ...r.columns.map((c) => c.label)];
  const l = legend(r);
  const lines = [
    ...interruptedLine(r),
    headline(r),
    '',
    ...alignedTable(header, grid(r, (c) => verdictText(c, false))),
    `  (${KEY})`,
    ...sameAsLines(r).map((s) => `  ${s}`),
    '',
    `On real threads, one short run per cell (2 vCPUs, 64M, ${r.threadedConversions} conversions, selftest its own count; ${THREADED_NOTE}):`,
    ...alignedTable(header, grid(r, threadedText)),
    ...threadedExample(r).map((s) => `  ${s}`),
  ];
  const violated = violatedLines(r);
  if (violated.length > 0) lines.push('', 'Violated cells (the shrunk replay token of each):', ...violated.map((v) => `  ${v}`));
  lines.push('', 'Rows (what each changes in QEMU):', ...l.rows.map(([label, text]) => `  ${label!.padEnd(18)} ${text}`));
  lines.push('Columns (guests):', ...l.columns.map(([label, text]) => `  ${label!.padEnd(18)} ${text}`));
  if (r.expect !== null) {
    lines.push('', r.expect.differences.length === 0
      ? `--expect: every finished cell as ${r.expect.file} expects`
      : `--expect: ${r.expect.differences.length} cell(s) differ from ${r.expect.file}:`);
    lines.push(...r.expect.differences.map((d) => `  ${d}`));
    if (r.expect.note !== null) lines.push(`note: ${r.expect.note}`);
  }
  return `${lines.join('\n')}\n`;
}

function renderMarkdown(r: VerifyReport): string {
  const header = ['protocol', ...r.columns.map((c) => c.label)];
  const l = legend(r);
  const lines = [
    ...interruptedLine(r).flatMap((s) => [`**${s}**`, '']),
    `${headline(r)}.`,
    '',
    ...markdownTable(header, grid(r, (c) => verdictText(c, true))),
    '',
    `${KEY}.`,
    ...sameAsLines(r).map((s) => `${s}.`),
    '',
    `On real threads, one short run per cell (2 vCPUs, 64M, ${r.threadedConversions} conversions, selftest its own count; ${THREADED_NOTE}):`,
    '',
    ...markdownTable(header, grid(r, threadedText)),
    '',
    ...threadedExample(r).map((s) => s.replace(/convsim run (.*)$/, '`convsim run $1`')),
  ];
  const violated = violatedLines(r);
  if (violated.length > 0) lines.push('', 'Violated cells:', '', ...violated.map((v) => `- ${v.replace(/convsim replay (\S+)/, 'convsim replay `$1`')}`));
  lines.push('', 'Rows:', '', ...l.rows.map(([label, text]) => `- \`${label}\`: ${text}`));
  lines.push('', 'Columns:', '', ...l.columns.map(([label, text]) => `- \`${label}\`: ${text}`));
  return `${lines.join('\n')}\n`;
}

function renderJson(r: VerifyReport): string {
  const out = {
    schemaVersion: VERIFY_JSON_SCHEMA_VERSION,
    kind: 'verify',
    command: r.command,
    searchKey: r.searchKey,
    shard: r.shard,
    timeBudgetMs: r.timeBudgetMs,
    status: r.interrupted === null ? 'complete' : 'interrupted',
    interrupted: r.interrupted,
    strategy: r.strategy,
    schedulesPerCell: r.schedules,
    seed: r.seed,
    threads: r.threads,
    quick: r.quick,
    shrinkAttemptsPerCell: r.shrinkAttempts,
    threadedConversions: r.threadedConversions,
    threadedNote: THREADED_NOTE,
    elapsedMs: r.elapsedMs,
    plannedCells: r.plannedCells,
    units: {
      elapsedMs: 'ms', exploreMs: 'ms', shrinkMs: 'ms', 'threaded.elapsedMs': 'ms',
      schedules: 'schedules run (a violated cell may have run a few past its failing one on other pool threads)',
      schedule: 'the failing schedule, 1-based (seed = first seed + schedule - 1)',
      storySteps: 'numbered steps of the shrunk story', 'threaded.conversions': 'conversions', 'threaded.violations': 'violations by invariant',
    },
    rows: r.rows.map((row) => ({ id: row.id, label: row.label, protocol: row.protocol, inplaceOrder: row.inplaceOrder ?? null, changes: row.changes })),
    columns: r.columns.map((c) => ({ id: c.id, label: c.label, workload: c.workload, inplace: c.inplace, hotplug: c.hotplug, guest: c.guest })),
    cells: r.cells.map((c) => ({
      row: c.row.id,
      column: c.column.id,
      status: c.status,
      verdict: c.verdict,
      held: c.status === 'done' && c.verdict === 'held',
      schedules: c.schedules,
      schedule: c.schedule,
      seed: c.seed,
      message: c.message,
      storySteps: c.storySteps,
      shrinkAttempts: c.shrinkAttempts,
      tokenFile: c.tokenFile,
      token: c.token,
      traceHash: c.traceHash,
      originalTraceHash: c.originalTraceHash,
      exploreMs: c.exploreMs,
      shrinkMs: c.shrinkMs,
      budgetStopped: c.budgetStopped,
      distinctTraces: c.distinctTraces,
      complete: c.complete,
      position: c.position,
      sameAs: c.sameAs,
      explored: { workload: c.input.workload, mode: c.input.mode, order: c.input.order, hotplug: c.input.machine.hotplug === true, protocol: c.input.protocol },
      threaded: c.threaded,
    })),
    expect: r.expect,
  };
  return `${JSON.stringify(out)}\n`;
}

export function renderVerify(r: VerifyReport, format: 'text' | 'json' | 'markdown'): string {
  switch (format) {
    case 'text': return renderText(r);
    case 'markdown': return renderMarkdown(r);
    case 'json': return renderJson(r);
    default: {
      const unreachable: never = format;
      throw new Error(`unknown format ${String(unreachable)}`);
    }
  }
}
