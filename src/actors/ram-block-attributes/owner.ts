/**
 * The RamBlockAttributes owner: keeps `rdl_list` and runs
 * `ram_block_attributes_state_change` and listener (un)registration as the
 * core's generators. Each step is a message: a listener call goes to the
 * listener's actor (a container, or the KVM exit handler for the priority
 * order's KVM listener), a bitmap access to the converting vCPU's actor,
 * which makes it on its own thread. The generator resumes on the reply, as
 * QEMU's synchronous calls return.
 *
 * Which thread does what, next to QEMU:
 * - the vCPU thread of a conversion: in QEMU it runs all of
 *   `ram_block_attributes_state_change`; here it makes the state change's
 *   bitmap scans, loads and stores (bitmap-ops.ts), so two vCPUs' word
 *   updates really race on the shared bitmap;
 * - this actor: the rest of the state change on that vCPU's behalf (the
 *   listener walk), and registration, which QEMU runs on the main loop.
 *
 * Concurrency: several state changes and a registration may be in flight
 * at once; between any two steps of one, steps of the others run. The
 * conversion lock and the registration order (protocol-policy.ts) decide
 * which jobs must wait for which, here and only here.
 */
import { EventBus } from '../../core/events.js';
import { RollbackChecker, type Violation } from '../../core/invariants.js';
import type { MemoryRegionSection } from '../../core/memory-region-section.js';
import { isListenerCall, RamBlockAttributes, type ListenerCalls } from '../../core/ram-block-attributes.js';
import type { RamDiscardListener } from '../../core/ram-discard-manager.js';
import { GUEST_MR } from '../../core/confidential-vm.js';
import { registrationExcludesStateChanges, stateChangesOverlap, type ProtocolPolicy } from '../../core/protocol-policy.js';
import { encodeBitmapStep } from '../bitmap-step-message.js';
import { PendingReplies, type ActorContext, type ActorLogic } from '../actor.js';
import type { Message } from '../protocol.js';
import { PhaseProfile, type PhaseHistograms } from '../phase-profile.js';
import type { ActorSetup } from '../run-config.js';
import { sharedViews } from '../shared-views.js';

/** Stands in for a listener living in another actor. Never called directly. */
class RemoteListener implements RamDiscardListener {
  readonly doubleDiscardSupported = true;
  readonly name: string;
  readonly actor: number;
  readonly priority: number;
  constructor(name: string, actor: number, priority: number) {
    this.name = name;
    this.actor = actor;
    this.priority = priority;
  }
  notifyPopulate(): number {
    throw new Error(`${this.name} is remote: its calls are messages`);
  }
  notifyDiscard(): void {
    throw new Error(`${this.name} is remote: its calls are messages`);
  }
}

/** A generator in flight and where its result goes. */
interface Job {
  readonly calls: ListenerCalls;
  /** Bytes the job covers (for the size class) and when it started. */
  readonly size: number;
  startedAt: number;
  readonly replyTo: number;
  readonly replyTag: number;
  readonly reply: 'stateChangeDone' | 'registerDone';
  /** State changes: the actor of the vCPU whose thread converts (makes the bitmap steps). */
  readonly vcpu: number;
  /** A deferred job: starts it again, on the thread that asked for it (see `ActorContext.bind`). */
  retry?: () => void;
}

export class RamBlockAttributesOwner implements ActorLogic {
  readonly role = 'ram-block-attributes' as const;
  readonly rba: RamBlockAttributes;
  readonly #bus = new EventBus();
  readonly #found: Violation[] = [];
  readonly #pending = new PendingReplies<Job>();
  readonly #profile: PhaseProfile;
  /** Listener per (actor, iova): a container registers one per section. */
  readonly #listeners = new Map<string, RemoteListener>();
  readonly #names: Map<number, string>;
  readonly #counters = { stateChanges: 0, notifyPopulate: 0, notifyDiscard: 0, registrations: 0, maxInFlight: 0, deferred: 0, 'checked:use-after-free': 0 };
  readonly #protocol: ProtocolPolicy;
  /** State changes in flight, and whether a registration is. */
  #stateChangesActive = 0;
  #registrationActive = false;
  /** Jobs waiting for a job they exclude to finish (conversion lock, serialized registration), FIFO. */
  readonly #deferred: Job[] = [];
  readonly #rollback: RollbackChecker;
  /** The job whose generator is being stepped (its events are being emitted). */
  #stepping: Job | undefined;

