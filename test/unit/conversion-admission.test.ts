import { describe, expect, it } from 'vitest';
import { PQueueAdmission, SyncAdmission, type ConversionAdmission } from '../../src/actors/kvm-exit/conversion-admission.js';

/** Admit 6 tasks; finish them by hand; record start order and the most running at once. */
async function exercise(admission: ConversionAdmission): Promise<{ order: number[]; maxRunning: number; idleSeen: boolean }> {
  const order: number[] = [];
  const finishers: Array<() => void> = [];
  let running = 0;
  let maxRunning = 0;
  for (let i = 0; i < 6; i++) {
    admission.admit((done) => {
      order.push(i);
      running++;
      maxRunning = Math.max(maxRunning, running);
      finishers.push(() => {
        running--;
        done();
      });
    });
  }
  const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  await settle();
  while (finishers.length > 0) {
    finishers.shift()!();
    await settle();
  }
  let idleSeen = false;
  admission.whenIdle(() => {
    idleSeen = true;
  });
  await settle();
  return { order, maxRunning, idleSeen };
}

describe.each([
  ['SyncAdmission (deterministic runtime)', (n: number) => new SyncAdmission(n)],
  ['PQueueAdmission (threads)', (n: number) => new PQueueAdmission(n)],
])('%s', (_, make) => {
  it.each([1, 2, 4])('runs at most %i conversions at once, in arrival order', async (n) => {
    const { order, maxRunning, idleSeen } = await exercise(make(n));
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(maxRunning).toBe(n);
    expect(idleSeen).toBe(true);
  });

  it('pause holds new conversions until resume', async () => {
    const admission = make(2);
    admission.pause();
    let started = 0;
    admission.admit((done) => {
      started++;
      done();
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toBe(0);
    admission.resume();
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toBe(1);
  });
});
