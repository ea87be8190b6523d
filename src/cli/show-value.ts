/** Echoing user input back in an error message: always one short line. */

/** Longest echo of a user's value, in characters. */
export const MAX_ECHO = 60;

/**
 * `value` as it appears in an error message: JSON-quoted, on one line, at
 * most {@link MAX_ECHO} characters (longer values end in `...`). Never
 * throws, whatever the value (cycles, BigInt, huge strings).
 */
export function showValue(value: unknown): string {
  let text: string;
  try {
    if (typeof value === 'string') text = JSON.stringify(value.length > MAX_ECHO * 2 ? value.slice(0, MAX_ECHO * 2) : value);
    else if (typeof value === 'object' && value !== null) text = Array.isArray(value) ? `[array of ${value.length}]` : '{object}';
    else text = value === undefined ? 'nothing' : String(JSON.stringify(value) ?? String(value));
  } catch {
    text = `(${typeof value})`;
  }
  text = text.replace(/[\p{Cc}\u2028\u2029]/gu, ' ');
  return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO - 3)}...` : text;
}

/** A message made one line of at most `max` characters (for messages from libraries). */
export function oneLine(message: string, max = 200): string {
  const flat = message.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}
