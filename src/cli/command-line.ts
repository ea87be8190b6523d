/**
 * Table-driven option parsing shared by every command. A command declares
 * its options as a table (the shape `util.parseArgs` takes, plus optional
 * `requires`, which names an option that must be given too); this module
 * turns every parse mistake into one {@link UsageError} line that names the
 * option and lists the valid ones, with a did-you-mean. Value ranges stay
 * with the command (see `option-values.ts`), so new options slot in by
 * adding a row.
 */
import { parseArgs } from 'node:util';
import { showValue } from './show-value.js';
import { UsageError } from './usage-error.js';

/** One row of a command's option table. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  readonly short?: string;
  /** Another option (without `--`) that must be given whenever this one is. */
  readonly requires?: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** What parsing gives back: the values by option name, the positionals, and which options the user typed. */
export interface ParsedCommandLine<T extends OptionTable> {
  readonly values: { [K in keyof T]: T[K]['type'] extends 'boolean' ? boolean : string | undefined };
  readonly positionals: string[];
  readonly given: ReadonlySet<string>;
}

/** The edit distance between two short strings (for did-you-mean). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The closest of `candidates` to `word`, if it is close enough to be a typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function optionList(table: OptionTable): string {
  return Object.keys(table).map((name) => `--${name}`).join(', ');
}

/** The option a user typed, from parseArgs' message (`Unknown option '--x'`), or the first dashed argument. */
function offendingOption(message: string, argv: readonly string[]): string | undefined {
  const quoted = /'(-{1,2}[^'\s]*)/.exec(message);
  if (quoted !== null) return quoted[1];
  return argv.find((a) => a.startsWith('-'));
}

/**
 * Parse `argv` against `table`. Every mistake is one UsageError line: an
 * unknown option (with the valid ones and a did-you-mean), a missing or
 * unexpected value, an option given without the one it `requires`.
 */
export function parseCommandLine<T extends OptionTable>(command: string, argv: readonly string[], table: T): ParsedCommandLine<T> {
  // `--vcpus -1`: a negative number after a string option is its value (parseArgs would take it for an option).
  const args = [...argv];
  for (let i = 0; i + 1 < args.length; i++) {
    const name = args[i]!.startsWith('--') ? args[i]!.slice(2) : undefined;
    if (name !== undefined && Object.hasOwn(table, name) && table[name]!.type === 'string' && /^-\d/.test(args[i + 1]!)) {
      args.splice(i, 2, `--${name}=${args[i + 1]!}`);
    }
  }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[]; tokens?: Array<{ kind: string; name?: string }> };
  try {
    parsed = parseArgs({ args, options: table as Record<string, OptionSpec>, allowPositionals: true, strict: true, tokens: true }) as typeof parsed;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: unknown }).code;
    const typed = offendingOption(message, args) ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = typed.replace(/^-+/, '').split('=')[0]!;
      const guess = didYouMean(name, Object.keys(table));
      throw new UsageError(`${command}: unknown option ${showValue(typed.split('=')[0]!)}${guess === undefined ? '' : ` (did you mean --${guess}?)`}; valid options: ${optionList(table)}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = /--([\w-]+)/.exec(message)?.[1] ?? typed.replace(/^-+/, '');
      const spec = Object.hasOwn(table, name) ? table[name] : undefined;
      throw new UsageError(spec?.type === 'boolean'
        ? `${command}: --${name} is a switch and takes no value`
        : `${command}: --${name} needs a value`);
    }
    throw new UsageError(`${command}: ${message.split('\n')[0]!.replace(/\s+/g, ' ').slice(0, 160)}`);
  }
  const given = new Set<string>();
  for (const token of parsed.tokens ?? []) if (token.kind === 'option' && token.name !== undefined) given.add(token.name);
  for (const name of given) {
    const spec = table[name]!;
    if (spec.type === 'string' && parsed.values[name] === '') throw new UsageError(`${command}: --${name} needs a non-empty value`);
    if (spec.requires !== undefined && !given.has(spec.requires)) {
      throw new UsageError(`${command}: --${name} only applies together with --${spec.requires}`);
    }
  }
  return { values: parsed.values as ParsedCommandLine<T>['values'], positionals: parsed.positionals, given };
}
