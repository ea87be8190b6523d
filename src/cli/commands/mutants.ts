/** `convsim mutants [--json]`: the bug zoo. */
import { parseCommandLine } from '../command-line.js';
import { MUTANTS } from '../../explore/mutants.js';
import { EXIT_OK, UsageError } from '../usage-error.js';

export const MUTANTS_HELP = `convsim mutants [--json]
  List the bug zoo: named protocol variants for explore --mutant, each with
  the invariant(s) expected to catch it.`;

/** Word-wrap `text` to `width` columns, each line prefixed by `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

export function mutantsCommand(argv: string[]): number {
  const { values, positionals } = parseCommandLine('mutants', argv, { json: { type: 'boolean', default: false } });
  if (positionals.length > 0) throw new UsageError(`mutants: unexpected argument ${JSON.stringify(positionals[0])}`);
  const list = MUTANTS.map((m) => ({ name: m.name, expected: [...m.expected], description: m.description }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(list)}\n`);
    return EXIT_OK;
  }
  const out: string[] = [];
  for (const m of list) {
    out.push(`${m.name}  (caught by: ${m.expected.join(', ')})`);
    out.push(...wrap(m.description, 80, '    '));
  }
  out.push('', 'Find one: convsim explore --mutant NAME');
  process.stdout.write(`${out.join('\n')}\n`);
  return EXIT_OK;
}
