/** Trace arguments and instant events: names and values, never sampled out. */
import { describe, expect, it } from 'vitest';
import { messageArgs, violationArgs } from '../../src/actors/message-args.js';
import { EXIT_MAP_GPA } from '../../src/actors/protocol.js';
import { ENOSPC } from '../../src/core/errno.js';
import { TraceRecorder } from '../../src/workers/trace-recorder.js';

const names = ['kvm', 'rba', 'c0', 'vcpu0'];
const name = (a: number): string => names[a] ?? `actor${a}`;

describe('messageArgs', () => {
  it('names actors, addresses, sizes, directions and errnos', () => {
    expect(messageArgs({ type: 'exit', from: 3, tag: 2, reason: EXIT_MAP_GPA, gpa: 0x20_0000, size: 0x20_0000, toPrivate: true }, name))
      .toEqual({ from: 'vcpu0', tag: 2, reason: 'KVM_HC_MAP_GPA_RANGE', gpa: '0x200000', size: '2M', direction: 'to private' });
    expect(messageArgs({ type: 'notifyDone', from: 2, tag: 9, ret: -ENOSPC }, name)).toEqual({ from: 'c0', tag: 9, ret: '-ENOSPC (-28)' });
    expect(messageArgs({ type: 'stateChange', from: 0, tag: 1, offset: 0x3000, size: 0x1000, toDiscard: false, vcpu: 3 }, name))
      .toMatchObject({ from: 'kvm', offset: '0x3000', size: '4K', direction: 'to shared (populate)', vcpu: 'vcpu0' });
    expect(messageArgs({ type: 'dmaDone', from: 2, tag: 1, outcome: 2 }, name)).toMatchObject({ outcome: 'dma-to-private' });
  });

  it('a violation carries its invariant, message and location', () => {
    expect(violationArgs({ invariant: 'stale-mapping', message: 'm', container: 'c1', iova: 0x1000, size: 0x2000 }))
      .toEqual({ invariant: 'stale-mapping', message: 'm', container: 'c1', iova: '0x1000', size: '8K' });
  });
});

describe('TraceRecorder instants', () => {
  it('keeps every violation instant on its track when the slices are sampled', () => {
    const recorder = new TraceRecorder(7, 20);
    for (let i = 0; i < 1000; i++) {
      recorder.slice('notifyPopulate', i, 0.5, 0, {});
      if (i % 100 === 50) recorder.instant('violation: lost-update', i + 0.5, { invariant: 'lost-update' });
    }
    const instants = recorder.events.filter((e) => e.ph === 'i');
    expect(instants.map((e) => e.ts)).toEqual([50.5, 150.5, 250.5, 350.5, 450.5, 550.5, 650.5, 750.5, 850.5, 950.5]);
    expect(instants.every((e) => e.s === 't' && e.tid === 7)).toBe(true);
    expect(recorder.events.filter((e) => e.ph === 'X').length).toBeLessThanOrEqual(20);
  });
});
