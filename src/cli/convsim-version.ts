/** convsim's version, from package.json (two levels up from src/cli and dist/cli alike). */
import { createRequire } from 'node:module';

export function convsimVersion(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
