/**
 * Locating compiled worker entry points.
 *
 * Workers always run compiled JS from `dist/workers/`, whether the caller is
 * itself compiled (`dist/...`) or a TS source run directly by vitest
 * (`src/...`). The package root is found by walking up from this module to
 * the nearest directory containing `package.json`.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let cachedRoot: string | undefined;

/** Absolute path of the package root (nearest ancestor of this module with a `package.json`). */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return (cachedRoot = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/**
 * URL of the compiled worker `dist/workers/<name>.js`, for `new Worker(url)`.
 * @param name worker file name without extension, e.g. `'mailbox-stress-worker'`.
 * @throws Error if `name` is not a plain file name, or the file has not been built (`npm run build`).
 */
export function workerUrl(name: string): URL {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new Error(`invalid worker name: ${JSON.stringify(name)}`);
  const file = join(packageRoot(), 'dist', 'workers', `${name}.js`);
  if (!existsSync(file)) throw new Error(`worker ${name} not built: ${file} is missing (run \`npm run build\`)`);
  return pathToFileURL(file);
}
