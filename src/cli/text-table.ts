/**
 * Plain-text rendering of measurement results for a terminal: lists of
 * flat records as aligned tables, everything else as indented `key: value`
 * lines. Used by `convsim bench` without `--json`.
 */

type Flat = Record<string, string | number | boolean | null>;

const isScalar = (v: unknown): v is string | number | boolean | null => v === null || ['string', 'number', 'boolean'].includes(typeof v);

function isFlatRecord(v: unknown): v is Flat {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(isScalar);
}

/** A number as people read it: integers with thousands separators, others to 3 significant digits. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return Number(n.toPrecision(3)).toString();
}

const cell = (v: string | number | boolean | null): string => (typeof v === 'number' ? formatNumber(v) : String(v));

/** Rows of flat records as an aligned table (columns: the union of their keys, in order of appearance). */
export function renderTable(rows: readonly Flat[], indent = ''): string[] {
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const cells = [columns, ...rows.map((row) => columns.map((c) => (Object.hasOwn(row, c) ? cell(row[c]!) : '')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => indent + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
}

/** Any JSON-like value as indented text: tables for lists of flat records. */
export function renderTree(value: unknown, indent = ''): string[] {
  if (isScalar(value)) return [`${indent}${cell(value)}`];
  if (Array.isArray(value)) {
    if (value.length > 0 && value.every(isFlatRecord)) return renderTable(value, indent);
    if (value.every(isScalar)) return [`${indent}${value.map(cell).join(', ')}`];
    return value.flatMap((v, i) => [`${indent}[${i + 1}]`, ...renderTree(v, `${indent}  `)]);
  }
  if (typeof value !== 'object' || value === null) return [`${indent}${String(value)}`];
  return Object.entries(value).flatMap(([key, v]) => (isScalar(v) ? [`${indent}${key}: ${cell(v)}`] : [`${indent}${key}:`, ...renderTree(v, `${indent}  `)]));
}
