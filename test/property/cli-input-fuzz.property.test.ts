/**
 * Fuzzing the inputs a user controls, in-process: `ops` documents (random
 * JSON, mutated conformance vectors, mutated text), the option parsers of
 * run/explore/ops/replay, and the replay-token decoder. Every input must end
 * as convsim's CLI would end it with exit 0, 1 or 2: either the call returns,
 * or it throws an error the CLI prints as one short line with exit 2. An
 * exit 70 (internal error, with a stack trace) fails the test.
 *
 * Seeded: a fixed seed by default (CONVSIM_SEED overrides it);
 * CONVSIM_FUZZ_RUNS sets the inputs per property (default 300, a few
 * seconds; the figure in BENCHMARKS.md comes from 10,000).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { describeFailure } from '../../src/cli/cli.js';
import { parseCommandLine } from '../../src/cli/command-line.js';
import { parseExploreOptions } from '../../src/cli/commands/explore.js';
import { parseOpsDocument } from '../../src/cli/commands/ops.js';
import { parseRunOptions } from '../../src/cli/commands/run.js';
import { parseJsonInput } from '../../src/cli/parse-json-input.js';
import { decodeToken, encodeToken, exploreConfig, type ExploreCase } from '../../src/explore/explore-case.js';
import { runOps } from '../../src/ops/run-ops.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { assertProperty } from './seed.js';

const vectorsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors');
const vectorTexts = readdirSync(vectorsDir).filter((f) => f.endsWith('.json')).map((f) => readFileSync(join(vectorsDir, f), 'utf8'));
const FUZZ_SEED = 20261127;
const envRuns = Number(process.env['CONVSIM_FUZZ_RUNS'] ?? '');
const params = { seed: process.env['CONVSIM_SEED'] === undefined ? FUZZ_SEED : Number(process.env['CONVSIM_SEED']), numRuns: Number.isSafeInteger(envRuns) && envRuns > 0 ? envRuns : 300 };
/** Scripts larger than this many blocks are validated but not run (a whole-region op takes ~1 s per 2^20 blocks). */
const RUN_BLOCK_LIMIT = 2 ** 16;

/** Run `fn` as the CLI would; fail unless it ends in exit 0/1 or in exit 2 with one short line. */
function endsCleanly(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (error) {
    const { code, message } = describeFailure(error);
    if (code !== 2) throw new Error(`exit ${code}: ${message}`, { cause: error });
    if (message.includes('\n') || message.length > 500) throw new Error(`exit 2 but not one short line: ${JSON.stringify(message.slice(0, 600))}`);
    return true;
  }
}

/** The ops command's work on a text, in-process: parse, validate, run (when small). */
function opsOnText(text: string): void {
  const loaded = parseOpsDocument(parseJsonInput('fuzz.json', text), 'fuzz.json');
  const { regionSize, blockSize } = loaded.script.config;
  if (regionSize / blockSize <= RUN_BLOCK_LIMIT) runOps(loaded.script);
}

/** Values that have broken parsers before, plus arbitrary JSON. */
const nasty = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '', ' ', '\n', '\u0000', 'c0', 'type1', 'iommufd',
    2 ** 53 - 1, 2 ** 53, -1, 0, 1, 4096, 2 ** 20, 2 ** 46, 2 ** 50, 1e300, -0, 0.5, null, true, false, 'x'.repeat(100_000)),
  fc.jsonValue({ maxDepth: 3 }),
);

/** A vector's document with one value somewhere replaced. */
const mutatedVector = fc.tuple(fc.constantFrom(...vectorTexts), fc.nat(), nasty, fc.boolean()).map(([text, pick, value, unwrap]) => {
  const doc = JSON.parse(text) as { input: unknown };
  const root = unwrap ? doc.input : doc;
  const slots: Array<[Record<string, unknown> | unknown[], string | number]> = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach((v, i) => { slots.push([node, i]); walk(v); });
    else if (typeof node === 'object' && node !== null) for (const [k, v] of Object.entries(node)) { slots.push([node as Record<string, unknown>, k]); walk(v); }
  };
  walk(root);
  if (slots.length > 0) {
    const [parent, key] = slots[pick % slots.length]!;
    if (pick % 7 === 0 && !Array.isArray(parent)) (parent as Record<string, unknown>)[String(value).slice(0, 20)] = value;
    else (parent as Record<string, unknown>)[key as string] = value;
  }
  return JSON.stringify(root);
});

/** A vector's text with a random splice (broken JSON, BOMs, deep nesting). */
const splicedText = fc.tuple(fc.constantFrom(...vectorTexts), fc.nat(), fc.nat({ max: 40 }),
  fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('\ufeff', '['.repeat(5000), '{"a":'.repeat(3000), '"', '\\', '}', ']', ','))).map(
  ([text, at, cut, insert]) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + insert + text.slice(i + cut);
  });

const OP_NAMES = ['addContainer', 'register', 'unregister', 'stateChange', 'convert', 'isPopulated', 'replayPopulated', 'replayDiscarded',
  'dmaMap', 'dmaUnmap', 'failNextMaps', 'dma', 'toString', '__proto__', 'constructor', 'valueOf', 'hasOwnProperty'];
const FIELD_NAMES = ['id', 'backend', 'container', 'section', 'offset', 'size', 'iova', 'gpa', 'toPrivate', 'toDiscard', 'count', 'errno',
  'write', 'dmaEntryLimit', '__proto__', 'constructor', 'toString'];
