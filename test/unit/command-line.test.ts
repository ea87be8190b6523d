/** The table-driven option parser: every mistake is one UsageError line naming the option and what is allowed. */
import { describe, expect, it } from 'vitest';
import { didYouMean, parseCommandLine } from '../../src/cli/command-line.js';
import { UsageError } from '../../src/cli/usage-error.js';

const TABLE = {
  vcpus: { type: 'string', default: '4' },
  trace: { type: 'string' },
  'trace-limit': { type: 'string', requires: 'trace' },
  json: { type: 'boolean', default: false },
} as const;

function message(argv: string[]): string {
  try {
    parseCommandLine('run', argv, TABLE);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('parseCommandLine', () => {
  it('parses values, defaults and which options were given', () => {
    const r = parseCommandLine('run', ['--vcpus', '8', '--json', 'x'], TABLE);
    expect(r.values.vcpus).toBe('8');
    expect(r.values.json).toBe(true);
    expect(r.values.trace).toBeUndefined();
    expect(r.positionals).toEqual(['x']);
    expect([...r.given].sort()).toEqual(['json', 'vcpus']);
  });

  it('takes a negative number as the value of a string option (so its range check can name it)', () => {
    expect(parseCommandLine('run', ['--vcpus', '-1'], TABLE).values.vcpus).toBe('-1');
  });

  it('names an unknown option, suggests the closest and lists the valid ones', () => {
    expect(message(['--vcpu', '3'])).toBe('run: unknown option "--vcpu" (did you mean --vcpus?); valid options: --vcpus, --trace, --trace-limit, --json');
    expect(message(['--zzzzzzzz'])).toBe('run: unknown option "--zzzzzzzz"; valid options: --vcpus, --trace, --trace-limit, --json');
    expect(message(['--__proto__'])).toMatch(/^run: unknown option "--__proto__"/);
  });

  it('refuses an option without the one it requires, a missing or empty value, and a value for a switch', () => {
    expect(message(['--trace-limit', '5'])).toBe('run: --trace-limit only applies together with --trace');
    expect(message(['--trace'])).toBe('run: --trace needs a value');
    expect(message(['--trace', ''])).toBe('run: --trace needs a non-empty value');
    expect(message(['--json=yes'])).toBe('run: --json is a switch and takes no value');
  });

  it('did-you-mean only for near misses', () => {
    expect(didYouMean('explre', ['run', 'explore', 'replay'])).toBe('explore');
    expect(didYouMean('banana', ['run', 'explore', 'replay'])).toBeUndefined();
  });
});
