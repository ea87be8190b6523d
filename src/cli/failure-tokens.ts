/**
 * Where `convsim explore` leaves its failures: `.convsim/failure-*.token`
 * (the shrunk token) next to `*.original.token` (the unshrunk one). `replay`
 * and `shrink` take a directory or `--last` and pick the newest failure.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { showValue } from './show-value.js';
import { UsageError } from './usage-error.js';

/** The directory explore writes its tokens to, under the working directory. */
export const FAILURE_DIR = '.convsim';

/** Whether a file name is a failure token (the shrunk one, not `.original.token`). */
export function isFailureTokenName(name: string): boolean {
  return name.startsWith('failure-') && name.endsWith('.token') && !name.endsWith('.original.token');
}

/**
 * The newest failure token (by modification time) in `dir`.
 * @throws UsageError when the directory cannot be read or holds none.
 */
export function newestFailureToken(command: string, dir: string): string {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`${command}: no failure tokens: cannot read ${showValue(dir)} (${code === 'ENOENT' ? 'no such directory; run convsim explore first' : (code ?? 'error')})`);
  }
  let newest: { file: string; mtime: number } | undefined;
  for (const name of names.filter(isFailureTokenName)) {
    const file = join(dir, name);
    const mtime = statSync(file).mtimeMs;
    if (newest === undefined || mtime > newest.mtime || (mtime === newest.mtime && file > newest.file)) newest = { file, mtime };
  }
  if (newest === undefined) throw new UsageError(`${command}: ${showValue(dir)} holds no failure-*.token file (convsim explore writes them)`);
  return newest.file;
}
