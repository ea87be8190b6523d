/**
 * The conversion path at QEMU's grain: the bitmap-ops policies, the
 * lost-update check, the listener-list policies and use-after-free, and two
 * state changes interleaved step by step as two unlocked vCPU threads.
 */
import { describe, expect, it } from 'vitest';
import { BitmapExecutor, type BitmapExecutorState } from '../../src/core/bitmap-executor.js';
import { bitmapWriter, maskBits, type BitmapStep } from '../../src/core/bitmap-ops.js';
import { EventBus } from '../../src/core/events.js';
import type { Violation } from '../../src/core/invariants.js';
import { createListenerList, type Registration } from '../../src/core/listener-list.js';
import { callListener, isListenerCall, RamBlockAttributes, type ListenerCalls } from '../../src/core/ram-block-attributes.js';
import type { RamDiscardListener } from '../../src/core/ram-discard-manager.js';
import { SharedBitmap } from '../../src/core/shared-bitmap.js';
import type { BitmapOps } from '../../src/core/protocol-policy.js';

const KiB = 1024;

function state(nbits: number): BitmapExecutorState {
  return { bitmap: new SharedBitmap(nbits), intended: new SharedBitmap(nbits), lock: new Int32Array(new SharedArrayBuffer(4)), blockSize: 4 * KiB };
}

function steps(gen: Generator<BitmapStep, void, number>): BitmapStep[] {
  const out: BitmapStep[] = [];
  for (let s = gen.next(); !s.done; s = gen.next(0)) out.push(s.value);
  return out;
}

describe('bitmap ops at QEMU grain', () => {
  it('non-atomic bitmap_set is a load and a store per 64-bit word, with the mask of the range in each', () => {
    const out = steps(bitmapWriter('nonatomic').range(60, 70, true)); // blocks 60..129: words 0, 1, 2
    expect(out.map((s) => `${s.kind}:${'word' in s ? s.word : ''}`)).toEqual(['load:0', 'store:0', 'load:1', 'store:1', 'load:2', 'store:2']);
    const masks = out.filter((s) => s.kind === 'store').map((s) => (s.kind === 'store' ? maskBits(s.word, s.lo, s.hi) : []));
    expect(masks[0]).toEqual([60, 61, 62, 63]);
    expect(masks[1]).toHaveLength(64);
    expect(masks[2]).toEqual([128, 129]);
  });

  it('atomic bitmap ops are one step per word', () => {
    expect(steps(bitmapWriter('atomic').range(0, 130, false)).map((s) => s.kind)).toEqual(['atomic', 'atomic', 'atomic']);
    expect(steps(bitmapWriter('atomic').bit(64 + 33, true))).toEqual([{ kind: 'atomic', word: 1, set: true, lo: 0, hi: 2 }]);
  });

  it('two threads storing one word from stale loads lose an update, and the check says which block', () => {
    const s = state(256);
    const found: Violation[] = [];
    const a = new BitmapExecutor(s, found);
    const b = new BitmapExecutor(s, found);
    // vCPU A sets block 3, vCPU B sets block 40: disjoint pages, one word.
    a.execute({ kind: 'load', word: 0 });
    b.execute({ kind: 'load', word: 0 });
    b.execute({ kind: 'store', word: 0, set: true, lo: 0, hi: 1 << 8 });
    expect(found).toEqual([]);
    a.execute({ kind: 'store', word: 0, set: true, lo: 1 << 3, hi: 0 });
    expect(s.bitmap.test(40)).toBe(false); // B's update is gone
    expect(found).toHaveLength(1);
    expect(found[0]!.invariant).toBe('lost-update');
    expect(found[0]!.offset).toBe(40 * 4 * KiB);
  });

  it('the same interleaving with atomic ops, or opposite writes of one block, lose nothing', () => {
    const s = state(128);
    const found: Violation[] = [];
    const a = new BitmapExecutor(s, found);
    const b = new BitmapExecutor(s, found);
    a.execute({ kind: 'atomic', word: 0, set: true, lo: 1 << 3, hi: 0 });
    b.execute({ kind: 'atomic', word: 0, set: true, lo: 0, hi: 1 << 8 });
    expect(s.bitmap.test(3) && s.bitmap.test(40)).toBe(true);
    // Opposite conversions of block 3 from stale loads: the last store wins, and it meant to write block 3.
    a.execute({ kind: 'load', word: 0 });
    b.execute({ kind: 'load', word: 0 });
    a.execute({ kind: 'store', word: 0, set: false, lo: 1 << 3, hi: 0 });
    b.execute({ kind: 'store', word: 0, set: true, lo: 1 << 3, hi: 0 });
    expect(found).toEqual([]);
  });
});

