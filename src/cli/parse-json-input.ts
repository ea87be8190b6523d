/**
 * JSON from a user's file, with the limits a parser needs to stay safe: a
 * nesting depth limit checked before parsing, and a one-line error that
 * says where the text went wrong without echoing it.
 */
import { oneLine } from './show-value.js';
import { UsageError } from './usage-error.js';

/** Deepest nesting of arrays and objects accepted in an input file. */
export const MAX_JSON_DEPTH = 64;

/** The deepest nesting of `[`/`{` in JSON text, ignoring brackets inside strings; stops counting past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** Line and column (from 1) of a character offset. */
function lineColumn(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = 0; i < Math.min(offset, text.length); i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      start = i + 1;
    }
  }
  return `line ${line}, column ${offset - start + 1}`;
}

/**
 * Parse `text` (from `where`, a file name) as JSON.
 * @throws UsageError: nested deeper than {@link MAX_JSON_DEPTH}, or invalid
 * JSON (with its line and column, never the text itself).
 */
export function parseJsonInput(where: string, text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (jsonDepth(text, maxDepth) > maxDepth) {
    throw new UsageError(`${where}: JSON nested deeper than ${maxDepth} levels (the limit)`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    const position = /position (\d+)/.exec(message);
    // V8's messages may quote the input (`..., "<text>" is not valid JSON`): keep only the reason.
    const reason = oneLine(message.replace(/,\s*".*$/s, '').replace(/\s*in JSON at position \d+.*$/s, ''), 80);
    const at = position === null ? '' : ` at ${lineColumn(text, Number(position[1]))}`;
    throw new UsageError(`${where}: invalid JSON${at}: ${text.trim() === '' ? 'the file is empty' : reason}`);
  }
}
