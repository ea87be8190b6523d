/**
 * `convsim explore --strategy dfs`: the systematic search of one machine's
 * schedules (explore/dfs), its statement ("all N executions up to K
 * preemptions ... held"), or its first failure, shrunk, with its tokens.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { RunConfig } from '../../actors/run-config.js';
import { ALL_FIXES_PROTOCOL, describeProtocol } from '../../core/protocol-policy.js';
import { formatSize } from '../../core/units.js';
import { exploreConfig } from '../../explore/explore-case.js';
import { runDfs, type DfsRun } from '../../explore/dfs/dfs-pool.js';
import type { DfsFailure } from '../../explore/dfs/explore-dfs.js';
import { shardLabel } from '../../explore/shard.js';
import type { DfsOptionValues } from '../explore-dfs-options.js';
import { OpenProgressLine } from '../progress.js';
import { EXIT_OK, EXIT_VIOLATIONS } from '../usage-error.js';
import { shrinkReport, shrinkSummary, shrinkWithProgress, unshrunkReport, type ShrinkReport } from './shrink.js';
import type { ExploreOptions, FailureReport } from './explore.js';

/** A failure of the search, shrunk, with where its tokens were written: as sampling's, placed in the search order instead of by seed. */
export interface DfsFailureReport extends Omit<FailureReport, 'seed' | 'iteration'> {
  /** Its place in the unsharded search order (smaller: found first). */
  readonly position: number;
  readonly preemptions: number;
}

/** The machine of a systematic search: the explore case's, with every device access and hot-plug placed by the schedule. */
export function dfsCaseConfig(o: ExploreOptions, dfs: DfsOptionValues): RunConfig {
  const config = exploreConfig({
    workload: o.workload,
    seed: o.seed,
    ...(o.mode === undefined ? {} : { mode: o.mode }),
    ...(o.order === undefined ? {} : { order: o.order }),
    ...(o.mutant === undefined ? {} : { mutant: o.mutant }),
    ...(o.conversions === undefined ? {} : { conversions: o.conversions }),
    machine: o.machine,
    vary: false,
    ...(o.maxMemslots === undefined ? {} : { maxMemslots: o.maxMemslots }),
    ...(o.platform === undefined ? {} : { platform: o.platform }),
    ...(o.protocol === undefined ? {} : { protocol: o.protocol }),
  });
  return { ...config, scheduledEvents: { hotplugs: dfs.hotplugs, deviceAccesses: dfs.deviceAccesses } };
}

/**
 * What identifies a search whatever its shard, threads, output or time
 * budget: shards of one search share it, and `convsim merge` checks it.
 */
export function searchKey(o: ExploreOptions): string {
  const { shard: _shard, threads: _threads, json: _json, timeBudgetMs: _budget, ...identity } = o;
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16);
}

/** "2 vCPUs, 1 container (type1), 4 MiB guest, 6 conversions, 1 hot-plug, 1 device access each". */
export function describeDfsMachine(config: RunConfig): string {
  const events = config.scheduledEvents!;
  return `${config.vcpus} vCPU(s), ${config.containers.length} container(s) (${config.containers.map((c) => c.backend).join(', ')}), ` +
    `${formatSize(config.guestMem)} guest, ${config.conversions} conversions, ${config.mode}${config.mode === 'inplace' ? ` (${config.order})` : ''}, ` +
    `${events.hotplugs} hot-plug(s) and ${events.deviceAccesses} device access(es) per device placed anywhere`;
}

/** The statement of a search that found nothing. */
export function dfsStatement(run: DfsRun, dfs: DfsOptionValues): string {
  const s = run.stats;
  const bound = dfs.preemptionBound === undefined ? 'with any number of preemptions' : `up to ${dfs.preemptionBound} preemption(s)`;
  const pruned = dfs.reduction === 'none' ? 'no partial-order reduction'
    : `${s.prunedEquivalent} branch(es) pruned as equivalent, ${s.sleepBlocked} execution(s) cut short as equivalent`;
  const counts = `${s.executions} execution(s) ${bound} (${run.distinctTraces} distinct trace(s), ${pruned}${dfs.preemptionBound === undefined ? '' : `, ${s.prunedByBound} branch(es) beyond the bound`})`;
  if (s.complete) return `all ${counts} explored: held`;
  const why = run.stoppedBy === 'time-budget' ? 'the time budget ran out' : 'it was interrupted';
  return `INCOMPLETE: ${why} after ${counts}: nothing found so far, but the search did not cover every schedule`;
}

function reportDfsFailure(found: DfsFailure, mutant: string | undefined, announce?: (line: string) => void): DfsFailureReport {
  const dir = join(process.cwd(), '.convsim');
  mkdirSync(dir, { recursive: true });
  const stem = `failure-${found.invariant}-dfs${found.position}${mutant === undefined ? '' : `-${mutant}`}`;
  const tokenFile = join(dir, `${stem}.token`);
  const originalTokenFile = join(dir, `${stem}.original.token`);
  // The unshrunk token is kept before shrinking starts: Ctrl-C while shrinking loses nothing.
  writeFileSync(originalTokenFile, `${found.token}\n`);
  announce?.(`found ${found.invariant}; unshrunk token written to ${originalTokenFile}; shrinking (Ctrl-C keeps it): ${found.token}`);
  const c = found.case;
  const shrunk: ShrinkReport = found.invariant === 'deadlock'
    ? unshrunkReport(c, found, c.deviations?.length ?? 0)
    // Progress while shrinking, as sampling's explore shows it (not with --json).
    : shrinkReport(c, shrinkWithProgress(c, announce !== undefined));
  writeFileSync(tokenFile, `${shrunk.replay}\n`);
  return {
    ...shrunk, position: found.position, preemptions: found.preemptions, originalReplay: found.token, originalTraceHash: found.traceHash,
    originalSteps: found.steps, originalMessage: found.message, tokenFile, originalTokenFile,
  };
}

