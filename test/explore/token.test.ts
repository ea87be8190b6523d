/**
 * Replay tokens: a checksum refuses a damaged token, every decoded field is
 * held to the command line's bounds, and tokens from before the checksum
 * (`convsim1.`, `convsim2.`) are refused: their schedules predate QEMU's grain.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeToken, encodeToken, exploreConfig, type ExploreCase } from '../../src/explore/explore-case.js';
import { MUTANTS } from '../../src/explore/mutants.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const read = (name: string): string => readFileSync(join(fixtures, name), 'utf8').trim();

const base: ExploreCase = { config: exploreConfig({ workload: 'storm', seed: 1 }), strategy: 'random', depth: 2, expectedSteps: 1000, scheduleSeed: 7 };

/** A token of an arbitrary (possibly invalid) object, with a valid checksum. */
function tokenOf(value: unknown): string {
  return encodeToken(value as ExploreCase);
}

function expectRefused(token: string, needle: RegExp): void {
  let message = '';
  try {
    decodeToken(token);
  } catch (error) {
    expect(error).toBeInstanceOf(RangeError);
    message = (error as Error).message;
  }
  expect(message, 'the token was accepted').toMatch(needle);
  expect(message).not.toContain('\n');
  expect(message.length).toBeLessThan(300);
}

describe('replay tokens', () => {
  it('tokens of older versions (convsim1., convsim2.) are refused in one line that says why', () => {
    for (const name of ['older-convsim1.token', 'older-convsim2.token']) {
      expect(() => decodeToken(read(name))).toThrow(/^replay token of an older convsim \(convsim[12]\.\): its schedule was recorded before state changes ran at QEMU's grain/);
    }
  });

  it('every mutant case and a plain case survive encoding and decoding', () => {
    for (const m of MUTANTS) {
      const c: ExploreCase = { ...base, config: exploreConfig({ workload: 'storm', seed: 3, mutant: m.name }), mutant: m.name };
      expect(decodeToken(encodeToken(c))).toEqual(c);
    }
    expect(decodeToken(encodeToken(base))).toEqual(base);
  });

  it('any one changed character of the payload or checksum is refused (checksum mismatch), never replayed as another case', () => {
    const token = read('register-race-shrunk.token');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let i = 'convsim3.'.length; i < token.length; i += 7) {
      if (token[i] === '.') continue;
      const replacement = alphabet[(alphabet.indexOf(token[i]!) + 1) % alphabet.length]!;
      expectRefused(token.slice(0, i) + replacement + token.slice(i + 1), /damaged/);
    }
    expectRefused(token.slice(0, -3), /damaged/);
    expectRefused(token.slice(0, token.lastIndexOf('.')), /checksum is missing/);
  });

  const badFields: Array<[string, unknown, RegExp]> = [
    ['vcpus -1', { ...base, config: { ...base.config, vcpus: -1 } }, /config\.vcpus.*-1.*1 to 64/],
    ['vcpus 100000', { ...base, config: { ...base.config, vcpus: 100000 } }, /config\.vcpus/],
    ['an unknown mutant', { ...base, mutant: 'no-such-bug' }, /mutant/],
    ['an unknown mode', { ...base, config: { ...base.config, mode: 'sideways' } }, /config\.mode/],
    ['an unknown back-end', { ...base, config: { ...base.config, containers: [{ backend: 'vhost', dmaEntryLimit: 0 }] } }, /backend/],
    ['an unknown strategy', { ...base, strategy: 'dfs' }, /strategy/],
    ['an unknown field', { ...base, colour: 'red' }, /colour.*unknown/],
    ['a __proto__ field', JSON.parse(`{"__proto__": {"x": 1}, ${JSON.stringify(base).slice(1)}`), /__proto__.*unknown/],
    ['a missing field', { ...base, config: undefined }, /config: missing/],
    ['conversions beyond explore\'s bound', { ...base, config: { ...base.config, conversions: 1e9 } }, /conversions/],
    ['a guest too small for the workload', { ...base, config: { ...base.config, guestMem: 2 * 1024 * 1024 } }, /storm needs/],
    ['a fault in a container that does not exist', { ...base, config: { ...base.config, variant: { failMaps: { container: 5, afterMaps: 1, errno: 28 } } } }, /failMaps\.container/],
    ['not an object', [1, 2], /an object/],
  ];
  for (const [what, value, needle] of badFields) {
    it(`a token with ${what} is refused with one line naming the field`, () => {
      expectRefused(tokenOf(value), needle);
    });
  }
});
