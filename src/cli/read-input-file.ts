/**
 * Reading a user's input file with a size cap: the cap is enforced while
 * reading (a `stat` size means nothing for `/dev/zero`, a pipe or a FIFO),
 * so no input can make convsim allocate more than the cap.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { oneLine } from './show-value.js';
import { UsageError } from './usage-error.js';

/** Largest input file convsim reads (ops scripts, token files): 16 MiB. */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/**
 * The text of `file` (UTF-8, a leading byte-order mark removed).
 * @throws UsageError (one line) when the file cannot be read, is a
 * directory, or holds more than `maxBytes`.
 */
export function readInputFile(command: string, file: string, maxBytes = MAX_INPUT_BYTES): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw new UsageError(`${oneLine(file)}: cannot read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, maxBytes + 1));
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (error) {
        throw new UsageError(`${oneLine(file)}: cannot read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) {
        throw new UsageError(`${oneLine(file)}: larger than the ${command} input limit of ${maxBytes} bytes (${maxBytes / 1024 / 1024} MiB)`);
      }
      chunks.push(Buffer.from(chunk.subarray(0, n)));
    }
    const text = Buffer.concat(chunks, total).toString('utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } finally {
    closeSync(fd);
  }
}
