/**
 * Runs the protocol on real threads: one worker per vCPU, the KVM exit
 * handler, the RamBlockAttributes owner and each VFIO container, joined by
 * SharedArrayBuffer mailboxes, sharing the bitmap, KVM attributes and
 * guest pages. The host thread only configures, starts, watches and
 * collects (over comlink); it never touches the data path.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { releaseProxy, wrap, type Remote } from 'comlink';
import type { ActorRole } from '../actors/actor.js';
import { makeTopology } from '../actors/actor.js';
import { actorName } from '../actors/create-actor.js';
import { hotplugsDevices, layoutOf, type RunConfig } from '../actors/run-config.js';
import { allocateSharedState } from '../actors/shared-views.js';
import type { Violation } from '../core/invariants.js';
import { retName } from '../core/errno.js';
import { closeMailbox, createMailbox, pendingMessages } from '../transport/mailbox.js';
import type { ActorHost, ActorSnapshot, CrashSpec, WorkerConfig } from '../workers/actor-worker.js';
import { nodeEndpoint } from '../workers/comlink-endpoint.js';
import { workerUrl } from '../workers/worker-url.js';
import { allocateStatus, readStatus } from './actor-status.js';
import { mergePhaseHistograms, mergePhases, type PhaseHistograms, type PhaseRow } from '../actors/phase-profile.js';
import { SharedBitmap } from '../core/shared-bitmap.js';
import { blocksOf } from '../actors/shared-views.js';
import { buildChromeTrace, type ChromeTrace } from './chrome-trace.js';
import { nowUs } from '../workers/trace-recorder.js';
import { RunSampler, type RunSeries } from './run-sampler.js';
import { isFatal, registerOutcome, type FatalOutcome, type QemuOutcome, type RegisterFailure } from '../core/qemu-outcome.js';

/** Inbox slots per actor. Requests in flight are bounded (one exit per vCPU, one call per state change). */
const MAILBOX_CAPACITY = 1024;
/** How often the watchdog looks. */
const WATCHDOG_MS = 100;
/** No progress for this long with messages waiting: an actor stopped answering. */
const HANG_MS = 3000;
/**
 * Actors per core above which the hang limit grows in proportion: with
 * many more threads than cores (64 vCPUs on 2 cores) a live actor can wait
 * seconds for a core, which is slow, not hung.
 */
const ACTORS_PER_CORE_AT_BASE_LIMIT = 4;

/** The hang limit for `actors` threads on `cores` cores. */
export function hangLimitMs(actors: number, cores: number): number {
  return HANG_MS * Math.max(1, actors / (ACTORS_PER_CORE_AT_BASE_LIMIT * Math.max(1, cores)));
}
/** Every actor idle, every inbox empty, vCPUs not done, for this long: deadlock. */
const DEADLOCK_MS = 1000;

export interface RunOptions {
  /** Test-only: make one actor (by name, e.g. `c0`) fail. */
  readonly crash?: { readonly actor: string } & CrashSpec;
  /** Record a Chrome trace of at most this many events in all. */
  readonly traceLimit?: number;
  /** Record the trace only from `fromMs` to `toMs` after the run starts (with `traceLimit`). */
  readonly traceWindow?: { readonly fromMs: number; readonly toMs: number };
  /** Called every ~200 ms with conversions done and violations found so far (not de-duplicated). */
  readonly onProgress?: (conversions: number, violations: number) => void;
  /** Sample the run for the HTML report (memory map, mappings, conversions over time). */
  readonly sample?: { readonly intervalMs: number };
  /** Aborting it interrupts the run (Ctrl-C): it ends in a RunAbortedError with `interrupted` set and the partial results. */
  readonly signal?: AbortSignal;
}

export interface ActorInfo {
  readonly role: ActorRole;
  readonly id: string;
  readonly threadId: number;
}

