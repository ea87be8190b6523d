/**
 * `convsim explore`, `replay`, `shrink` and `mutants` end to end: the built
 * CLI (`dist/cli/main.js`; `npm test` builds first), run in a temporary
 * directory (explore writes .convsim/ there).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { pctBound } from '../../src/runtime/deterministic/strategy.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'convsim-explore-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function convsim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: work, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

interface Failure {
  invariant: string;
  replay: string;
  originalReplay: string;
  traceHash: string;
  originalTraceHash: string;
  steps: number;
  story: string[];
  storySteps: number;
  tokenFile: string;
}

describe('convsim explore / replay / shrink / mutants (built CLI)', () => {
  let found: Failure | undefined;

  it('explore --mutant inplace-v6-order --iterations 200 --json: exit 1, found, tokens, token file', () => {
    const r = convsim('explore', '--mutant', 'inplace-v6-order', '--iterations', '200', '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(1);
    const out = json(r.stdout);
    expect(out['found']).toBe(true);
    expect(out['strategy']).toBe('random');
    expect(out['workload']).toBe('storm');
    expect(out['mutant']).toBe('inplace-v6-order');
    expect(out['pctBound']).toBeNull();
    expect(typeof out['elapsedMs']).toBe('number');
    expect(out['iterations']).toBeGreaterThanOrEqual(1);
    expect(out['iterations']).toBeLessThanOrEqual(200);
    found = out['failure'] as Failure;
    expect(found.invariant).toBe('inplace-order');
    expect(found.replay).toMatch(/^convsim3\./);
    expect(found.originalReplay).toMatch(/^convsim3\./);
    expect(found.traceHash).toMatch(/^[0-9a-f]{14}$/);
    expect(found.storySteps).toBeLessThanOrEqual(30);
    expect(found.tokenFile.startsWith(join(work, '.convsim', 'failure-inplace-order-'))).toBe(true);
    expect(readFileSync(found.tokenFile, 'utf8').trim()).toBe(found.replay);
  });

  it('replay TOKEN --json reproduces the traceHash and story; replay FILE too; the original token its own hash', () => {
    expect(found).toBeDefined();
    const r = convsim('replay', found!.replay, '--json');
    expect(r.status).toBe(1);
    const out = json(r.stdout);
    expect(out['invariant']).toBe(found!.invariant);
    expect(out['traceHash']).toBe(found!.traceHash);
    expect(out['story']).toEqual(found!.story);
    const fromFile = json(convsim('replay', found!.tokenFile, '--json').stdout);
    expect(fromFile['traceHash']).toBe(found!.traceHash);
    const original = convsim('replay', found!.originalReplay, '--json');
    expect(original.status).toBe(1);
    expect(json(original.stdout)['traceHash']).toBe(found!.originalTraceHash);
  });

  it('replay prints the invariant, traceHash and a numbered story', () => {
    const r = convsim('replay', found!.replay);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('inplace-order');
    expect(r.stdout).toContain(found!.traceHash);
    expect(r.stdout).toMatch(/^ {2}1\. /m);
  });

  it('shrink ORIGINAL --json: the same invariant, a story <= 30 steps, and a token that replays it', () => {
    const r = convsim('shrink', found!.originalReplay, '--json');
    expect(r.status).toBe(1);
    const out = json(r.stdout);
    expect(out['invariant']).toBe('inplace-order');
    expect(out['storySteps']).toBeLessThanOrEqual(30);
    expect(out['attempts']).toBeGreaterThan(0);
    const again = json(convsim('replay', out['replay'] as string, '--json').stdout);
    expect(again['traceHash']).toBe(out['traceHash']);
  });

  it('explore --strategy pct reports the PCT bound 1/(n k^(d-1)) and states it in words', () => {
    const r = convsim('explore', '--strategy', 'pct', '--mutant', 'priority-inverted', '--iterations', '50', '--json');
    expect(r.status).toBe(1);
    const out = json(r.stdout);
    expect(out['pctBound']).toBe(pctBound(out['actors'] as number, out['expectedSteps'] as number, 2));
    expect(out['pctGuarantee']).toMatch(/probability at least/);
    const text = convsim('explore', '--strategy', 'pct', '--iterations', '8', '--threads', '1', '--expected-steps', '500', '--protocol', 'fixed');
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/PCT guarantee: .*1\/\(6·500\)/);
  });

  it('explore of the correct protocol (every fix): exit 0, found false, every iteration done', () => {
    const r = convsim('explore', '--iterations', '40', '--threads', '2', '--protocol', 'fixed', '--json');
    expect(r.status).toBe(0);
    const out = json(r.stdout);
    expect(out['found']).toBe(false);
    expect(out['iterations']).toBe(40);
    expect(out['failure']).toBeUndefined();
  });

  it('explore --mode inplace verifies each order: v6 breaks inplace-order, priority and explicit hold', () => {
    const r = convsim('explore', '--mode', 'inplace', '--iterations', '24', '--protocol', 'fixed', '--json');
    expect(r.status).toBe(1);
    const orders = json(r.stdout)['orders'] as Array<{ order: string; iterations: number; inplaceOrderHeld: boolean }>;
    expect(orders.map((o) => [o.order, o.inplaceOrderHeld])).toEqual([['v6', false], ['priority', true], ['explicit', true]]);
    expect(orders[1]!.iterations).toBe(24);
    expect(orders[2]!.iterations).toBe(24);
  });

  it('mutants --json lists the 8 zoo entries with their invariants', () => {
    const r = convsim('mutants', '--json');
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout) as Array<{ name: string; expected: string[]; description: string }>;
    expect(list).toHaveLength(8);
    for (const m of list) {
      expect(m.expected.length).toBeGreaterThan(0);
      expect(m.description.length).toBeGreaterThan(20);
    }
  });

  const bad: string[][] = [
    ['explore', '--strategy', 'bfs'],
    ['explore', '--iterations', '0'],
    ['explore', '--mutant', 'no-such-bug'],
    ['explore', '--workload', 'nope'],
    ['explore', '--per-order', '--order', 'v6'],
    ['explore', '--threads', 'many'],
    ['explore', '--frobnicate'],
    ['explore', '--layout', 'moon'],
    ['replay'],
    ['replay', 'not-a-token-nor-a-file'],
    ['replay', 'convsim1.@@@'],
    ['replay', 'convsim3.@@@.0'],
    ['replay', '--last', 'extra'],
    ['shrink', join(work, 'missing.token')],
    ['mutants', 'extra'],
  ];
  for (const args of bad) {
    it(`bad input exits 2 with one line: ${args.join(' ')}`, () => {
      const r = convsim(...args);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^convsim: /);
    });
  }

  it('explore wrote its tokens under the working directory (.convsim/)', () => {
    expect(existsSync(join(work, '.convsim'))).toBe(true);
  });
});
