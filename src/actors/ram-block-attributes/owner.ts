/**
 * The RamBlockAttributes owner: the only writer of the shared bitmap. It
 * runs `stateChange` and listener (un)registration as the core's
 * generators, turning each listener call into a message to the listener's
 * actor and resuming when the reply comes, as QEMU's synchronous calls do.
 *
 * Concurrency: several state changes may be in flight at once (one per
 * conversion the KVM exit handler lets through); each resumes only on its
 * own replies, and they interleave their bitmap writes exactly as unlocked
 * QEMU threads would.
 */
import { EventBus } from '../../core/events.js';
import { RollbackChecker, type Violation } from '../../core/invariants.js';
import type { MemoryRegionSection } from '../../core/memory-region-section.js';
import { RamBlockAttributes, type ListenerCalls } from '../../core/ram-block-attributes.js';
import type { RamDiscardListener } from '../../core/ram-discard-manager.js';
import { GUEST_MR } from '../../core/confidential-vm.js';
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
}

/**
 * Whether listener (un)registration may interleave with state changes.
 * QEMU registers listeners under the BQL while conversions run on vCPU
 * threads without it; a replay reading the bitmap while a conversion flips
 * bits can map twice or miss a map (spec section 9). `serialized` keeps a
 * registration and state changes apart (the ordering that prevents it);
 * `racy` lets them interleave.
 */
export type RegistrationOrder = 'serialized' | 'racy';

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
  readonly #counters = { stateChanges: 0, notifyPopulate: 0, notifyDiscard: 0, registrations: 0, maxInFlight: 0, deferred: 0 };
  readonly #serialize: boolean;
  /** State changes in flight, and whether a registration is. */
  #stateChangesActive = 0;
  #registrationActive = false;
  /** Jobs waiting for a conflicting kind to finish (serialized order only), FIFO. */
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
      bus: this.#bus,
      notifyBeforeBitmap: config.variant?.notifyBeforeBitmap ?? false,
      invertPriorityWalk: config.variant?.invertPriorityWalk ?? false,
    });
    this.#serialize = config.registrationOrder === 'serialized';
    // Rollback exactness: each state change's events are told apart by the job being stepped
    // when they are emitted. When nothing can interleave with a state change (one conversion
    // in flight, serialized registration), the bitmap is checked too.
    const alone = config.inFlight === 1 && this.#serialize;
    this.#rollback = new RollbackChecker(this.#bus, config.rollback, views.bitmap, config.blockSize, this.#found,
      alone ? undefined : { current: () => this.#stepping });
    this.#names = new Map<number, string>([[topology.kvm, 'kvm']]);
    topology.containers.forEach((actor, i) => this.#names.set(actor, `c${i}`));
  }

  receive(message: Message, ctx: ActorContext): void {
    switch (message.type) {
      case 'stateChange':
        this.#counters.stateChanges++;
        this.#start({ calls: this.rba.stateChangeCalls(message.offset, message.size, message.toDiscard), size: message.size, startedAt: 0, replyTo: message.from, replyTag: message.tag, reply: 'stateChangeDone' }, ctx);
        return;
      case 'register': {
        const key = `${message.from}@${message.iova}`;
        const listener = new RemoteListener(this.#names.get(message.from) ?? `actor${message.from}`, message.from, message.priority);
        this.#listeners.set(key, listener);
        this.#counters.registrations++;
        const section: MemoryRegionSection = { mr: GUEST_MR, offsetWithinRegion: message.offset, size: message.size, offsetWithinAddressSpace: message.iova, readonly: false };
        this.#start({ calls: this.rba.registerListenerCalls(listener, section), size: message.size, startedAt: 0, replyTo: message.from, replyTag: message.tag, reply: 'registerDone' }, ctx);
        return;
      }
      case 'unregister': {
        const key = `${message.from}@${message.iova}`;
        const listener = this.#listeners.get(key);
        if (listener === undefined) throw new Error(`unregister of unknown listener ${key}`);
        this.#listeners.delete(key);
        this.#start({ calls: this.rba.unregisterListenerCalls(listener), size: 0, startedAt: 0, replyTo: message.from, replyTag: message.tag, reply: 'registerDone' }, ctx);
        return;
      }
      case 'notifyDone':
        this.#advance(this.#pending.take(message.tag), message.ret, ctx);
        return;
      default:
        throw new Error(`RamBlockAttributes owner cannot handle ${message.type}`);
    }
  }

  #start(job: Job, ctx: ActorContext): void {
    const registration = job.reply === 'registerDone';
    // Registrations never overlap one another (QEMU does region_add/region_del under the BQL on
    // the main thread); `serialized` also keeps them apart from state changes, `racy` does not.
    const conflict = registration
      ? this.#registrationActive || (this.#serialize && this.#stateChangesActive > 0)
      : this.#serialize && this.#registrationActive;
    // FIFO: nothing overtakes a deferred job of its kind, so a registration is not starved.
    const queued = this.#deferred.some((d) => this.#serialize || d.reply === job.reply);
    if (conflict || queued) {
      this.#counters.deferred++;
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
    for (const next of ready) this.#start(next, ctx);
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
    const listener = call.listener as RemoteListener;
    const tag = this.#pending.add(job);
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