export interface RunReport {
  readonly actors: ActorInfo[];
  readonly conversions: number;
  readonly dmaMaps: number;
  readonly dmaUnmaps: number;
  readonly dmaAccesses: Record<'ok' | 'fault' | 'dma-to-private' | 'dma-to-stale', number>;
  /**
   * The devices' own DMA between messages (`background`): accesses by
   * outcome; `shared-page-of-private-block` is a legacy read of a shared
   * page KVM already holds private, before QEMU unmaps it (not a violation).
   */
  readonly deviceAccesses: Record<'ok' | 'fault' | 'dma-to-private' | 'dma-to-stale' | 'shared-page-of-private-block', number>;
  readonly violations: Violation[];
  readonly vmStopped: boolean;
  readonly stopReason: string | undefined;
  /** How the QEMU process stands at the end (a fatal outcome ends the run where QEMU would be gone). */
  readonly outcome: QemuOutcome;
  /** For a fatal outcome, the line QEMU would print. */
  readonly fatalMessage?: string;
  readonly elapsedMs: number;
  readonly conversionsPerSec: number;
  readonly quiescentChecks: number;
  readonly stats: Record<string, Record<string, number>>;
  /** Per-phase latency (nanoseconds) by conversion size class, merged over actors. */
  readonly phases: PhaseRow[];
  /** With `traceLimit`: the Chrome trace. */
  readonly trace?: ChromeTrace;
  /** With `sample`: the time series. */
  readonly series?: RunSeries;
  /** With `sample`: the merged latency histograms (`phase|sizeClass`, buckets in nanoseconds). */
  readonly histograms?: PhaseHistograms;
  /** A run that broke or was interrupted: the actors that did not answer (crashed or hung), whose counters and trace are missing. */
  readonly unanswered?: string[];
}

/**
 * The run could not complete: a worker crashed, hung, or the actors
 * deadlocked, or it was interrupted. `partial` holds what the actors that
 * still answered had done.
 */
export class RunAbortedError extends Error {
  /** What happened before the run stopped, from the actors that still answered. */
  partial: RunReport | undefined;

  /** True when the run was interrupted (RunOptions.signal), not broken. */
  readonly interrupted: boolean;

  constructor(message: string, interrupted = false) {
    super(message);
    this.name = 'RunAbortedError';
    this.interrupted = interrupted;
  }
}

/** How long a broken run waits for each actor's last snapshot. */
const PARTIAL_SNAPSHOT_MS = 1000;

