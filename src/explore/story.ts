/**
 * A failing trace as a numbered story a QEMU developer can read: who did
 * what, in what order, and which QEMU or kernel function it stands for.
 * Runs of identical steps (a 2 MiB populate repeated 128 times) collapse
 * into one line with a count.
 */
import { threadName } from '../runtime/deterministic/qemu-threads.js';
import { retName } from '../core/errno.js';
import type { Message } from '../actors/protocol.js';
import { EXIT_MAP_GPA, EXIT_MAP_GPA_FALLOCATE, EXIT_MEMORY_FAULT, EXIT_PUNCH_HOLE, DMA_OUTCOMES } from '../actors/protocol.js';

import { firstFailure } from './failure.js';
import { BITS_PER_LONG, maskBits } from '../core/bitmap-ops.js';
import { BITMAP_STEP_OPS } from '../actors/bitmap-step-message.js';
import { formatSize } from '../core/units.js';
import type { DeterministicResult } from '../runtime/deterministic/deterministic-run.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** How each exit reason reads in a story. */
const EXIT_NAMES: Record<number, string> = {
  [EXIT_MAP_GPA]: 'MapGPA hypercall',
  [EXIT_MEMORY_FAULT]: 'memory fault',
  [EXIT_MAP_GPA_FALLOCATE]: 'MapGPA hypercall (fallocate)',
  [EXIT_PUNCH_HOLE]: 'MapGPA hypercall (punch hole only)',
};

/** What a delivery means, and the function it stands for. */
function describe(message: Message, to: string): { text: string; fn: string } {
  switch (message.type) {
    case 'exit':
      return {
        text: message.reason === EXIT_PUNCH_HOLE
          ? `${EXIT_NAMES[message.reason]}: punch a hole in guest_memfd at ${hex(message.gpa)}+${formatSize(message.size)}`
          : `${EXIT_NAMES[message.reason] ?? 'exit'}: convert ${hex(message.gpa)}+${formatSize(message.size)} to ${message.toPrivate ? 'private' : 'shared'}`,
        fn: 'kvm_convert_memory',
      };
    case 'exitDone':
      return { text: `conversion done (ret ${retName(message.ret)}), vCPU resumes`, fn: 'kvm_cpu_exec' };
    case 'stateChange':
      return { text: `state change ${hex(message.offset)}+${formatSize(message.size)} to ${message.toDiscard ? 'private (discard)' : 'shared (populate)'}`, fn: 'ram_block_attributes_state_change' };
    case 'stateChangeDone':
      return { text: `state change returns ${retName(message.ret)}`, fn: 'ram_block_attributes_state_change' };
    case 'notifyPopulate':
      return to === 'kvm'
        ? { text: `populate ${hex(message.offset)}+${formatSize(message.size)}: KVM attribute + CONVERT_SHARED`, fn: 'CVMPrivateSharedListener (v4 priority 0)' }
        : { text: `populate ${hex(message.offset)}+${formatSize(message.size)} at IOVA ${hex(message.iova)}: map`, fn: 'vfio_ram_discard_notify_populate' };
    case 'notifyDiscard':
      return to === 'kvm'
        ? { text: `discard ${hex(message.offset)}+${formatSize(message.size)}: KVM attribute + CONVERT_PRIVATE`, fn: 'CVMPrivateSharedListener (v4 priority 0)' }
        : { text: `discard ${hex(message.offset)}+${formatSize(message.size)} at IOVA ${hex(message.iova)}: unmap`, fn: 'vfio_ram_discard_notify_discard' };
    case 'notifyDone':
      return { text: `listener returns ${retName(message.ret)}`, fn: 'RamDiscardListener' };
    case 'register':
      return { text: `register listener for ${hex(message.offset)}+${formatSize(message.size)} at IOVA ${hex(message.iova)} (replays shared runs)`, fn: 'ram_block_attributes_rdm_register_listener' };
    case 'unregister':
      return { text: `unregister listener at IOVA ${hex(message.iova)} (one discard of the section)`, fn: 'ram_block_attributes_rdm_unregister_listener' };
    case 'registerDone':
      return { text: `(un)registration returns ${retName(message.ret)}`, fn: 'vfio_ram_discard_register_listener' };
    case 'dmaRequest':
      return { text: `device DMA ${message.write ? 'write' : 'read'} ${hex(message.iova)}+${formatSize(message.size)}`, fn: 'device DMA through the IOMMU' };
    case 'dmaDone':
      return { text: `DMA outcome: ${DMA_OUTCOMES[message.outcome] ?? message.outcome}`, fn: 'device DMA through the IOMMU' };
    case 'check':
      return { text: 'quiescent point: check mappings against the bitmap', fn: 'invariant check' };
    case 'checkDone':
      return { text: `check found ${message.violations} violation(s)`, fn: 'invariant check' };
    case 'deviceAccess':
      if (message.size === 0) return { text: 'device idle: no section registered', fn: 'device DMA through the IOMMU' };
      return { text: `device reads ${hex(message.iova)}+${formatSize(message.size)} on its own: ${DMA_OUTCOMES[message.outcome] ?? message.outcome}`, fn: 'device DMA through the IOMMU' };
    case 'hotplug':
      return {
        text: `host hot-unplugs the devices (${message.listeners} listener(s) unregistered) and plugs them again (${message.sections} section(s) registered)`,
        fn: 'device_del + device_add: vfio_listener_region_del / _add',
      };
    case 'bitmapStep':
      return describeBitmapStep(message, to);
    case 'bitmapStepDone':
      return { text: `bitmap access done (${message.ret})`, fn: 'ram_block_attributes_state_change' };
    case 'start':
      return { text: 'start', fn: 'vCPU start' };
    default: {
      const unreachable: never = message;
      return { text: JSON.stringify(unreachable), fn: '?' };
    }
  }
}

