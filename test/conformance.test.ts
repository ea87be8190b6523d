/**
 * Conformance vectors (`test/vectors/*.json`), run through the same code
 * path as `convsim ops FILE`: `loadOpsFile` on a file holding the vector's
 * `input`, then `runOps`.
 *
 * A vector is
 * `{ description, input: {config, ops}, expect: { exitCode, results, events?, final?, violations?,
 *    eventCount?, eventsHead?, eventsTail? } }`.
 * Every expected value was derived from the spec (and QEMU/kernel
 * semantics), not copied from the program's output.
 *
 * Compared by `compareWithVector`, the code `convsim ops --check` uses. Rules:
 * - `results`, `events`, `final` (each key given): deep equality;
 * - a `vmStop` event's `reason` is free text: an expected `{kind: "vmStop"}`
 *   without `reason` matches any reason;
 * - `violations`: the list of `{invariant, op}` in order (messages and other
 *   details are ignored);
 * - `exitCode`: 0 when the run found no violation, 1 otherwise (what the CLI
 *   exits with);
 * - for huge runs, `eventCount` and the first/last events (`eventsHead`,
 *   `eventsTail`) stand in for the full list.
 *
 * `test/vectors/invalid/*.json` are inputs that must be rejected before
 * anything runs, with one line naming the file, the op index and the field.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOpsFile } from '../src/cli/commands/ops.js';
import { UsageError } from '../src/cli/usage-error.js';
import { runOps, type OpsOutput } from '../src/ops/run-ops.js';
import { compareWithVector } from '../src/ops/ops-vector.js';
import { INVALID_CASES } from './vectors/invalid-cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const vectorsDir = join(here, 'vectors');
const invalidDir = join(vectorsDir, 'invalid');
const work = mkdtempSync(join(tmpdir(), 'convsim-conformance-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Vector {
  description: string;
  input: { config: Record<string, unknown>; ops: Array<Record<string, unknown>> };
  expect: {
    exitCode: 0 | 1;
    results: unknown[];
    events?: Array<Record<string, unknown>>;
    final?: Record<string, unknown>;
    violations?: Array<{ invariant: string; op: number }>;
    eventCount?: number;
    eventsHead?: Array<Record<string, unknown>>;
    eventsTail?: Array<Record<string, unknown>>;
  };
}

const vectorFiles = readdirSync(vectorsDir).filter((f) => f.endsWith('.json')).sort();
const vectors = new Map<string, Vector>(vectorFiles.map((f) => [f, JSON.parse(readFileSync(join(vectorsDir, f), 'utf8')) as Vector]));

/** Run a vector's input exactly as the CLI does. */
function run(name: string, vector: Vector): OpsOutput {
  const file = join(work, name);
  writeFileSync(file, JSON.stringify(vector.input));
  return runOps(loadOpsFile(file));
}

