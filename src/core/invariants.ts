/**
 * The invariants of spec section 9, found by checking state (the bitmap, KVM
 * attributes, guest_memfd state, pins and mapping tables), never by a flag
 * that the code under test raises about itself.
 *
 * Two kinds of check:
 * - instant checks, run on events as they happen (in-place order at
 *   CONVERT_PRIVATE and at every map, rollback exactness at the end of a
 *   state change);
 * - quiescent checks, run when no conversion is in flight (`checkQuiescent`,
 *   `checkConverted`).
 */
import type { ConfidentialVm } from './confidential-vm.js';
import type { CoreEvent, EventBus } from './events.js';
import type { BackingMode, GuestMemory } from './guest-memory.js';
import { sectionIntersectRange, type MemoryRegionSection } from './memory-region-section.js';
import type { RollbackPolicy } from './ram-block-attributes.js';
import type { SharedBitmap } from './shared-bitmap.js';
import { formatSize } from './units.js';
import type { DmaOutcome, VfioContainer } from './vfio/container.js';

export const INVARIANTS = [
  'stale-mapping',
  'dma-to-private',
  'dma-to-stale',
  'disagreement',
  'entry-limit',
  'partial-unmap',
  'inplace-order',
  'rollback',
  'validity',
  'data-integrity',
  'incomplete-conversion',
  'conversion-failed',
  'lost-update',
  'use-after-free',
] as const;

/**
 * Spec section 9 names, plus `validity` (8), `data-integrity` (a
 * workload's pattern check failed, as in Linux's private_mem_conversions_test)
 * and `incomplete-conversion` (a conversion returned 0 to the guest but KVM's
 * attributes do not cover the range it asked for: agreement (3) against the
 * guest's request) and `conversion-failed` (a valid request, inside RAM and
 * page aligned, failed although no fault was injected: the VM stops for
 * nothing), `lost-update` (a bitmap store wrote back a bit its thread did not
 * mean to change, differing from the last intended write of that block; see
 * bitmap-executor.ts) and `use-after-free` (a listener walk stepped from a
 * listener that was unlinked and freed meanwhile; see listener-list.ts).
 */
export type InvariantName = (typeof INVARIANTS)[number];