/** Blocks as `a-b` runs. */
function blockRuns(bits: readonly number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < bits.length;) {
    let j = i;
    while (j + 1 < bits.length && bits[j + 1] === bits[j]! + 1) j++;
    runs.push(i === j ? `${bits[i]}` : `${bits[i]}-${bits[j]}`);
    i = j + 1;
  }
  return runs.join(',');
}

/** A bitmap access of a state change, as the converting vCPU thread makes it. */
function describeBitmapStep(m: Extract<Message, { type: 'bitmapStep' }>, to: string): { text: string; fn: string } {
  const op = BITMAP_STEP_OPS[m.op];
  const words = `word ${m.index} (blocks ${m.index * BITS_PER_LONG}-${m.index * BITS_PER_LONG + BITS_PER_LONG - 1})`;
  switch (op) {
    case 'find-set':
    case 'find-zero':
      return { text: `${to} thread scans blocks ${m.index}-${m.a - 1} for a ${op === 'find-set' ? 'shared' : 'private'} block`, fn: `ram_block_attributes_state_change: ${op === 'find-set' ? 'find_next_bit' : 'find_next_zero_bit'}` };
    case 'load':
      return { text: `${to} thread loads bitmap ${words} into a register`, fn: 'ram_block_attributes_state_change: non-atomic bitops, the load of *p' };
    case 'store-or':
    case 'store-andnot':
      return { text: `${to} thread stores ${words} back from its register with blocks ${blockRuns(maskBits(m.index, m.a, m.b))} ${op === 'store-or' ? 'set' : 'cleared'}`, fn: `ram_block_attributes_state_change: ${op === 'store-or' ? 'bitmap_set/set_bit, *p |= mask' : 'bitmap_clear/clear_bit, *p &= ~mask'}` };
    case 'atomic-or':
    case 'atomic-andnot':
      return { text: `${to} thread atomically ${op === 'atomic-or' ? 'sets' : 'clears'} blocks ${blockRuns(maskBits(m.index, m.a, m.b))} of ${words}`, fn: `ram_block_attributes_state_change: ${op === 'atomic-or' ? 'qatomic_or' : 'qatomic_and'}` };
    default:
      return { text: `bitmap step ${m.op}`, fn: 'ram_block_attributes_state_change' };
  }
}

