/**
 * A vCPU: runs its guest workload and blocks during its own exits, as a
 * real vCPU thread does in KVM_RUN. Conversions reach the KVM exit handler
 * as exits (the platform's conversion exits, see conversion-exits.ts, and
 * memory faults); device DMA is requested from a container and awaited.
 */
import type { Violation } from '../../core/invariants.js';
import { KiB } from '../../core/units.js';
import type { ActorContext, ActorLogic, Topology } from '../actor.js';
import { PhaseProfile, type PhaseHistograms } from '../phase-profile.js';
import { DMA_OUTCOMES, EXIT_MAP_GPA, EXIT_MAP_GPA_FALLOCATE, EXIT_MEMORY_FAULT, EXIT_PUNCH_HOLE, type Message } from '../protocol.js';
import type { GuestPhysMap } from '../../core/guest-phys-map.js';
import { physMapOf, type MachineLayout } from '../../core/machine-layout.js';
import { layoutOf, type ActorSetup, type RunConfig } from '../run-config.js';
import { bitmapExecutorState, sharedViews, type SharedViews } from '../shared-views.js';
import { BitmapExecutor } from '../../core/bitmap-executor.js';
import { decodeBitmapStep } from '../bitmap-step-message.js';
import type { ActionResult, GuestAction, Workload } from './guest-actions.js';
import { conversionExits, tdxMapGpaPieces, type Exit, type Platform } from './conversion-exits.js';
import { workload } from './workloads.js';
import { Prng } from '../../core/prng.js';

const PAGE = 4 * KiB;

/** Memory faults on one page in a row, each converted with ret 0, after which the conversion is taken not to work. */
const REFAULT_LIMIT = 64;

/**
 * TDX: the chance that the vCPU has pending events when a MapGPA piece
 * completes, so that KVM returns RETRY instead of exiting for the next one.
 */
export const TDX_PENDING_EVENT_CHANCE = 0.25;

/** What the vCPU is blocked on. */
type Blocked =
  | {
    kind: 'mapGpa'; action: Extract<GuestAction, { kind: 'mapGpa' }>;
    /** The exits left of the request in progress, which ends at GPA `end`. */
    chunks: Exit[]; end: number;
    /** Requests still to issue: the GPA ranges of the action after the one in progress. */
    requests: Exit[];
    toPrivate: boolean; reason: number; exits: number;
  }
  | { kind: 'access'; action: Extract<GuestAction, { kind: 'access' }>; next: number; exits: number; faulted?: number; refaults?: number }
  | { kind: 'dma' };

