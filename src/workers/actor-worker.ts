/**
 * Hosts one actor on a worker thread: a thin shell. The data path is the
 * actor's SharedArrayBuffer inbox (decode, call the logic, encode replies
 * into other inboxes); the control plane (configure, start, stats,
 * snapshot, stop) is comlink over the worker's MessagePort.
 */
import type { RegisterFailure } from '../core/qemu-outcome.js';
import { parentPort, threadId } from 'node:worker_threads';
import { expose } from 'comlink';
import type { ActorContext, ActorLogic, ActorRole } from '../actors/actor.js';
import { decodeMessage, encodeMessage, messageCode } from '../actors/codec.js';
import { actorName, createActor, topologyNames } from '../actors/create-actor.js';
import { messageArgs, violationArgs } from '../actors/message-args.js';
import type { Message } from '../actors/protocol.js';
import type { ActorSetup } from '../actors/run-config.js';
import type { KvmExitHandler } from '../actors/kvm-exit/kvm-exit-handler.js';
import type { ConversionBatch } from '../actors/kvm-exit/conversion-log.js';
import type { VfioContainerActor } from '../actors/vfio-container/container-actor.js';
import type { Violation } from '../core/invariants.js';
import type { PhaseHistograms } from '../actors/phase-profile.js';
import { Prng } from '../core/prng.js';
import { MailboxConsumer, MailboxProducer } from '../transport/mailbox.js';
import { StatusWriter } from '../runtime/actor-status.js';
import { nodeEndpoint } from './comlink-endpoint.js';
import { nowUs, TraceRecorder, type TraceCoverage, type TraceEvent, type TraceWindow } from './trace-recorder.js';

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
  /** Record a Chrome trace of at most this many events in this worker. */
  readonly traceLimit?: number;
  /** Record only the events inside this window (absolute `nowUs` microseconds). */
  readonly traceWindow?: TraceWindow;
}

export interface ActorSnapshot {
  readonly name: string;
  readonly role: ActorRole;
  readonly threadId: number;
  readonly stats: Record<string, number>;
  readonly violations: Violation[];
  readonly trace: string[];
  readonly profile: PhaseHistograms;
  readonly traceEvents: TraceEvent[];
  readonly traceDropped: number;
  /** With a trace: what was kept of it (for the note on the trace). */
  readonly traceCoverage?: TraceCoverage;
}

/** Cheap live values of one actor, for progress and the report's sampler. */
export interface ActorGauges {
  /** The actor's counter-track values (shared pages, live mappings per container). */
  readonly gauges: Record<string, number>;
  /** Violations found so far (not de-duplicated). */
  readonly violations: number;
  /** KVM exit handler: conversions finished; 0 elsewhere. */
  readonly conversions: number;
  /** Milliseconds spent handling messages so far (the rest of the time the actor waited or spun on an empty inbox). */
  readonly busyMs: number;
}

/** Slot word carrying the transport's flow id (the codec uses at most words 0..6). */
const FLOW_WORD = 7;
/** Minimum microseconds between two samples of a counter track. */
const COUNTER_INTERVAL_US = 1000;

