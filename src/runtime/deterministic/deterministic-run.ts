/**
 * The deterministic runtime: the same actor logic as the threaded runtime,
 * run in one thread, where a seeded strategy chooses which pending message
 * is delivered next. Messages between one sender and one receiver stay
 * FIFO; every delivery is a scheduling point. The shared "memory" (bitmap,
 * KVM attributes, pages) is the same SharedArrayBuffer views, touched by
 * one thread at a time.
 */
import { conversionsAtOnce } from '../../core/protocol-policy.js';
import type { ActorContext, ActorLogic, ActorRole } from '../../actors/actor.js';
import { makeTopology } from '../../actors/actor.js';
import { actorName } from '../../actors/create-actor.js';
import { KvmExitHandler } from '../../actors/kvm-exit/kvm-exit-handler.js';
import { SyncAdmission } from '../../actors/kvm-exit/conversion-admission.js';
import { RamBlockAttributesOwner } from '../../actors/ram-block-attributes/owner.js';
import type { Message } from '../../actors/protocol.js';
import { hotplugsDevices, type ActorSetup, type RunConfig } from '../../actors/run-config.js';
import { allocateSharedState } from '../../actors/shared-views.js';
import { Vcpu } from '../../actors/vcpu/vcpu.js';
import { VfioContainerActor } from '../../actors/vfio-container/container-actor.js';
import type { Violation } from '../../core/invariants.js';
import { Prng } from '../../core/prng.js';
import { registerOutcome, type FatalOutcome, type QemuOutcome } from '../../core/qemu-outcome.js';
import { retName } from '../../core/errno.js';
import type { Candidate, Strategy } from './strategy.js';
import { TraceHasher, type Delivery } from './trace.js';
import { recordSharedAccesses } from '../../core/shared-access.js';
import { FootprintRecorder, GUEST_RUNNING, HOTPLUG_BUDGET } from './footprint.js';
import { PartialOrderHasher } from './partial-order-hash.js';
import { deviceThread, mainThread } from './qemu-threads.js';

export interface DeterministicOptions {
  readonly strategy: Strategy;
  /** Stop after this many deliveries (a livelock guard). */
  readonly maxSteps: number;
  /** Keep every delivery (for stories and replay); off for fast exploration. */
  readonly recordTrace: boolean;
  /** Stop at the first violation (exploration) or run to the end. */
  readonly stopAtViolation: boolean;
  /** Record every choice, so the schedule can be replayed as deviations. */
  readonly recordChoices?: boolean;
  /**
   * Record what each step touches (its footprint): the strategy's
   * `observe` receives it, and the result carries `partialOrderHash`.
   */
  readonly footprints?: boolean;
  /** Collect each actor's counters at the end (default true; a systematic search does not need them). */
  readonly stats?: boolean;
  /** Cells per chunk of the partial-order hash (default `CHUNK_CELLS`; 1 = exactly the footprints' dependency). */
  readonly partialOrderChunk?: number;
}

/**
 * How a run ended. The fatal QEMU outcomes (`qemu-exit`, `realize-failed`,
 * `qemu-abort`, see `QemuOutcome`) end it where the process would be gone.
 */
export type DeterministicOutcome = 'completed' | 'violation' | 'deadlock' | 'step-limit' | 'pruned' | FatalOutcome;

export interface DeterministicResult {
  readonly outcome: DeterministicOutcome;
  readonly steps: number;
  readonly traceHash: string;
  /** With `footprints`: the hash of the run's partial order (equal for runs that differ only in the order of independent steps). */
  readonly partialOrderHash?: string;
  readonly violations: Violation[];
  /** The delivery after which the first violation was found (-1 if none). */
  readonly violationStep: number;
  readonly trace: Delivery[];
  /** Steps where the scheduler did not take the first candidate: step -> choice. */
  readonly deviations: Map<number, number>;
  readonly conversions: number;
  readonly actors: Array<{ role: ActorRole; id: string }>;
  readonly vmStopped: boolean;
  /** How the QEMU process stands at the end. */
  readonly qemuOutcome: QemuOutcome;
  /**
   * For a fatal outcome: the one line QEMU would print, the delivery after
   * which it happened, and whether an injected fault explains it (`--faults`:
   * QEMU exiting after an injected map failure in a replay is QEMU as it is,
   * not a finding).
   */
  readonly fatal?: { readonly message: string; readonly step: number; readonly injected: boolean };
  /** Each actor's counters at the end, by actor index. */
  readonly stats: Array<Record<string, number>>;
  /**
   * With `recordTrace`: each violation, the actor that found it and the
   * delivery after which it did (`steps` for one found at the final check).
   */
  readonly foundBy?: ReadonlyArray<{ readonly step: number; readonly actor: number; readonly violation: Violation }>;
}

