/**
 * The KVM exit handler: runs `kvm_convert_memory` for every vCPU exit, owns
 * KVM's memory attributes and the backing pages (discards, guest_memfd
 * conversions), and stops the VM on a failed conversion.
 *
 * Conversions are admitted by a p-queue whose concurrency is the number of
 * conversions in flight: 1 serialises them (as if QEMU held a lock); more
 * lets conversions from different vCPUs interleave, as QEMU's unlocked
 * vCPU threads do today. Every so many conversions admission is paused and
 * drained for a quiescent check of every container.
 *
 * A conversion is the core's `kvmConvertMemory` generator, advanced by
 * callbacks on replies (not promises), so the same code runs under the
 * deterministic scheduler with a synchronous admission.
 */
import { qemuDiscard, SELFTEST_HOST_DISCARD } from '../../core/conversion-discard.js';
import { NO_CONVERSION_FAULTS, type ConversionFaults } from '../../core/conversion-faults.js';
import { FaultPlan } from '../../core/fault-plan.js';
import { retName } from '../../core/errno.js';
import { sharedBackingPageSize } from '../../core/shared-backing.js';
import { EventBus } from '../../core/events.js';
import { checkFreedPageUnmapped, checkKvmAgreement, checkUnmappedBeforeConvertPrivate, type Violation } from '../../core/invariants.js';
import { KvmConversionListener } from '../../core/kvm-conversion-listener.js';
import { kvmConvertMemory, type ConversionContext } from '../../core/kvm-convert-memory.js';
import { formatSize } from '../../core/units.js';
import { conversionsAtOnce } from '../../core/protocol-policy.js';
import { GUEST_MR } from '../../core/confidential-vm.js';
import { PendingReplies, type ActorContext, type ActorLogic, type Topology } from '../actor.js';
import { EXIT_MAP_GPA_FALLOCATE, EXIT_MEMORY_FAULT, EXIT_PUNCH_HOLE, type Message, type MessageOf } from '../protocol.js';
import { PhaseProfile, sizeClass, type PhaseHistograms } from '../phase-profile.js';
import { PQueueAdmission, type ConversionAdmission } from './conversion-admission.js';
import { ConversionLog, type ConversionBatch } from './conversion-log.js';
import type { ActorSetup, RunConfig } from '../run-config.js';
import { sharedViews, type SharedViews } from '../shared-views.js';

/** `ret` an exit gets once the VM has stopped: the vCPU is paused, not failed. */
export const EXIT_VM_STOPPED = 1;

