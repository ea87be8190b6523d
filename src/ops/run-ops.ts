/**
 * Runs an ops script against the core, deterministically, and collects
 * what `convsim ops` prints: a result per op, every effect in order, the
 * final state, and the invariant violations (checked after every op).
 */
import { ConfidentialVm } from '../core/confidential-vm.js';
import { EINVAL } from '../core/errno.js';
import { isEffect, type EffectEvent } from '../core/events.js';
import { InvariantChecker, type Violation } from '../core/invariants.js';
import type { SharedBitmap } from '../core/shared-bitmap.js';
import type { DmaOutcome } from '../core/vfio/container.js';
import { isFatal, registerOutcome, type FatalOutcome, type QemuOutcome } from '../core/qemu-outcome.js';
import { MAX_PRINTED_EVENTS, type Op, type OpsScript } from './ops-schema.js';

export type OpResult =
  | { ret: number }
  /** The op came after QEMU exited or aborted (or never started): it did not run. */
  | { notRun: FatalOutcome }
  | { value: boolean }
  | { runs: Array<[number, number]> }
  | { outcome: DmaOutcome };

export interface OpsFinalState {
  /** Maximal runs of shared blocks, as [offset, size] in bytes. */
  shared: Array<[number, number]>;
  /** Maximal runs of KVM-private memory, as [gpa, size]. */
  kvmPrivate: Array<[number, number]>;
  /** Every live mapping per container, sorted by IOVA, not merged. */
  mappings: Record<string, Array<[number, number]>>;
  vmStopped: boolean;
  /** How the QEMU process stands after the script (see `QemuOutcome`). */
  outcome: QemuOutcome;
}

/** A violation, with the index of the op after which it was found. */
export type OpsViolation = Violation & { op: number };

export interface OpsOutput {
  results: OpResult[];
  /** The effects in order: the first `MAX_PRINTED_EVENTS` (or `maxEvents`) of them. */
  events: EffectEvent[];
  /** Present only when events were left out: how many, and why. */
  eventsOmitted?: { count: number; note: string };
  final: OpsFinalState;
  violations: OpsViolation[];
}

/**
 * Run every op of `script`. At most `maxEvents` events are kept (a
 * whole-region conversion emits several per block); the rest are counted.
 */
export function runOps(script: OpsScript, maxEvents = MAX_PRINTED_EVENTS): OpsOutput {
  const vm = new ConfidentialVm(script.config);
  const checker = new InvariantChecker(vm);
  const events: EffectEvent[] = [];
  let omitted = 0;
  vm.bus.subscribe((event) => {
    if (!isEffect(event)) return;
    if (events.length < maxEvents) events.push(event);
    else omitted++;
  });
  const results: OpResult[] = [];
  const violations: OpsViolation[] = [];
  const reported = new Set<string>();
  const report = (found: readonly Violation[], op: number): void => {
    for (const v of found) {
      // A standing condition (a stale mapping) is reported once, where it first appears.
      const key = `${v.invariant}|${v.message}`;
      if (reported.has(key)) continue;
      reported.add(key);
      violations.push({ ...v, op });
    }
  };

  const setup = new ContainerSetup();
  let fatal: FatalOutcome | undefined;
  script.ops.forEach((op, index) => {
    if (fatal !== undefined) {
      results.push({ notRun: fatal });
      return;
    }
    setup.observe(op);
    const before = mayBeInvalid(op) ? digest(vm) : undefined;
    const { result, outcome } = execute(vm, checker, op, setup);
    if (outcome !== undefined && isFatal(outcome)) fatal = outcome;
    results.push(result);
    report(checker.drain(), index);
    report(checker.checkQuiescent(), index);
    if (op.op === 'convert' && 'ret' in result && result.ret === 0) {
      report(checker.checkConverted(op.gpa, op.size, op.toPrivate), index);
    }
    if (before !== undefined && 'ret' in result && result.ret === -EINVAL && digest(vm) !== before) {
      report([{ invariant: 'validity', message: `${op.op} returned -EINVAL but changed state` }], index);
    }
  });
  checker.dispose();
  const outcome: QemuOutcome = fatal ?? (vm.vmStopped ? 'vm-stopped' : 'running');
  const output: OpsOutput = { results, events, final: finalState(vm, outcome), violations };
  if (omitted > 0) {
    output.eventsOmitted = { count: omitted, note: `${omitted} events after the first ${maxEvents} were counted, not printed (--max-events raises the cap)` };
  }
  return output;
}

/**
 * Which containers are still being set up. QEMU's `vfio_container_region_add`
 * treats a failure while the container is set up (`!bcontainer->initialized`:
 * the region adds of its device's realize) as a realize failure, and
 * afterwards as fatal (`hw_error`). In a script, a container is set up from
 * its `addContainer` until the first op that is neither `addContainer` nor
 * `register` (the VM running: a conversion, a state change, DMA, ...).
 */
class ContainerSetup {
  readonly #settingUp = new Set<string>();

  observe(op: Op): void {
    if (op.op === 'addContainer') this.#settingUp.add(op.id);
    else if (op.op !== 'register') this.#settingUp.clear();
  }