/** A listener that records its calls. */
function listener(name: string, calls: string[]): RamDiscardListener {
  return {
    name, priority: 0, doubleDiscardSupported: true,
    notifyPopulate: (s) => { calls.push(`${name} populate ${s.offsetWithinRegion}`); return 0; },
    notifyDiscard: (s) => { calls.push(`${name} discard ${s.offsetWithinRegion}`); },
  };
}

const section = { mr: 'ram', offsetWithinRegion: 0, size: 1024 * 4 * KiB, offsetWithinAddressSpace: 0, readonly: false };

describe('rdl_list policies', () => {
  const reg = (name: string): Registration => ({ listener: listener(name, []), section });

  it('free: a walk standing on a listener that is unlinked and freed reads freed memory when it steps on, and ends there', () => {
    const list = createListenerList('free');
    const [x, y, z] = [reg('x'), reg('y'), reg('z')];
    for (const r of [x, y, z]) list.insert(r, false); // head insertion: z, y, x
    const freed: string[] = [];
    const walk = list.walk(false, (r) => freed.push(r.listener.name));
    expect(walk.next()?.listener.name).toBe('z');
    expect(walk.next()?.listener.name).toBe('y');
    list.remove(y); // while the walk stands on y
    // QLIST_REMOVE set y's le_next to NULL: what the walk reads from the freed node ends it; x is never notified.
    expect(walk.next()).toBeUndefined();
    expect(freed).toEqual(['y']);
    expect(list.all().map((r) => r.listener.name)).toEqual(['z', 'x']);
    // Removing a listener the walk has not reached yet is safe: it is skipped.
    const again = list.walk(false, (r) => freed.push(r.listener.name));
    expect(again.next()?.listener.name).toBe('z');
    list.remove(x);
    expect(again.next()).toBeUndefined();
    expect(freed).toEqual(['y']);
  });

  it('rcu: an unlinked node keeps its next pointer and lives on, so a walk standing on it steps on safely', () => {
    const list = createListenerList('rcu');
    const [x, y] = [reg('x'), reg('y')];
    list.insert(x, false);
    list.insert(y, false);
    const freed: string[] = [];
    const walk = list.walk(false, (r) => freed.push(r.listener.name));
    expect(walk.next()?.listener.name).toBe('y');
    list.remove(y);
    list.remove(x);
    expect(walk.next()?.listener.name).toBe('x');
    expect(walk.next()).toBeUndefined();
    expect(freed).toEqual([]);
  });

  it('priorities: ascending priority, ties in registration order, under both policies', () => {
    for (const policy of ['free', 'rcu'] as const) {
      const list = createListenerList(policy);
      const mk = (name: string, priority: number): Registration => ({ listener: { ...listener(name, []), priority }, section });
      for (const r of [mk('vfio-a', 10), mk('kvm', 0), mk('vfio-b', 10)]) list.insert(r, true);
      expect(list.all().map((r) => r.listener.name)).toEqual(['kvm', 'vfio-a', 'vfio-b']);
      const back = list.walk(true, () => undefined);
      expect([back.next(), back.next(), back.next()].map((r) => r?.listener.name)).toEqual(['vfio-b', 'vfio-a', 'kvm']);
    }
  });
});

/**
 * Run two state changes as two unlocked threads: each step of `order`
 * (0 or 1) advances that thread by one step; listener calls are made
 * directly, bitmap steps by the thread's own executor.
 */
