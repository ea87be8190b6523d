/**
 * What an actor's logic may touch: a small context. Logic never sees a
 * transport, a thread, a timer or Math.random, so the same code runs on
 * real worker threads and under a deterministic in-process scheduler.
 */
import type { Violation } from '../core/invariants.js';
import type { PhaseHistograms } from './phase-profile.js';
import type { Message } from './protocol.js';

export type ActorRole = 'vcpu' | 'kvm-exit' | 'ram-block-attributes' | 'vfio-container';

export interface ActorContext {
  /** This actor's index in the topology. */
  readonly self: number;
  /** Enqueue a message for another actor. Never drops; may wait while its inbox is full. */
  send(to: number, message: Message): void;
  /** Monotonic time in nanoseconds (injected: real or simulated). */
  now(): number;
  /** Seeded uniform random number in [0, 1). */
  random(): number;
  /** A line for the run's trace/log. */
  trace(text: string): void;
  /**
   * `fn`, to be called later on behalf of the QEMU thread this delivery
   * runs for: work an actor defers (a conversion waiting for admission, a
   * state change waiting for the lock) resumes on the thread that asked
   * for it, as a vCPU blocked on the BQL resumes on its own thread, not on
   * the thread that released the lock. Messages sent inside `fn` belong to
   * that thread. The deterministic runtime counts a systematic search's
   * preemptions by these threads; on worker threads it is `fn` itself.
   */
  bind<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
}

/** One actor's behaviour: handles one message at a time. */
export interface ActorLogic {
  readonly role: ActorRole;
  receive(message: Message, ctx: ActorContext): void;
  /** Counters for the run summary (plain JSON). */
  stats(): Record<string, number>;
  /** Violations this actor found by checking the state it can see. */
  violations(): Violation[];
  /** How many, without copying (the deterministic runtime asks after every delivery). */
  violationCount(): number;
  /** Cheap current values for counter tracks (shared pages, live mappings). */
  gauges?(): Record<string, number>;
  /** Per-phase latency histograms, when the actor records any. */
  profile?(): PhaseHistograms;
  /**
   * Work the actor does on its own, between messages (a device's DMA): one
   * small step per call. The deterministic runtime offers it as a
   * scheduling point of its own; a worker thread runs it between messages.
   */
  background?(ctx: ActorContext): Message;
  /** vCPUs: the workload has ended (finished, or the VM stopped). */
  readonly done?: boolean;
}

/** Where each actor lives: indices into the mailbox table. */
export interface Topology {
  readonly kvm: number;
  readonly rba: number;
  readonly containers: readonly number[];
  readonly vcpus: readonly number[];
}

export function makeTopology(containers: number, vcpus: number): Topology {
  return {
    kvm: 0,
    rba: 1,
    containers: Array.from({ length: containers }, (_, i) => 2 + i),
    vcpus: Array.from({ length: vcpus }, (_, i) => 2 + containers + i),
  };
}

/** Requests waiting for replies, by tag. */
export class PendingReplies<T> {
  #next = 1;
  readonly #waiting = new Map<number, T>();

  add(value: T): number {
    const tag = this.#next++;
    this.#waiting.set(tag, value);
    return tag;
  }

  take(tag: number): T {
    const value = this.#waiting.get(tag);
    if (value === undefined) throw new Error(`reply with unknown tag ${tag}`);
    this.#waiting.delete(tag);
    return value;
  }

  get size(): number {
    return this.#waiting.size;
  }
}
