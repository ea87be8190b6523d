/** `convsim ops FILE`: the conformance runner. */
import { OpsInputError, parseOpsScript, MAX_PRINTED_EVENTS, type OpsScript } from '../../ops/ops-schema.js';
import { compareWithVector, isVectorDocument, type VectorExpectation } from '../../ops/ops-vector.js';
import { runOps } from '../../ops/run-ops.js';
import { parseCommandLine } from '../command-line.js';
import { parseCount } from '../option-values.js';
import { parseJsonInput } from '../parse-json-input.js';
import { MAX_INPUT_BYTES, readInputFile } from '../read-input-file.js';
import { EXIT_OK, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';

export const OPS_HELP = `convsim ops FILE [--pretty] [--check] [--max-events N]
  Run a JSON script of QEMU operations against the protocol core and print
  {results, events, final, violations} as one JSON object. FILE is a script
  {config, ops} or a conformance vector {description, input, expect} (as in
  test/vectors/), whose input is run. At most ${MAX_INPUT_BYTES / 1024 / 1024} MiB, JSON nested at most 64 deep.
  --check          (vectors) compare the output with expect: prints "ok" or
                   what differs; exit 0 it matches, 1 it does not
  --max-events N   print at most N events (default ${MAX_PRINTED_EVENTS}); the rest are
                   counted under eventsOmitted
  --pretty         indent the JSON
  Exit: 0 no violation, 1 violations found, 2 invalid input (nothing run).`;

const OPS_OPTIONS = {
  pretty: { type: 'boolean', default: false },
  check: { type: 'boolean', default: false },
  'max-events': { type: 'string' },
} as const;

/** A script read from a file, with the vector's expectation when the file is a vector. */
export interface LoadedOps {
  readonly script: OpsScript;
  readonly expect: VectorExpectation | undefined;
}

/** Validate a parsed document (a script or a vector); every problem becomes a one-line UsageError. */
export function parseOpsDocument(doc: unknown, file: string): LoadedOps {
  const vector = isVectorDocument(doc);
  try {
    const script = parseOpsScript(vector ? doc.input : doc, vector ? `${file}: input` : file);
    if (!vector) return { script, expect: undefined };
    const expect = doc.expect as VectorExpectation;
    if (typeof expect !== 'object' || expect === null || !Array.isArray(expect.results) || (expect.exitCode !== 0 && expect.exitCode !== 1)) {
      throw new UsageError(`${file}: expect: must be an object with results (an array) and exitCode (0 or 1)`);
    }
    return { script, expect };
  } catch (error) {
    if (error instanceof OpsInputError) throw new UsageError(error.message);
    throw error;
  }
}

/** Read and validate a script or vector file (size- and depth-limited). */
export function loadOps(file: string): LoadedOps {
  return parseOpsDocument(parseJsonInput(file, readInputFile('ops', file)), file);
}

/** Read and validate a script file (a vector's input for a vector file). */
export function loadOpsFile(file: string): OpsScript {
  return loadOps(file).script;
}

export function opsCommand(argv: string[]): number {
  const { values, positionals } = parseCommandLine('ops', argv, OPS_OPTIONS);
  if (positionals.length !== 1) throw new UsageError(`ops: expected exactly one FILE, got ${positionals.length}`);
  const maxEvents = values['max-events'] === undefined ? MAX_PRINTED_EVENTS : parseCount('max-events', values['max-events'], 0, 10_000_000);
  const file = positionals[0]!;
  const { script, expect } = loadOps(file);
  if (values.check && expect === undefined) throw new UsageError(`ops: --check needs a vector file {description, input, expect}; ${file} is a plain script`);
  const output = runOps(script, values.check ? Number.MAX_SAFE_INTEGER : maxEvents);
  if (values.check) {
    const differences = compareWithVector(output, expect!);
    process.stdout.write(differences.length === 0 ? `ok ${file}\n` : `FAIL ${file}: ${differences.join('; ')}\n`);
    return differences.length === 0 ? EXIT_OK : EXIT_VIOLATIONS;
  }
  process.stdout.write(`${JSON.stringify(output, null, values.pretty ? 2 : undefined)}\n`);
  return output.violations.length > 0 ? EXIT_VIOLATIONS : EXIT_OK;
}