function interleave(ops: BitmapOps, order: number[]): { rba: RamBlockAttributes; found: Violation[] } {
  const calls: string[] = [];
  const rba = new RamBlockAttributes({ mr: 'ram', regionSize: 1024 * 4 * KiB, blockSize: 4 * KiB, rollback: 'none', priorities: false, bitmapOps: ops });
  rba.registerListener(listener('c0', calls), section);
  const found: Violation[] = [];
  const st: BitmapExecutorState = { bitmap: rba.bitmap, intended: new SharedBitmap(rba.bitmapSize), lock: new Int32Array(new SharedArrayBuffer(4)), blockSize: 4 * KiB };
  // vCPU 0 shares block 3, vCPU 1 shares block 40: disjoint pages in one 256 KiB word.
  const threads: ListenerCalls[] = [rba.stateChangeCalls(3 * 4 * KiB, 4 * KiB, false), rba.stateChangeCalls(40 * 4 * KiB, 4 * KiB, false)];
  const executors = [new BitmapExecutor(st, found), new BitmapExecutor(st, found)];
  const results: Array<IteratorResult<unknown, number> | undefined> = [undefined, undefined];
  const step = (t: number): void => {
    const prev = results[t];
    if (prev?.done === true) return;
    let value = 0;
    if (prev !== undefined) {
      const call = prev.value as Parameters<typeof isListenerCall>[0];
      value = isListenerCall(call) ? (call.kind === 'populate' ? call.listener.notifyPopulate(call.section) : (call.listener.notifyDiscard(call.section), 0)) : executors[t]!.execute(call);
    }
    results[t] = prev === undefined ? threads[t]!.next() : threads[t]!.next(value);
  };
  for (const t of order) step(t);
  while (results.some((r) => r?.done !== true)) {
    step(0);
    step(1);
  }
  return { rba, found };
}

describe('two unlocked state changes, step by step', () => {
  // Steps of one 4 KiB populate: 2 scans, then load, store (non-atomic) or one atomic, then the listener call.
  const racy = [0, 0, 1, 1, 0, 1, 0, 1, 1, 0]; // both scan, A loads, B loads, B stores, A stores

  it('non-atomic: a store from a stale load undoes the other vCPU\'s block (lost-update), and the bitmap says private for a mapped page', () => {
    const { rba, found } = interleave('nonatomic', racy);
    expect(found.map((v) => v.invariant)).toEqual(['lost-update']);
    expect(rba.bitmap.test(3)).toBe(true);
    expect(rba.bitmap.test(40)).toBe(false);
  });

  it('atomic: the same schedule keeps both blocks', () => {
    const { rba, found } = interleave('atomic', racy);
    expect(found).toEqual([]);
    expect(rba.bitmap.test(3) && rba.bitmap.test(40)).toBe(true);
  });

  it('non-atomic without overlap in time (one after the other) loses nothing', () => {
    const { rba, found } = interleave('nonatomic', [0, 0, 0, 0, 0, 0]);
    expect(found).toEqual([]);
    expect(rba.bitmap.test(3) && rba.bitmap.test(40)).toBe(true);
  });

  it('the merged walk reports use-after-free on the bus when its listener is unregistered under it, and ends there', () => {
    const bus = new EventBus();
    const events: string[] = [];
    bus.subscribe((e) => { if (e.kind === 'listenerUseAfterFree') events.push(e.listener); });
    const calls: string[] = [];
    const rba = new RamBlockAttributes({ mr: 'ram', regionSize: 1024 * 4 * KiB, blockSize: 4 * KiB, rollback: 'none', priorities: false, bitmapOps: 'atomic', listenerList: 'free', bus });
    const c0 = listener('c0', calls);
    const c1 = listener('c1', calls);
    rba.registerListener(c0, section);
    rba.registerListener(c1, section); // list: c1, c0
    const st: BitmapExecutorState = { bitmap: rba.bitmap, intended: new SharedBitmap(rba.bitmapSize), lock: new Int32Array(new SharedArrayBuffer(4)), blockSize: 4 * KiB };
    const exec = new BitmapExecutor(st, []);
    const change = rba.stateChangeCalls(0, 4 * KiB, false);
    let s = change.next();
    while (!s.done && !isListenerCall(s.value)) s = change.next(exec.execute(s.value));
    expect(s.done).toBe(false);
    // The walk stands on c1 (its populate is in flight); the main loop unregisters c1 meanwhile.
    rba.unregisterListener(c1);
    s = change.next(0);
    expect(events).toEqual(['c1']);
    while (!s.done) s = change.next(isListenerCall(s.value) ? callListener(s.value) : exec.execute(s.value));
    // The walk read NULL from the freed node and ended: c0, after c1 in the list, never heard of the populate.
    expect(calls).not.toContain('c0 populate 0');
  });
});