/** Several bitmap accesses of one thread in a row, nothing between them: what they did. */
function describeUninterrupted(steps: ReadonlyArray<Extract<Message, { type: 'bitmapStep' }>>, to: string): string {
  const scans = steps.filter((m) => m.op <= 1).length;
  const written = steps.filter((m) => m.op >= 3);
  const words = [...new Set(written.map((m) => m.index))];
  const set = written.filter((m) => m.op === 3 || m.op === 5).flatMap((m) => maskBits(m.index, m.a, m.b));
  const cleared = written.filter((m) => m.op === 4 || m.op === 6).flatMap((m) => maskBits(m.index, m.a, m.b));
  const parts = [
    ...(scans > 0 ? [`${scans} scan(s)`] : []),
    ...(words.length > 0 ? [`${steps.some((m) => m.op === 2) ? 'loads and stores' : 'atomically updates'} word(s) ${words.length === 1 ? words[0] : `${Math.min(...words)}-${Math.max(...words)}`}`] : []),
    ...(set.length > 0 ? [`setting blocks ${blockRuns(set)}`] : []),
    ...(cleared.length > 0 ? [`clearing blocks ${blockRuns(cleared)}`] : []),
  ];
  return `${to} thread, ${steps.length} bitmap accesses with nothing between them: ${parts.join(', ')}`;
}

interface Line {
  readonly key: string;
  readonly text: string;
  /** The deliveries (trace indices) this line tells. */
  readonly deliveries: readonly number[];
}

/** A story, and for each delivery of the trace the numbered step that tells it. */
export interface NumberedStory {
  /** The numbered lines, as {@link story} prints them. */
  readonly lines: string[];
  /** By trace index: the story step (from 1) that tells the delivery; 0 for one after the story's end. */
  readonly stepOf: Int32Array;
}

/** The story of a recorded run, up to and including its first violation (or QEMU's exit or abort). */
export function story(result: DeterministicResult): string[] {
  return numberedStory(result).lines;
}

/**
 * The story, and which of its numbered steps tells each delivery: a
 * collapsed line tells many, and a delivery the story leaves untold (a
 * bitmap access's reply) belongs to the step before it.
 */
