/** `convsim bench [mailbox|bitmap|...] [--json]`: where speed lives. */
import { cpus } from 'node:os';
import { parseCommandLine } from '../command-line.js';
import { runBitmapBench } from '../../bench/bitmap.js';
import { runDeliveriesBench } from '../../bench/deliveries.js';
import { runExploreBench } from '../../bench/explore.js';
import { runDfsBench } from '../../bench/dfs.js';
import { runE2eBench } from '../../bench/e2e.js';
import { runMailboxBench } from '../../bench/mailbox.js';
import { renderTree } from '../text-table.js';
import { UsageError } from '../usage-error.js';

const SUITES = ['bitmap', 'mailbox', 'e2e', 'deliveries', 'explore', 'dfs', 'all'] as const;
type Suite = (typeof SUITES)[number];

export const BENCH_HELP = `convsim bench [${SUITES.join('|')}] [--json]
  Measure; ratios are taken side by side in one run, medians of repetitions.
  dfs: the systematic search on the small machine (at most 60 s per variant:
  plain bounded DFS, sleep sets, + state cache, and the last with preemptions
  counted by actor), a tiny machine all complete, and executions to find each
  zoo entry by DFS, random and PCT (about 8 minutes).
  Prints readable tables; --json prints one JSON object instead.`;

export async function benchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine('bench', argv, { json: { type: 'boolean', default: false } });
  const suite = (positionals[0] ?? 'all') as Suite;
  if (!SUITES.includes(suite) || positionals.length > 1) {
    throw new UsageError(`bench: unknown suite ${JSON.stringify(positionals.join(' '))} (allowed: ${SUITES.join(', ')})`);
  }
  const result: Record<string, unknown> = {
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, platform: process.platform },
  };
  // Progress on a terminal only: which suite runs, and e2e's configurations done.
  const tty = !values.json && process.stderr.isTTY;
  const status = (text: string): void => {
    if (tty) process.stderr.write(`\r\x1b[Kbench: ${text}`);
  };
  const wanted = (name: Suite): boolean => suite === name || suite === 'all';
  if (wanted('bitmap')) {
    status('bitmap');
    result['bitmap'] = runBitmapBench();
  }
  if (wanted('mailbox')) {
    status('mailbox');
    result['mailbox'] = await runMailboxBench();
  }
  if (wanted('e2e')) {
    status('e2e');
    result['e2e'] = await runE2eBench({ onProgress: (done, total) => status(`e2e ${done}/${total} configurations`) });
  }
  if (wanted('deliveries')) {
    status('deliveries');
    result['deliveries'] = runDeliveriesBench();
  }
  if (wanted('explore')) {
    status('explore');
    result['explore'] = await runExploreBench();
  }
  if (wanted('dfs')) {
    status('dfs');
    result['dfs'] = runDfsBench({ onProgress: (what) => status(`dfs: ${what}`) });
  }
  if (tty) process.stderr.write('\r\x1b[K');
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${renderTree(result).join('\n')}\n`);
  return 0;
}