export async function exploreSystematic(o: ExploreOptions, dfs: DfsOptionValues): Promise<number> {
  const config = dfsCaseConfig(o, dfs);
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => interrupt.abort(signal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const progress = o.json ? undefined : new OpenProgressLine({ label: 'executions', ...(o.timeBudgetMs === undefined ? {} : { budgetMs: o.timeBudgetMs }) });
  let run: DfsRun;
  try {
    run = await runDfs({
      config,
      ...(o.mutant === undefined ? {} : { mutant: o.mutant }),
      ...(dfs.preemptionBound === undefined ? {} : { preemptionBound: dfs.preemptionBound }),
      preemptionUnit: dfs.preemptionUnit,
      reduction: dfs.reduction,
      splitDepth: dfs.splitDepth,
      stateCache: dfs.stateCache,
      ...(o.shard === undefined ? {} : { shard: o.shard }),
      threads: o.threads,
      ...(o.timeBudgetMs === undefined ? {} : { timeBudgetMs: o.timeBudgetMs }),
      signal: interrupt.signal,
      ...(progress === undefined ? {} : { onProgress: (n: number, d: number) => progress.update(n, `${d} distinct traces`) }),
    });
  } finally {
    progress?.clear();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const announce = o.json ? undefined : (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const failure = run.failure === undefined ? undefined : reportDfsFailure(run.failure, o.mutant, announce);
  const statement = failure === undefined ? dfsStatement(run, dfs) : `FOUND ${failure.invariant} after ${run.stats.executions} execution(s) (${run.distinctTraces} distinct traces)`;
  const protocol = o.protocol ?? ALL_FIXES_PROTOCOL;
  if (o.json) {
    const out = {
      schemaVersion: 2,
      command: 'explore',
      strategy: 'dfs',
      searchKey: searchKey(o),
      shard: o.shard === undefined ? null : { index: o.shard.index + 1, count: o.shard.count },
      found: failure !== undefined,
      verdict: failure !== undefined ? 'found' : run.stats.complete ? 'held' : 'incomplete',
      stoppedBy: run.stoppedBy ?? null,
      statement,
      preemptionBound: dfs.preemptionBound ?? null,
      preemptionUnit: dfs.preemptionUnit,
      reduction: dfs.reduction,
      splitDepth: dfs.splitDepth,
      stateCache: dfs.stateCache,
      revisits: run.stats.revisits,
      workload: o.workload,
      mutant: o.mutant ?? null,
      protocol,
      seed: o.seed,
      machine: describeDfsMachine(config),
      threads: run.threads,
      executions: run.stats.executions,
      distinctTraces: run.distinctTraces,
      sleepBlocked: run.stats.sleepBlocked,
      prunedEquivalent: run.stats.prunedEquivalent,
      prunedByBound: run.stats.prunedByBound,
      subtrees: run.stats.subtrees,
      maxDepth: run.stats.maxDepth,
      complete: run.stats.complete,
      deliveries: run.deliveries,
      elapsedMs: Math.round(run.elapsedMs),
      // Shards carry their traces' hashes, so that merged shards count distinct traces exactly.
      ...(o.shard === undefined ? {} : { traceHashes: run.traceHashes }),
      failure: failure ?? null,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    const lines = [
      `convsim explore: systematic search (dfs, preemption bound ${dfs.preemptionBound ?? 'none'} by ${dfs.preemptionUnit}, ${dfs.reduction}) of ${o.workload}` +
        `${o.mutant === undefined ? '' : `, mutant ${o.mutant}`}, protocol ${describeProtocol(protocol)}, seed ${o.seed}` +
        `${o.shard === undefined ? '' : `, shard ${shardLabel(o.shard)}`}, ${run.threads} thread(s), ${(run.elapsedMs / 1000).toFixed(1)} s`,
      `machine: ${describeDfsMachine(config)}`,
      statement,
    ];
    if (failure !== undefined) {
      const rel = (p: string): string => (p.startsWith(process.cwd() + '/') ? p.slice(process.cwd().length + 1) : p);
      lines.push(
        `  ${failure.originalMessage}`,
        `replay token (shrunk):   ${failure.replay}`,
        `replay token (original): ${failure.originalReplay}`,
        `written to ${rel(failure.tokenFile)} (original: ${rel(failure.originalTokenFile)}); run: convsim replay ${rel(failure.tokenFile)}`,
        `traceHash ${failure.traceHash} (shrunk, ${failure.steps} deliveries); original ${failure.originalTraceHash} (${failure.originalSteps} deliveries, ${failure.preemptions} preemption(s))`,
        ...shrinkSummary(failure),
        'story (shrunk):',
        ...failure.story,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (failure !== undefined) return EXIT_VIOLATIONS;
  if (run.stoppedBy === 'interrupt') return interrupt.signal.reason === 'SIGTERM' ? 143 : 130;
  return EXIT_OK;
}
