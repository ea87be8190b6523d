/**
 * `convsim verify`: the table's rows and columns as data, option mistakes
 * (one line, exit 2, nothing run), a tiny run's JSON with a violated cell
 * whose token file replays to the same traceHash, and `--expect`
 * differences (exit 1). The built CLI runs in a temporary directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseVerifyOptions } from '../../src/cli/commands/verify.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { cellInput, cellKey, VERIFY_COLUMNS, VERIFY_ROWS } from '../../src/explore/verify-table.js';
import { ALL_FIXES_PROTOCOL, describeProtocol, MERGED_PROTOCOL } from '../../src/core/protocol-policy.js';
import { packageRoot } from '../../src/workers/worker-url.js';

const CLI = join(packageRoot(), 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'convsim-verify-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function convsim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: work, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('verify table (data)', () => {
  it('rows: one fix each on the merged protocol, then all fixes, then the in-place orders on all fixes', () => {
    const byId = new Map(VERIFY_ROWS.map((r) => [r.id, r]));
    expect([...byId.keys()]).toEqual(['merged', 'bql', 'rba-mutex', 'atomic', 'serialized', 'rcu', 'all-fixes', 'inplace-v6', 'inplace-priority', 'inplace-explicit']);
    expect(byId.get('merged')!.protocol).toEqual(MERGED_PROTOCOL);
    for (const id of ['bql', 'rba-mutex', 'atomic', 'serialized', 'rcu']) expect(describeProtocol(byId.get(id)!.protocol)).toBe(id);
    expect(byId.get('all-fixes')!.protocol).toEqual(ALL_FIXES_PROTOCOL);
    for (const order of ['v6', 'priority', 'explicit'] as const) {
      expect(byId.get(`inplace-${order}`)).toMatchObject({ protocol: ALL_FIXES_PROTOCOL, inplaceOrder: order });
    }
  });

  it('cells: in-place rows run in place everywhere; legacy rows only in the in-place column, with the explicit order; hot-plug in the hotplug column only', () => {
    for (const row of VERIFY_ROWS) {
      for (const column of VERIFY_COLUMNS) {
        const c = cellInput(row, column);
        expect(c.mode).toBe(row.inplaceOrder !== undefined || column.id === 'inplace-ordering' ? 'inplace' : 'legacy');
        if (c.mode === 'inplace') expect(c.order).toBe(row.inplaceOrder ?? 'explicit');
        expect(c.machine).toMatchObject({ mode: c.mode, order: c.order, hotplug: column.id === 'hotplug' });
        expect(c.workload).toBe(column.id === 'inplace-ordering' ? 'storm' : column.id);
        expect(c.protocol).toBe(row.protocol);
      }
    }
  });

  it('cells that explore exactly the same are recognised (and only those)', () => {
    const seen = new Map<string, string>();
    const same: string[] = [];
    for (const row of VERIFY_ROWS) {
      for (const column of VERIFY_COLUMNS) {
        const key = cellKey(cellInput(row, column));
        const first = seen.get(key);
        if (first === undefined) seen.set(key, `${row.id}/${column.id}`);
        else same.push(`${row.id}/${column.id}=${first}`);
      }
    }
    expect(same).toEqual([
      'inplace-v6/inplace-ordering=inplace-v6/storm',
      'inplace-priority/inplace-ordering=inplace-priority/storm',
      'inplace-explicit/storm=all-fixes/inplace-ordering',
      'inplace-explicit/inplace-ordering=all-fixes/inplace-ordering',
    ]);
  });
});

describe('verify options', () => {
  const bad: Array<[string[], RegExp]> = [
    [['--rows', 'merged,nope'], /^--rows: "nope" is not one of merged, bql, rba-mutex, atomic, serialized, rcu, all-fixes, inplace-v6, inplace-priority, inplace-explicit$/],
    [['--columns', 'storms'], /^--columns: "storms" is not one of storm, adversarial, hotplug, selftest, inplace-ordering$/],
    [['--schedules', '0'], /^--schedules: "0" must be an integer from 1 to 1000000$/],
    [['--schedules', 'many'], /^--schedules: "many" must be an integer from 1 to 1000000$/],
    [['--seed', '2147483647', '--schedules', '2'], /^--seed: seeds 2147483647\.\.2147483648 pass 2147483647$/],
    [['--threads', '0'], /^--threads: "0" must be an integer from 1 to 256$/],
    [['--json', '--markdown'], /^verify: --json and --markdown: give one of them$/],
    [['--quik'], /^verify: unknown option "--quik" \(did you mean --quick\?\)/],
    [['merged'], /^verify: unexpected argument "merged"/],
    [['--expect', join(work, 'missing.json')], /missing\.json: cannot read: ENOENT$/],
    [['--write-expect', join(work, 'no-such-dir', 'x.json')], /^--write-expect: cannot write the directory of .*\(no such directory\)$/],
  ];
  for (const [args, message] of bad) {
    it(`verify ${args.join(' ')}: one UsageError line`, () => {
      let error: unknown;
      try {
        parseVerifyOptions(args);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('\n');
    });
  }

  const expectFiles: Array<[string, string, RegExp]> = [
    ['not-json.json', '{"schemaVersion": 1,', /invalid JSON at line 1/],
    ['array.json', '[]', /not a JSON object/],
    ['version.json', '{"schemaVersion": 2, "cells": {}}', /schemaVersion 2 is not 1/],
    ['row.json', '{"schemaVersion": 1, "cells": {"+bql": {}}}', /cells\."\+bql": unknown row \(rows: merged, bql,/],
    ['column.json', '{"schemaVersion": 1, "cells": {"bql": {"storms": "held"}}}', /cells\.bql\."storms": unknown column \(columns: storm,/],
    ['verdict.json', '{"schemaVersion": 1, "cells": {"bql": {"storm": "fine"}}}', /cells\.bql\.storm: "fine" is not one of held, stale-mapping, .*lost-update, use-after-free, deadlock, qemu-exit, realize-failed, qemu-abort$/],
    ['field.json', '{"schemaVersion": 1, "cells": {}, "extra": 1}', /unknown field "extra"/],
    ['made.json', '{"schemaVersion": 1, "made": {"schedules": "many"}, "cells": {}}', /made\.schedules: "many" is not a count/],
  ];
  for (const [name, text, message] of expectFiles) {
    it(`--expect ${name}: one UsageError line naming the file and what is wrong`, () => {
      const file = join(work, name);
      writeFileSync(file, text);
      expect(() => parseVerifyOptions(['--expect', file])).toThrow(UsageError);
      expect(() => parseVerifyOptions(['--expect', file])).toThrow(message);
    });
  }

  it('defaults, --quick, and selections in table order (ids or labels)', () => {
    const d = parseVerifyOptions([]);
    expect(d.rows).toHaveLength(10);
    expect(d.columns).toHaveLength(5);
    expect(d.quick).toBe(false);
    const q = parseVerifyOptions(['--quick', '--rows', 'all fixes,merged,+bql', '--columns', 'hotplug,storm']);
    expect(q.schedules).toBeLessThan(d.schedules);
    expect(q.rows.map((r) => r.id)).toEqual(['merged', 'bql', 'all-fixes']);
    expect(q.columns.map((c) => c.id)).toEqual(['storm', 'hotplug']);
    expect(parseVerifyOptions(['--quick', '--schedules', '7']).schedules).toBe(7);
  });

  it('the built CLI: exit 2, one line on stderr, nothing on stdout, nothing run', () => {
    for (const args of [['--rows', 'nope'], ['--expect', join(work, 'missing.json')], ['--json', '--markdown']]) {
      const r = convsim('verify', ...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^convsim: /);
    }
    expect(existsSync(join(work, '.convsim'))).toBe(false);
  });
});

interface CellJson {
  row: string;
  column: string;
  status: string;
  verdict: string;
  held: boolean;
  schedules: number;
  schedule: number | null;
  seed: number | null;
  storySteps: number | null;
  tokenFile: string | null;
  token: string | null;
  traceHash: string | null;
  threaded: { verdict: string; conversions: number; command: string; violations: Record<string, number> } | null;
}

describe('convsim verify (built CLI)', () => {
  let cells: CellJson[] = [];
  const expectFile = join(work, 'expected.json');

  it('a tiny run: JSON with schema version, units and every cell; a violated cell and a held one', () => {
    const r = convsim('verify', '--quick', '--schedules', '3', '--rows', 'inplace-v6,inplace-explicit', '--columns', 'hotplug', '--json', '--write-expect', expectFile);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(out).toMatchObject({ schemaVersion: 1, status: 'complete', interrupted: null, strategy: 'random', schedulesPerCell: 3, seed: 1, quick: true, plannedCells: 2 });
    expect(out['units']).toMatchObject({ elapsedMs: 'ms', exploreMs: 'ms', schedules: expect.stringMatching(/^schedules run/) });
    expect((out['rows'] as Array<{ id: string }>).map((x) => x.id)).toEqual(['inplace-v6', 'inplace-explicit']);
    expect((out['columns'] as Array<{ id: string }>).map((x) => x.id)).toEqual(['hotplug']);
    cells = out['cells'] as CellJson[];
    expect(cells.map((c) => [c.row, c.column, c.status])).toEqual([['inplace-v6', 'hotplug', 'done'], ['inplace-explicit', 'hotplug', 'done']]);
    const [violated, held] = cells as [CellJson, CellJson];
    // v6 converts guest_memfd before VFIO unmaps: the known in-place ordering bug.
    expect(violated.verdict).toBe('inplace-order');
    expect(violated.held).toBe(false);
    expect(violated.schedule).toBeGreaterThanOrEqual(1);
    expect(violated.schedule).toBeLessThanOrEqual(3);
    expect(violated.storySteps).toBeGreaterThan(0);
    expect(violated.tokenFile).toBe('.convsim/verify-inplace-v6-hotplug.token');
    expect(readFileSync(join(work, violated.tokenFile!), 'utf8').trim()).toBe(violated.token);
    expect(violated.traceHash).toMatch(/^[0-9a-f]{14}$/);
    expect(held).toMatchObject({ verdict: 'held', held: true, schedules: 3, schedule: null, token: null, tokenFile: null });
    for (const c of cells) {
      expect(c.threaded?.command).toMatch(/^run --workload hotplug --mode inplace --order (v6|explicit) .*--conversions 40 /);
      expect(typeof c.threaded?.verdict).toBe('string');
      expect(c.threaded?.conversions).toBeGreaterThan(0);
    }
  }, 60_000);

  it('the violated cell\'s token file replays to the same invariant and traceHash', () => {
    const violated = cells[0]!;
    const r = convsim('replay', violated.tokenFile!, '--json');
    expect(r.status).toBe(1);
    const out = JSON.parse(r.stdout) as { invariant: string; traceHash: string; story: string[] };
    expect(out.invariant).toBe(violated.verdict);
    expect(out.traceHash).toBe(violated.traceHash);
    expect(out.story.filter((l) => /^\s*\d+\. /.test(l))).toHaveLength(violated.storySteps!);
  });

  it('--write-expect wrote the verdicts; --expect with one verdict changed: exit 1, that difference on one line', () => {
    const written = JSON.parse(readFileSync(expectFile, 'utf8')) as { schemaVersion: number; cells: Record<string, Record<string, string>> };
    expect(written.schemaVersion).toBe(1);
    expect(written.cells).toEqual({ 'inplace-v6': { hotplug: 'inplace-order' }, 'inplace-explicit': { hotplug: 'held' } });
    const wrong = join(work, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ schemaVersion: 1, cells: { 'inplace-v6': { hotplug: 'held' } } }));
    const r = convsim('verify', '--quick', '--schedules', '3', '--rows', 'inplace-v6', '--columns', 'hotplug', '--expect', wrong);
    expect(r.status, r.stderr).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    const header = lines.findIndex((l) => l.startsWith('--expect: '));
    expect(lines[header]).toBe(`--expect: 1 cell(s) differ from ${wrong}:`);
    expect(lines.slice(header + 1)).toEqual([expect.stringMatching(/^ {2}in-place v6 x hotplug: expected held, found inplace-order at schedule [1-3], \.convsim\/verify-inplace-v6-hotplug\.token$/)]);
  }, 60_000);

  it('--expect with the verdicts it wrote: exit 0', () => {
    const r = convsim('verify', '--quick', '--schedules', '3', '--rows', 'inplace-v6', '--columns', 'hotplug', '--expect', expectFile, '--markdown');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\| protocol \| hotplug \|$/m);
    expect(r.stdout).toMatch(/^\| in-place v6 \| \*\*inplace-order\*\* #[1-3] \|$/m);
  }, 60_000);

  it('Ctrl-C: the cells finished so far, marked interrupted, exit 130', async () => {
    // in-place v6 fails at once; in-place explicit holds, so its 1000 schedules are still running at the signal,
    // sent once the first cell has written its token (its own directory: no token of the tests above).
    const cwd = join(work, 'interrupted');
    mkdirSync(cwd);
    const child = spawn(process.execPath, [CLI, 'verify', '--quick', '--schedules', '1000', '--rows', 'inplace-v6,inplace-explicit', '--columns', 'hotplug'],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.resume();
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const token = join(cwd, '.convsim', 'verify-inplace-v6-hotplug.token');
    for (let waited = 0; !existsSync(token) && waited < 30_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    child.kill('SIGINT');
    const code = await closed;
    expect(code).toBe(130);
    expect(stdout).toMatch(/^INTERRUPTED \(SIGINT\) after 1 of 2 cells: the cells finished so far$/m);
    expect(stdout).toMatch(/^ {2}in-place v6 +inplace-order #\d$/m);
    expect(stdout).toMatch(/^ {2}in-place explicit +interrupted$/m);
    expect(existsSync(join(cwd, '.convsim', 'verify-inplace-explicit-hotplug.token'))).toBe(false);
  }, 60_000);
});

describe('verify --strategy dfs, --time-budget, --shard', () => {
  it('a systematic cell reports its executions and whether it covered every schedule; its shards merge cell by cell', () => {
    const args = ['verify', '--quick', '--strategy', 'dfs', '--rows', 'inplace-v6,all-fixes', '--columns', 'storm', '--time-budget', '1s', '--threads', '1', '--json'];
    const files = [1, 2].map((i) => {
      const r = convsim(...args, '--shard', `${i}/2`);
      expect(r.status, r.stderr).toBe(0);
      const file = join(work, `verify-shard-${i}.json`);
      writeFileSync(file, r.stdout);
      return file;
    });
    type Cell = { row: string; verdict: string; schedules: number; complete: boolean | null; budgetStopped: boolean; distinctTraces: number };
    const first = (JSON.parse(readFileSync(files[0]!, 'utf8')) as { cells: Cell[] }).cells;
    const fixed = first.find((c) => c.row === 'all-fixes')!;
    // Every fix holds over what half a second explored, and says the search did not cover everything.
    expect(fixed).toMatchObject({ verdict: 'held', complete: false, budgetStopped: true });
    expect(fixed.schedules).toBeGreaterThan(0);
    expect(fixed.distinctTraces).toBeGreaterThan(0);
    // v6 unmaps after CONVERT_PRIVATE: the shard that holds its failing execution finds it, and merge reports it.
    const merged = convsim('merge', ...files, '--json');
    expect(merged.status, merged.stderr).toBe(1);
    const cells = (JSON.parse(merged.stdout) as { cells: Cell[] }).cells;
    expect(Object.fromEntries(cells.map((c) => [c.row, c.verdict]))).toEqual({ 'inplace-v6': 'inplace-order', 'all-fixes': 'held' });
  }, 60_000);
});