const smallInt = fc.oneof(fc.constantFrom(0, 4096, 8192, 16384, 2 ** 53 - 1, 2 ** 53 - 4096), fc.nat({ max: 65536 }).map((n) => n * 4096));
const fieldValue = fc.oneof(smallInt, fc.boolean(), fc.constantFrom('c0', 'c1', 'type1', 'iommufd', '__proto__'),
  fc.record({ offset: smallInt, size: smallInt, iova: smallInt }), nasty);

/** Scripts built from the op grammar: real and inherited op names, any subset of fields (none included). */
const grammarScript = fc.record({
  config: fc.record({ regionSize: fc.constantFrom(16384, 65536, 2 ** 20, 2 ** 26), mode: fc.constantFrom('legacy', 'inplace') }, { requiredKeys: ['regionSize'] }),
  ops: fc.array(fc.tuple(fc.constantFrom(...OP_NAMES), fc.dictionary(fc.constantFrom(...FIELD_NAMES), fieldValue, { maxKeys: 5 })).map(
    ([op, fields]) => ({ op, ...fields })), { maxLength: 12 }),
}).map((doc) => JSON.stringify(doc));

const OPTION_WORDS = ['--vcpus', '--containers', '--guest-mem', '--mode', '--order', '--rollback', '--in-flight', '--conversions', '--seed',
  '--workload', '--check-every', '--json', '--profile', '--trace', '--trace-limit', '--report', '--strategy', '--depth', '--iterations',
  '--mutant', '--per-order', '--expected-steps', '--threads', '--keep-going', '--vcpu', '-h', '--', '-1', '0', '64', '65', '1T', '2T', '100T',
  '1G', '64M', '3M', 'type1:65535:7', 'type1:0', 'iommufd:5', 'type1,', ',', 'inplace', 'v6', 'storm', 'selftest', 'register-race', 'pct',
  '__proto__', 'toString', '--__proto__', '--constructor', '--vcpus=-1', '--seed=2147483648', '9'.repeat(30), 'x.json'];
const argvArb = fc.array(fc.oneof(fc.constantFrom(...OPTION_WORDS), fc.string({ maxLength: 12 })), { maxLength: 8 });

const baseCase: ExploreCase = { config: exploreConfig({ workload: 'storm', seed: 1 }), strategy: 'random', depth: 2, expectedSteps: 1000, scheduleSeed: 1 };
const goodToken = encodeToken(baseCase);

describe('fuzzed inputs end in exit 0, 1 or 2 with one line (never an internal error)', () => {
  it('ops: arbitrary JSON documents', () => {
    assertProperty('ops arbitrary JSON', fc.property(fc.jsonValue({ maxDepth: 6 }), (doc) => endsCleanly(() => opsOnText(JSON.stringify(doc) ?? 'null'))), params);
  });

  it('ops: conformance vectors (wrapped or not) with one value replaced', () => {
    assertProperty('ops mutated vectors', fc.property(mutatedVector, (text) => endsCleanly(() => opsOnText(text))), params);
  });

  it('ops: scripts from the op grammar (inherited names, missing and extra fields)', () => {
    assertProperty('ops grammar', fc.property(grammarScript, (text) => endsCleanly(() => opsOnText(text))), params);
  });

  it('ops: vector text with a random splice', () => {
    assertProperty('ops spliced text', fc.property(splicedText, (text) => endsCleanly(() => opsOnText(text))), params);
  });

  it('option parsers of run, explore, ops and replay', () => {
    assertProperty('option parsers', fc.property(argvArb, (argv) => {
      endsCleanly(() => parseRunOptions(argv));
      endsCleanly(() => parseExploreOptions(argv));
      endsCleanly(() => parseCommandLine('ops', argv, { pretty: { type: 'boolean' }, check: { type: 'boolean' }, 'max-events': { type: 'string' } }));
      return endsCleanly(() => parseCommandLine('replay', argv, { json: { type: 'boolean' }, trace: { type: 'string' }, last: { type: 'boolean' } }));
    }), params);
  });

  it('the token decoder: random strings, damaged tokens, and valid checksums over mutated cases', () => {
    const asCli = (token: string): void => {
      try {
        decodeToken(token);
      } catch (error) {
        // replay and shrink turn a RangeError from the decoder into a UsageError.
        if (error instanceof RangeError) throw new UsageError(error.message);
        throw error;
      }
    };
    const damaged = fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 3 })).map(([at, s]) => {
      const i = at % goodToken.length;
      return goodToken.slice(0, i) + s + goodToken.slice(i + 1);
    });
    const mutatedCase = fc.tuple(fc.nat(), nasty).map(([pick, value]) => {
      const c = JSON.parse(JSON.stringify(baseCase)) as Record<string, unknown>;
      const config = c['config'] as Record<string, unknown>;
      const keys = [...Object.keys(c).map((k) => [c, k] as const), ...Object.keys(config).map((k) => [config, k] as const)];
      const [target, key] = keys[pick % keys.length]!;
      target[key] = value;
      return encodeToken(c as unknown as ExploreCase);
    });
    assertProperty('token decoder', fc.property(fc.oneof(fc.string({ maxLength: 200 }).map((s) => `convsim3.${s}`), fc.string(), damaged, mutatedCase),
      (token) => endsCleanly(() => asCli(token))), params);
  });
});
