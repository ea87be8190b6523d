/**
 * `convsim ops FILE` end to end: the built CLI (`dist/cli/main.js`, so run
 * `npm run build` first) on every conformance vector's input and on every
 * invalid input of `test/vectors/invalid`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { INVALID_CASES } from './vectors/invalid-cases.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const vectorsDir = join(root, 'test', 'vectors');
const invalidDir = join(vectorsDir, 'invalid');
const work = mkdtempSync(join(tmpdir(), 'convsim-cli-ops-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function convsim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Vector {
  input: unknown;
  expect: { exitCode: number; results: unknown[]; violations?: Array<{ invariant: string; op: number }> };
}

describe('convsim ops FILE (built CLI)', () => {
  it('dist/cli/main.js exists (run `npm run build` first)', () => {
    expect(existsSync(cli)).toBe(true);
  });

  const files = readdirSync(vectorsDir).filter((f) => f.endsWith('.json')).sort();
  for (const name of files) {
    it(`${name}: exit status, one JSON object on stdout with results/events/final/violations, nothing on stderr`, () => {
      const vector = JSON.parse(readFileSync(join(vectorsDir, name), 'utf8')) as Vector;
      const file = join(work, name);
      writeFileSync(file, JSON.stringify(vector.input));
      const { status, stdout, stderr } = convsim('ops', file);
      expect(stderr).toBe('');
      expect(status).toBe(vector.expect.exitCode);
      const out = JSON.parse(stdout) as Record<string, unknown>;
      expect(Object.keys(out).sort()).toEqual(['events', 'final', 'results', 'violations']);
      expect(out['results']).toEqual(vector.expect.results);
      expect(Array.isArray(out['events'])).toBe(true);
      expect(Object.keys(out['final'] as object).sort()).toEqual(['kvmPrivate', 'mappings', 'outcome', 'shared', 'vmStopped']);
      const violations = out['violations'] as Array<{ invariant: string; op: number; message: string }>;
      if (vector.expect.violations !== undefined) {
        expect(violations.map((v) => ({ invariant: v.invariant, op: v.op }))).toEqual(vector.expect.violations);
      }
      for (const v of violations) expect(typeof v.message).toBe('string');
    });
  }

  it('--pretty prints the same object, indented', () => {
    const vector = JSON.parse(readFileSync(join(vectorsDir, 'legacy-type1-roundtrip.json'), 'utf8')) as Vector;
    const file = join(work, 'pretty.json');
    writeFileSync(file, JSON.stringify(vector.input));
    const plain = convsim('ops', file);
    const pretty = convsim('ops', file, '--pretty');
    expect(pretty.status).toBe(0);
    expect(pretty.stdout.split('\n').length).toBeGreaterThan(10);
    expect(JSON.parse(pretty.stdout)).toEqual(JSON.parse(plain.stdout));
  });
});


function expectUsageError(result: { status: number | null; stdout: string; stderr: string }, needles: readonly string[]): void {
  expect(result.status).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.endsWith('\n')).toBe(true);
  const lines = result.stderr.slice(0, -1).split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  for (const needle of needles) expect(lines[0]).toContain(needle);
  expect(result.stderr).not.toMatch(/\n\s+at |Error:|internal error/);
}

describe('convsim ops FILE on invalid input: exit 2, one line on stderr, nothing run', () => {
  it('every invalid input file has an expectation', () => {
    expect(readdirSync(invalidDir).filter((f) => f.endsWith('.json')).sort()).toEqual(Object.keys(INVALID_CASES).sort());
  });

  for (const [name, needles] of Object.entries(INVALID_CASES)) {
    it(`${name}: names the file and ${needles.join(', ')}`, () => {
      const file = join(invalidDir, name);
      expectUsageError(convsim('ops', file), [file, ...needles]);
    });
  }

  it('an unreadable file', () => {
    const file = join(work, 'missing.json');
    expectUsageError(convsim('ops', file), [file, 'cannot read']);
  });

  it('no FILE, or two', () => {
    expectUsageError(convsim('ops'), ['ops']);
    expectUsageError(convsim('ops', 'a.json', 'b.json'), ['ops']);
  });
});

describe('convsim ops FILE never dies with an internal error on input that passes validation', () => {
  /*
   * These inputs pass the schema (every field a non-negative safe integer),
   * so the run must finish with exit 0/1 (or the schema must reject them
   * with exit 2): a dmaMap whose host offset lies outside the region fails
   * the pin with -EFAULT, as the kernel does; a map or unmap whose
   * iova + size passes 2^53 is -EINVAL (the model's address limit).
   */
  const cases: Array<[string, Record<string, unknown>]> = [
    ['dmaMap with its host offset beyond the region', { op: 'dmaMap', container: 'c', iova: 0, size: 4096, offset: 16384 }],
    ['dmaMap straddling the region end', { op: 'dmaMap', container: 'c', iova: 0, size: 8192, offset: 12288 }],
    ['dmaUnmap with iova + size past 2^53', { op: 'dmaUnmap', container: 'c', iova: 2 ** 53 - 4096, size: 8192 }],
    ['dmaMap with iova + size past 2^53', { op: 'dmaMap', container: 'c', iova: 2 ** 53 - 4096, size: 8192, offset: 0 }],
  ];
  for (const [what, op] of cases) {
    it(`${what}: a kernel error, not an internal error`, () => {
      const file = join(work, `edge-${what.replace(/\W+/g, '-')}.json`);
      writeFileSync(file, JSON.stringify({ config: { regionSize: 16384 }, ops: [{ op: 'addContainer', id: 'c', backend: 'type1' }, op] }));
      const { status, stderr } = convsim('ops', file);
      expect(stderr).not.toMatch(/internal error|\n\s+at /);
      expect([0, 1, 2]).toContain(status);
    });
  }
});