/** A FIFO channel from one actor to another; as a candidate, the delivery of its oldest message. */
class Channel implements Candidate {
  readonly from: number;
  readonly to: number;
  readonly #items: Message[] = [];
  /** The thread each message was sent on behalf of, side by side with `#items`. */
  readonly #threads: number[] = [];
  #head = 0;

  constructor(from: number, to: number) {
    this.from = from;
    this.to = to;
  }

  get empty(): boolean {
    return this.#head === this.#items.length;
  }

  /** The thread the oldest message runs on behalf of (the channel must not be empty). */
  get thread(): number {
    return this.#threads[this.#head]!;
  }

  push(message: Message, thread: number): void {
    this.#items.push(message);
    this.#threads.push(thread);
  }

  shift(): Message {
    const message = this.#items[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#threads.splice(0, this.#head);
      this.#head = 0;
    }
    return message;
  }
}

/** How often (in deliveries) the `hotplug` workload detaches and re-attaches a container. */
const HOTPLUG_EVERY = 97;

export function runDeterministic(config: RunConfig, options: DeterministicOptions): DeterministicResult {
  if (options.footprints !== true) return run(config, options, undefined);
  // Every shared-memory access of every step is noted, on this thread, for the length of the run.
  const recorder = new FootprintRecorder();
  recordSharedAccesses(recorder);
  try {
    return run(config, options, recorder);
  } finally {
    recordSharedAccesses(undefined);
  }
}

