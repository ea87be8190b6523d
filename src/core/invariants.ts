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
import type { CoreEvent } from './events.js';
import { sectionIntersectRange } from './memory-region-section.js';
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
] as const;

/** Spec section 9 names. */
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

/** One `notifyPopulate` walk inside a state change. */
interface PopulateStep {
  readonly offset: number;
  readonly size: number;
  /** `listener@offset+size` of every notifyPopulate that returned 0. */
  readonly succeeded: string[];
  failed: boolean;
}

/** What the checker remembers about the state change in flight. */
interface StateChangeRecord {
  readonly offset: number;
  readonly size: number;
  /** Shared runs of the range before the call (only kept for `full` rollback). */
  readonly priorRuns: Array<[number, number]> | undefined;
  readonly steps: PopulateStep[];
  /** `listener@offset+size` of every rollback discard. */
  readonly rollbackDiscards: string[];
}

export class InvariantChecker {
  readonly #vm: ConfidentialVm;
  /** Violations found by instant checks since the last `drain`. */
  #pending: Violation[] = [];
  /** Per container, how many of its partial unmaps were already reported. */
  readonly #partialSeen = new Map<string, number>();
  #stateChange: StateChangeRecord | undefined;
  readonly #unsubscribe: () => void;

  constructor(vm: ConfidentialVm) {
    this.#vm = vm;
    this.#unsubscribe = vm.bus.subscribe((event) => this.#onEvent(event));
  }

  dispose(): void {
    this.#unsubscribe();
  }

  /** Violations found by instant checks since the last call. */
  drain(): Violation[] {
    const found = this.#pending;
    this.#pending = [];
    return found;
  }

