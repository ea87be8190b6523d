/**
 * The inputs of issue 11 ("First contact") through the built CLI: each
 * ends in exit 0/1, or exit 2 with one line on stderr naming what was wrong
 * and what is allowed; never a stack trace, never a run that runs away.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeToken, exploreConfig } from '../src/explore/explore-case.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'convsim-first-contact-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function convsim(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLine(r: { status: number | null; stdout: string; stderr: string }, needle: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(needle);
  expect(r.stderr.length).toBeLessThan(600);
}

const script = (ops: unknown[], config: Record<string, unknown> = { regionSize: 16384 }): string => JSON.stringify({ config, ops });
function file(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

describe('ops: hostile scripts', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['an op named toString', script([{ op: 'toString' }]), /ops\[0\]\.op: "toString" is not one of addContainer/],
    ['a field named __proto__', `{"config":{"regionSize":16384},"ops":[{"op":"addContainer","id":"c","backend":"type1","__proto__":{"x":1}}]}`, /ops\[0\]\.__proto__: unknown field/],
    ['a field named constructor', script([{ op: 'addContainer', id: 'c', backend: 'type1', constructor: 1 }]), /ops\[0\]\.constructor: unknown field/],
    ['a config field named __proto__', `{"config":{"regionSize":16384,"__proto__":{}},"ops":[]}`, /config\.__proto__: unknown field/],
    ['JSON nested 5,000 deep', `{"config":{"regionSize":16384},"ops":${'['.repeat(5000)}${']'.repeat(5000)}}`, /nested deeper than 64/],
    ['invalid JSON over several lines', '{\n"config":\n{ "regionSize": 16384,, }\n}', /invalid JSON at line 3/],
    ['a 1 MB bad value (echoed truncated)', script([{ op: 'addContainer', id: 'c', backend: 'x'.repeat(1_000_000) }]), /backend: "x+\.\.\. is not one of/],
    ['dma at iova 2^53-1', script([{ op: 'addContainer', id: 'c', backend: 'type1' }, { op: 'dma', container: 'c', iova: 2 ** 53 - 1, size: 4096, write: true }]), /iova \+ size .* passes 2\^53 - 1/],
    ['regionSize 2^50', script([], { regionSize: 2 ** 50 }), /regionSize: .* more than 1048576 blocks/],
  ];
  for (const [what, text, needle] of cases) {
    it(`${what}: exit 2, one line`, () => {
      expectOneLine(convsim(['ops', file(`${what.replace(/\W+/g, '-')}.json`, text)]), needle);
    });
  }

  it('a container named __proto__ works and appears in final.mappings', () => {
    const r = convsim(['ops', file('proto-container.json', script([
      { op: 'addContainer', id: '__proto__', backend: 'type1' },
      { op: 'register', container: '__proto__', section: { offset: 0, size: 16384, iova: 0 } },
      { op: 'convert', gpa: 0, size: 4096, toPrivate: false },
    ]))]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { final: { mappings: Record<string, unknown> } };
    expect(Object.keys(out.final.mappings)).toEqual(['__proto__']);
    expect(out.final.mappings['__proto__']).toEqual([[0, 4096]]);
  });

  it('a UTF-8 byte-order mark is accepted', () => {
    const r = convsim(['ops', file('bom.json', `\ufeff${script([])}`)]);
    expect(r.status, r.stderr).toBe(0);
  });

  it('/dev/zero is refused at the size limit, not read whole', () => {
    expectOneLine(convsim(['ops', '/dev/zero']), /larger than the ops input limit of 16777216 bytes/);
    expectOneLine(convsim(['replay', '/dev/zero']), /larger than the replay input limit/);
  });

  it('a whole-region conversion prints a capped event list and says how many were left out', () => {
    const r = convsim(['ops', '--max-events', '1000', file('whole.json', script([
      { op: 'addContainer', id: 'c', backend: 'type1' },
      { op: 'register', container: 'c', section: { offset: 0, size: 64 * 1024 * 1024, iova: 0 } },
      { op: 'convert', gpa: 0, size: 64 * 1024 * 1024, toPrivate: false },
    ], { regionSize: 64 * 1024 * 1024 }))]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { events: unknown[]; eventsOmitted: { count: number; note: string } };
    expect(out.events).toHaveLength(1000);
    expect(out.eventsOmitted.count).toBeGreaterThan(1000);
    expect(out.eventsOmitted.note).toMatch(/--max-events/);
  });

  it('--check compares a vector with its expect: ok, or what differs (exit 1)', () => {
    const vector = JSON.parse(readFileSync(join(root, 'test', 'vectors', 'legacy-type1-roundtrip.json'), 'utf8')) as { expect: { results: unknown[] } };
    const ok = convsim(['ops', '--check', join(root, 'test', 'vectors', 'legacy-type1-roundtrip.json')]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^ok /);
    vector.expect.results = [{ ret: -1 }, ...vector.expect.results.slice(1)];
    const bad = convsim(['ops', '--check', file('bad-vector.json', JSON.stringify(vector))]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/^FAIL .*results differ/);
    expectOneLine(convsim(['ops', '--check', file('plain.json', script([]))]), /--check needs a vector file/);
  });
});

describe('options: one line naming the option and what is allowed, nothing run', () => {
  const cases: Array<[string[], RegExp, Record<string, string>?]> = [
    [['run', '--vcpus', '-1'], /--vcpus: "-1" must be an integer from 1 to 64/],
    [['run', '--containers', 'type1:65535:7'], /--containers: "type1:65535:7" is not type1, type1:N, type1:auto or iommufd/],
    [['run', '--trace-limit', '0'], /--trace-limit only applies together with --trace/],
    [['run', '--guest-mem', '100T'], /--guest-mem: "100T" is more than 1T/],
    [['run', '--trace', '/nonexistent-dir/run.json'], /--trace: cannot write/],
    [['run', '--report', work], /--report: .* is a directory/],
    [['run', '--vcpu', '3'], /unknown option "--vcpu" \(did you mean --vcpus\?\); valid options: --vcpus, /],
    [['run'], /CONVSIM_INJECT_FAULT: no actor "c7" in this run \(actors: kvm, rba, c0, c1, vcpu0/, { CONVSIM_INJECT_FAULT: 'c7:throw:10' }],
    [['explre'], /unknown command "explre" \(did you mean explore\?\)/],
    [['replay', '--last'], /no failure tokens: cannot read ".convsim" \(no such directory; run convsim explore first\)/],
  ];
  for (const [args, needle, env] of cases) {
    it(`${args.join(' ')}${env === undefined ? '' : ` (${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')})`}`, () => {
      expectOneLine(convsim(args, env), needle);
    });
  }

  it('no arguments: the usage on stderr, exit 2; --version on stdout, exit 0', () => {
    const none = convsim([]);
    expect(none.status).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^convsim \d+\.\d+\.\d+: /);
    const version = convsim(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^convsim \d+\.\d+\.\d+\n$/);
  });
});

describe('replay and shrink find tokens in a directory or with --last', () => {
  it('takes the newest failure-*.token, never an .original.token', () => {
    const dir = join(work, 'tokens', '.convsim');
    mkdirSync(dir, { recursive: true });
    const token = encodeToken({ config: exploreConfig({ workload: 'storm', seed: 1, mode: 'inplace', order: 'v6' }), strategy: 'random', depth: 2, expectedSteps: 1000, scheduleSeed: 1 });
    writeFileSync(join(dir, 'failure-old-1.token'), 'convsim3.damaged.000000000000\n');
    utimesSync(join(dir, 'failure-old-1.token'), new Date(1000), new Date(1000));
    writeFileSync(join(dir, 'failure-new-2.token'), `${token}\n`);
    writeFileSync(join(dir, 'failure-new-2.original.token'), 'not a token\n');
    utimesSync(join(dir, 'failure-new-2.original.token'), new Date(Date.now() + 60_000), new Date(Date.now() + 60_000));
    const fromDir = convsim(['replay', '--json', dir]);
    expect(fromDir.status, fromDir.stderr).toBe(1);
    const r = spawnSync(process.execPath, [cli, 'replay', '--json', '--last'], { cwd: join(work, 'tokens'), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(fromDir.stdout));
  });

  it('a damaged token is refused, not replayed as another case', () => {
    const token = encodeToken({ config: exploreConfig({ workload: 'storm', seed: 1 }), strategy: 'random', depth: 2, expectedSteps: 1000, scheduleSeed: 1 });
    const i = 40;
    const flipped = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
    expectOneLine(convsim(['replay', flipped]), /damaged \(checksum mismatch/);
  });
});
