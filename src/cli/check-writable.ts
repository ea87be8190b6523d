/** Output files are checked before a run starts, so a bad path never throws a finished run away. */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { showValue } from './show-value.js';
import { UsageError } from './usage-error.js';

/**
 * Throw a one-line UsageError unless `file` can be written: it is not a
 * directory, and it (if it exists) or its directory is writable. Creates
 * nothing.
 */
export function checkWritable(option: string, file: string): void {
  const path = resolve(file);
  let exists = false;
  try {
    const stat = statSync(path);
    exists = true;
    if (stat.isDirectory()) throw new UsageError(`--${option}: ${showValue(file)} is a directory; give a file name`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new UsageError(`--${option}: cannot write ${showValue(file)} (${code ?? 'error'})`);
  }
  try {
    accessSync(exists ? path : dirname(path), constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const what = exists ? showValue(file) : `the directory of ${showValue(file)}`;
    throw new UsageError(`--${option}: cannot write ${what} (${code === 'ENOENT' ? 'no such directory' : (code ?? 'error')})`);
  }
}
