/**
 * The KVM exit handler: runs `kvm_convert_memory` for every vCPU exit, owns
 * KVM's memory attributes and the backing pages (discards, guest_memfd
 * conversions), and stops the VM on a failed conversion.
 *
 * Conversions go through a p-queue whose concurrency is the number of
 * conversions in flight: 1 serialises them (as if QEMU held a lock); more
 * lets conversions from different vCPUs interleave, as QEMU's unlocked
 * vCPU threads do today. Every so many conversions the queue is paused and
 * drained for a quiescent check of every container.
 */
import PQueue from 'p-queue';
import { retName } from '../../core/errno.js';
import { EventBus } from '../../core/events.js';
import { checkKvmAgreement, checkUnmappedBeforeConvertPrivate, type Violation } from '../../core/invariants.js';
import { KvmConversionListener } from '../../core/kvm-conversion-listener.js';
import { kvmConvertMemory, type ConversionContext } from '../../core/kvm-convert-memory.js';
import { formatSize } from '../../core/units.js';
import { PendingReplies, type ActorContext, type ActorLogic, type Topology } from '../actor.js';
import { EXIT_MAP_GPA, type Message, type MessageOf } from '../protocol.js';
import type { ActorSetup, RunConfig } from '../run-config.js';
import { sharedViews, type SharedViews } from '../shared-views.js';

/** `ret` an exit gets once the VM has stopped: the vCPU is paused, not failed. */
export const EXIT_VM_STOPPED = 1;

