/** `convsim bench [mailbox|bitmap|...] [--json]`: where speed lives. */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { runBitmapBench } from '../../bench/bitmap.js';
import { runDeliveriesBench } from '../../bench/deliveries.js';
import { runExploreBench } from '../../bench/explore.js';
import { runE2eBench } from '../../bench/e2e.js';
import { runMailboxBench } from '../../bench/mailbox.js';
import { UsageError } from '../usage-error.js';

const SUITES = ['bitmap', 'mailbox', 'e2e', 'deliveries', 'explore', 'all'] as const;
type Suite = (typeof SUITES)[number];

export const BENCH_HELP = `convsim bench [${SUITES.join('|')}] [--json]
  Measure; ratios are taken side by side in one run, medians of repetitions.`;

export async function benchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const suite = (positionals[0] ?? 'all') as Suite;
  if (!SUITES.includes(suite) || positionals.length > 1) {
    throw new UsageError(`bench: unknown suite ${JSON.stringify(positionals.join(' '))} (allowed: ${SUITES.join(', ')})`);
  }
  const result: Record<string, unknown> = {
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, platform: process.platform },
  };
  if (suite === 'bitmap' || suite === 'all') result['bitmap'] = runBitmapBench();
  if (suite === 'mailbox' || suite === 'all') result['mailbox'] = await runMailboxBench();
  if (suite === 'e2e' || suite === 'all') result['e2e'] = await runE2eBench();
  if (suite === 'deliveries' || suite === 'all') result['deliveries'] = runDeliveriesBench();
  if (suite === 'explore' || suite === 'all') result['explore'] = await runExploreBench();
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
  return 0;
}