export interface Violation {
  readonly invariant: InvariantName;
  /** One line a QEMU developer can read. */
  readonly message: string;
  readonly container?: string;
  readonly listener?: string;
  readonly iova?: number;
  readonly offset?: number;
  readonly size?: number;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * What a checker needs to see of memory state. Every field can be a view of
 * a SharedArrayBuffer owned by another thread (read-only here).
 */
export interface StateView {
  readonly blockSize: number;
  readonly regionSize: number;
  readonly mode: BackingMode;
  /** RamBlockAttributes bitmap, 1 = shared. */
  readonly bitmap: SharedBitmap;
  /** KVM attributes, 1 = shared. */
  readonly kvmShared: SharedBitmap;
  readonly memory: GuestMemory;
}

/**
 * No stale mapping (1): a mapping must not reach a block that is private
 * in both the bitmap and KVM (in place: private in guest_memfd), nor a
 * page freed since it was mapped.
 */
export function checkStaleMappings(container: VfioContainer, view: StateView, found: Violation[]): void {
  const { blockSize, regionSize, bitmap, kvmShared, memory } = view;
  const inplace = view.mode === 'inplace';
  container.mappings.forEach((iova, size, hostOffset, epoch) => {
    if (hostOffset + size > regionSize) return true;
    let reason: string | undefined;
    if (memory.isStale(hostOffset, size, epoch)) reason = 'its page was freed after it was mapped';
    else {
      const first = Math.floor(hostOffset / blockSize);
      const end = Math.ceil((hostOffset + size) / blockSize);
      for (let b = first; b < end && reason === undefined; b++) {
        if (inplace && !memory.gmemShared.test(b)) reason = 'guest_memfd holds it private';
        else if (!bitmap.test(b) && !kvmShared.test(b)) reason = 'the block is private (bitmap and KVM)';
      }
    }
    if (reason !== undefined) {
      found.push({
        invariant: 'stale-mapping',
        message: `${container.id} maps ${hex(iova)}+${formatSize(size)} (offset ${hex(hostOffset)}) but ${reason}`,
        container: container.id, iova, size, offset: hostOffset,
      });
    }
    return true;
  });
}

/** Entry accounting (4): live mappings never exceed the type1 limit. */
export function checkEntryLimit(container: VfioContainer, found: Violation[]): void {
  const limit = container.dmaMaxMappings;
  if (limit > 0 && container.mappings.count > limit) {
    found.push({
      invariant: 'entry-limit',
      message: `${container.id} holds ${container.mappings.count} mappings, dma_entry_limit is ${limit}`,
      container: container.id,
    });
  }
}

/**
 * Whole-mapping unmaps (5): every unmap range is a union of whole mappings.
 * Reports the container's partial unmaps from index `seen` on; returns the
 * new count to pass next time.
 */
export function checkPartialUnmaps(container: VfioContainer, seen: number, found: Violation[]): number {
  const cuts = container.partialUnmaps;
  for (let i = seen; i < cuts.length; i++) {
    const cut = cuts[i]!;
    const outcome = cut.kernelRet === cut.qemuRet
      ? `kernel returned ${cut.kernelRet}`
      : `kernel returned ${cut.kernelRet}, QEMU reported ${cut.qemuRet}`;
    found.push({
      invariant: 'partial-unmap',
      message: `${container.id}: unmap ${hex(cut.iova)}+${formatSize(cut.size)} cuts mapping ${hex(cut.mapping.iova)}+${formatSize(cut.mapping.size)} (${outcome})`,
      container: container.id, iova: cut.iova, size: cut.size,
    });
  }
  return cuts.length;
}

/**
 * Agreement (3) of one registered section with the bitmap: every shared
 * block of the section is mapped in the container, every private one is not.
 */
export function checkSectionAgreement(container: VfioContainer, section: MemoryRegionSection, bitmap: SharedBitmap,
  blockSize: number, found: Violation[]): void {
  const first = section.offsetWithinRegion / blockSize;
  const count = section.size / blockSize;
  const check = (block: number, blocks: number, shared: boolean): void => {
    const offset = block * blockSize;
    const iova = offset - section.offsetWithinRegion + section.offsetWithinAddressSpace;
    const size = blocks * blockSize;
    const mapped = coverage(container, iova, size);
    if (shared ? mapped !== size : mapped !== 0) {
      found.push({
        invariant: 'disagreement',
        message: `${container.id}: ${formatSize(mapped)} of ${formatSize(size)} mapped at ${hex(iova)} where the bitmap is ${shared ? 'shared' : 'private'}`,
        container: container.id, iova, size, offset,
      });
    }
  };
  let next = first;
  for (const [start, n] of bitmap.setRuns(first, count)) {
    if (start > next) check(next, start - next, false);
    check(start, n, true);
    next = start + n;
  }
  if (next < first + count) check(next, first + count - next, false);
}

/** Agreement (3) of KVM attributes with the bitmap over the whole region. */
export function checkKvmAgreement(kvmShared: SharedBitmap, bitmap: SharedBitmap, found: Violation[]): void {
  if (!sameRuns(bitmap.setRuns(), kvmShared.setRuns())) {
    const a = bitmap.setRuns();
    const b = kvmShared.setRuns();
    let i = 0;
    while (i < a.length && i < b.length && a[i]![0] === b[i]![0] && a[i]![1] === b[i]![1]) i++;
    const at = Math.min(a[i]?.[0] ?? Infinity, b[i]?.[0] ?? Infinity);
    found.push({ invariant: 'disagreement', message: `KVM attributes and the RamBlockAttributes bitmap disagree (first difference near block ${at})` });
  }
}

/**
 * In-place order (6), to shared: nothing is mapped before guest_memfd
 * converted it to shared. Checked at each map attempt.
 */
export function checkMapAfterConvertShared(view: StateView, container: string, iova: number, size: number,
  hostOffset: number, found: Violation[]): void {
  if (view.mode !== 'inplace') return;
  const { blockSize, regionSize } = view;
  if (hostOffset + size > regionSize) return;
  const first = Math.floor(hostOffset / blockSize);
  const count = Math.ceil((hostOffset + size) / blockSize) - first;
  if (!view.memory.gmemShared.isRangeSet(first, count)) {
    found.push({
      invariant: 'inplace-order',
      message: `${container} maps ${hex(iova)}+${formatSize(size)} (offset ${hex(hostOffset)}) before guest_memfd converted it to shared`,
      container, iova, size, offset: hostOffset,
    });
  }
}

/**
 * No mapped-but-private block (spec 9, "notifying listeners before updating
 * the bitmap"): a map is only ever made for blocks the RamBlockAttributes
 * bitmap and KVM's memory attributes already hold shared (KVM's are set
 * before the state change, and cleared before it on the way to private), because the bitmap is written before
 * listeners hear of a change and a registration replays only shared runs.
 * Checked at each map attempt. (With conversions interleaving, `--in-flight`
 * above 1, a concurrent opposite conversion can also trip it: that is the
 * overlapping-conversion race.)
 */
export function checkMapOfSharedBlock(view: StateView, container: string, iova: number, size: number,
  hostOffset: number, found: Violation[]): void {
  const { blockSize, regionSize } = view;
  if (hostOffset + size > regionSize) return;
  const first = Math.floor(hostOffset / blockSize);
  const count = Math.ceil((hostOffset + size) / blockSize) - first;
  const holder = !view.bitmap.isRangeSet(first, count) ? 'the bitmap' : !view.kvmShared.isRangeSet(first, count) ? "KVM's memory attributes" : undefined;
  if (holder !== undefined) {
    found.push({
      invariant: 'stale-mapping',
      message: `${container} maps ${hex(iova)}+${formatSize(size)} (offset ${hex(hostOffset)}) while ${holder} hold${holder === 'the bitmap' ? 's' : ''} it private`,
      container, iova, size, offset: hostOffset,
    });
  }
}

/**
 * In-place order (6), to private: at CONVERT_PRIVATE no page of the range
 * is pinned, i.e. every mapping of it is gone. (Pins only come from
 * mappings.) Returns true when the order was violated.
 */
export function checkUnmappedBeforeConvertPrivate(view: StateView, offset: number, size: number, found: Violation[]): boolean {
  const { blockSize } = view;
  const first = Math.floor(offset / blockSize);
  const count = Math.ceil((offset + size) / blockSize) - first;
  if (first + count > view.memory.blocks || !view.memory.pins.anyNonZero(first, count)) return false;
  found.push({
    invariant: 'inplace-order',
    message: `CONVERT_PRIVATE of ${hex(offset)}+${formatSize(size)} while a page of it is still mapped (pinned) for DMA`,
    offset, size,
  });
  return true;
}

/**
 * No stale mapping (1), at the instant it matters: when QEMU frees the
 * shared page of a block (`ram_block_discard_range`, legacy, converting to
 * private), no container maps it any more. Mappings pin their pages, so a
 * page still pinned is a page a device can still reach after it is freed
 * and reused. Returns true when violated.
 */
export function checkFreedPageUnmapped(view: StateView, offset: number, size: number, found: Violation[]): boolean {
  const { blockSize } = view;
  const first = Math.floor(offset / blockSize);
  const count = Math.min(Math.ceil((offset + size) / blockSize), view.memory.blocks) - first;
  if (count <= 0 || !view.memory.pins.anyNonZero(first, count)) return false;
  let at = first;
  while (view.memory.pins.get(at) === 0) at++;
  found.push({
    invariant: 'stale-mapping',
    message: `shared page at offset ${hex(at * blockSize)} freed (ram_block_discard_range of ${hex(offset)}+${formatSize(size)}) while a container still maps it`,
    offset: at * blockSize, size: blockSize,
  });
  return true;
}

/** One `notifyPopulate` walk inside a state change. */
interface PopulateStep {
  readonly offset: number;
  readonly size: number;
  /** `listener@offset+size` of every notifyPopulate that returned 0. */
  readonly succeeded: string[];
  failed: boolean;
}

/** What the rollback checker remembers about one state change in flight. */
interface StateChangeRecord {
  readonly offset: number;
  readonly size: number;
  /** Shared runs of the range before the call (only kept for `full` rollback). */
  readonly priorRuns: Array<[number, number]> | undefined;
  readonly steps: PopulateStep[];
  /** `listener@offset+size` of every rollback discard. */
  readonly rollbackDiscards: string[];
}

/**
 * Which state change an event belongs to, when several interleave on one
 * bus: the caller that steps them knows which one is running (the
 * RamBlockAttributes owner steps one generator at a time).
 */
export interface InterleavedStateChanges {
  /** The state change whose events are being emitted now. */
  current(): object | undefined;
}

/**
 * Rollback exactness (7), watching one RamBlockAttributes' events: after a
 * failed populate, exactly the listeners notified successfully in the
 * rolled-back steps get a discard (never the failing one), and the bitmap
 * is back to its prior value there.
 *
 * With `interleaved`, several state changes (and registrations) may be in
 * flight: each keeps its own record, keyed by `interleaved.current()`, and
 * only the discards are checked: another conversion may legitimately have
 * changed the same bits meanwhile, so the bitmap part would not be sound.
 */
export class RollbackChecker {
  readonly #policy: RollbackPolicy;
  readonly #bitmap: SharedBitmap;
  readonly #blockSize: number;
  readonly #found: Violation[];
  readonly #interleaved: InterleavedStateChanges | undefined;
  readonly #records = new Map<object | undefined, StateChangeRecord>();
  readonly #unsubscribe: () => void;
  /** Failed populates checked so far. */
  checked = 0;

