/** `convsim invariants [--json]`: the glossary of invariant names. */
import { INVARIANT_GLOSSARY } from '../../core/invariant-glossary.js';
import { parseCommandLine } from '../command-line.js';
import { EXIT_OK, UsageError } from '../usage-error.js';

export const INVARIANTS_HELP = `convsim invariants [--json]
  Explain each invariant name that run, explore, replay and ops report, and
  what to do when it fails.`;

export function invariantsCommand(argv: string[]): number {
  const { values, positionals } = parseCommandLine('invariants', argv, { json: { type: 'boolean', default: false } });
  if (positionals.length > 0) throw new UsageError(`invariants: unexpected argument (it takes none)`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(INVARIANT_GLOSSARY)}\n`);
    return EXIT_OK;
  }
  const lines = Object.entries(INVARIANT_GLOSSARY).flatMap(([name, e]) => [name, `    means:      ${e.means}`, `    what to do: ${e.whatToDo}`]);
  process.stdout.write(`${lines.join('\n')}\n`);
  return EXIT_OK;
}
