/**
 * Ctrl-C on `convsim explore` keeps what was found: the unshrunk token is
 * printed and written before shrinking, and the report says the
 * exploration was interrupted.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/workers/worker-url.js';

const CLI = join(packageRoot(), 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'convsim-explore-interrupt-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function interrupted(args: string[], afterMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const timer = setTimeout(() => child.kill('SIGINT'), afterMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe('convsim explore interrupted', () => {
  it('with failures found: exit 1, the unshrunk token first, then the report marked INTERRUPTED', async () => {
    const r = await interrupted(['explore', '--mutant', 'no-lock-overlap', '--conversions', '10', '--iterations', '100000000', '--keep-going', '--threads', '1'], 6000);
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^found \S+ at seed \d+; unshrunk token written to .*\.original\.token; shrinking \(Ctrl-C keeps it\): convsim3\./);
    expect(r.stdout).toMatch(/^INTERRUPTED \(SIGINT\) after \d+ of 100000000 iterations/m);
    expect(r.stdout).toMatch(/^FOUND /m);
    const tokens = readdirSync(join(work, '.convsim'));
    expect(tokens.some((t) => t.endsWith('.original.token'))).toBe(true);
  }, 60_000);

  it('with nothing found: exit 130 and the report of what was explored', async () => {
    rmSync(join(work, '.convsim'), { recursive: true, force: true });
    const r = await interrupted(['explore', '--iterations', '100000000', '--threads', '1', '--protocol', 'fixed'], 2500);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout).toMatch(/^INTERRUPTED \(SIGINT\) after \d+ of 100000000 iterations/);
    expect(existsSync(join(work, '.convsim'))).toBe(false);
  }, 60_000);
});
