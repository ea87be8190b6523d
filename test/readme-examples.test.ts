/**
 * Every `convsim ...` example of README.md, run as written (with the built
 * CLI standing for `convsim`), in the order the README gives them, in a
 * scratch directory where `test/` is this repository's: an example that
 * breaks, or a README that drifts from the CLI, fails here. Needs
 * `npm run build` first (npm test does it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { INVARIANT_GLOSSARY } from '../src/core/invariant-glossary.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const cli = join(root, 'dist', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'convsim-readme-'));
symlinkSync(join(root, 'test'), join(work, 'test'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The README's example commands: indented code lines starting with `convsim `, comments removed. */
function readmeCommands(text: string): string[] {
  return text.split('\n')
    .filter((line) => /^ {4}convsim /.test(line))
    .map((line) => line.replace(/\s+#.*$/, '').trim());
}

/** Split a README command into arguments (the examples use no quoting). */
const argsOf = (command: string): string[] => command.split(/\s+/).slice(1);

describe('README examples run as written', () => {
  const commands = readmeCommands(readme);

  it('the README has examples of every command it documents', () => {
    expect(commands.length).toBeGreaterThanOrEqual(8);
    for (const name of ['run', 'explore', 'replay', 'ops']) expect(commands.some((c) => c.startsWith(`convsim ${name} `))).toBe(true);
  });

  for (const command of commands) {
    it(command, () => {
      const r = spawnSync(process.execPath, [cli, ...argsOf(command)], { cwd: work, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
      expect(r.error).toBeUndefined();
      // 0 clean, 1 a violation found (which most examples exist to show); never 2 (bad usage), 3 or 70.
      expect([0, 1], `exit ${r.status}: ${r.stderr}`).toContain(r.status);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at |^convsim: /m);
      expect(r.stdout.length).toBeGreaterThan(0);
    }, 120_000);
  }

  it('documents how to get convsim on the command line, and the bin is executable after a build', () => {
    expect(readme).toContain('npx convsim');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin['convsim']).toBe('dist/cli/main.js');
    expect(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const r = spawnSync(cli, ['--version'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^convsim \d+\.\d+\.\d+\n$/);
  });

  it('the README glossary explains every invariant name', () => {
    for (const name of Object.keys(INVARIANT_GLOSSARY)) expect(readme, name).toContain(`- \`${name}\`:`);
  });
});