  constructor(bus: EventBus, policy: RollbackPolicy, bitmap: SharedBitmap, blockSize: number, found: Violation[], interleaved?: InterleavedStateChanges) {
    this.#policy = policy;
    this.#bitmap = bitmap;
    this.#blockSize = blockSize;
    this.#found = found;
    this.#interleaved = interleaved;
    this.#unsubscribe = bus.subscribe((event) => this.#onEvent(event));
  }

  get #record(): StateChangeRecord | undefined {
    return this.#records.get(this.#interleaved?.current());
  }

  set #record(record: StateChangeRecord | undefined) {
    const key = this.#interleaved?.current();
    if (record === undefined) this.#records.delete(key);
    else this.#records.set(key, record);
  }

  dispose(): void {
    this.#unsubscribe();
  }

  #onEvent(event: CoreEvent): void {
    switch (event.kind) {
      case 'stateChangeBegin':
        this.#record = event.toDiscard || this.#policy === 'none' ? undefined : {
          offset: event.offset,
          size: event.size,
          priorRuns: this.#policy === 'full' && this.#interleaved === undefined
            ? this.#bitmap.setRuns(event.offset / this.#blockSize, event.size / this.#blockSize) : undefined,
          steps: [],
          rollbackDiscards: [],
        };
        return;
      case 'populateStep':
        this.#record?.steps.push({ offset: event.offset, size: event.size, succeeded: [], failed: false });
        return;
      case 'notifyPopulateDone': {
        const step = this.#record?.steps.at(-1);
        if (step === undefined) return;
        if (event.ret === 0) step.succeeded.push(`${event.listener}@${event.offset}+${event.size}`);
        else step.failed = true;
        return;
      }
      case 'notifyDiscard':
        if (event.rollback) this.#record?.rollbackDiscards.push(`${event.listener}@${event.offset}+${event.size}`);
        return;
      case 'stateChangeEnd': {
        const record = this.#record;
        this.#record = undefined;
        if (record !== undefined && event.ret !== 0) this.#check(record);
        return;
      }
      default:
        return;
    }
  }

  #check(record: StateChangeRecord): void {
    const failing = record.steps.findIndex((s) => s.failed);
    if (failing < 0) return;
    this.checked++;
    const rolledBack = this.#policy === 'full' ? record.steps.slice(0, failing + 1) : [record.steps[failing]!];
    const expected = rolledBack.flatMap((s) => s.succeeded).sort();
    const actual = [...record.rollbackDiscards].sort();
    if (expected.join() !== actual.join()) {
      this.#found.push({
        invariant: 'rollback',
        message: `populate of ${hex(record.offset)}+${formatSize(record.size)} failed: rollback discards [${actual.join(', ')}], expected exactly [${expected.join(', ')}]`,
        offset: record.offset, size: record.size,
      });
    }
    const blockSize = this.#blockSize;
    if (record.priorRuns !== undefined) {
      const after = this.#bitmap.setRuns(record.offset / blockSize, record.size / blockSize);
      if (!sameRuns(after, record.priorRuns)) {
        this.#found.push({
          invariant: 'rollback',
          message: `bitmap of ${hex(record.offset)}+${formatSize(record.size)} did not return to its prior value after full rollback`,
          offset: record.offset, size: record.size,
        });
      }
      return;
    }
    if (this.#interleaved !== undefined || this.#policy === 'full') return;
    const step = record.steps[failing]!;
    if (!this.#bitmap.isRangeClear(step.offset / blockSize, step.size / blockSize)) {
      this.#found.push({
        invariant: 'rollback',
        message: `bits of the failed step ${hex(step.offset)}+${formatSize(step.size)} are still set after rollback`,
        offset: step.offset, size: step.size,
      });
    }
  }
}

