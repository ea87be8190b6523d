/**
 * Sharding, as the README and the example files use it: the explore lines
 * of examples/github-actions-shards.yml and examples/kubernetes-indexed-job.yaml
 * run shard by shard here (on a smaller machine, given by options appended
 * after the file's own, which parseArgs lets win), `convsim merge` puts them
 * together, and the verdict and first failure equal the unsharded run's.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

function convsim(cwd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
}

/** The explore line's arguments, with the shard expression replaced by `{I}`. */
function exploreLine(file: string, shardExpression: string): { args: string[]; count: number } {
  const line = readFileSync(join(ROOT, 'examples', file), 'utf8').split('\n').find((l) => l.includes('convsim explore'))!;
  const command = line.slice(line.indexOf('convsim explore') + 'convsim explore'.length).split('>')[0]!.trim();
  const shard = /--shard (.+?)\/(\d+)/.exec(command)!;
  expect(shard[1]).toBe(shardExpression);
  return { args: command.replace(shard[1]!, '{I}').split(/\s+/), count: Number(shard[2]) };
}

/** A smaller machine and a bound, so that a whole search takes a second. */
const SMALLER = ['--workload', 'adversarial', '--conversions', '2', '--hotplugs', '0', '--preemption-bound', '1', '--split-depth', '2', '--threads', '1'];

describe('the sharding examples', () => {
  it('the GitHub Actions matrix names shards 1..N and its merge job merges them', () => {
    const text = readFileSync(join(ROOT, 'examples', 'github-actions-shards.yml'), 'utf8');
    const { count } = exploreLine('github-actions-shards.yml', '${{ matrix.shard }}');
    expect(/shard: \[([\d, ]+)\]/.exec(text)![1]!.split(',').map(Number)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(text).toMatch(/npx convsim merge shard-\*\.json/);
  });

  it('the Kubernetes Job runs N completions, indexed', () => {
    const text = readFileSync(join(ROOT, 'examples', 'kubernetes-indexed-job.yaml'), 'utf8');
    const { count } = exploreLine('kubernetes-indexed-job.yaml', '$((JOB_COMPLETION_INDEX + 1))');
    expect(text).toMatch(new RegExp(`completions: ${count}\\b`));
    expect(text).toMatch(/completionMode: Indexed/);
  });

  it('the Kubernetes Job runs the GitHub matrix\'s command, its shard I = JOB_COMPLETION_INDEX + 1 as the shell computes it', () => {
    const k8s = exploreLine('kubernetes-indexed-job.yaml', '$((JOB_COMPLETION_INDEX + 1))');
    const gha = exploreLine('github-actions-shards.yml', '${{ matrix.shard }}');
    expect(k8s.args).toEqual(gha.args);
    for (let index = 0; index < k8s.count; index++) {
      const sh = spawnSync('sh', ['-c', 'echo $((JOB_COMPLETION_INDEX + 1))'], { env: { JOB_COMPLETION_INDEX: String(index) }, encoding: 'utf8' });
      expect(sh.stdout.trim()).toBe(String(index + 1));
    }
  });

  it('their explore line: N shards merged give the unsharded verdict and totals', () => {
    const { args, count } = exploreLine('github-actions-shards.yml', '${{ matrix.shard }}');
    const cwd = mkdtempSync(join(tmpdir(), 'convsim-shards-'));
    const unsharded = convsim(cwd, ['explore', ...args.filter((a, i) => a !== '--shard' && args[i - 1] !== '--shard'), ...SMALLER]);
    const files: string[] = [];
    for (let i = 1; i <= count; i++) {
      const r = convsim(cwd, ['explore', ...args.map((a) => a.replace('{I}', String(i))), ...SMALLER]);
      expect(r.status, r.stderr).toBe(0);
      files.push(join(cwd, `shard-${i}.json`));
      writeFileSync(files[i - 1]!, r.stdout);
    }
    const merged = convsim(cwd, ['merge', ...files, '--json']);
    expect(merged.status, merged.stderr).toBe(unsharded.status);
    const m = JSON.parse(merged.stdout) as Record<string, unknown>;
    const u = JSON.parse(unsharded.stdout) as Record<string, unknown>;
    expect(u['verdict']).toBe('held');
    expect(m['verdict']).toBe('held');
    expect(m['executions']).toBe(u['executions']);
    expect(m['distinctTraces']).toBe(u['distinctTraces']);
    expect(m['subtrees']).toBeUndefined();
    expect(u['subtrees']).toBeGreaterThanOrEqual(count);
  });

  it('sampling shards: seed ranges merged equal the unsharded run (verdict, first failure; totals when nothing is found)', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'convsim-shards-'));
    for (const extra of [['--protocol', 'fixed'], ['--mutant', 'notify-before-bitmap']]) {
      const base = ['explore', '--iterations', '12', '--threads', '1', '--json', '--expected-steps', '1000', '--guest-mem', '16M', ...extra];
      const unsharded = JSON.parse(convsim(cwd, base).stdout) as Record<string, unknown>;
      const files = [1, 2].map((i) => {
        const file = join(cwd, `s${i}.json`);
        writeFileSync(file, convsim(cwd, [...base, '--shard', `${i}/2`]).stdout);
        return file;
      });
      const merged = JSON.parse(convsim(cwd, ['merge', ...files, '--json']).stdout) as Record<string, unknown>;
      expect(merged['found']).toBe(unsharded['found']);
      expect(JSON.stringify(merged['failure'] ?? null)).toBe(JSON.stringify(unsharded['failure'] ?? null));
      if (unsharded['found'] === false) {
        expect(merged['iterations']).toBe(unsharded['iterations']);
        expect(merged['distinctTraces']).toBe(unsharded['distinctTraces']);
      }
    }
  });

  it('merge refuses a missing or repeated shard, and shards of another search, in one line', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'convsim-shards-'));
    // Only the shard header matters before merge refuses: written by hand.
    const write = (name: string, index: number, searchKey = 'k'): string => {
      const file = join(cwd, name);
      writeFileSync(file, JSON.stringify({ schemaVersion: 2, command: 'explore', strategy: 'random', searchKey, shard: { index, count: 2 } }));
      return file;
    };
    const one = write('1.json', 1);
    const two = write('2.json', 2);
    const other = write('o.json', 2, 'another');
    for (const [files, message] of [[[one], /shard 2\/2 is missing/], [[one, one, two], /shard 1\/2 is given 2 times/], [[one, other], /another search/]] as const) {
      const r = convsim(cwd, ['merge', ...files]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