export function numberedStory(result: DeterministicResult): NumberedStory {
  const names = result.actors.map((a) => a.id);
  const failure = firstFailure(result);
  const end = failure !== undefined ? failure.step : result.trace.length - 1;
  // Start-up: each container registers its sections in turn before any vCPU runs; with nothing
  // shared yet nothing is replayed, so those request/reply pairs say one thing: told in one line.
  let start = 0;
  const registered: string[] = [];
  while (start + 1 <= end && result.trace[start]!.message.type === 'register' && result.trace[start + 1]!.message.type === 'registerDone' &&
    (result.trace[start + 1]!.message as { ret: number }).ret === 0) {
    const from = names[result.trace[start]!.from] ?? `actor${result.trace[start]!.from}`;
    if (!registered.includes(from)) registered.push(from);
    start += 2;
  }
  const startup: Line[] = start === 0 ? [] : [{
    key: 'startup',
    text: `start-up: ${registered.join(', ')} register ${start / 2} section(s); nothing is shared yet, so nothing is replayed  [vfio_listener_region_add]`,
    deliveries: Array.from({ length: start }, (_, i) => i),
  }];
  // A bitmap access's reply carries only a scan's result: the next line says what it led to.
  // A device's own reads that went as expected (a mapped page, or an IOMMU fault on an unmapped
  // IOVA) are counted, not told: only the one that failed, if any, is a line of the story.
  const window = result.trace.slice(start, end + 1).map((d, i) => ({ d, at: start + i }));
  const quiet = (w: (typeof window)[number]): boolean => w.d.message.type === 'deviceAccess' && w.at !== end;
  const told = window.filter((w) => w.d.message.type !== 'bitmapStepDone' && !quiet(w));
  // Where one QEMU thread preempted another (the thread of the step before still had a step
  // waiting): said on the line that tells the preempting step or, for an untold reply, the next
  // told step of the same thread. A quiet device read's preemption goes untold with it.
  const isTold = new Set(told.map((w) => w.at));
  const preemptsAt = new Map<number, number>();
  const carried = new Map<number, number>();
  for (const w of window) {
    if (w.d.preempts !== undefined && !quiet(w)) carried.set(w.d.thread, w.d.preempts);
    const p = carried.get(w.d.thread);
    if (p !== undefined && isTold.has(w.at)) {
      preemptsAt.set(w.at, p);
      carried.delete(w.d.thread);
    }
  }
  const preemption = (at: number): string => {
    const t = preemptsAt.get(at);
    return t === undefined ? '' : `  <- preempts ${threadName(t, names)}`;
  };
  const reads = window.filter(quiet).map((w) => w.at);
  const lines: Line[] = [...startup];
  if (reads.length > 0) {
    lines.push({ key: 'device-reads', text: `(the devices read on their own ${reads.length} time(s) in between: not told; none of them broke an invariant)`, deliveries: reads });
  }
  for (let i = 0; i < told.length;) {
    const d = told[i]!.d;
    const from = names[d.from] ?? `actor${d.from}`;
    const to = names[d.to] ?? `actor${d.to}`;
    // Bitmap accesses of one vCPU thread with nothing else between them: one line.
    let j = i;
    while (j + 1 < told.length && told[j + 1]!.d.message.type === 'bitmapStep' && told[j + 1]!.d.to === d.to && d.message.type === 'bitmapStep') j++;
    if (j - i + 1 >= 3) {
      const steps = told.slice(i, j + 1).map((x) => x.d.message as Extract<Message, { type: 'bitmapStep' }>);
      const preempting = told.slice(i, j + 1).map((x) => preemption(x.at)).find((p) => p !== '') ?? '';
      lines.push({ key: `${from}>${to}:bitmapSteps`, text: `${from} -> ${to}: ${describeUninterrupted(steps, to)}  [ram_block_attributes_state_change]${preempting}`,
        deliveries: told.slice(i, j + 1).map((x) => x.at) });
      i = j + 1;
      continue;
    }
    const { text, fn } = describe(d.message, to);
    const op = d.message.type === 'bitmapStep' ? `:${d.message.op}` : '';
    lines.push({ key: `${from}>${to}:${d.message.type}${op}`, text: `${from} -> ${to}: ${text}  [${fn}]${preemption(told[i]!.at)}`, deliveries: [told[i]!.at] });
    i++;
  }
  const collapsed = collapse(lines);
  const stepOf = new Int32Array(result.trace.length);
  collapsed.forEach((line, k) => {
    for (const at of line.deliveries) stepOf[at] = k + 1;
  });
  // Untold deliveries (a bitmap access's reply) belong to the step before them.
  for (let at = 1; at <= end && at < stepOf.length; at++) if (stepOf[at] === 0) stepOf[at] = stepOf[at - 1]!;
  const out = collapsed.map((line, i) => `${String(i + 1).padStart(3)}. ${line.text}`);
  if (failure !== undefined) out.push(`=> ${failure.name}: ${failure.message}`);
  return { lines: out, stepOf };
}

/** Collapse a block of k lines repeated 3+ times (same actors and message types) into one line. */
function collapse(lines: readonly Line[]): Line[] {
  const out: Line[] = [];
  let i = 0;
  while (i < lines.length) {
    let best: { period: number; repeats: number } | undefined;
    for (let period = 1; period <= 12 && i + 3 * period <= lines.length; period++) {
      let repeats = 1;
      while (i + (repeats + 1) * period <= lines.length &&
        lines.slice(i + repeats * period, i + (repeats + 1) * period).every((l, j) => l.key === lines[i + j]!.key)) repeats++;
      if (repeats >= 3 && (best === undefined || repeats * period > best.repeats * best.period)) best = { period, repeats };
    }
    if (best === undefined) {
      out.push(lines[i]!);
      i++;
      continue;
    }
    const block = lines.slice(i, i + best.period).map((l) => l.text).join('; then ');
    const deliveries = lines.slice(i, i + best.repeats * best.period).flatMap((l) => l.deliveries);
    out.push({ key: 'collapsed', text: `${best.repeats} times (${best.repeats * best.period} deliveries, first shown): ${block}`, deliveries });
    i += best.repeats * best.period;
  }
  return out;
}