export class KvmExitHandler implements ActorLogic {
  readonly role = 'kvm-exit' as const;
  readonly #config: RunConfig;
  /** Seeded fault injection of the conversion path (`--faults`): attribute-set and discard failures. */
  readonly #faultPlan: FaultPlan;
  readonly #topology: Topology;
  readonly #views: SharedViews;
  readonly #conversion: ConversionContext;
  readonly #admission: ConversionAdmission;
  readonly #bus = new EventBus();
  readonly #kvmListener: KvmConversionListener | undefined;
  readonly #pending = new PendingReplies<(ret: number) => void>();
  #checking = false;
  readonly #profile: PhaseProfile;
  readonly #log = new ConversionLog();
  readonly #found: Violation[] = [];
  #stopReason: string | undefined;
  #sinceCheck = 0;
  readonly #counters = {
    conversions: 0, toPrivate: 0, toShared: 0, mapGpaExits: 0, memoryFaultExits: 0, punchHoles: 0,
    failedConversions: 0, quiescentChecks: 0, maxInFlight: 0, bytesConverted: 0,
    conversions4K: 0, conversions2M: 0, conversionsOther: 0,
    'checked:inplace-order': 0, 'checked:stale-mapping': 0, 'checked:disagreement': 0, 'checked:conversion-failed': 0,
  };

  /**
   * @param faults failures of KVM's attribute ioctl and of discards inside
   *   `kvm_convert_memory` (default: none); must be seeded for determinism.
   */
  constructor(setup: ActorSetup, admission?: ConversionAdmission, faults?: ConversionFaults) {
    this.#profile = new PhaseProfile(setup.config.profile !== false);
    this.#faultPlan = new FaultPlan(setup.config.faults, setup.config.seed, 0);
    this.#config = setup.config;
    this.#topology = setup.topology;
    this.#views = sharedViews(setup);
    const { config } = setup;
    const priority = config.mode === 'inplace' && config.order === 'priority';
    this.#kvmListener = priority ? new KvmConversionListener(this.#views.kvm, this.#views.memory, this.#bus) : undefined;
    this.#conversion = {
      regionSize: config.guestMem,
      pageSize: config.blockSize,
      // The selftest's own host frees pages by its rule; otherwise QEMU's (hugetlb shared pages stay).
      discard: config.selftestExpect === 'kvm'
        ? SELFTEST_HOST_DISCARD
        : qemuDiscard(sharedBackingPageSize(config.sharedBacking ?? 'anonymous'), config.blockSize),
      // `--faults`: the seeded plan's attribute and discard failures (stream 0; containers use 1..n).
      faults: faults ?? (setup.config.faults === undefined ? NO_CONVERSION_FAULTS : this.#faultPlan.conversionFaults()),
      mode: config.mode,
      inplaceOrder: config.order,
      kvm: this.#views.kvm,
      memory: this.#views.memory,
      kvmListener: this.#kvmListener,
      bus: this.#bus,
    };
    // The conversion lock: under the BQL one kvm_convert_memory at a time; else every vCPU thread at once.
    this.#admission = admission ?? new PQueueAdmission(conversionsAtOnce(config.protocol, config.inFlight));
    // In-place order (6), to private: checked at every CONVERT_PRIVATE, from the shared pin counts.
    // No stale mapping (1), when a shared page is freed: no container may still map (pin) it.
    this.#bus.subscribe((event) => {
      if (event.kind === 'gmemConvertPrivate') {
        this.#counters['checked:inplace-order']++;
        checkUnmappedBeforeConvertPrivate(this.#views, event.offset, event.size, this.#found);
      } else if (event.kind === 'discardShared') {
        this.#counters['checked:stale-mapping']++;
        checkFreedPageUnmapped(this.#views, event.offset, event.size, this.#found);
      }
    });
  }

  /** The reason the VM stopped, if it did. */
  get stopReason(): string | undefined {
    return this.#stopReason;
  }

  receive(message: Message, ctx: ActorContext): void {
    switch (message.type) {
      case 'start':
        // Priority order: the KVM/guest_memfd change is the priority-0 listener.
        if (this.#kvmListener !== undefined) {
          const tag = this.#pending.add(() => undefined);
          ctx.send(this.#topology.rba, { type: 'register', from: ctx.self, tag, offset: 0, size: this.#config.guestMem, iova: this.#config.gpaBase, priority: 0 });
        }
        return;
      case 'exit': {
        const received = ctx.now();
        // A conversion admitted later (when another ends) runs on its own vCPU's thread.
        this.#admission.admit(ctx.bind((done: () => void) => {
          this.#profile.record('queue', message.size, ctx.now() - received);
          this.#convert(message, ctx, done);
        }));
        return;
      }
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
        const section = { mr: GUEST_MR, offsetWithinRegion: message.offset, size: message.size, offsetWithinAddressSpace: message.iova, readonly: false };
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

  /** One `kvm_convert_memory`: advance the generator on each stateChange reply. */
  #convert(exit: MessageOf<'exit'>, ctx: ActorContext, done: () => void): void {
    if (this.#stopReason !== undefined) {
      ctx.send(exit.from, { type: 'exitDone', from: ctx.self, tag: exit.tag, ret: EXIT_VM_STOPPED });
      done();
      return;
    }
    const inFlight = this.#admission.inFlight;
    if (inFlight > this.#counters.maxInFlight) this.#counters.maxInFlight = inFlight;
    if (exit.reason === EXIT_PUNCH_HOLE) {
      // The selftest host's fallocate(PUNCH_HOLE) without a conversion: no attributes, no bitmap.
      this.#counters.punchHoles++;
      for (const [offset, size] of this.#views.kvm.physMap.offsetPieces(exit.gpa, exit.size)) this.#views.memory.punchHole(offset, size);
      ctx.send(exit.from, { type: 'exitDone', from: ctx.self, tag: exit.tag, ret: 0 });
      done();
      return;
    }
    if (exit.reason === EXIT_MEMORY_FAULT) this.#counters.memoryFaultExits++;
    else this.#counters.mapGpaExits++;
    const steps = kvmConvertMemory(this.#conversion, exit.gpa, exit.size, exit.toPrivate, exit.reason === EXIT_MAP_GPA_FALLOCATE);
    let sent = 0;
    const advance = (ret: number | undefined): void => {
      const started = ctx.now();
      if (ret !== undefined) this.#profile.record('state-change', exit.size, started - sent);
      const step = ret === undefined ? steps.next() : steps.next(ret);
      // Local work between state changes: KVM attributes before it, the discard (or guest_memfd conversion) after.
      this.#profile.record(ret === undefined ? 'kvm-attributes' : 'discard-or-convert', exit.size, ctx.now() - started);
      if (!step.done) {
        const { offset, size, toDiscard } = step.value;
        const tag = this.#pending.add(advance);
        sent = ctx.now();
        ctx.send(this.#topology.rba, { type: 'stateChange', from: ctx.self, tag, offset, size, toDiscard, vcpu: exit.from });
        return;
      }
      this.#finish(exit, step.value, ctx);
      done();
    };
    advance(undefined);
  }

  #finish(exit: MessageOf<'exit'>, ret: number, ctx: ActorContext): void {
    this.#counters.conversions++;
    this.#counters.bytesConverted += exit.size;
    const cls = sizeClass(exit.size);
    if (cls === '4K') this.#counters.conversions4K++;
    else if (cls === '2M') this.#counters.conversions2M++;
    else this.#counters.conversionsOther++;
    if (exit.toPrivate) this.#counters.toPrivate++;
    else this.#counters.toShared++;
    // The report draws the RAMBlock as one address range from gpaBase: log where in it the
    // conversion fell (above the x86 split its GPA and its offset differ).
    const found = this.#views.kvm.physMap.find(exit.gpa, exit.size);
    this.#log.record(ctx.now(), found === undefined ? exit.gpa : this.#config.gpaBase + found.offset, exit.size, exit.toPrivate, ret === 0);
    this.#checkResult(exit, ret);
    if (ret !== 0) {
      this.#counters.failedConversions++;
      // vm_stop(RUN_STATE_INTERNAL_ERROR): every vCPU pauses at its next exit.
      this.#stopReason ??= `kvm_convert_memory(0x${exit.gpa.toString(16)}, ${formatSize(exit.size)}, to ${exit.toPrivate ? 'private' : 'shared'}) failed: ${retName(ret)}`;
      ctx.trace(`vm stop: ${this.#stopReason}`);
    }
    ctx.send(exit.from, { type: 'exitDone', from: ctx.self, tag: exit.tag, ret });
    if (++this.#sinceCheck >= this.#config.checkEvery) {
      this.#sinceCheck = 0;
      this.quiescentCheck(ctx, () => undefined);
    }
  }

  /**
   * A valid request (page aligned, all of it RAM) must not fail unless a
   * fault was injected: without one, every kernel call it makes succeeds
   * in a correct protocol, and a failure stops the VM for nothing.
   */
  #checkResult(exit: MessageOf<'exit'>, ret: number): void {
    const config = this.#config;
    if (config.faults !== undefined || config.variant?.failMaps !== undefined) return;
    const page = config.blockSize;
    if (exit.gpa % page !== 0 || exit.size % page !== 0 || exit.size === 0) return;
    const inRam = this.#views.kvm.physMap.offsetPieces(exit.gpa, exit.size).reduce((n, [, size]) => n + size, 0);
    if (inRam !== exit.size) return;
    this.#counters['checked:conversion-failed']++;
    if (ret === 0) return;
    this.#found.push({
      invariant: 'conversion-failed',
      message: `kvm_convert_memory(0x${exit.gpa.toString(16)}, ${formatSize(exit.size)}, to ${exit.toPrivate ? 'private' : 'shared'}) failed with ${retName(ret)} with no fault injected: the VM stops`,
      size: exit.size,
    });
  }

  /**
   * Stop admitting conversions, wait until none is in flight, then have
   * every container check its mappings against the (now still) bitmap and
   * KVM attributes, and check KVM attributes against the bitmap here.
   * `onDone` gets the number of violations found.
   */
  quiescentCheck(ctx: ActorContext, onDone: (found: number) => void): void {
    if (this.#checking) {
      onDone(0);
      return;
    }
    this.#checking = true;
    this.#admission.pause();
    this.#admission.whenIdle(ctx.bind(() => {
      this.#counters.quiescentChecks++;
      let found = 0;
      if (this.#stopReason === undefined) {
        this.#counters['checked:disagreement']++;
        const before = this.#found.length;
        checkKvmAgreement(this.#views.kvmShared, this.#views.bitmap, this.#found);
        found += this.#found.length - before;
      }
      let waiting = this.#topology.containers.length;
      const finish = (): void => {
        this.#checking = false;
        this.#admission.resume();
        onDone(found);
      };
      if (waiting === 0) finish();
      for (const actor of this.#topology.containers) {
        const tag = this.#pending.add((n) => {
          found += n;
          if (--waiting === 0) finish();
        });
        ctx.send(actor, { type: 'check', from: ctx.self, tag });
      }
    }));
  }

  profile(): PhaseHistograms {
    return this.#profile.toJSON();
  }

  /** Finished conversions after sequence number `after` still in the bounded log (for the HTML report). */
  recentConversions(after: number): ConversionBatch {
    return this.#log.since(after);
  }

  stats(): Record<string, number> {
    return {
      ...this.#counters, vmStopped: this.#stopReason === undefined ? 0 : 1,
      'faultsInjected:attributes': this.#faultPlan.injected.attributes, 'faultsInjected:discard': this.#faultPlan.injected.discard,
    };
  }

  violations(): Violation[] {
    return [...this.#found];
  }

  violationCount(): number {
    return this.#found.length;
  }
}