export class KvmExitHandler implements ActorLogic {
  readonly role = 'kvm-exit' as const;
  readonly #config: RunConfig;
  readonly #topology: Topology;
  readonly #views: SharedViews;
  readonly #conversion: ConversionContext;
  readonly #queue: PQueue;
  readonly #bus = new EventBus();
  readonly #kvmListener: KvmConversionListener | undefined;
  readonly #pending = new PendingReplies<(ret: number) => void>();
  readonly #found: Violation[] = [];
  #ctx: ActorContext | undefined;
  #stopReason: string | undefined;
  #sinceCheck = 0;
  readonly #counters = {
    conversions: 0, toPrivate: 0, toShared: 0, mapGpaExits: 0, memoryFaultExits: 0,
    failedConversions: 0, quiescentChecks: 0, maxInFlight: 0, bytesConverted: 0,
  };

  constructor(setup: ActorSetup) {
    this.#config = setup.config;
    this.#topology = setup.topology;
    this.#views = sharedViews(setup);
    const { config } = setup;
    const priority = config.mode === 'inplace' && config.order === 'priority';
    this.#kvmListener = priority ? new KvmConversionListener(this.#views.kvm, this.#views.memory, this.#bus) : undefined;
    this.#conversion = {
      gpaBase: config.gpaBase,
      regionSize: config.guestMem,
      pageSize: config.blockSize,
      mode: config.mode,
      inplaceOrder: config.order,
      kvm: this.#views.kvm,
      memory: this.#views.memory,
      kvmListener: this.#kvmListener,
      bus: this.#bus,
    };
    this.#queue = new PQueue({ concurrency: config.inFlight });
    // In-place order (6), to private: checked at every CONVERT_PRIVATE, from the shared pin counts.
    this.#bus.subscribe((event) => {
      if (event.kind === 'gmemConvertPrivate') checkUnmappedBeforeConvertPrivate(this.#views, event.offset, event.size, this.#found);
    });
  }

  /** The reason the VM stopped, if it did. */
  get stopReason(): string | undefined {
    return this.#stopReason;
  }

  receive(message: Message, ctx: ActorContext): void {
    this.#ctx = ctx;
    switch (message.type) {
      case 'start':
        // Priority order: the KVM/guest_memfd change is the priority-0 listener.
        if (this.#kvmListener !== undefined) {
          this.#request(ctx, (tag) => ({ type: 'register', from: ctx.self, tag, offset: 0, size: this.#config.guestMem, iova: this.#config.gpaBase, priority: 0 }));
        }
        return;
      case 'exit':
        void this.#queue.add(() => this.#handleExit(message, ctx));
        return;
      case 'stateChangeDone':
      case 'registerDone':
      case 'checkDone':
        this.#pending.take(message.tag)(message.type === 'checkDone' ? message.violations : message.ret);
        return;
      case 'notifyPopulate':
      case 'notifyDiscard': {
        // Only in priority order: the RamBlockAttributes owner notifies the KVM listener.
        const listener = this.#kvmListener;
        if (listener === undefined) throw new Error(`KVM exit handler got ${message.type} without priority order`);
        const section = { mr: 'ram0', offsetWithinRegion: message.offset, size: message.size, offsetWithinAddressSpace: message.iova, readonly: false };
        let ret = 0;
        if (message.type === 'notifyPopulate') ret = listener.notifyPopulate(section);
        else listener.notifyDiscard(section);
        ctx.send(message.from, { type: 'notifyDone', from: ctx.self, tag: message.tag, ret });
        return;
      }
      default:
        throw new Error(`KVM exit handler cannot handle ${message.type}`);
    }
  }

  /** Send a request to the RamBlockAttributes owner; resolves with the reply's `ret`. */
  #request(ctx: ActorContext, make: (tag: number) => Message): Promise<number> {
    return new Promise<number>((resolve) => {
      ctx.send(this.#topology.rba, make(this.#pending.add(resolve)));
    });
  }

  async #handleExit(exit: MessageOf<'exit'>, ctx: ActorContext): Promise<void> {
    if (this.#stopReason !== undefined) {
      ctx.send(exit.from, { type: 'exitDone', from: ctx.self, tag: exit.tag, ret: EXIT_VM_STOPPED });
      return;
    }
    const inFlight = this.#queue.pending;
    if (inFlight > this.#counters.maxInFlight) this.#counters.maxInFlight = inFlight;
    if (exit.reason === EXIT_MAP_GPA) this.#counters.mapGpaExits++;
    else this.#counters.memoryFaultExits++;

    const steps = kvmConvertMemory(this.#conversion, exit.gpa, exit.size, exit.toPrivate);
    let step = steps.next();
    while (!step.done) {
      const { offset, size, toDiscard } = step.value;
      const ret = await this.#request(ctx, (tag) => ({ type: 'stateChange', from: ctx.self, tag, offset, size, toDiscard }));
      step = steps.next(ret);
    }
    const ret = step.value;
    this.#counters.conversions++;
    this.#counters.bytesConverted += exit.size;
    if (exit.toPrivate) this.#counters.toPrivate++;
    else this.#counters.toShared++;
    if (ret !== 0) {
      this.#counters.failedConversions++;
      // vm_stop(RUN_STATE_INTERNAL_ERROR): every vCPU pauses at its next exit.
      this.#stopReason ??= `kvm_convert_memory(0x${exit.gpa.toString(16)}, ${formatSize(exit.size)}, to ${exit.toPrivate ? 'private' : 'shared'}) failed: ${retName(ret)}`;
      ctx.trace(`vm stop: ${this.#stopReason}`);
    }
    ctx.send(exit.from, { type: 'exitDone', from: ctx.self, tag: exit.tag, ret });
    if (++this.#sinceCheck >= this.#config.checkEvery) {
      this.#sinceCheck = 0;
      void this.quiescentCheck();
    }
  }

  /**
   * Stop admitting conversions, wait until none is in flight, then have
   * every container check its mappings against the (now still) bitmap and
   * KVM attributes, and check KVM attributes against the bitmap here.
   */
  async quiescentCheck(): Promise<number> {
    const ctx = this.#ctx;
    if (ctx === undefined) return 0;
    this.#queue.pause();
    await this.#queue.onPendingZero();
    this.#counters.quiescentChecks++;
    let found = 0;
    if (this.#stopReason === undefined) {
      const before = this.#found.length;
      checkKvmAgreement(this.#views.kvmShared, this.#views.bitmap, this.#found);
      found += this.#found.length - before;
    }
    const replies = this.#topology.containers.map((actor) =>
      new Promise<number>((resolve) => {
        const tag = this.#pending.add(resolve);
        ctx.send(actor, { type: 'check', from: ctx.self, tag });
      }));
    for (const n of await Promise.all(replies)) found += n;
    this.#queue.start();
    return found;
  }

  stats(): Record<string, number> {
    return { ...this.#counters, vmStopped: this.#stopReason === undefined ? 0 : 1 };
  }

  violations(): Violation[] {
    return [...this.#found];
  }
}
