/**
 * Replay reproduces stored tokens byte for byte: the same trace (story) and
 * traceHash, 100 times out of 100, through the code `convsim replay` runs.
 *
 * The fixtures were generated once from zoo failures (register-race, shrunk:
 * a replay schedule with deviations; no-lock-overlap, the original random
 * schedule) and from two violated `verify --quick` cells of QEMU as merged
 * (storm: a lost bitmap update; hotplug: a walk reaching a freed listener). If the protocol's messages change on purpose, regenerate the
 * expected files from the same tokens with CONVSIM_UPDATE_FIXTURES=1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCaseArgument, replayCase } from '../../src/cli/commands/replay.js';
import { decodeToken, encodeToken } from '../../src/explore/explore-case.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

interface Expected {
  token: string;
  invariant: string;
  traceHash: string;
  steps: number;
  story: string[];
}

describe('replay of stored tokens', () => {
  for (const name of ['register-race-shrunk', 'no-lock-overlap-random', 'merged-storm-lost-update', 'merged-hotplug-use-after-free']) {
    it(`${name}: same traceHash and story 100 times out of 100`, () => {
      const expectedFile = join(fixtures, `${name}.expected.json`);
      const expected = JSON.parse(readFileSync(expectedFile, 'utf8')) as Expected;
      const tokenFile = join(fixtures, expected.token);
      const token = readFileSync(tokenFile, 'utf8').trim();
      // The token is stable byte for byte through decoding and encoding.
      expect(encodeToken(decodeToken(token))).toBe(token);
      const { case: c } = readCaseArgument('replay', tokenFile);
      if (process.env['CONVSIM_UPDATE_FIXTURES'] === '1') {
        const r = replayCase(c);
        writeFileSync(expectedFile, `${JSON.stringify({ ...expected, invariant: r.invariant, traceHash: r.traceHash, steps: r.steps, story: r.story }, null, 2)}\n`);
        return;
      }
      for (let i = 0; i < 100; i++) {
        const r = replayCase(i % 2 === 0 ? c : decodeToken(token));
        expect(r.found).toBe(true);
        expect(r.invariant).toBe(expected.invariant);
        expect(r.traceHash).toBe(expected.traceHash);
        expect(r.steps).toBe(expected.steps);
        expect(r.story).toEqual(expected.story);
      }
    });
  }
});