  initialized(container: string): boolean {
    return !this.#settingUp.has(container);
  }
}

function execute(vm: ConfidentialVm, checker: InvariantChecker, op: Op, setup: ContainerSetup): { result: OpResult; outcome?: QemuOutcome } {
  switch (op.op) {
    case 'register': {
      const r = vm.registerListener(op.container, op.section, op.listener);
      const outcome = registerOutcome(r.failure, setup.initialized(op.container));
      return { result: { ret: r.ret }, ...(outcome === undefined ? {} : { outcome }) };
    }
    case 'unregister':
      vm.unregisterNamed(op.container, op.listener ?? op.container);
      return { result: { ret: 0 } };
    default:
      return { result: executeSimple(vm, checker, op) };
  }
}

function executeSimple(vm: ConfidentialVm, checker: InvariantChecker, op: Exclude<Op, { op: 'register' | 'unregister' }>): OpResult {
  switch (op.op) {
    case 'addContainer':
      vm.addContainer(op.id, op.backend, op.dmaEntryLimit);
      return { ret: 0 };
    case 'stateChange':
      return { ret: vm.stateChange(op.offset, op.size, op.toDiscard) };
    case 'convert':
      return { ret: vm.convert(op.gpa, op.size, op.toPrivate) };
    case 'isPopulated':
      return { value: vm.rba.isPopulated(vm.section({ offset: op.offset, size: op.size, iova: op.offset })) };
    case 'replayPopulated':
    case 'replayDiscarded': {
      const runs: Array<[number, number]> = [];
      const section = vm.section({ offset: op.offset, size: op.size, iova: op.offset });
      const collect = (s: { offsetWithinRegion: number; size: number }): number => {
        runs.push([s.offsetWithinRegion, s.size]);
        return 0;
      };
      if (op.op === 'replayPopulated') vm.rba.replayPopulated(section, collect);
      else vm.rba.replayDiscarded(section, collect);
      return { runs };
    }
    case 'dmaMap':
      return { ret: vm.container(op.container).dmaMap(op.iova, op.size, op.offset) };
    case 'dmaUnmap':
      return { ret: vm.container(op.container).dmaUnmap(op.iova, op.size) };
    case 'failNextMaps':
      vm.container(op.container).failNextMaps(op.count, op.errno);
      return { ret: 0 };
    case 'dma': {
      const outcome = vm.dma(op.container, op.iova, op.size);
      checker.recordAccess(op.container, op.iova, op.size, outcome);
      return { outcome };
    }
    default: {
      const unreachable: never = op;
      throw new Error(`unknown op ${JSON.stringify(unreachable)}`);
    }
  }
}

/** Ops whose -EINVAL must leave the state untouched (invariant 8). */
function mayBeInvalid(op: Op): boolean {
  return op.op === 'stateChange' || op.op === 'convert' || op.op === 'dmaMap' || op.op === 'dmaUnmap';
}

/** A fingerprint of all protocol state, to prove an invalid request changed nothing. */
function digest(vm: ConfidentialVm): string {
  const parts = [
    JSON.stringify(vm.rba.bitmap.setRuns()),
    JSON.stringify(vm.kvm.shared.setRuns()),
    vm.config.mode === 'inplace' ? JSON.stringify(vm.memory.gmemShared.setRuns()) : '',
  ];
  for (const container of vm.containers.values()) {
    let h = 0;
    container.mappings.forEach((iova, size, hostOffset) => {
      h = (Math.imul(h, 31) + iova / 4096 + size / 4096 * 7 + hostOffset / 4096 * 13) | 0;
    });
    parts.push(`${container.id}:${container.mappings.count}:${h}`);
  }
  return parts.join('|');
}

function runsInBytes(bitmap: SharedBitmap, blockSize: number, base: number, wantSet: boolean): Array<[number, number]> {
  const set = bitmap.setRuns();
  if (wantSet) return set.map(([b, n]) => [base + b * blockSize, n * blockSize]);
  const clear: Array<[number, number]> = [];
  let next = 0;
  for (const [b, n] of set) {
    if (b > next) clear.push([base + next * blockSize, (b - next) * blockSize]);
    next = b + n;
  }
  if (next < bitmap.size) clear.push([base + next * blockSize, (bitmap.size - next) * blockSize]);
  return clear;
}

function finalState(vm: ConfidentialVm, outcome: QemuOutcome): OpsFinalState {
  const { blockSize, gpaBase } = vm.config;
  // fromEntries defines own properties: a container named `__proto__` is kept like any other.
  const mappings: Record<string, Array<[number, number]>> = Object.fromEntries([...vm.containers.values()].map((container) => {
    const list: Array<[number, number]> = [];
    container.mappings.forEach((iova, size) => {
      list.push([iova, size]);
    });
    return [container.id, list];
  }));
  return {
    shared: runsInBytes(vm.rba.bitmap, blockSize, 0, true),
    kvmPrivate: runsInBytes(vm.kvm.shared, blockSize, gpaBase, false),
    mappings,
    vmStopped: vm.vmStopped,
    outcome,
  };
}
