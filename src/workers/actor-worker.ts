/**
 * Hosts one actor on a worker thread: a thin shell. The data path is the
 * actor's SharedArrayBuffer inbox (decode, call the logic, encode replies
 * into other inboxes); the control plane (configure, start, stats,
 * snapshot, stop) is comlink over the worker's MessagePort.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { expose } from 'comlink';
import type { ActorContext, ActorLogic, ActorRole } from '../actors/actor.js';
import { decodeMessage, encodeMessage, messageCode } from '../actors/codec.js';
import { actorName, createActor } from '../actors/create-actor.js';
import type { Message } from '../actors/protocol.js';
import type { ActorSetup } from '../actors/run-config.js';
import type { KvmExitHandler } from '../actors/kvm-exit/kvm-exit-handler.js';
import type { VfioContainerActor } from '../actors/vfio-container/container-actor.js';
import type { Violation } from '../core/invariants.js';
import type { PhaseHistograms } from '../actors/phase-profile.js';
import { Prng } from '../core/prng.js';
import { MailboxConsumer, MailboxProducer } from '../transport/mailbox.js';
import { StatusWriter } from '../runtime/actor-status.js';
import { nodeEndpoint } from './comlink-endpoint.js';

/** Test-only fault injection: make this actor fail after some messages. */
export interface CrashSpec {
  readonly after: number;
  /** throw an error, exit the thread, spin forever (stop answering), or silently drop every message (a lost reply). */
  readonly how: 'throw' | 'exit' | 'hang' | 'mute';
}

export interface WorkerConfig {
  readonly role: ActorRole;
  readonly actor: number;
  readonly setup: ActorSetup;
  /** Inbox of every actor, by actor index. */
  readonly mailboxes: readonly SharedArrayBuffer[];
  readonly status: SharedArrayBuffer;
  readonly crash?: CrashSpec;
}

export interface ActorSnapshot {
  readonly name: string;
  readonly role: ActorRole;
  readonly threadId: number;
  readonly stats: Record<string, number>;
  readonly violations: Violation[];
  readonly trace: string[];
  readonly profile: PhaseHistograms;
}

/** Messages handled between yields to the event loop (lets comlink calls in). */
const YIELD_EVERY = 256;
/** Polls of an empty inbox before sleeping. */
const SPIN_POLLS = 2000;

class ActorHost {
  #config: WorkerConfig | undefined;
  #logic: ActorLogic | undefined;
  #inbox: MailboxConsumer | undefined;
  #outboxes: MailboxProducer[] = [];
  #status: StatusWriter | undefined;
  #ctx: ActorContext | undefined;
  #running = false;
  #handled = 0;
  readonly #trace: string[] = [];
  #doneWaiters: Array<() => void> = [];

  configure(config: WorkerConfig): number {
    this.#config = config;
    this.#logic = createActor(config.role, config.setup);
    this.#inbox = new MailboxConsumer(config.mailboxes[config.actor]!, { spinPolls: 64 });
    this.#outboxes = config.mailboxes.map((sab) => new MailboxProducer(sab));
    this.#status = new StatusWriter(config.status, config.actor);
    const prng = new Prng(config.setup.config.seed * 1000 + config.actor);
    const outboxes = this.#outboxes;
    const trace = this.#trace;
    this.#ctx = {
      self: config.actor,
      send(to: number, message: Message): void {
        // A full inbox makes this wait (Atomics.wait in sendWith): never dropped.
        outboxes[to]!.sendWith((slot, offset) => encodeMessage(message, slot, offset));
      },
      now: () => Number(process.hrtime.bigint()),
      random: () => prng.next(),
      trace(text: string): void {
        trace.push(text);
        if (trace.length > 100) trace.shift();
      },
    };
    return threadId;
  }

  /** Start the message loop (returns at once; the loop runs until `stop`). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#loop();
  }

  /** Deliver a `start` message locally (vCPUs begin their workload, KVM registers its listener). */
  kick(): void {
    this.#deliver({ type: 'start', from: this.#config!.actor, tag: 0 });
  }

  /** Resolves when a vCPU's workload has ended. */
  whenDone(): Promise<void> {
    if (this.#logic?.done === true) return Promise.resolve();
    return new Promise((resolve) => this.#doneWaiters.push(resolve));
  }

  /** Containers: register a VFIO listener for a section. */
  attach(section: { offset: number; size: number; iova: number }): Promise<number> {
    return (this.#logic as VfioContainerActor).attach(section, this.#ctx!);
  }

  /** Containers: unregister the newest listener. */
  detach(): Promise<number> {
    return (this.#logic as VfioContainerActor).detach(this.#ctx!);
  }

  /** KVM exit handler: drain conversions and check every container. */
  quiescentCheck(): Promise<number> {
    return new Promise((resolve) => (this.#logic as KvmExitHandler).quiescentCheck(this.#ctx!, resolve));
  }

  snapshot(): ActorSnapshot {
    const config = this.#config!;
    const index = config.role === 'vcpu' ? config.setup.topology.vcpus.indexOf(config.actor)
      : config.role === 'vfio-container' ? config.setup.topology.containers.indexOf(config.actor) : 0;
    return {
      name: actorName(config.role, index),
      role: config.role,
      threadId,
      stats: { ...this.#logic!.stats(), messagesHandled: this.#handled },
      violations: this.#logic!.violations(),
      trace: [...this.#trace],
      profile: this.#logic!.profile?.() ?? {},
    };
  }

  stop(): void {
    this.#running = false;
  }

  #deliver(message: Message): void {
    const status = this.#status!;
    status.begin(messageCode(message.type));
    if (!this.#maybeCrash()) this.#logic!.receive(message, this.#ctx!);
    this.#handled++;
    status.end();
    if (this.#logic!.done === true && this.#doneWaiters.length > 0) {
      for (const resolve of this.#doneWaiters.splice(0)) resolve();
    }
  }

  /** Test-only fault injection. Returns true when the message is to be dropped. */
  #maybeCrash(): boolean {
    const crash = this.#config!.crash;
    if (crash === undefined || this.#handled < crash.after) return false;
    switch (crash.how) {
      case 'throw': throw new Error(`injected crash after ${crash.after} messages`);
      case 'exit': process.exit(7); break;
      case 'mute': return true;
      case 'hang': for (;;) { /* stop answering */ }
    }
    return false;
  }

  async #loop(): Promise<void> {
    const inbox = this.#inbox!;
    const read = (slot: Float64Array, offset: number): void => {
      this.#deliver(decodeMessage(slot, offset));
    };
    let sinceYield = 0;
    while (this.#running) {
      let got = false;
      for (let i = 0; i < SPIN_POLLS && !got; i++) got = inbox.tryReceiveWith(read);
      if (got) {
        // Let promise continuations (the KVM exit handler's conversions) run.
        await undefined;
        if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await new Promise((resolve) => setImmediate(resolve));
        }
        continue;
      }
      // Idle: sleep without blocking the event loop, so comlink calls get in.
      this.#status!.slept();
      sinceYield = 0;
      await inbox.waitAsync(20);
    }
  }
}

const host = new ActorHost();
expose(host, nodeEndpoint(parentPort!));

export type { ActorHost };