function run(config: RunConfig, options: DeterministicOptions, recorder: FootprintRecorder | undefined): DeterministicResult {
  const topology = makeTopology(config.containers.length, config.vcpus);
  const shared = allocateSharedState(config);
  const n = 2 + config.containers.length + config.vcpus;
  const roles: ActorRole[] = [];
  const actors: ActorLogic[] = [];
  const names: string[] = [];
  const setup = (index: number): ActorSetup => ({ config, topology, shared, index });
  const kvm = new KvmExitHandler(setup(0), new SyncAdmission(conversionsAtOnce(config.protocol, config.inFlight)));
  actors[topology.kvm] = kvm;
  actors[topology.rba] = new RamBlockAttributesOwner(setup(0));
  const containers = topology.containers.map((actor, i) => {
    const c = new VfioContainerActor(setup(i));
    actors[actor] = c;
    return c;
  });
  const vcpus = topology.vcpus.map((actor, i) => {
    const v = new Vcpu(setup(i));
    actors[actor] = v;
    return v;
  });
  for (let a = 0; a < n; a++) {
    roles[a] = actors[a]!.role;
    const index = roles[a] === 'vcpu' ? topology.vcpus.indexOf(a) : roles[a] === 'vfio-container' ? topology.containers.indexOf(a) : 0;
    names[a] = actorName(roles[a]!, index);
  }

  // Channels, and the non-empty ones in canonical (from, to) order.
  const channels: Channel[] = [];
  for (let from = 0; from < n; from++) for (let to = 0; to < n; to++) channels.push(new Channel(from, to));
  const ready: Channel[] = [];
  const markReady = (channel: Channel): void => {
    const key = channel.from * n + channel.to;
    let i = ready.length;
    while (i > 0 && ready[i - 1]!.from * n + ready[i - 1]!.to > key) i--;
    ready.splice(i, 0, channel);
  };

  let step = 0;
  /** Set when QEMU would exit or abort (or never start): the run ends at the next scheduling point. */
  let fatal: { outcome: FatalOutcome; message: string; step: number } | undefined;
  const noteRegistration = (c: VfioContainerActor, index: number, ret: number, initialized: boolean): void => {
    const outcome = registerOutcome(c.lastAttachFailure, initialized);
    if (outcome === undefined || outcome === 'running' || outcome === 'vm-stopped' || fatal !== undefined) return;
    const why = c.lastAttachFailure === 'replay'
      ? `ram_block_attributes_rdm_register_listener: replay failed (${retName(ret)}): exit(1)`
      : `vfio_ram_discard_register_listener: possibly running out of DMA mappings (${retName(ret)})`;
    fatal = { outcome, message: `c${index}: ${why}`, step: step - 1 };
  };
  /** Step being delivered (-1 outside deliveries): when each message was sent, for trace flows. */
  let current = -1;
  const sentAt = options.recordTrace ? new WeakMap<Message, number>() : undefined;
  const hotplugEvery = config.hotplugEvery ?? HOTPLUG_EVERY;
  const hotplug = hotplugsDevices(config);
  // The QEMU thread each step runs for (numbered as qemu-threads.ts says). A message belongs to
  // the thread of the step that sent it, or to the thread `bind` kept for deferred work.
  const main = mainThread(n);
  let thread = main;
  /** The thread of the last scheduled step. */
  let ranBefore = main;
  const contexts: ActorContext[] = [];
  for (let a = 0; a < n; a++) {
    const prng = new Prng(config.seed * 1000 + a);
    contexts[a] = {
      self: a,
      send(to: number, message: Message): void {
        const channel = channels[a * n + to]!;
        if (channel.empty) markReady(channel);
        channel.push(message, thread);
        sentAt?.set(message, current);
      },
      now: () => step,
      random: () => prng.next(),
      trace: () => undefined,
      bind<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
        const owner = thread;
        return (...args: A): void => {
          const running = thread;
          thread = owner;
          try {
            fn(...args);
          } finally {
            thread = running;
          }
        };
      },
    };
  }

  const vcpuOfActor = Array.from({ length: n }, (_, a) => topology.vcpus.indexOf(a));
  /** A scheduled hot-plug of container `which`: every listener unregistered, every section registered again. */
  const hotplugContainer = (which: number): Message => {
    const c = containers[which]!;
    const actor = topology.containers[which]!;
    const ctx = contexts[actor]!;
    const listeners = c.listenerCount;
    for (let k = listeners; k > 0; k--) void c.detach(ctx);
    for (const section of c.sections) void c.attach(section, ctx, (ret) => noteRegistration(c, which, ret, true));
    return { type: 'hotplug', from: actor, tag: 0, listeners, sections: c.sections.length };
  };
  /** After a step with footprints on: hand its footprint to the strategy and the partial-order hash. */
  const observe = (actor: number, kind: number, what: Message): void => {
    const footprint = recorder!.take(actor, fatal !== undefined);
    footprintOf!.add(footprint, kind, what);
    // The partial-order hash so far names the state: equivalent prefixes leave the same state.
    options.strategy.observe?.(footprint, footprintOf!.value());
  };

  const hasher = new TraceHasher();
  const trace: Delivery[] = [];
  const deviations = new Map<number, number>();
  let violationStep = -1;
  /** Violations each actor had found after its last delivery: only the receiver of a delivery runs, so only it can find one. */
  const seen = new Array<number>(n).fill(0);
  const foundBy: Array<{ step: number; actor: number; violation: Violation }> = [];
  /** With a trace: who found the violations `actor` found since `seen`, and when. */
  const noteFinder = (actor: number, at: number): void => {
    if (!options.recordTrace) return;
    for (const violation of actors[actor]!.violations().slice(seen[actor])) foundBy.push({ step: at, actor, violation });
  };
  const violationCount = (): number => {
    let total = 0;
    for (const actor of actors) total += actor.violationCount();
    return total;
  };

  // Actors with work of their own (devices DMA-ing): each is one more candidate at every step
  // while the guest runs, so a device access can fall between any two deliveries. They are
  // offered after the deliveries, so the default order (always the first candidate) never
  // takes one and a replay's deviations name exactly the accesses that matter.
  //
  // A device may act once between two deliveries (it is armed again by every delivery): it can
  // fall between any two steps, and a strategy that favours it (PCT giving it the top priority)
  // cannot starve the actors it runs beside.
  const backgroundCandidates: Candidate[] = [];
  for (let a = 0; a < n; a++) if (actors[a]!.background !== undefined) backgroundCandidates.push({ from: a, to: a, kind: 'device', thread: deviceThread(a) });
  const armed = new Array<boolean>(n).fill(true);
  // With scheduled events, the devices' accesses and the hot-plugs are budgeted choices instead
  // (no arming, no hot-plug every `hotplugEvery` deliveries): where they fall depends only on the
  // schedule, never on a step count, so a systematic search can place them anywhere.
  const scheduled = config.scheduledEvents;
  const deviceAccessesLeft = new Array<number>(n).fill(scheduled?.deviceAccesses ?? 0);
  let hotplugsLeft = scheduled?.hotplugs ?? 0;
  const hotplugCandidates: Candidate[] = topology.containers.map((a) => ({ from: a, to: a, kind: 'hotplug', thread: main }));
  const footprintOf = recorder === undefined ? undefined : new PartialOrderHasher(n, options.partialOrderChunk);
  let guestRunning = false;
  const candidates: Candidate[] = [];

  /** After a step by `actor`: did it find a new violation? */
  const newViolation = (actor: number): boolean => {
    const found = actors[actor]!.violationCount();
    if (found === seen[actor]) return false;
    noteFinder(actor, step - 1);
    seen[actor] = found;
    if (violationStep >= 0) return false;
    violationStep = step - 1;
    return true;
  };

  /** Deliver until nothing is pending, a violation (when asked) or the step limit. */
  const drain = (): DeterministicOutcome | undefined => {
    // Accesses made outside any step (start-up, the final check's start) belong to no step.
    recorder?.take(0, false);
    while (ready.length > 0) {
      if (step >= options.maxSteps) return 'step-limit';
      if (guestRunning && vcpus.every((v) => v.done)) guestRunning = false;
      candidates.length = 0;
      for (const c of ready) candidates.push(c);
      if (guestRunning && scheduled === undefined) for (const c of backgroundCandidates) if (armed[c.to]) candidates.push(c);
      if (guestRunning && scheduled !== undefined) {
        for (const c of backgroundCandidates) if (deviceAccessesLeft[c.to]! > 0) candidates.push(c);
        if (hotplugsLeft > 0) for (const [i, c] of hotplugCandidates.entries()) if (!containers[i]!.registering) candidates.push(c);
      }
      const count = candidates.length;
      const choice = options.strategy.choose(candidates, step);
      if (choice < 0) return 'pruned';
      // For the story: did this step preempt the thread that ran the step before (a device never waits)?
      const preempts = options.recordTrace && ranBefore >= 0 && candidates[choice]!.thread !== ranBefore && candidates.some((c) => c.thread === ranBefore)
        ? { preempts: ranBefore } : {};
      ranBefore = candidates[choice]!.thread!;
      if (choice !== 0 && options.recordChoices === true) deviations.set(step, choice);
      const picked = candidates[choice]!;
      if (picked.kind !== undefined) {
        const actor = picked.to;
        current = step;
        step++;
        let did: Message;
        thread = picked.thread!;
        if (picked.kind === 'device') {
          armed[actor] = false;
          deviceAccessesLeft[actor]!--;
          did = actors[actor]!.background!(contexts[actor]!);
        } else {
          hotplugsLeft--;
          const which = topology.containers.indexOf(actor);
          did = hotplugContainer(which);
          recorder?.note(HOTPLUG_BUDGET, true, 0, 0);
        }
        recorder?.note(GUEST_RUNNING, false, 0, 0);
        current = -1;
        // Recorded like a delivery (what the device or the host did), so trace index = step.
        hasher.add(actor, did);
        if (recorder !== undefined) observe(actor, picked.kind === 'device' ? 1 : 2, did);
        if (options.recordTrace) trace.push({ step: step - 1, from: actor, to: actor, message: did, sentStep: -1, choice, candidates: count, thread: picked.thread!, ...preempts });
        if (newViolation(actor) && options.stopAtViolation) return 'violation';
        if (fatal !== undefined) return fatal.outcome;
        continue;
      }
      const channel = ready[choice]!;
      thread = channel.thread;
      const message = channel.shift();
      if (channel.empty) ready.splice(choice, 1);
      hasher.add(channel.to, message);
      if (options.recordTrace) trace.push({ step, from: channel.from, to: channel.to, message, sentStep: sentAt?.get(message) ?? -1, choice, candidates: count, thread, ...preempts });
      current = step;
      step++;
      const vcpu = vcpuOfActor[channel.to]!;
      const wasDone = vcpu >= 0 && vcpus[vcpu]!.done;
      actors[channel.to]!.receive(message, contexts[channel.to]!);
      current = -1;
      armed.fill(true);
      if (recorder !== undefined) {
        // The last vCPU finishing stops the guest, which ends the devices' and hot-plugs' turns.
        if (vcpu >= 0 && !wasDone && vcpus[vcpu]!.done) recorder.note(GUEST_RUNNING, true, 0, 0);
        observe(channel.to, 0, message);
      }
      if (newViolation(channel.to) && options.stopAtViolation) return 'violation';
      if (scheduled === undefined && hotplug && guestRunning && step % hotplugEvery === 0) {
        const which = Math.floor(step / hotplugEvery) % containers.length;
        const c = containers[which]!;
        // One hot-plug at a time per container, as the host thread does it: unplug (every
        // section's listener), then plug again (every section, in order). QEMU refuses a
        // failed re-plug: exit(1) on a failed replay, an abort on a failed region add.
        if (c.registering) continue;
        thread = main;
        const ctx = contexts[topology.containers[which]!]!;
        for (let n = c.listenerCount; n > 0; n--) void c.detach(ctx);
        // A re-registration on an initialized container: a failed replay exits, a refused estimate aborts.
        for (const section of c.sections) void c.attach(section, ctx, (ret) => noteRegistration(c, which, ret, true));
      }
      if (fatal !== undefined) return fatal.outcome;
    }
    return fatal?.outcome;
  };

  const finish = (outcome: DeterministicOutcome): DeterministicResult => {
    for (let a = 0; a < n; a++) noteFinder(a, step);
    const violations = actors.flatMap((a) => a.violations());
    const qemuOutcome: QemuOutcome = fatal?.outcome ?? (kvm.stopReason !== undefined ? 'vm-stopped' : 'running');
    return {
      outcome,
      steps: step,
      traceHash: hasher.digest(),
      ...(footprintOf === undefined ? {} : { partialOrderHash: footprintOf.digest() }),
      violations,
      violationStep,
      trace,
      deviations,
      conversions: kvm.stats()['conversions'] ?? 0,
      actors: names.map((id, a) => ({ role: roles[a]!, id })),
      vmStopped: kvm.stopReason !== undefined,
      qemuOutcome,
      ...(fatal === undefined ? {} : { fatal: { message: fatal.message, step: fatal.step, injected: config.faults !== undefined } }),
      stats: options.stats === false ? [] : actors.map((a) => a.stats()),
      ...(options.recordTrace ? { foundBy } : {}),
    };
  };

  // Start-up, as the threaded host does it: the KVM listener (priority order), then each
  // container's registration in turn (so c0 is registered first and notified last).
  thread = main;
  kvm.receive({ type: 'start', from: topology.kvm, tag: 0 }, contexts[topology.kvm]!);
  let stopped = drain();
  if (stopped !== undefined) return finish(stopped);
  for (const [i, c] of containers.entries()) {
    for (const section of c.sections) {
      thread = main;
      void c.attach(section, contexts[topology.containers[i]!]!, (ret) => noteRegistration(c, i, ret, false));
      stopped = drain();
      if (stopped !== undefined) return finish(stopped);
    }
  }
  guestRunning = true;
  vcpus.forEach((v, i) => {
    thread = topology.vcpus[i]!;
    v.receive({ type: 'start', from: topology.vcpus[i]!, tag: 0 }, contexts[topology.vcpus[i]!]!);
  });
  stopped = drain();
  if (stopped !== undefined) return finish(stopped);
  guestRunning = false;
  if (!vcpus.every((v) => v.done)) return finish('deadlock');
  // Final quiescent check.
  thread = main;
  kvm.quiescentCheck(contexts[topology.kvm]!, () => undefined);
  stopped = drain();
  if (stopped !== undefined) return finish(stopped);
  return finish(violationCount() > 0 ? 'violation' : 'completed');
}