/** How an idle actor sleeps: `block` (Atomics.wait with a timeout) or `async` (Atomics.waitAsync). */
const IDLE_WAIT: 'block' | 'async' = process.env['CONVSIM_IDLE_WAIT'] === 'async' ? 'async' : 'block';
/** Longest blocking sleep: the most a comlink call waits for an idle worker. */
const BLOCKING_WAIT_MS = 5;

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
  #recorder: TraceRecorder | undefined;
  #lastCounterUs = 0;
  #delivering = false;
  /** Actor names by index, for trace arguments. */
  #names: string[] = [];
  /** Time spent in `receive` (ms), for the report's busy/idle timeline. */
  #busyMs = 0;
  /** Violations already written to the trace as instant events. */
  #violationsTraced = 0;

  configure(config: WorkerConfig): number {
    this.#config = config;
    this.#logic = createActor(config.role, config.setup);
    this.#inbox = new MailboxConsumer(config.mailboxes[config.actor]!, { spinPolls: 64 });
    this.#outboxes = config.mailboxes.map((sab) => new MailboxProducer(sab));
    this.#status = new StatusWriter(config.status, config.actor);
    const prng = new Prng(config.setup.config.seed * 1000 + config.actor);
    const outboxes = this.#outboxes;
    const delivering = (): boolean => this.#delivering;
    const status = this.#status;
    const trace = this.#trace;
    const recorder = config.traceLimit === undefined ? undefined : new TraceRecorder(threadId, config.traceLimit, config.traceWindow);
    this.#recorder = recorder;
    const names = topologyNames(config.setup.topology);
    this.#names = names;
    // Flow ids unique across threads: actor index in the high part, a sequence below.
    let flowSeq = 0;
    const flowBase = config.actor * 2 ** 32;
    this.#ctx = {
      self: config.actor,
      send(to: number, message: Message): void {
        const flowId = recorder === undefined ? 0 : flowBase + ++flowSeq;
        const started = recorder === undefined ? 0 : nowUs();
        if (recorder !== undefined) recorder.flowStart(flowId, started, message.type);
        // A full inbox makes this wait (Atomics.wait in sendWith): never dropped.
        outboxes[to]!.sendWith((slot, offset) => {
          encodeMessage(message, slot, offset);
          slot[offset + FLOW_WORD] = flowId;
        });
        status.sent();
        // A send outside a handled message (a comlink call from the host, or a conversion the
        // KVM exit handler's p-queue admits in a later microtask) gets its own slice, so the flow
        // arrow has a slice to start from.
        if (recorder !== undefined && !delivering()) recorder.slice(`send ${message.type}`, started, nowUs() - started, 0, { to: names[to] ?? to });
      },
      now: () => Number(process.hrtime.bigint()),
      random: () => prng.next(),
      trace(text: string): void {
        trace.push(text);
        if (trace.length > 100) trace.shift();
      },
      // Each actor is one worker thread: which QEMU thread deferred work stands for is the deterministic runtime's concern.
      bind: (fn) => fn,
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

  /** Containers: register a VFIO listener for a section; 0 or the error, and which step failed. */
  async attach(section: { offset: number; size: number; iova: number }): Promise<{ ret: number; failure: RegisterFailure }> {
    const logic = this.#logic as VfioContainerActor;
    const ret = await logic.attach(section, this.#ctx!);
    return { ret, failure: logic.lastAttachFailure };
  }

  /** Containers: unregister the newest listener. */
  detach(): Promise<number> {
    return (this.#logic as VfioContainerActor).detach(this.#ctx!);
  }

  /** KVM exit handler: drain conversions and check every container. */
  quiescentCheck(): Promise<number> {
    return new Promise((resolve) => (this.#logic as KvmExitHandler).quiescentCheck(this.#ctx!, resolve));
  }

  /**
   * Live values (cheaper than `snapshot`): violations so far, conversions, and with
   * `counters` the counter-track values (the owner's count of shared pages scans the whole bitmap).
   */
  gauges(counters: boolean): ActorGauges {
    const logic = this.#logic!;
    return {
      gauges: counters ? logic.gauges?.() ?? {} : {},
      violations: logic.violationCount(),
      conversions: logic.role === 'kvm-exit' ? logic.stats()['conversions'] ?? 0 : 0,
      busyMs: this.#busyMs,
    };
  }

  /** KVM exit handler: conversions finished after sequence number `after` (a bounded log). */
  recentConversions(after: number): ConversionBatch {
    return (this.#logic as KvmExitHandler).recentConversions(after);
  }

  snapshot(): ActorSnapshot {
    const config = this.#config!;
    this.#traceViolations();
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
      traceEvents: this.#recorder?.events ?? [],
      traceDropped: this.#recorder?.dropped ?? 0,
      ...(this.#recorder === undefined ? {} : { traceCoverage: this.#recorder.coverage() }),
    };
  }

  stop(): void {
    this.#running = false;
  }

  #deliver(message: Message, flowId = 0): void {
    const status = this.#status!;
    status.begin(messageCode(message.type));
    const recorder = this.#recorder;
    const started = recorder === undefined ? 0 : nowUs();
    const busyFrom = performance.now();
    this.#delivering = true;
    try {
      if (!this.#maybeCrash()) this.#logic!.receive(message, this.#ctx!);
    } finally {
      this.#delivering = false;
      this.#busyMs += performance.now() - busyFrom;
    }
    this.#handled++;
    if (recorder !== undefined) {
      const ended = nowUs();
      recorder.slice(message.type, started, ended - started, flowId, messageArgs(message, (a) => this.#names[a] ?? `actor${a}`));
      this.#traceViolations(ended);
      if (ended - this.#lastCounterUs >= COUNTER_INTERVAL_US) {
        this.#lastCounterUs = ended;
        const gauges = this.#logic!.gauges?.();
        if (gauges !== undefined) for (const [name, value] of Object.entries(gauges)) recorder.counter(name, ended, { value });
      }
    }
    status.end();
    if (this.#logic!.done === true && this.#doneWaiters.length > 0) {
      for (const resolve of this.#doneWaiters.splice(0)) resolve();
    }
  }

  /**
   * Violations found since the last call, as instant events on this actor's track at `ts`
   * (the end of the delivery that found them; now, when not given: a device access, or a snapshot).
   */
  #traceViolations(ts?: number): void {
    const recorder = this.#recorder;
    if (recorder === undefined) return;
    const logic = this.#logic!;
    const count = logic.violationCount();
    if (count === this.#violationsTraced) return;
    const at = ts ?? nowUs();
    for (const v of logic.violations().slice(this.#violationsTraced)) recorder.instant(`violation: ${v.invariant}`, at, violationArgs(v));
    this.#violationsTraced = count;
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
    const tracing = this.#recorder !== undefined;
    const read = (slot: Float64Array, offset: number): void => {
      this.#deliver(decodeMessage(slot, offset), tracing ? slot[offset + FLOW_WORD]! : 0);
    };
    let sinceYield = 0;
    const background = this.#logic!.background?.bind(this.#logic);
    while (this.#running) {
      // A device's DMA, between any two messages: on this thread, so it sees the container's
      // mapping table between two IOMMU operations, as a device sees the IOMMU's.
      if (background !== undefined) {
        background(this.#ctx!);
        if (tracing) this.#traceViolations();
      }
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
      this.#status!.slept();
      sinceYield = 0;
      if (IDLE_WAIT === 'async') {
        // Idle: sleep without blocking the event loop, so comlink calls get in.
        await inbox.waitAsync(20);
        continue;
      }
      // Idle: first a macrotask turn, which runs every pending promise continuation (a conversion
      // the p-queue is about to start) and lets comlink calls in; then sleep in Atomics.wait, whose
      // futex wake-up is far quicker than waitAsync's trip through the event loop. The timeout
      // bounds how long a comlink call can wait.
      await new Promise((resolve) => setImmediate(resolve));
      if (!inbox.tryReceiveWith(read)) inbox.receiveWith(read, BLOCKING_WAIT_MS);
      await undefined;
    }
  }
}

const host = new ActorHost();
expose(host, nodeEndpoint(parentPort!));

export type { ActorHost };