/**
 * All invariants over a single-threaded {@link ConfidentialVm}: instant
 * checks on its events, quiescent checks on demand.
 */
export class InvariantChecker {
  readonly #vm: ConfidentialVm;
  readonly #view: StateView;
  /** Violations found by instant checks since the last `drain`. */
  #pending: Violation[] = [];
  /** Per container, how many of its partial unmaps were already reported. */
  readonly #partialSeen = new Map<string, number>();
  readonly #rollback: RollbackChecker;
  readonly #unsubscribe: () => void;

  constructor(vm: ConfidentialVm) {
    this.#vm = vm;
    this.#view = {
      blockSize: vm.config.blockSize,
      regionSize: vm.config.regionSize,
      mode: vm.config.mode,
      bitmap: vm.rba.bitmap,
      kvmShared: vm.kvm.shared,
      memory: vm.memory,
    };
    this.#rollback = new RollbackChecker(vm.bus, vm.config.rollback, vm.rba.bitmap, vm.config.blockSize, this.#pending);
    this.#unsubscribe = vm.bus.subscribe((event) => this.#onEvent(event));
  }

  dispose(): void {
    this.#unsubscribe();
    this.#rollback.dispose();
  }

  /** Violations found by instant checks since the last call. */
  drain(): Violation[] {
    return this.#pending.splice(0);
  }

  /** Record the outcome of a device access (its check is state-based, in the container). */
  recordAccess(container: string, iova: number, size: number, outcome: DmaOutcome): void {
    const violation = accessViolation(container, iova, size, outcome);
    if (violation !== undefined) this.#pending.push(violation);
  }

  /**
   * Invariants that hold whenever no conversion is in flight: no stale
   * mapping (1), entry accounting (4), whole-mapping unmaps (5).
   */
  checkQuiescent(): Violation[] {
    const found: Violation[] = [];
    for (const container of this.#vm.containers.values()) {
      checkStaleMappings(container, this.#view, found);
      checkEntryLimit(container, found);
      this.#partialSeen.set(container.id, checkPartialUnmaps(container, this.#partialSeen.get(container.id) ?? 0, found));
    }
    return found;
  }

  /**
   * Agreement (3) after a conversion of `[gpa, gpa + size)` returned 0: KVM
   * attribute == bitmap (== guest_memfd state in place) == mapped set of
   * every registered VFIO listener, over the converted range.
   */
  checkConverted(gpa: number, size: number, toPrivate: boolean): Violation[] {
    const { gpaBase, regionSize, blockSize } = this.#vm.config;
    const start = Math.max(gpa, gpaBase) - gpaBase;
    const end = Math.min(gpa + size - gpaBase, regionSize);
    if (end <= start) return [];
    const found: Violation[] = [];
    const first = start / blockSize;
    const count = (end - start) / blockSize;
    const wantShared = !toPrivate;
    const vm = this.#vm;
    const where = `${hex(start)}+${formatSize(end - start)}`;
    const expectState = (bitmap: SharedBitmap, what: string): void => {
      if (wantShared ? !bitmap.isRangeSet(first, count) : !bitmap.isRangeClear(first, count)) {
        found.push({ invariant: 'disagreement', message: `${what} not all ${wantShared ? 'shared' : 'private'} over ${where} after a successful conversion`, offset: start, size: end - start });
      }
    };
    expectState(vm.rba.bitmap, 'bitmap is');
    expectState(vm.kvm.shared, 'KVM attributes are');
    if (vm.config.mode === 'inplace') expectState(vm.memory.gmemShared, 'guest_memfd is');
    for (const [id, listeners] of vm.vfioListeners) {
      const container = vm.container(id);
      for (const listener of listeners) {
        const s = sectionIntersectRange(listener.section, start, end - start);
        if (s === undefined) continue;
        const mapped = coverage(container, s.offsetWithinAddressSpace, s.size);
        if (wantShared ? mapped !== s.size : mapped !== 0) {
          found.push({
            invariant: 'disagreement',
            message: `${id} has ${formatSize(mapped)} of ${formatSize(s.size)} mapped at ${hex(s.offsetWithinAddressSpace)} after conversion to ${wantShared ? 'shared' : 'private'}`,
            container: id, iova: s.offsetWithinAddressSpace, size: s.size, offset: s.offsetWithinRegion,
          });
        }
      }
    }
    return found;
  }

  /** Agreement over the whole region: for quiescent points of a running VM. */
  checkAgreement(): Violation[] {
    const vm = this.#vm;
    const found: Violation[] = [];
    checkKvmAgreement(vm.kvm.shared, vm.rba.bitmap, found);
    for (const [id, listeners] of vm.vfioListeners) {
      for (const listener of listeners) {
        checkSectionAgreement(vm.container(id), listener.section, vm.rba.bitmap, vm.config.blockSize, found);
      }
    }
    return found;
  }

  #onEvent(event: CoreEvent): void {
    if (event.kind === 'dmaMapAttempt') {
      checkMapAfterConvertShared(this.#view, event.container, event.iova, event.size, event.hostOffset, this.#pending);
    } else if (event.kind === 'gmemConvertPrivate') {
      checkUnmappedBeforeConvertPrivate(this.#view, event.offset, event.size, this.#pending);
    }
  }
}

/** The violation a device access outcome stands for, if any. */
export function accessViolation(container: string, iova: number, size: number, outcome: DmaOutcome): Violation | undefined {
  if (outcome !== 'dma-to-private' && outcome !== 'dma-to-stale') return undefined;
  return {
    invariant: outcome,
    message: `device behind ${container} accessed ${hex(iova)}+${formatSize(size)}: ${outcome === 'dma-to-stale' ? 'page freed since it was mapped' : 'page is private'}`,
    container, iova, size,
  };
}

/** Bytes of `[iova, iova + size)` covered by mappings of the container. */
function coverage(container: VfioContainer, iova: number, size: number): number {
  let covered = 0;
  container.mappings.forEachIntersecting(iova, size, (mIova, mSize) => {
    covered += Math.min(iova + size, mIova + mSize) - Math.max(iova, mIova);
  });
  return covered;
}

function sameRuns(a: ReadonlyArray<readonly [number, number]>, b: ReadonlyArray<readonly [number, number]>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]![0] !== b[i]![0] || a[i]![1] !== b[i]![1]) return false;
  }
  return true;
}