  /** Record the outcome of a device access (its check is state-based, in the container). */
  recordAccess(container: string, iova: number, size: number, outcome: DmaOutcome): void {
    if (outcome === 'dma-to-private' || outcome === 'dma-to-stale') {
      this.#pending.push({
        invariant: outcome,
        message: `device behind ${container} accessed ${hex(iova)}+${formatSize(size)}: ${outcome === 'dma-to-stale' ? 'page freed since it was mapped' : 'page is private'}`,
        container, iova, size,
      });
    }
  }

  /**
   * Invariants that hold whenever no conversion is in flight: no stale
   * mapping (1), entry accounting (4), whole-mapping unmaps (5).
   */
  checkQuiescent(): Violation[] {
    const found: Violation[] = [];
    for (const container of this.#vm.containers.values()) {
      this.#checkStaleMappings(container, found);
      this.#checkEntryLimit(container, found);
      this.#checkPartialUnmaps(container, found);
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
    const agrees = (set: boolean, clear: boolean): boolean => (wantShared ? set : clear);
    const vm = this.#vm;
    const where = `${hex(start)}+${formatSize(end - start)}`;
    if (!agrees(vm.rba.bitmap.isRangeSet(first, count), vm.rba.bitmap.isRangeClear(first, count))) {
      found.push({ invariant: 'disagreement', message: `bitmap is not all ${wantShared ? 'shared' : 'private'} over ${where} after a successful conversion`, offset: start, size: end - start });
    }
    if (!agrees(vm.kvm.shared.isRangeSet(first, count), vm.kvm.shared.isRangeClear(first, count))) {
      found.push({ invariant: 'disagreement', message: `KVM attributes are not all ${wantShared ? 'shared' : 'private'} over ${where} after a successful conversion`, offset: start, size: end - start });
    }
    if (vm.config.mode === 'inplace') {
      const g = vm.memory.gmemShared;
      if (!agrees(g.isRangeSet(first, count), g.isRangeClear(first, count))) {
        found.push({ invariant: 'disagreement', message: `guest_memfd is not all ${wantShared ? 'shared' : 'private'} over ${where} after a successful conversion`, offset: start, size: end - start });
      }
    }
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
    const bitmapRuns = vm.rba.bitmap.setRuns();
    if (!sameRuns(bitmapRuns, vm.kvm.shared.setRuns())) {
      found.push({ invariant: 'disagreement', message: 'KVM attributes and the RamBlockAttributes bitmap disagree' });
    }
    for (const [id, listeners] of vm.vfioListeners) {
      const container = vm.container(id);
      for (const listener of listeners) {
        const check = (section: { offsetWithinAddressSpace: number; size: number; offsetWithinRegion: number }, shared: boolean): number => {
          const mapped = coverage(container, section.offsetWithinAddressSpace, section.size);
          if (shared ? mapped !== section.size : mapped !== 0) {
            found.push({
              invariant: 'disagreement',
              message: `${id}: ${formatSize(mapped)} of ${formatSize(section.size)} mapped at ${hex(section.offsetWithinAddressSpace)} where the bitmap is ${shared ? 'shared' : 'private'}`,
              container: id, iova: section.offsetWithinAddressSpace, size: section.size, offset: section.offsetWithinRegion,
            });
          }
          return 0;
        };
        vm.rba.replayPopulated(listener.section, (s) => check(s, true));
        vm.rba.replayDiscarded(listener.section, (s) => check(s, false));
      }
    }
    return found;
  }

  // --- instant checks -----------------------------------------------------

  #onEvent(event: CoreEvent): void {
    switch (event.kind) {
      case 'dmaMapAttempt':
        this.#checkMapAfterConvertShared(event.container, event.iova, event.size, event.hostOffset);
        return;
      case 'gmemConvertPrivate':
        this.#checkUnmappedBeforeConvertPrivate(event.offset, event.size);
        return;
      case 'stateChangeBegin':
        this.#beginStateChange(event.offset, event.size, event.toDiscard);
        return;
      case 'populateStep':
        this.#stateChange?.steps.push({ offset: event.offset, size: event.size, succeeded: [], failed: false });
        return;
      case 'notifyPopulateDone': {
        const step = this.#stateChange?.steps.at(-1);
        if (step === undefined) return;
        if (event.ret === 0) step.succeeded.push(`${event.listener}@${event.offset}+${event.size}`);
        else step.failed = true;
        return;
      }
      case 'notifyDiscard':
        if (event.rollback) this.#stateChange?.rollbackDiscards.push(`${event.listener}@${event.offset}+${event.size}`);
        return;
      case 'stateChangeEnd':
        this.#endStateChange(event.ret);
        return;
      case 'kvmSetAttributes':
      case 'notifyPopulate':
      case 'dmaMap':
      case 'dmaUnmap':
      case 'discardShared':
      case 'discardPrivate':
      case 'gmemConvertShared':
      case 'vmStop':
        return;
      default: {
        const unreachable: never = event;
        throw new Error(`unhandled event ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** In-place order (6), to shared: nothing is mapped before its CONVERT_SHARED. */
  #checkMapAfterConvertShared(container: string, iova: number, size: number, hostOffset: number): void {
    const vm = this.#vm;
    if (vm.config.mode !== 'inplace') return;
    const { blockSize, regionSize } = vm.config;
    if (hostOffset + size > regionSize) return;
    const first = Math.floor(hostOffset / blockSize);
    const count = Math.ceil((hostOffset + size) / blockSize) - first;
    if (!vm.memory.gmemShared.isRangeSet(first, count)) {
      this.#pending.push({
        invariant: 'inplace-order',
        message: `${container} maps ${hex(iova)}+${formatSize(size)} (offset ${hex(hostOffset)}) before guest_memfd converted it to shared`,
        container, iova, size, offset: hostOffset,
      });
    }
  }

  /** In-place order (6), to private: every mapping of the range is gone at CONVERT_PRIVATE. */
  #checkUnmappedBeforeConvertPrivate(offset: number, size: number): void {
    const vm = this.#vm;
    const { blockSize } = vm.config;
    const first = Math.floor(offset / blockSize);
    const count = Math.ceil((offset + size) / blockSize) - first;
    if (first + count > vm.memory.blocks || !vm.memory.pins.anyNonZero(first, count)) return;
    for (const container of vm.containers.values()) {
      container.mappings.forEach((iova, mSize, hostOffset) => {
        if (hostOffset < offset + size && hostOffset + mSize > offset) {
          this.#pending.push({
            invariant: 'inplace-order',
            message: `CONVERT_PRIVATE of ${hex(offset)}+${formatSize(size)} while ${container.id} still maps ${hex(iova)}+${formatSize(mSize)}`,
            container: container.id, iova, size: mSize, offset: hostOffset,
          });
          return false;
        }
        return true;
      });
    }
  }

  #beginStateChange(offset: number, size: number, toDiscard: boolean): void {
    const vm = this.#vm;
    if (toDiscard || vm.config.rollback === 'none') {
      this.#stateChange = undefined;
      return;
    }
    const first = offset / vm.config.blockSize;
    const count = size / vm.config.blockSize;
    this.#stateChange = {
      offset, size,
      priorRuns: vm.config.rollback === 'full' ? vm.rba.bitmap.setRuns(first, count) : undefined,
      steps: [],
      rollbackDiscards: [],
    };
  }

  /**
   * Rollback exactness (7): after a failed populate, exactly the listeners
   * notified successfully in the rolled-back steps got a discard (never the
   * failing one), and the bitmap is back to its prior value there.
   */
  #endStateChange(ret: number): void {
    const record = this.#stateChange;
    this.#stateChange = undefined;
    if (record === undefined || ret === 0) return;
    const vm = this.#vm;
    const failing = record.steps.findIndex((s) => s.failed);
    if (failing < 0) return;
    const rolledBack = vm.config.rollback === 'full' ? record.steps.slice(0, failing + 1) : [record.steps[failing]!];
    const expected = rolledBack.flatMap((s) => s.succeeded).sort();
    const actual = [...record.rollbackDiscards].sort();
    if (expected.join() !== actual.join()) {
      this.#pending.push({
        invariant: 'rollback',
        message: `populate of ${hex(record.offset)}+${formatSize(record.size)} failed: rollback discards [${actual.join(', ')}], expected exactly [${expected.join(', ')}]`,
        offset: record.offset, size: record.size,
      });
    }
    const { blockSize } = vm.config;
    const bitmap = vm.rba.bitmap;
    if (record.priorRuns !== undefined) {
      const after = bitmap.setRuns(record.offset / blockSize, record.size / blockSize);
      if (!sameRuns(after, record.priorRuns)) {
        this.#pending.push({
          invariant: 'rollback',
          message: `bitmap of ${hex(record.offset)}+${formatSize(record.size)} did not return to its prior value after full rollback`,
          offset: record.offset, size: record.size,
        });
      }
    } else {
      const step = record.steps[failing]!;
      if (!bitmap.isRangeClear(step.offset / blockSize, step.size / blockSize)) {
        this.#pending.push({
          invariant: 'rollback',
          message: `bits of the failed step ${hex(step.offset)}+${formatSize(step.size)} are still set after rollback`,
          offset: step.offset, size: step.size,
        });
      }
    }
  }

  // --- quiescent checks ----------------------------------------------------

  /**
   * No stale mapping (1): a mapping must not reach a block that is private
   * in both the bitmap and KVM (in place: private in guest_memfd), nor a
   * page freed since it was mapped.
   */
  #checkStaleMappings(container: VfioContainer, found: Violation[]): void {
    const vm = this.#vm;
    const { blockSize, regionSize } = vm.config;
    const bitmap = vm.rba.bitmap;
    const kvmShared = vm.kvm.shared;
    const inplace = vm.config.mode === 'inplace';
    container.mappings.forEach((iova, size, hostOffset, epoch) => {
      if (hostOffset + size > regionSize) return true;
      let reason: string | undefined;
      if (vm.memory.isStale(hostOffset, size, epoch)) reason = 'its page was freed after it was mapped';
      else {
        const first = Math.floor(hostOffset / blockSize);
        const end = Math.ceil((hostOffset + size) / blockSize);
        for (let b = first; b < end && reason === undefined; b++) {
          if (inplace && !vm.memory.gmemShared.test(b)) reason = 'guest_memfd holds it private';
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
  #checkEntryLimit(container: VfioContainer, found: Violation[]): void {
    const limit = container.dmaMaxMappings;
    if (limit > 0 && container.mappings.count > limit) {
      found.push({
        invariant: 'entry-limit',
        message: `${container.id} holds ${container.mappings.count} mappings, dma_entry_limit is ${limit}`,
        container: container.id,
      });
    }
  }

  /** Whole-mapping unmaps (5): every unmap range is a union of whole mappings. */
  #checkPartialUnmaps(container: VfioContainer, found: Violation[]): void {
    const seen = this.#partialSeen.get(container.id) ?? 0;
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
    this.#partialSeen.set(container.id, cuts.length);
  }
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