/** `work`, or undefined if it fails or takes longer than `ms`. */
function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([work.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

interface Spawned {
  readonly name: string;
  readonly role: ActorRole;
  readonly actor: number;
  readonly worker: Worker;
  readonly remote: Remote<ActorHost>;
  threadId: number;
}

export async function runThreaded(config: RunConfig, options: RunOptions = {}): Promise<RunReport> {
  // The trace's time origin (and --trace-window's): the moment the run was asked for.
  const originUs = nowUs();
  const topology = makeTopology(config.containers.length, config.vcpus);
  const shared = allocateSharedState(config);
  const roles: Array<[ActorRole, number, number]> = [
    ['kvm-exit', topology.kvm, 0],
    ['ram-block-attributes', topology.rba, 0],
    ...topology.containers.map((actor, i): [ActorRole, number, number] => ['vfio-container', actor, i]),
    ...topology.vcpus.map((actor, i): [ActorRole, number, number] => ['vcpu', actor, i]),
  ];
  const mailboxes = roles.map(() => createMailbox(MAILBOX_CAPACITY));
  const status = allocateStatus(roles.length);
  const spawned: Spawned[] = [];
  let abort: ((error: Error) => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    abort = reject;
  });
  aborted.catch(() => undefined);
  let finished = false;

  const fail = (message: string): void => {
    if (!finished) abort?.(new RunAbortedError(message));
  };
  const interrupt = (): void => {
    if (!finished) abort?.(new RunAbortedError(`interrupted (${String(options.signal?.reason ?? 'signal')})`, true));
  };
  if (options.signal?.aborted === true) interrupt();
  options.signal?.addEventListener('abort', interrupt, { once: true });
  let started = performance.now();
  let sampler: RunSampler | undefined;

  try {
    for (const [role, actor, index] of roles) {
      const name = actorName(role, index);
      const worker = new Worker(workerUrl('actor-worker'), { name });
      const remote = wrap<ActorHost>(nodeEndpoint(worker));
      const entry: Spawned = { name, role, actor, worker, remote, threadId: worker.threadId };
      spawned.push(entry);
      worker.on('error', (error) => fail(`actor ${name} (${role}) threw while handling ${readStatus(status, actor).last}: ${error.message}`));
      worker.on('exit', (code) => fail(`actor ${name} (${role}) exited with status ${code} while handling ${readStatus(status, actor).last}`));
    }
    await race(aborted, Promise.all(spawned.map(async (s, i) => {
      const [, , index] = roles[i]!;
      const workerConfig: WorkerConfig = {
        role: s.role,
        actor: s.actor,
        setup: { config, topology, shared, index },
        mailboxes,
        status,
        ...(options.crash?.actor === s.name ? { crash: { after: options.crash.after, how: options.crash.how } } : {}),
        ...(options.traceLimit === undefined ? {} : { traceLimit: Math.max(2, Math.floor(options.traceLimit / roles.length)) }),
        ...(options.traceWindow === undefined ? {} : { traceWindow: { fromUs: originUs + options.traceWindow.fromMs * 1000, toUs: originUs + options.traceWindow.toMs * 1000 } }),
      };
      s.threadId = await s.remote.configure(workerConfig);
      await s.remote.start();
    })));

    const byName = new Map(spawned.map((s) => [s.name, s]));
    const kvm = byName.get('kvm')!;
    const containers = spawned.filter((s) => s.role === 'vfio-container');
    const vcpus = spawned.filter((s) => s.role === 'vcpu');
    started = performance.now();
    // Counter values only from the containers (live mappings): the sampler counts shared pages itself.
    const gauges = (counters: boolean) => Promise.all(spawned.map((s) => s.remote.gauges(counters && s.role === 'vfio-container')));
    sampler = options.sample === undefined ? undefined : new RunSampler({
      bitmap: new SharedBitmap(blocksOf(config), shared.bitmap),
      gauges: () => gauges(true),
      recentConversions: (after) => kvm.remote.recentConversions(after),
    }, { intervalMs: options.sample.intervalMs });
    sampler?.start();
    let series: RunSeries | undefined;

    // Watchdog: crashes arrive as worker events; hangs and deadlocks are found here.
    let vcpusDone = false;
    let fatal: Fatal | undefined;
    const watchdog = startWatchdog(spawned, status, mailboxes, () => vcpusDone, fail);
    try {
      await race(aborted, kvm.remote.kick());
      const layout = layoutOf(config);
      for (const [i, c] of containers.entries()) {
        for (const section of layout.vfio[i] ?? []) {
          const r = await race(aborted, c.remote.attach(section));
          fatal = fatalRegistration(c.name, r, false);
          if (fatal !== undefined) break;
        }
        if (fatal !== undefined) break;
      }
      const progress = options.onProgress === undefined ? undefined : setInterval(() => {
        void gauges(false).then((g) => options.onProgress?.(
          g.reduce((n, x) => n + x.conversions, 0), g.reduce((n, x) => n + x.violations, 0)), () => undefined);
      }, 200);
      try {
        if (fatal === undefined) {
          const workloads = Promise.all(vcpus.map(async (v) => {
            await v.remote.kick();
            await v.remote.whenDone();
          }));
          const hotplug = hotplugsDevices(config)
            ? hotplugLoop(containers, config, () => vcpusDone, aborted).catch((error: unknown) => {
              fail(error instanceof Error ? error.message : String(error));
              return undefined;
            })
            : Promise.resolve(undefined);
          // A fatal re-registration ends the run at once: the QEMU process would be gone.
          const workloadsDone = workloads.then(() => {
            vcpusDone = true; // stops the hot-plug loop
          });
          fatal = await race(aborted, Promise.race([workloadsDone.then(() => hotplug), hotplug.then((f) => f ?? workloadsDone.then(() => undefined))]));
          vcpusDone = true;
        }
      } finally {
        if (progress !== undefined) clearInterval(progress);
      }
      vcpusDone = true;
      if (fatal === undefined) await race(aborted, kvm.remote.quiescentCheck());
      if (sampler !== undefined) series = await race(aborted, sampler.stop());
    } finally {
      sampler?.cancel();
      clearInterval(watchdog);
    }
    const elapsedMs = performance.now() - started;
    const snapshots = await race(aborted, Promise.all(spawned.map((s) => s.remote.snapshot())));
    finished = true;
    // Mailbox waits: times each actor went to sleep waiting for a message.
    for (const s of snapshots) {
      const actor = spawned.find((x) => x.name === s.name)!.actor;
      s.stats['mailboxSleeps'] = readStatus(status, actor).sleeps;
    }
    const sampled = series === undefined ? {} : { series, histograms: mergePhaseHistograms(snapshots.map((s) => s.profile)) };
    const base = report(snapshots, spawned, elapsedMs);
    const outcome: QemuOutcome = fatal?.outcome ?? (base.vmStopped ? 'vm-stopped' : 'running');
    const result = { ...base, outcome, ...(fatal === undefined ? {} : { fatalMessage: fatal.message }), ...sampled };
    if (options.traceLimit === undefined) return result;
    return { ...result, trace: traceOf(snapshots, spawned, options.traceLimit, originUs, `convsim run (${config.workload}, seed ${config.seed})`) };
  } catch (error) {
    if (error instanceof RunAbortedError && spawned.length > 0) {
      error.partial = await partialReport(spawned, config, options, performance.now() - started, sampler, originUs);
    }
    throw error;
  } finally {
    finished = true;
    options.signal?.removeEventListener('abort', interrupt);
    for (const sab of mailboxes) closeMailbox(sab);
    await Promise.all(spawned.map(async (s) => {
      s.remote[releaseProxy]();
      await s.worker.terminate();
    }));
  }
}

interface Fatal {
  readonly outcome: FatalOutcome;
  readonly message: string;
}

/** A failed registration as QEMU ends on it (see `registerOutcome`), or undefined. */
function fatalRegistration(name: string, r: { ret: number; failure: RegisterFailure }, initialized: boolean): Fatal | undefined {
  const outcome = registerOutcome(r.failure, initialized);
  if (outcome === undefined || !isFatal(outcome)) return undefined;
  const why = r.failure === 'replay'
    ? `ram_block_attributes_rdm_register_listener: replay failed (${retName(r.ret)}): exit(1)`
    : `vfio_ram_discard_register_listener: possibly running out of DMA mappings (${retName(r.ret)})`;
  return { outcome, message: `${name}: ${why}` };
}

/**
 * What a run that broke (or was interrupted) had done: every actor that
 * still answers is stopped and snapshotted; the ones that do not (crashed,
 * hung) are listed in `unanswered`.
 */
async function partialReport(spawned: Spawned[], config: RunConfig, options: RunOptions, elapsedMs: number,
  sampler: RunSampler | undefined, originUs: number): Promise<RunReport | undefined> {
  await Promise.all(spawned.map((s) => within(s.remote.stop(), PARTIAL_SNAPSHOT_MS)));
  const answers = await Promise.all(spawned.map((s) => within(s.remote.snapshot(), PARTIAL_SNAPSHOT_MS)));
  const answered = spawned.filter((_, i) => answers[i] !== undefined);
  const snapshots = answers.filter((a): a is ActorSnapshot => a !== undefined);
  if (snapshots.length === 0) return undefined;
  const series = sampler?.partial();
  const reported = report(snapshots, answered, elapsedMs);
  const base: RunReport = {
    ...reported,
    outcome: reported.vmStopped ? 'vm-stopped' : 'running',
    ...(series === undefined ? {} : { series, histograms: mergePhaseHistograms(snapshots.map((s) => s.profile)) }),
    unanswered: spawned.filter((_, i) => answers[i] === undefined).map((s) => s.name),
  };
  if (options.traceLimit === undefined) return base;
  return { ...base, trace: traceOf(snapshots, answered, options.traceLimit, originUs, `convsim run (${config.workload}, seed ${config.seed}; stopped early)`) };
}

/** The Chrome trace of the actors' snapshots (`spawned[i]` is the actor of `snapshots[i]`). */
function traceOf(snapshots: readonly ActorSnapshot[], spawned: readonly Spawned[], limit: number, originUs: number, title: string): ChromeTrace {
  const tracks = snapshots.map((s, i) => ({
    name: s.name, role: s.role, tid: spawned[i]!.threadId, events: s.traceEvents, dropped: s.traceDropped,
    ...(s.traceCoverage === undefined ? {} : { coverage: s.traceCoverage }),
  }));
  return buildChromeTrace(tracks, limit, title, originUs);
}

/**
 * Device hot-plug while conversions run: detach and re-attach containers in
 * turn. Each re-attach is a region add on an initialized container; it
 * resolves with the fatal outcome when one fails.
 */
async function hotplugLoop(containers: Spawned[], config: RunConfig, done: () => boolean, aborted: Promise<never>): Promise<Fatal | undefined> {
  let turn = 0;
  const layout = layoutOf(config);
  while (!done()) {
    const which = turn++ % containers.length;
    const c = containers[which]!;
    const sections = layout.vfio[which] ?? [];
    for (let k = 0; k < sections.length; k++) await race(aborted, c.remote.detach());
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (const section of sections) {
      const r = await race(aborted, c.remote.attach(section));
      const fatal = fatalRegistration(c.name, r, true);
      if (fatal !== undefined) return fatal;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return undefined;
}

function startWatchdog(spawned: Spawned[], status: SharedArrayBuffer, mailboxes: SharedArrayBuffer[],
  vcpusDone: () => boolean, fail: (message: string) => void): NodeJS.Timeout {
  const lastHandled = spawned.map(() => -1);
  const stuckSince = spawned.map(() => 0);
  let idleSince = 0;
  const hangMs = hangLimitMs(spawned.length, availableParallelism());
  let lastTick = performance.now();
  return setInterval(() => {
    const now = performance.now();
    // A late tick means the host thread itself was starved of CPU: what it saw is stale, judge nobody.
    const late = now - lastTick > 10 * WATCHDOG_MS;
    lastTick = now;
    if (late) {
      stuckSince.fill(now);
      idleSince = 0;
      return;
    }
    let allIdle = true;
    spawned.forEach((s, i) => {
      const st = readStatus(status, s.actor);
      const waiting = pendingMessages(mailboxes[s.actor]!);
      if (st.busy || waiting > 0) allIdle = false;
      if (st.handled !== lastHandled[i]) {
        lastHandled[i] = st.handled;
        stuckSince[i] = now;
      } else if ((st.busy || waiting > 0) && now - stuckSince[i]! > hangMs) {
        fail(`actor ${s.name} (${s.role}) stopped answering while handling ${st.last} (${waiting} messages waiting)`);
      }
    });
    if (allIdle && !vcpusDone()) {
      if (idleSince === 0) idleSince = now;
      else if (now - idleSince > DEADLOCK_MS) {
        const summary = spawned.map((s) => `${s.name}: last ${readStatus(status, s.actor).last}`).join(', ');
        // A silent actor took a message and has sent nothing since: first one whose last message was a
        // request (it never answered), else one whose last was a reply (replies end in `Done`; it never went
        // on). The KVM exit handler holds exits by design (its p-queue admits them one conversion at a
        // time), and a vCPU whose workload ended stops sending.
        const quiet = spawned.map((s) => ({ s, st: readStatus(status, s.actor) }))
          .filter(({ s, st }) => st.handledSinceSend > 0 && s.role !== 'vcpu' && !(s.role === 'kvm-exit' && st.last === 'exit'));
        const silent = quiet.find(({ st }) => !st.last.endsWith('Done')) ?? quiet[0];
        const who = silent === undefined ? '' : `actor ${silent.s.name} (${silent.s.role}) went silent: it took ${silent.st.handledSinceSend} message(s) ` +
          `(last ${silent.st.last}) and sent nothing back; `;
        fail(`deadlock: ${who}every actor waits for a message and every inbox is empty, but the vCPUs have not finished (${summary})`);
      }
    } else {
      idleSince = 0;
    }
  }, WATCHDOG_MS);
}

function race<T>(aborted: Promise<never>, work: Promise<T>): Promise<T> {
  return Promise.race([aborted, work]);
}

function report(snapshots: ActorSnapshot[], spawned: Spawned[], elapsedMs: number): Omit<RunReport, 'outcome'> {
  const stats: Record<string, Record<string, number>> = {};
  const violations: Violation[] = [];
  const seen = new Set<string>();
  let dmaMaps = 0;
  let dmaUnmaps = 0;
  const dmaAccesses = { ok: 0, fault: 0, 'dma-to-private': 0, 'dma-to-stale': 0 };
  const deviceAccesses = { ok: 0, fault: 0, 'dma-to-private': 0, 'dma-to-stale': 0, 'shared-page-of-private-block': 0 };
  for (const s of snapshots) {
    stats[s.name] = s.stats;
    for (const v of s.violations) {
      // A standing condition is found again at every quiescent check: report it once.
      const key = `${v.invariant}|${v.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      violations.push(v);
    }
    if (s.role === 'vfio-container') {
      dmaMaps += s.stats['dmaMaps'] ?? 0;
      dmaUnmaps += s.stats['dmaUnmaps'] ?? 0;
      dmaAccesses.ok += s.stats['dmaOk'] ?? 0;
      dmaAccesses.fault += s.stats['dmaFault'] ?? 0;
      dmaAccesses['dma-to-private'] += s.stats['dmaToPrivate'] ?? 0;
      dmaAccesses['dma-to-stale'] += s.stats['dmaToStale'] ?? 0;
      deviceAccesses.ok += s.stats['deviceOk'] ?? 0;
      deviceAccesses.fault += s.stats['deviceFault'] ?? 0;
      deviceAccesses['dma-to-private'] += s.stats['deviceToPrivate'] ?? 0;
      deviceAccesses['dma-to-stale'] += s.stats['deviceToStale'] ?? 0;
      deviceAccesses['shared-page-of-private-block'] += s.stats['deviceSharedPageOfPrivateBlock'] ?? 0;
    }
  }
  // The KVM exit handler is missing only from a broken run's partial report (it crashed or hung).
  const kvm = snapshots.find((s) => s.role === 'kvm-exit');
  const conversions = kvm?.stats['conversions'] ?? 0;
  const stopTrace = kvm?.trace.find((t) => t.startsWith('vm stop: '));
  return {
    actors: snapshots.map((s, i) => ({ role: s.role, id: s.name, threadId: spawned[i]!.threadId })),
    conversions,
    deviceAccesses,
    dmaMaps,
    dmaUnmaps,
    dmaAccesses,
    violations,
    vmStopped: (kvm?.stats['vmStopped'] ?? 0) === 1,
    stopReason: stopTrace?.slice('vm stop: '.length),
    elapsedMs,
    conversionsPerSec: elapsedMs > 0 ? (conversions / elapsedMs) * 1000 : 0,
    quiescentChecks: kvm?.stats['quiescentChecks'] ?? 0,
    stats,
    phases: mergePhases(snapshots.map((s) => s.profile)),
  };
}
