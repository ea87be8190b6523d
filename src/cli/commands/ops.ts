/** `convsim ops FILE`: the conformance runner. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { OpsInputError, parseOpsScript } from '../../ops/ops-schema.js';
import { runOps } from '../../ops/run-ops.js';
import { EXIT_OK, EXIT_VIOLATIONS, UsageError } from '../usage-error.js';

export const OPS_HELP = `convsim ops FILE [--pretty]
  Run a JSON script of QEMU operations against the protocol core and print
  {results, events, final, violations} as one JSON object.
  Exit: 0 no violation, 1 violations found, 2 invalid input (nothing run).`;

/** Read and validate a script file; every problem becomes a one-line UsageError. */
export function loadOpsFile(file: string): ReturnType<typeof parseOpsScript> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file}: invalid JSON: ${(error as Error).message}`);
  }
  try {
    return parseOpsScript(doc, file);
  } catch (error) {
    if (error instanceof OpsInputError) throw new UsageError(error.message);
    throw error;
  }
}

export function opsCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { pretty: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError(`ops: expected exactly one FILE, got ${positionals.length}`);
  const script = loadOpsFile(positionals[0]!);
  const output = runOps(script);
  process.stdout.write(`${JSON.stringify(output, null, values.pretty ? 2 : undefined)}\n`);
  return output.violations.length > 0 ? EXIT_VIOLATIONS : EXIT_OK;
}
