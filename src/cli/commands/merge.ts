/**
 * `convsim merge FILES...`: the `--json` results of the shards of one
 * exploration (`explore --shard I/N --json`) put together into the result
 * the unsharded exploration gives: the same verdict and the same first
 * failure (by seed for sampling; by place in the search order for dfs),
 * totals added, distinct traces counted over the union of their hashes.
 */
import { parseCommandLine } from '../command-line.js';
import { parseJsonInput } from '../parse-json-input.js';
import { readInputFile } from '../read-input-file.js';
import { EXIT_OK, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';

export const MERGE_HELP = `convsim merge FILE... [--json]
  Put together the --json results of the N shards of one exploration
  (convsim explore --shard I/N --json > shard-I.json, one job each, e.g. a CI
  matrix or a Kubernetes Indexed Job). Checks that the files are the shards
  1..N of one search, each once; prints the verdict and the first failure the
  unsharded exploration reports, the totals, and distinct traces over all.
  --json               one JSON object on stdout
  Exit: 0 nothing found, 1 a failure was found, 2 bad files (or not one whole search).`;

/** Largest shard result read: 256 MiB (a shard's trace hashes take 17 bytes each). */
const MAX_SHARD_BYTES = 256 * 1024 * 1024;

type Json = Record<string, unknown>;

interface ShardFile {
  readonly file: string;
  readonly index: number;
  readonly count: number;
  readonly body: Json;
}

function field<T>(s: ShardFile, name: string, check: (v: unknown) => boolean, what: string): T {
  const v = Object.hasOwn(s.body, name) ? s.body[name] : undefined;
  if (!check(v)) throw new UsageError(`${s.file}: field ${name} is not ${what}: not a shard result of convsim explore --shard I/N --json`);
  return v as T;
}
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isString = (v: unknown): boolean => typeof v === 'string';
const isBool = (v: unknown): boolean => typeof v === 'boolean';
const isObjectOrNull = (v: unknown): boolean => v === null || (typeof v === 'object' && !Array.isArray(v));
const isHashes = (v: unknown): boolean => Array.isArray(v) && v.every((h) => typeof h === 'string');

function readShard(file: string): ShardFile {
  const body = parseJsonInput(file, readInputFile('merge', file, MAX_SHARD_BYTES));
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UsageError(`${file}: not a JSON object: not a shard result of convsim explore --shard I/N --json`);
  const json = body as Json;
  const shard = Object.hasOwn(json, 'shard') ? json['shard'] : undefined;
  const isExplore = json['command'] === 'explore' && json['schemaVersion'] === 2;
  const isVerify = json['kind'] === 'verify' && json['schemaVersion'] === 1;
  if (!isExplore && !isVerify) throw new UsageError(`${file}: not a result of convsim explore --json or convsim verify --json`);
  if (typeof shard !== 'object' || shard === null || !isCount((shard as Json)['index']) || !isCount((shard as Json)['count'])) {
    throw new UsageError(`${file}: not a shard (run explore with --shard I/N --json)`);
  }
  return { file, index: (shard as Json)['index'] as number, count: (shard as Json)['count'] as number, body: json };
}

/** Sampling: the lowest failing seed is the unsharded exploration's first failure. */
function mergeSampling(shards: readonly ShardFile[]): Json {
  const sum = (name: string): number => shards.reduce((t, s) => t + field<number>(s, name, isCount, 'a count'), 0);
  const hashes = new Set<string>();
  const coverage: Record<string, number> = {};
  let failure: Json | undefined;
  for (const s of shards) {
    for (const h of field<string[]>(s, 'traceHashes', isHashes, 'a list of hashes')) hashes.add(h);
    for (const [k, v] of Object.entries(field<Json>(s, 'coverage', isObjectOrNull, 'an object') ?? {})) if (typeof v === 'number') coverage[k] = (coverage[k] ?? 0) + v;
    const f = field<Json | undefined>(s, 'failure', (v) => v === undefined || isObjectOrNull(v), 'an object');
    if (f !== undefined && f !== null && isCount(f['seed']) && (failure === undefined || (f['seed'] as number) < (failure['seed'] as number))) failure = f;
  }
  const first = shards[0]!;
  return {
    strategy: field<string>(first, 'strategy', isString, 'a strategy'),
    found: shards.some((s) => field<boolean>(s, 'found', isBool, 'true or false')),
    iterations: sum('iterations'),
    plannedIterations: sum('plannedIterations'),
    distinctTraces: hashes.size,
    deliveries: sum('deliveries'),
    failureCount: sum('failureCount'),
    timeBudgetReached: shards.some((s) => s.body['timeBudgetReached'] === true),
    interrupted: shards.some((s) => s.body['interrupted'] !== null && s.body['interrupted'] !== undefined),
    coverage,
    failure: failure ?? null,
  };
}

/** DFS: the failure first in the search order (smallest position); totals added. */
function mergeSystematic(shards: readonly ShardFile[]): Json {
  const sum = (name: string): number => shards.reduce((t, s) => t + field<number>(s, name, isCount, 'a count'), 0);
  const hashes = new Set<string>();
  let failure: Json | undefined;
  for (const s of shards) {
    for (const h of field<string[]>(s, 'traceHashes', isHashes, 'a list of hashes')) hashes.add(h);
    const f = field<Json | null>(s, 'failure', isObjectOrNull, 'an object or null');
    if (f !== null && isCount(f['position']) && (failure === undefined || (f['position'] as number) < (failure['position'] as number))) failure = f;
  }
  const complete = shards.every((s) => field<boolean>(s, 'complete', isBool, 'true or false')) && failure === undefined;
  const first = shards[0]!;
  const bound = first.body['preemptionBound'];
  const executions = sum('executions');
  const counts = `${executions} execution(s) ${bound === null ? 'with any number of preemptions' : `up to ${String(bound)} preemption(s)`} ` +
    `(${hashes.size} distinct trace(s), ${sum('prunedEquivalent')} branch(es) pruned as equivalent, ${sum('sleepBlocked')} execution(s) cut short as equivalent, ` +
    `${sum('revisits')} at states explored already${bound === null ? '' : `, ${sum('prunedByBound')} branch(es) beyond the bound`})`;
  const statement = failure !== undefined ? `FOUND ${String(failure['invariant'])} (first in the search order) among ${counts}`
    : complete ? `all ${counts} explored: held` : `INCOMPLETE: a shard stopped early; ${counts}: nothing found so far, but the search did not cover every schedule`;
  return {
    strategy: 'dfs',
    found: failure !== undefined,
    verdict: failure !== undefined ? 'found' : complete ? 'held' : 'incomplete',
    statement,
    preemptionBound: bound ?? null,
    executions,
    distinctTraces: hashes.size,
    sleepBlocked: sum('sleepBlocked'),
    prunedEquivalent: sum('prunedEquivalent'),
    prunedByBound: sum('prunedByBound'),
    revisits: sum('revisits'),
    complete,
    deliveries: sum('deliveries'),
    failure: failure ?? null,
  };
}

/** Verify: cell by cell, the failure first in its order (lowest seed, or dfs position), else held over every shard's schedules. */
function mergeVerify(shards: readonly ShardFile[]): Json {
  const cells = new Map<string, Json[]>();
  for (const s of shards) {
    for (const c of field<Json[]>(s, 'cells', (v) => Array.isArray(v) && v.every((x) => isObjectOrNull(x) && x !== null), 'a list of cells')) {
      const key = `${String(c['row'])}\u0000${String(c['column'])}`;
      cells.set(key, [...(cells.get(key) ?? []), c]);
    }
  }
  const order = (c: Json): number => (typeof c['position'] === 'number' ? c['position'] : typeof c['seed'] === 'number' ? c['seed'] : Infinity);
  const merged: Json[] = [];
  for (const parts of cells.values()) {
    const failing = parts.filter((c) => c['status'] === 'done' && c['verdict'] !== 'held').sort((a, b) => order(a) - order(b));
    const first = parts[0]!;
    const schedules = parts.reduce((t, c) => t + (typeof c['schedules'] === 'number' ? c['schedules'] : 0), 0);
    const threaded = parts.find((c) => c['threaded'] !== null)?.['threaded'] ?? null;
    if (parts.length < shards.length || parts.some((c) => c['status'] === 'interrupted')) merged.push({ ...first, status: 'interrupted', verdict: 'interrupted', schedules, threaded });
    else if (failing.length > 0) merged.push({ ...failing[0]!, schedules, threaded });
    else {
      merged.push({
        ...first, schedules, threaded, budgetStopped: parts.some((c) => c['budgetStopped'] === true),
        complete: parts.every((c) => c['complete'] === true) ? true : first['complete'] === null ? null : false,
      });
    }
  }
  const found = merged.some((c) => c['status'] === 'done' && c['verdict'] !== 'held');
  return { strategy: String(shards[0]!.body['strategy']), found, cells: merged, rows: shards[0]!.body['rows'], columns: shards[0]!.body['columns'] };
}

function verifyLines(merged: Json): string[] {
  const rows = (merged['rows'] as Json[]).map((r) => [String(r['id']), String(r['label'])]);
  const columns = (merged['columns'] as Json[]).map((c) => [String(c['id']), String(c['label'])]);
  const cells = merged['cells'] as Json[];
  const text = (row: string, column: string): string => {
    const c = cells.find((x) => x['row'] === row && x['column'] === column);
    if (c === undefined) return '-';
    if (c['status'] === 'interrupted') return 'interrupted';
    return c['verdict'] === 'held' ? `held ${String(c['schedules'])}${c['complete'] === true ? ' (all)' : ''}` : `${String(c['verdict'])} #${String(c['schedule'])}`;
  };
  const header = ['', ...columns.map(([, label]) => label!)];
  const body = rows.map(([id, label]) => [label!, ...columns.map(([cid]) => text(id!, cid!))]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cs: readonly string[]): string => `  ${cs.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}`;
  const lines = [line(header), ...body.map(line)];
  for (const c of cells) if (c['status'] === 'done' && c['verdict'] !== 'held') lines.push(`${String(c['row'])} x ${String(c['column'])}: ${String(c['verdict'])}: ${String(c['message'])}; token ${String(c['token'])}`);
  return lines;
}

export async function mergeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('merge', argv, { json: { type: 'boolean', default: false } });
  if (positionals.length === 0) throw new UsageError('merge: give the shard result files (convsim explore --shard I/N --json > FILE)');
  const shards = positionals.map(readShard).sort((a, b) => a.index - b.index);
  const count = shards[0]!.count;
  const key = shards[0]!.body['searchKey'];
  for (const s of shards) {
    if (s.count !== count) throw new UsageError(`${s.file}: shard of ${s.count}, but ${shards[0]!.file} is a shard of ${count}`);
    if (s.body['searchKey'] !== key) throw new UsageError(`${s.file}: shard of another search than ${shards[0]!.file} (options differ)`);
  }
  for (let i = 1; i <= count; i++) {
    const n = shards.filter((s) => s.index === i).length;
    if (n !== 1) throw new UsageError(n === 0 ? `shard ${i}/${count} is missing: merge needs every shard once` : `shard ${i}/${count} is given ${n} times`);
  }
  const verify = shards[0]!.body['kind'] === 'verify';
  if (shards.some((s) => (s.body['kind'] === 'verify') !== verify)) throw new UsageError('merge: the files mix explore and verify results');
  const systematic = shards[0]!.body['strategy'] === 'dfs';
  const merged = verify ? mergeVerify(shards) : systematic ? mergeSystematic(shards) : mergeSampling(shards);
  const found = merged['found'] === true;
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify({ schemaVersion: 2, command: 'merge', of: verify ? 'verify' : 'explore', searchKey: key, shards: count, ...merged })}\n`);
  } else if (verify) {
    process.stdout.write(`${[`convsim merge: ${count} shard(s) of one verify table (${String(merged['strategy'])})`, ...verifyLines(merged)].join('\n')}\n`);
  } else {
    const lines = [`convsim merge: ${count} shard(s) of one ${String(merged['strategy'])} exploration`];
    if (systematic) lines.push(String(merged['statement']));
    else {
      lines.push(`${found ? 'FOUND a failure' : 'no violation'} in ${String(merged['iterations'])} of ${String(merged['plannedIterations'])} iterations, ` +
        `${String(merged['distinctTraces'])} distinct traces, ${String(merged['deliveries'])} deliveries` +
        `${merged['timeBudgetReached'] === true ? ' (a shard reached its time budget)' : ''}${merged['interrupted'] === true ? ' (a shard was interrupted)' : ''}`);
    }
    const failure = merged['failure'] as Json | null;
    if (failure !== null) {
      lines.push(
        `first failure: ${String(failure['invariant'])}${systematic ? '' : ` at seed ${String(failure['seed'])} (iteration ${String(failure['iteration'])})`}`,
        `  ${String(failure['originalMessage'] ?? failure['message'] ?? '')}`,
        `replay token (shrunk):   ${String(failure['replay'])}`,
        `replay token (original): ${String(failure['originalReplay'])}`,
        'story (shrunk):',
        ...(Array.isArray(failure['story']) ? (failure['story'] as unknown[]).map(String) : []),
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return found ? EXIT_VIOLATIONS : EXIT_OK;
}