export class Vcpu implements ActorLogic {
  readonly role = 'vcpu' as const;
  readonly #config: RunConfig;
  readonly #topology: Topology;
  readonly #views: SharedViews;
  readonly #index: number;
  readonly #layout: MachineLayout;
  /** Where each RAMBlock byte is in guest-physical space: workloads address the RAMBlock linearly. */
  readonly #physMap: GuestPhysMap;
  #workload: Workload | undefined;
  #blocked: Blocked | undefined;
  #done = false;
  #tag = 0;
  readonly #profile: PhaseProfile;
  /** When the exit or DMA request in flight was sent, and its size. */
  #sentAt = 0;
  #sentSize = 0;
  /** Index of the next workload action, and the ones to skip (shrinking). */
  #action = 0;
  readonly #skip: ReadonlySet<number>;
  readonly #found: Violation[] = [];
  readonly #counters = {
    actions: 0, exits: 0, mapGpaExits: 0, memoryFaultExits: 0, mapGpaRetries: 0, accesses: 0, dmaRequests: 0, checks: 0, vmStopped: 0,
    'checked:incomplete-conversion': 0, 'checked:data-integrity': 0,
  };
  readonly #platform: Platform;
  /** Selftest counters by case (steps, conversions, data checks, mismatches). */
  readonly #labelled: Record<string, number> = {};
  /**
   * Pending events (interrupts, NMIs) at the end of each TDX MapGPA piece:
   * its own seeded stream, so the workload's random choices do not move.
   */
  readonly #pendingEvents: Prng;
  /**
   * This vCPU thread's part of `ram_block_attributes_state_change`: the
   * bitmap scans, loads and stores of its own conversions, made here, on
   * this thread, while the RamBlockAttributes owner walks the listeners.
   */
  readonly #bitmapSteps: BitmapExecutor;

  constructor(setup: ActorSetup) {
    this.#profile = new PhaseProfile(setup.config.profile !== false);
    this.#config = setup.config;
    this.#topology = setup.topology;
    this.#views = sharedViews(setup);
    this.#index = setup.index;
    this.#layout = layoutOf(setup.config);
    this.#physMap = physMapOf(this.#layout);
    this.#skip = new Set(setup.config.skipActions?.[setup.index] ?? []);
    this.#platform = setup.config.platform ?? 'tdx';
    this.#pendingEvents = new Prng(setup.config.seed * 1000 + 500 + setup.index);
    this.#bitmapSteps = new BitmapExecutor(bitmapExecutorState(setup, this.#views.bitmap), this.#found);
  }

  get done(): boolean {
    return this.#done;
  }

  receive(message: Message, ctx: ActorContext): void {
    switch (message.type) {
      case 'start': {
        const { config } = this;
        const share = Math.floor(config.conversions / config.vcpus) + (this.#index < config.conversions % config.vcpus ? 1 : 0);
        this.#workload = workload(config.workload, {
          vcpu: this.#index, vcpus: config.vcpus, containers: config.containers.length,
          guestMem: config.guestMem, gpaBase: config.gpaBase, mode: config.mode, budget: share,
          sharedFreedOnPrivate: config.selftestExpect !== 'kvm' && (config.sharedBacking ?? 'anonymous') === 'anonymous',
          selftestExpect: config.selftestExpect ?? 'qemu',
          random: () => ctx.random(),
        });
        this.#resume({ ret: 0, exits: 0 }, ctx, true);
        return;
      }
      case 'exitDone':
        this.#profile.record('exit-to-resume', this.#sentSize, ctx.now() - this.#sentAt);
        this.#onExitDone(message.ret, ctx);
        return;
      case 'bitmapStep':
        // Our own conversion's state change, at QEMU's grain: one scan, load or store of the bitmap.
        ctx.send(message.from, { type: 'bitmapStepDone', from: ctx.self, tag: message.tag, ret: this.#bitmapSteps.execute(decodeBitmapStep(message)) });
        return;
      case 'dmaDone':
        this.#profile.record('dma', this.#sentSize, ctx.now() - this.#sentAt);
        this.#blocked = undefined;
        this.#resume({ ret: 0, exits: 0, outcome: DMA_OUTCOMES[message.outcome] ?? 'fault' }, ctx);
        return;
      default:
        throw new Error(`vCPU cannot handle ${message.type}`);
    }
  }

  get config(): RunConfig {
    return this.#config;
  }

  /** Run the workload until it blocks on an exit or a DMA, or ends. */
  #resume(result: ActionResult, ctx: ActorContext, first = false): void {
    const workload = this.#workload!;
    const limit = this.#config.actionLimit?.[this.#index] ?? Infinity;
    let next = first ? workload.next() : workload.next(result);
    while (!next.done && this.#action < limit) {
      const immediate = this.#perform(next.value, ctx);
      if (immediate === undefined) return; // blocked until a reply
      next = workload.next(immediate);
    }
    this.#done = true;
  }

  /** Do an action; returns its result, or undefined when the vCPU is now blocked. */
  #perform(action: GuestAction, ctx: ActorContext): ActionResult | undefined {
    const index = this.#action++;
    this.#counters.actions = this.#action;
    if (action.label !== undefined) this.#bump(`selftest ${action.label}: steps`);
    if (this.#skip.has(index)) return { ret: 0, exits: 0, outcome: 'ok' };
    switch (action.kind) {
      case 'mapGpa': {
        // The guest converts the GPA ranges that show the RAMBlock range: one request each (two
        // when the range crosses from ram-below-4g to ram-above-4g).
        const requests: Exit[] = this.#physMap.gpaPieces(action.gpa - this.#config.gpaBase, action.size);
        const first = requests.shift();
        if (first === undefined) return { ret: 0, exits: 0 };
        const reason = action.punchHole === true ? EXIT_PUNCH_HOLE : action.fallocate === true ? EXIT_MAP_GPA_FALLOCATE : EXIT_MAP_GPA;
        if (action.label !== undefined) this.#bump(`selftest ${action.label}: ${action.punchHole === true ? 'punch holes' : 'conversions'}`);
        this.#blocked = { kind: 'mapGpa', action, chunks: this.#requestExits(action, first), end: first[0] + first[1], requests, toPrivate: action.toPrivate, reason, exits: 0 };
        this.#sendMapGpaChunk(ctx);
        return undefined;
      }
      case 'access':
        this.#counters.accesses++;
        return this.#access({ kind: 'access', action, next: action.gpa, exits: 0 }, ctx);
      case 'dma': {
        this.#counters.dmaRequests++;
        const iova = this.#iovaOf(action.container, action.gpa - this.#config.gpaBase, action.size);
        // Not inside one section the container registered: the driver has no IOVA for it.
        if (iova === undefined) return { ret: 0, exits: 0, outcome: 'fault' };
        this.#blocked = { kind: 'dma' };
        this.#sentAt = ctx.now();
        this.#sentSize = action.size;
        ctx.send(this.#topology.containers[action.container]!, {
          type: 'dmaRequest', from: ctx.self, tag: ++this.#tag, iova, size: action.size, pattern: action.pattern, write: true,
        });
        return undefined;
      }
      case 'hostWrite':
        this.#views.memory.writeShared(action.gpa - this.#config.gpaBase, action.size, action.pattern);
        return { ret: 0, exits: 0 };
      case 'check':
        this.#check(action);
        return { ret: 0, exits: 0 };
      default: {
        const unreachable: never = action;
        throw new Error(`unknown action ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** The exits of one contiguous GPA request: the selftest's punch hole is its own hypercall, one exit whatever the platform. */
  #requestExits(action: Extract<GuestAction, { kind: 'mapGpa' }>, [gpa, size]: Exit): Exit[] {
    return action.punchHole === true ? [[gpa, size]] : conversionExits(this.#platform, gpa, size);
  }

  /** The IOVA at which container `container` maps RAMBlock bytes `[offset, offset + size)`, if one section holds them. */
  #iovaOf(container: number, offset: number, size: number): number | undefined {
    const section = this.#layout.vfio[container]?.find((s) => offset >= s.offset && offset + size <= s.offset + s.size);
    return section === undefined ? undefined : offset - section.offset + section.iova;
  }

  #sendMapGpaChunk(ctx: ActorContext): void {
    const blocked = this.#blocked;
    if (blocked?.kind !== 'mapGpa') throw new Error('vCPU is not in a MapGPA');
    const [gpa, size] = blocked.chunks.shift()!;
    this.#exit(blocked.reason, gpa, size, blocked.toPrivate, ctx);
  }

  #exit(reason: number, gpa: number, size: number, toPrivate: boolean, ctx: ActorContext): void {
    this.#counters.exits++;
    if (reason === EXIT_MEMORY_FAULT) this.#counters.memoryFaultExits++;
    else this.#counters.mapGpaExits++;
    this.#sentAt = ctx.now();
    this.#sentSize = size;
    ctx.send(this.#topology.kvm, { type: 'exit', from: ctx.self, tag: ++this.#tag, reason, gpa, size, toPrivate });
  }

  #onExitDone(ret: number, ctx: ActorContext): void {
    const blocked = this.#blocked;
    if (blocked === undefined || blocked.kind === 'dma') throw new Error('exitDone while not in an exit');
    blocked.exits++;
    if (ret !== 0) {
      // The conversion failed or the VM stopped: this vCPU pauses for good.
      this.#counters.vmStopped = 1;
      this.#blocked = undefined;
      this.#resume({ ret, exits: blocked.exits }, ctx);
      return;
    }
    if (blocked.kind === 'mapGpa') {
      if (blocked.chunks.length > 0) {
        if (this.#platform === 'tdx' && this.#pendingEvents.next() < TDX_PENDING_EVENT_CHANCE) {
          // tdx_complete_vmcall_map_gpa: kvm_vcpu_has_events() -> TDVMCALL_STATUS_RETRY, r11 = next GPA.
          // The guest takes its interrupt and issues MapGPA again for the rest, from that GPA.
          this.#counters.mapGpaRetries++;
          const next = blocked.chunks[0]![0];
          blocked.chunks = tdxMapGpaPieces(next, blocked.end - next);
        }
        this.#sendMapGpaChunk(ctx);
        return;
      }
      const request = blocked.requests.shift();
      if (request !== undefined) {
        blocked.chunks = this.#requestExits(blocked.action, request);
        blocked.end = request[0] + request[1];
        this.#sendMapGpaChunk(ctx);
        return;
      }
      this.#blocked = undefined;
      const { action } = blocked;
      if (action.owned === true && action.punchHole !== true) this.#checkConverted(action.gpa, action.size, action.toPrivate);
      this.#resume({ ret: 0, exits: blocked.exits }, ctx);
      return;
    }
    const result = this.#access(blocked, ctx);
    if (result !== undefined) this.#resume(result, ctx);
  }

  /**
   * Touch pages from `state.next` on. A page whose KVM attribute does not
   * match the access exits with a memory fault (4 KiB, flag PRIVATE when
   * the access wanted private) and is retried after the conversion.
   */
  #access(state: Extract<Blocked, { kind: 'access' }>, ctx: ActorContext): ActionResult | undefined {
    const { action } = state;
    const kvm = this.#views.kvmShared;
    const base = this.#config.gpaBase;
    for (; state.next < action.gpa + action.size; state.next += PAGE) {
      const block = (state.next - base) / this.#config.blockSize;
      if (kvm.test(block) === action.private) {
        this.#counters['checked:incomplete-conversion']++;
        state.refaults = state.faulted === state.next ? (state.refaults ?? 0) + 1 : 0;
        // The memory-fault conversion of this page returned 0 and the page still faults: where
        // no other vCPU converts it, at once; elsewhere only when it goes on and on (another vCPU
        // converting the page back between each fault and its retry, REFAULT_LIMIT times in a row,
        // is not a schedule; a conversion that never takes effect is).
        // A malicious guest's vCPUs ping-pong a page between them on purpose: a livelock of the guest's
        // own making, not a conversion that failed (`contested`).
        if (action.contested !== true && state.refaults === (action.owned === true ? 1 : REFAULT_LIMIT)) this.#reportIncomplete(state.next, PAGE, action.private);
        state.faulted = state.next;
        this.#blocked = state;
        this.#exit(EXIT_MEMORY_FAULT, this.#physMap.gpaOf(state.next - base) ?? state.next, PAGE, action.private, ctx);
        return undefined;
      }
      if (action.write !== undefined) {
        const offset = state.next - base;
        if (action.private) this.#views.memory.writePrivate(offset, PAGE, action.write);
        else this.#views.memory.writeShared(offset, PAGE, action.write);
      }
    }
    this.#blocked = undefined;
    return { ret: 0, exits: state.exits };
  }

  /**
   * Agreement with the guest's request (spec 9.3): a conversion that
   * returned 0 to the guest left KVM's attributes (and guest_memfd, in
   * place) in the requested state over the *whole* range the guest asked
   * for. Checked only for ranges the workload says this vCPU owns, where no
   * other vCPU may legitimately change them meanwhile.
   */
  #checkConverted(linear: number, size: number, toPrivate: boolean): void {
    this.#counters['checked:incomplete-conversion']++;
    const first = (linear - this.#config.gpaBase) / this.#config.blockSize;
    const count = size / this.#config.blockSize;
    const want = (bitmap: { isRangeSet(f: number, n: number): boolean; isRangeClear(f: number, n: number): boolean }): boolean =>
      toPrivate ? bitmap.isRangeClear(first, count) : bitmap.isRangeSet(first, count);
    if (!want(this.#views.kvmShared) || (this.#config.mode === 'inplace' && !want(this.#views.memory.gmemShared))) {
      this.#reportIncomplete(linear, size, toPrivate);
    }
  }

  #reportIncomplete(linear: number, size: number, toPrivate: boolean): void {
    const offset = linear - this.#config.gpaBase;
    this.#found.push({
      invariant: 'incomplete-conversion',
      message: `vcpu${this.#index}: conversion of offset 0x${offset.toString(16)}+${size / 1024} KiB to ${toPrivate ? 'private' : 'shared'} returned 0, but KVM attributes${this.#config.mode === 'inplace' ? ' or guest_memfd' : ''} are not all ${toPrivate ? 'private' : 'shared'} there`,
      offset, size,
    });
  }

  /** A per-case counter of the selftest (`selftest <case>: <what>`), summed over vCPUs in the summary. */
  #bump(key: string): void {
    this.#labelled[key] = (this.#labelled[key] ?? 0) + 1;
  }

  #check(action: Extract<GuestAction, { kind: 'check' }>): void {
    this.#counters.checks++;
    this.#counters['checked:data-integrity']++;
    if (action.label !== undefined) this.#bump(`selftest ${action.label}: data checks`);
    const memory = this.#views.memory;
    for (let gpa = action.gpa; gpa < action.gpa + action.size; gpa += PAGE) {
      const offset = gpa - this.#config.gpaBase;
      const seen = action.view === 'shared' ? memory.readShared(offset) : memory.readPrivate(offset);
      if (seen !== action.expect) {
        if (action.label !== undefined) this.#bump(`selftest ${action.label}: mismatches`);
        this.#found.push({
          invariant: 'data-integrity',
          message: `vcpu${this.#index}: ${action.label === undefined ? '' : `[${action.label}] `}${action.who ?? 'guest'}: ${action.what}: 0x${gpa.toString(16)} reads 0x${seen.toString(16)} through the ${action.view} view, expected 0x${action.expect.toString(16)}`,
          offset, size: PAGE,
        });
        return;
      }
    }
  }

  stats(): Record<string, number> {
    return { ...this.#counters, ...this.#labelled, 'checked:lost-update': this.#bitmapSteps.checked };
  }

  profile(): PhaseHistograms {
    return this.#profile.toJSON();
  }

  violations(): Violation[] {
    return [...this.#found];
  }

  violationCount(): number {
    return this.#found.length;
  }
}