  constructor(setup: ActorSetup) {
    this.#profile = new PhaseProfile(setup.config.profile !== false);
    const { config, topology } = setup;
    const views = sharedViews(setup);
    this.rba = new RamBlockAttributes({
      mr: GUEST_MR,
      regionSize: config.guestMem,
      blockSize: config.blockSize,
      rollback: config.rollback,
      priorities: config.mode === 'inplace' && config.order === 'priority',
      bitmap: views.bitmap,
      bitmapOps: config.protocol.bitmapOps,
      listenerList: config.protocol.listenerList,
      bus: this.#bus,
      notifyBeforeBitmap: config.variant?.notifyBeforeBitmap ?? false,
      invertPriorityWalk: config.variant?.invertPriorityWalk ?? false,
    });
    this.#protocol = config.protocol;
    // Rollback exactness: each state change's events are told apart by the job being stepped
    // when they are emitted. When nothing can interleave with a state change (one at a time,
    // registration kept apart), the bitmap is checked too.
    const oneAtATime = !stateChangesOverlap(config.protocol) || config.inFlight === 1;
    const alone = oneAtATime && registrationExcludesStateChanges(config.protocol);
    this.#rollback = new RollbackChecker(this.#bus, config.rollback, views.bitmap, config.blockSize, this.#found,
      alone ? undefined : { current: () => this.#stepping });
    this.#names = new Map<number, string>([[topology.kvm, 'kvm']]);
    topology.containers.forEach((actor, i) => this.#names.set(actor, `c${i}`));
    // use-after-free: a walk read the next pointer of a listener freed while the walk stood on it.
    this.#bus.subscribe((event) => {
      if (event.kind !== 'listenerUseAfterFree') return;
      const job = this.#stepping;
      this.#found.push({
        invariant: 'use-after-free',
        message: `a listener walk of ram_block_attributes_state_change${job === undefined ? '' : ` (vCPU thread of actor ${job.vcpu})`} stepped on from listener ${event.listener} after vfio_ram_discard_unregister_listener unlinked and freed it: rdl->next is read from freed memory`,
        listener: event.listener,
      });
    });
  }

  receive(message: Message, ctx: ActorContext): void {
    switch (message.type) {
      case 'stateChange':
        this.#counters.stateChanges++;
        this.#start({ calls: this.rba.stateChangeCalls(message.offset, message.size, message.toDiscard), size: message.size, startedAt: 0, replyTo: message.from, replyTag: message.tag, reply: 'stateChangeDone', vcpu: message.vcpu }, ctx);
        return;
      case 'register': {
        const key = `${message.from}@${message.iova}`;
        const listener = new RemoteListener(this.#names.get(message.from) ?? `actor${message.from}`, message.from, message.priority);
        this.#listeners.set(key, listener);
        this.#counters.registrations++;
        const section: MemoryRegionSection = { mr: GUEST_MR, offsetWithinRegion: message.offset, size: message.size, offsetWithinAddressSpace: message.iova, readonly: false };
        this.#start({ calls: this.rba.registerListenerCalls(listener, section), size: message.size, startedAt: 0, replyTo: message.from, replyTag: message.tag, reply: 'registerDone', vcpu: -1 }, ctx);
        return;
      }
      case 'unregister': {
        const key = `${message.from}@${message.iova}`;
        const listener = this.#listeners.get(key);
        if (listener === undefined) throw new Error(`unregister of unknown listener ${key}`);
        this.#listeners.delete(key);
        this.#start({ calls: this.rba.unregisterListenerCalls(listener), size: 0, startedAt: 0, replyTo: message.from, replyTag: message.tag, reply: 'registerDone', vcpu: -1 }, ctx);
        return;
      }
      case 'notifyDone':
      case 'bitmapStepDone':
        this.#advance(this.#pending.take(message.tag), message.ret, ctx);
        return;
      default:
        throw new Error(`RamBlockAttributes owner cannot handle ${message.type}`);
    }
  }

  /**
   * Whether jobs of these kinds may not run at once. Registrations never
   * overlap one another (QEMU does region_add/region_del under the BQL on
   * the main thread). A registration and a state change exclude each other
   * when both hold the BQL (`bql`) or under the `serialized` order. State
   * changes exclude each other under a lock (`rba-mutex`, `bql`).
   */
  #excludes(a: Job['reply'], b: Job['reply']): boolean {
    if (a === 'registerDone' && b === 'registerDone') return true;
    if (a !== b) return registrationExcludesStateChanges(this.#protocol);
    return !stateChangesOverlap(this.#protocol);
  }

  #start(job: Job, ctx: ActorContext): void {
    const conflict = (this.#registrationActive && this.#excludes(job.reply, 'registerDone'))
      || (this.#stateChangesActive > 0 && this.#excludes(job.reply, 'stateChangeDone'));
    // FIFO: nothing overtakes a deferred job of its kind or one it excludes, so none is starved.
    const queued = this.#deferred.some((d) => d.reply === job.reply || this.#excludes(job.reply, d.reply));
    if (conflict || queued) {
      this.#counters.deferred++;
      // The job waits as its thread would for the lock, and goes on on that thread.
      job.retry = ctx.bind(() => this.#start(job, ctx));
      this.#deferred.push(job);
      return;
    }
    if (job.reply === 'registerDone') this.#registrationActive = true;
    else this.#stateChangesActive++;
    job.startedAt = ctx.now();
    this.#advance(job, 0, ctx, true);
  }

  #finish(job: Job, ctx: ActorContext): void {
    if (job.reply === 'registerDone') this.#registrationActive = false;
    else {
      this.#stateChangesActive--;
      this.#profile.record('state-change-in-owner', job.size, ctx.now() - job.startedAt);
    }
    const ready = this.#deferred.splice(0);
    for (const next of ready) next.retry!();
  }

  /** Step a generator: send its next listener call, or its result. */
  #advance(job: Job, ret: number, ctx: ActorContext, first = false): void {
    this.#stepping = job;
    const step = first ? job.calls.next() : job.calls.next(ret);
    this.#stepping = undefined;
    if (step.done) {
      ctx.send(job.replyTo, { type: job.reply, from: ctx.self, tag: job.replyTag, ret: step.value });
      this.#finish(job, ctx);
      return;
    }
    const call = step.value;
    const tag = this.#pending.add(job);
    if (!isListenerCall(call)) {
      // A bitmap access of the state change: made on the converting vCPU's thread.
      ctx.send(job.vcpu, { type: 'bitmapStep', from: ctx.self, tag, ...encodeBitmapStep(call) });
      return;
    }
    // Every listener call of a state change is followed by a step on along rdl_list: a use-after-free check.
    if (job.reply === 'stateChangeDone') this.#counters['checked:use-after-free']++;
    const listener = call.listener as RemoteListener;
    if (this.#pending.size > this.#counters.maxInFlight) this.#counters.maxInFlight = this.#pending.size;
    const { offsetWithinRegion: offset, size, offsetWithinAddressSpace: iova } = call.section;
    if (call.kind === 'populate') this.#counters.notifyPopulate++;
    else this.#counters.notifyDiscard++;
    const replay = job.reply === 'registerDone';
    ctx.send(listener.actor, { type: call.kind === 'populate' ? 'notifyPopulate' : 'notifyDiscard', from: ctx.self, tag, offset, size, iova, replay });
  }

  gauges(): Record<string, number> {
    return { 'shared pages': this.rba.bitmap.countSet() };
  }

  profile(): PhaseHistograms {
    return this.#profile.toJSON();
  }

  stats(): Record<string, number> {
    return { ...this.#counters, sharedBlocks: this.rba.bitmap.countSet(), 'checked:rollback': this.#rollback.checked };
  }

  violations(): Violation[] {
    return [...this.#found];
  }

  violationCount(): number {
    return this.#found.length;
  }
}
