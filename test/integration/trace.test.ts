/**
 * `convsim run --trace`: the produced file against the Trace Event Format
 * rules that Perfetto and chrome://tracing rely on (see trace-format.ts),
 * for a complete trace and for one cut short by `--trace-limit`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/workers/worker-url.js';
import { checkTrace, type TraceCheck } from './trace-format.js';

const CLI = join(packageRoot(), 'dist', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'convsim-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function traceRun(limit: number): { status: number | null; stderr: string; check: TraceCheck } {
  const file = join(dir, `trace-${limit}.json`);
  const r = spawnSync(process.execPath, [CLI, 'run', '--guest-mem', '64M', '--conversions', '300', '--protocol', 'fixed', '--trace', file, '--trace-limit', String(limit)],
    { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stderr: r.stderr, check: checkTrace(JSON.parse(readFileSync(file, 'utf8')) as unknown) };
}

describe('the trace checker', () => {
  it('finds what breaks the format: a partial overlap, an unmatched flow, an unnamed thread, an unknown phase', () => {
    const m = (tid: number): object => ({ name: 'thread_name', ph: 'M', ts: 0, pid: 1, tid, args: { name: `t${tid}` } });
    const bad = { traceEvents: [
      { name: 'process_name', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: 'p' } }, m(1),
      { name: 'a', ph: 'X', ts: 0, dur: 10, pid: 1, tid: 1 },
      { name: 'b', ph: 'X', ts: 5, dur: 10, pid: 1, tid: 1 },
      { name: 'a', ph: 's', ts: 1, id: 7, pid: 1, tid: 1 },
      { name: 'c', ph: 'X', ts: 0, dur: 1, pid: 1, tid: 2 },
      { name: 'd', ph: 'B', ts: 0, pid: 1, tid: 1 },
    ] };
    const problems = checkTrace(bad).problems.join('\n');
    expect(problems).toMatch(/b@5 partially overlaps a@0/);
    expect(problems).toMatch(/flow 7: 1 starts and 0 finishes/);
    expect(problems).toMatch(/tid 2 has events but no thread_name/);
    expect(problems).toMatch(/phase B is not one of/);
    expect(checkTrace([]).problems).toEqual(['not the object form: no traceEvents array']);
  });
});

describe('convsim run --trace (Chrome Trace Event Format)', () => {
  it('a complete trace follows the format: fields, phases, strict nesting, matched flows, named threads, counters', () => {
    const { status, stderr, check } = traceRun(2_000_000);
    expect(status).toBe(0);
    expect(stderr).toBe('');
    console.log(`trace: ${check.events} events ${JSON.stringify(check.byPhase)}, ${check.flows} flows, ` +
      `${check.nestedSlices} nested slices; flow starts outside any slice: ${JSON.stringify(check.unenclosedStarts)}; ` +
      `inside a "send" slice (sent outside a handled message): ${JSON.stringify(check.sendSlices)}`);
    expect(check.problems).toEqual([]);
    expect(check.otherData['truncated']).toBe(false);
    expect(check.otherData['note']).toBeUndefined();
    expect(check.byPhase['X']).toBeGreaterThan(1000);
    expect(check.flows).toBeGreaterThan(1000);
    // One thread per worker, each named by role and id.
    expect(Object.values(check.threadNames).sort()).toEqual([
      'c0 (vfio-container)', 'c1 (vfio-container)', 'kvm (kvm-exit)', 'rba (ram-block-attributes)',
      'vcpu0 (vcpu)', 'vcpu1 (vcpu)', 'vcpu2 (vcpu)', 'vcpu3 (vcpu)']);
    // With one message handled at a time per thread, slices are disjoint.
    expect(check.nestedSlices).toBe(0);
    // Every send lies in a slice: sends outside a handled message (the host's comlink calls,
    // conversions the KVM exit handler's p-queue admits in a later microtask) get a "send" slice.
    expect(check.unenclosedStarts).toEqual({});
    expect(Object.keys(check.sendSlices)).toContain('send stateChange');
    expect(check.counterNames).toEqual(expect.arrayContaining(['shared pages', 'live mappings c0', 'live mappings c1']));
  }, 120_000);

  it('a small --trace-limit writes a valid file whose note says the limit was reached, and prints it on stderr', () => {
    const { status, stderr, check } = traceRun(800);
    expect(status).toBe(0);
    expect(check.problems).toEqual([]);
    expect(check.otherData['truncated']).toBe(true);
    const note = check.otherData['note'];
    expect(note).toMatch(/^trace limit of 800 events reached: \d+ events were sampled out; each track keeps its most recent events in full .* per track: kvm: [\d.]+ s-[\d.]+ s, in full from [\d.]+ s, 1 in \d+ before; rba: /);
    expect(stderr).toContain(`convsim run: ${String(note)}`);
    const recorded = check.events - (check.byPhase['M'] ?? 0);
    expect(recorded).toBeGreaterThan(0);
    expect(recorded).toBeLessThanOrEqual(800);
    // The whole run is covered: every worker has events in the first and in the last third of the run.
    const trace = JSON.parse(readFileSync(join(dir, 'trace-800.json'), 'utf8')) as { traceEvents: Array<{ ph: string; tid: number; ts: number }> };
    const events = trace.traceEvents.filter((e) => e.ph !== 'M');
    const end = Math.max(...events.map((e) => e.ts));
    const tids = new Set(events.map((e) => e.tid));
    expect(tids.size).toBe(8);
    for (const tid of tids) {
      const ts = events.filter((e) => e.tid === tid).map((e) => e.ts);
      expect(Math.min(...ts), `track ${tid} starts late`).toBeLessThan(end / 3);
      expect(Math.max(...ts), `track ${tid} stops early`).toBeGreaterThan((2 * end) / 3);
    }
  }, 120_000);

  it('--trace-window records only the chosen span, and says how many events fell outside it', () => {
    const file = join(dir, 'trace-window.json');
    const r = spawnSync(process.execPath, [CLI, 'run', '--guest-mem', '64M', '--conversions', '300', '--protocol', 'fixed', '--trace', file, '--trace-window', '1-1.5'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const trace = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: Array<{ ph: string; ts: number }>; otherData: Record<string, unknown> };
    expect(checkTrace(trace).problems).toEqual([]);
    expect(trace.otherData['window']).toMatch(/^\d+ events outside --trace-window were not recorded$/);
    const ts = trace.traceEvents.filter((e) => e.ph !== 'M').map((e) => e.ts);
    expect(ts.length).toBeGreaterThan(0);
    expect(Math.max(...ts) - Math.min(...ts)).toBeLessThanOrEqual(500_000);
  }, 120_000);
});

describe('convsim replay --trace (the deterministic runtime, same format)', () => {
  it('writes a valid Chrome trace of a replayed failure', () => {
    const fixtures = join(packageRoot(), 'test', 'explore', 'fixtures');
    const token = readFileSync(join(fixtures, 'register-race-shrunk.token'), 'utf8').trim();
    const file = join(dir, 'replay.json');
    const r = spawnSync(process.execPath, [CLI, 'replay', token, '--trace', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    const check = checkTrace(JSON.parse(readFileSync(file, 'utf8')) as unknown);
    expect(check.problems).toEqual([]);
    expect(check.slices).toBeGreaterThan(0);
    expect(check.flows).toBeGreaterThan(0);
    // The violation is an instant on the track of the actor that found it, numbered as the story's last step.
    const storySteps = r.stdout.split('\n').filter((line) => /^\s*\d+\. /.test(line)).length;
    const [violation, ...others] = check.instants;
    expect(others).toEqual([]);
    expect(violation?.name).toBe('violation: conversion-failed');
    expect(check.threadNames[violation?.tid as number]).toBe('kvm (kvm-exit)');
    expect(violation?.args).toMatchObject({ step: storySteps, invariant: 'conversion-failed' });
    expect(r.stdout).toContain(`=> conversion-failed: ${String(violation?.args?.['message'])}`);
    // Each delivery names the QEMU thread it runs for; those that preempted one name it too, as the story does.
    const deliveries = (JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: Array<{ ph: string; cat?: string; args?: Record<string, unknown> }> })
      .traceEvents.filter((e) => e.ph === 'X' && e.cat === 'message');
    expect(deliveries.every((e) => typeof e.args?.['thread'] === 'string')).toBe(true);
    const preempting = deliveries.filter((e) => e.args?.['preempts'] !== undefined);
    const toldPreemptions = r.stdout.split('\n').filter((line) => / {2}<- preempts /.test(line)).length;
    expect(toldPreemptions).toBeGreaterThan(0);
    expect(preempting.length).toBeGreaterThanOrEqual(toldPreemptions);
  });
});