describe('conformance vectors (loadOpsFile + runOps, as `convsim ops`)', () => {
  it('there are vectors', () => {
    expect(vectorFiles.length).toBeGreaterThanOrEqual(15);
  });

  for (const [name, vector] of vectors) {
    it(`${name}: ${vector.description.slice(0, 90)}`, () => {
      expect(typeof vector.description).toBe('string');
      const out = run(name, vector);
      // The comparison `convsim ops --check` makes (src/ops/ops-vector.ts), so the two cannot drift apart.
      expect(compareWithVector(out, vector.expect), `output: ${JSON.stringify(out).slice(0, 2000)}`).toEqual([]);
    });
  }

  it('the comparison sees a difference in each part it compares', () => {
    const [name, vector] = [...vectors].find(([, v]) => v.expect.events !== undefined && v.expect.final !== undefined)!;
    const out = run(name, vector);
    const changed = (patch: Partial<Vector['expect']>): string[] => compareWithVector(out, { ...vector.expect, ...patch });
    expect(changed({})).toEqual([]);
    expect(changed({ results: [...vector.expect.results, { ret: 0 }] })).toEqual(['results differ']);
    expect(changed({ events: [...vector.expect.events!, { kind: 'map' }] })).toEqual(['events differ']);
    expect(changed({ final: { outcome: 'qemu-abort' } })).toEqual(['final.outcome differ']);
    expect(changed({ exitCode: 1 - vector.expect.exitCode as 0 | 1 })).toEqual([`exit code ${vector.expect.exitCode}, expected ${1 - vector.expect.exitCode}`]);
  });

  it('the vectors cover every op, every error code, every dma outcome, both modes, all orders and all policies', () => {
    const ops = new Set<string>();
    const rets = new Set<number>();
    const eventRets = new Set<number>();
    const outcomes = new Set<string>();
    const modes = new Set<string>();
    const orders = new Set<string>();
    const policies = new Set<string>();
    for (const vector of vectors.values()) {
      const { config } = vector.input;
      const mode = (config['mode'] as string | undefined) ?? 'legacy';
      modes.add(mode);
      if (mode === 'inplace') orders.add((config['inplaceOrder'] as string | undefined) ?? 'explicit');
      policies.add((config['rollback'] as string | undefined) ?? 'none');
      for (const op of vector.input.ops) ops.add(op['op'] as string);
      for (const r of vector.expect.results as Array<Record<string, unknown>>) {
        if ('ret' in r) rets.add(r['ret'] as number);
        if ('outcome' in r) outcomes.add(r['outcome'] as string);
      }
      for (const e of [...(vector.expect.events ?? []), ...(vector.expect.eventsTail ?? [])]) {
        if (typeof e['ret'] === 'number') eventRets.add(e['ret']);
      }
    }
    expect([...ops].sort()).toEqual(['addContainer', 'convert', 'dma', 'dmaMap', 'dmaUnmap', 'failNextMaps', 'isPopulated',
      'register', 'replayDiscarded', 'replayPopulated', 'stateChange', 'unregister']);
    for (const code of [0, -22, -28, -17, -11, -12]) expect(rets, `ret ${code}`).toContain(code);
    expect(eventRets).toContain(-2);
    expect([...outcomes].sort()).toEqual(['dma-to-private', 'dma-to-stale', 'fault', 'ok']);
    const finals = new Set([...vectors.values()].map((v) => v.expect.final?.['outcome']).filter((o) => o !== undefined));
    expect([...finals].sort()).toEqual(['qemu-abort', 'qemu-exit', 'realize-failed', 'running', 'vm-stopped']);
    expect([...modes].sort()).toEqual(['inplace', 'legacy']);
    expect([...orders].sort()).toEqual(['explicit', 'priority', 'v6']);
    expect([...policies].sort()).toEqual(['full', 'listener', 'none']);
  });
});


describe('invalid inputs (test/vectors/invalid): rejected by loadOpsFile with one line', () => {
  it('every file in test/vectors/invalid has an expectation, and every expectation a file', () => {
    expect(readdirSync(invalidDir).filter((f) => f.endsWith('.json')).sort()).toEqual(Object.keys(INVALID_CASES).sort());
  });

  for (const [name, needles] of Object.entries(INVALID_CASES)) {
    it(`${name}: UsageError naming the file and ${needles.join(', ')}`, () => {
      const file = join(invalidDir, name);
      let error: unknown;
      try {
        loadOpsFile(file);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      const message = (error as Error).message;
      expect(message.startsWith(`${file}:`), message).toBe(true);
      for (const needle of needles) expect(message).toContain(needle);
      expect(message).not.toContain('\n');
    });
  }

  it('an unreadable file is a UsageError too', () => {
    const file = join(work, 'does-not-exist.json');
    expect(() => loadOpsFile(file)).toThrow(UsageError);
    expect(() => loadOpsFile(file)).toThrow(/does-not-exist\.json: cannot read: ENOENT/);
  });
});
