/**
 * SAB mailbox: single-thread unit tests of the ring, and real worker-thread
 * stress tests (no loss / duplication / reordering per producer).
 *
 * Workers run the compiled `dist/workers/*.js`: run `npm run build` first
 * (`npm test` does it in `pretest`). No timing assertions; every wait has a
 * timeout and every worker is terminated in `afterEach`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  MailboxClosedError,
  MailboxConsumer,
  MailboxProducer,
  SLOT_WORDS,
  closeMailbox,
  createMailbox,
  mailboxStats,
  pendingMessages,
} from '../../src/transport/mailbox.js';
import { H_HEAD, H_TAIL, SEQ_BASE, seqOf } from '../../src/transport/layout.js';
import { workerUrl } from '../../src/workers/worker-url.js';
import { runMailboxBench } from '../../src/bench/mailbox.js';
import type {
  StressConsumerData,
  StressConsumerReport,
  StressProducerData,
  StressProducerReport,
} from '../../src/workers/mailbox-stress-worker.js';

/** Messages `[tag, i, big(i), -i, ...]` so every word position is checked. */
function message(tag: number, i: number): number[] {
  return [tag, i, 2 ** 40 + i, -i, i / 3, Number.MAX_SAFE_INTEGER - i, i * 1e-9, 7];
}

function expectMessage(out: Float64Array, tag: number, i: number): void {
  expect(Array.from(out)).toEqual(message(tag, i));
}

/**
 * Rewrites a fresh, empty mailbox so that both head and tail are at position
 * `base` (an Int32), as if `base` messages had already passed through it.
 * Lets the tests cross the 2^31 and 2^32 wrap points without sending 4e9 messages.
 */
function fastForward(sab: SharedArrayBuffer, capacity: number, base: number): void {
  const i32 = new Int32Array(sab);
  for (let k = 0; k < capacity; k++) {
    const pos = (base + k) | 0;
    Atomics.store(i32, SEQ_BASE + (pos & (capacity - 1)), seqOf(pos));
  }
  Atomics.store(i32, H_TAIL, base | 0);
  Atomics.store(i32, H_HEAD, base | 0);
}

describe('mailbox ring (one thread)', () => {
  it('rejects capacities that are not powers of two', () => {
    for (const bad of [0, 3, 1000, -4, 1.5, 2 ** 25]) expect(() => createMailbox(bad)).toThrow(RangeError);
    expect(() => new MailboxConsumer(new SharedArrayBuffer(4096))).toThrow(TypeError);
  });

  it('delivers FIFO with all 8 words intact across many wraparounds', () => {
    const capacity = 4;
    const sab = createMailbox(capacity);
    const p = new MailboxProducer(sab);
    const c = new MailboxConsumer(sab);
    const out = new Float64Array(SLOT_WORDS);
    let sent = 0;
    let received = 0;
    for (let round = 0; round < 500; round++) {
      const burst = (round % capacity) + 1; // 1..capacity messages in flight
      for (let k = 0; k < burst; k++) p.send(message(1, sent++));
      expect(c.pending()).toBe(burst);
      for (let k = 0; k < burst; k++) {
        expect(c.tryReceive(out)).toBe(true);
        expectMessage(out, 1, received++);
      }
      expect(c.tryReceive(out)).toBe(false);
    }
    expect(received).toBe(sent);
    expect(mailboxStats(sab)).toMatchObject({ sent, received, pending: 0, consumerSleeps: 0, producerFullWaits: 0 });
  });

  it('trySend fails on a full ring and succeeds again after a receive', () => {
    const capacity = 8;
    const sab = createMailbox(capacity);
    const p = new MailboxProducer(sab);
    const c = new MailboxConsumer(sab);
    for (let i = 0; i < capacity; i++) expect(p.trySend([i])).toBe(true);
    expect(p.trySend([99])).toBe(false);
    expect(p.trySendWith(() => expect.unreachable('fill called on a full ring'))).toBe(false);
    expect(pendingMessages(sab)).toBe(capacity);
    const out = new Float64Array(SLOT_WORDS);
    expect(c.tryReceive(out)).toBe(true);
    expect(out[0]).toBe(0);
    expect(p.trySend([capacity])).toBe(true);
    expect(p.trySend([99])).toBe(false);
    for (let i = 1; i <= capacity; i++) {
      expect(c.receive(out, 1000)).toBe(true);
      expect(out[0]).toBe(i);
      expect(Array.from(out.subarray(1))).toEqual([0, 0, 0, 0, 0, 0, 0]); // short messages are zero-padded
    }
    expect(c.tryReceive(out)).toBe(false);
  });

  it('sendWith / tryReceiveWith work in place', () => {
    const sab = createMailbox(2);
    const p = new MailboxProducer(sab);
    const c = new MailboxConsumer(sab);
    let seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      p.sendWith((slot, offset) => {
        for (let k = 0; k < SLOT_WORDS; k++) slot[offset + k] = i * 10 + k;
      });
      expect(c.tryReceiveWith((slot, offset) => (seen = Array.from(slot.subarray(offset, offset + SLOT_WORDS))))).toBe(true);
      expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((k) => i * 10 + k));
    }
  });

  it('a new consumer takes over exactly where a detached one stopped', () => {
    const sab = createMailbox(8);
    const p = new MailboxProducer(sab);
    const first = new MailboxConsumer(sab);
    const out = new Float64Array(SLOT_WORDS);
    for (let i = 0; i < 6; i++) p.send([i]);
    for (let i = 0; i < 3; i++) expect(first.tryReceive(out)).toBe(true); // busy: nothing mirrored yet
    first.detach();
    const second = new MailboxConsumer(sab);
    expect(second.pending()).toBe(3);
    for (let i = 3; i < 6; i++) {
      expect(second.tryReceive(out)).toBe(true);
      expect(out[0]).toBe(i);
    }
    expect(second.tryReceive(out)).toBe(false);
  });

  it('rejects oversized messages without claiming a slot', () => {
    const sab = createMailbox(4);
    const p = new MailboxProducer(sab);
    expect(() => p.send(new Array<number>(9).fill(1))).toThrow(RangeError);
    expect(() => p.trySend(new Array<number>(9).fill(1))).toThrow(RangeError);
    expect(pendingMessages(sab)).toBe(0);
  });

  for (const base of [2 ** 31 - 5, -5, -(2 ** 31) + 3]) {
    it(`survives Int32 position wraparound (start at ${base})`, () => {
      const capacity = 4;
      const sab = createMailbox(capacity);
      fastForward(sab, capacity, base);
      const p = new MailboxProducer(sab);
      const c = new MailboxConsumer(sab);
      const out = new Float64Array(SLOT_WORDS);
      let sent = 0;
      let received = 0;
      for (let round = 0; sent < 5 * capacity; round++) {
        expect(p.trySend(message(2, sent++))).toBe(true); // CAS claim
        p.send(message(2, sent++)); // fetch-add claim
        if (round % 2 === 1) while (c.tryReceive(out)) expectMessage(out, 2, received++); // ring full here
      }
      expect(received).toBe(sent);
      // Fill to the brim across the wrap point too.
      for (let i = 0; i < capacity; i++) expect(p.trySend([i])).toBe(true);
      expect(p.trySend([0])).toBe(false);
      expect(c.pending()).toBe(capacity);
    });
  }

  it('receive times out on an empty ring and counts the sleep', () => {
    const sab = createMailbox(4);
    const c = new MailboxConsumer(sab, { spinPolls: 0 });
    const out = new Float64Array(SLOT_WORDS);
    expect(c.receive(out, 200)).toBe(false);
    expect(mailboxStats(sab).consumerSleeps).toBeGreaterThanOrEqual(1);
    // A message sent afterwards is still received (the waiter bit left behind is harmless).
    new MailboxProducer(sab).send([42]);
    expect(c.receive(out, 1000)).toBe(true);
    expect(out[0]).toBe(42);
  });

  it('waitAsync resolves false on timeout and true once a message is ready (without consuming it)', async () => {
    const sab = createMailbox(4);
    const c = new MailboxConsumer(sab);
    expect(await c.waitAsync(20)).toBe(false);
    new MailboxProducer(sab).send([5]);
    expect(await c.waitAsync(1000)).toBe(true);
    expect(await c.waitAsync(1000)).toBe(true); // still not consumed
    const out = new Float64Array(SLOT_WORDS);
    expect(c.tryReceive(out)).toBe(true);
    expect(out[0]).toBe(5);
    c.close();
    expect(await c.waitAsync()).toBe(false); // closed: no timeout needed
  });

  it('close: drains what was published, then receive returns false and waiting sends throw', () => {
    const capacity = 2;
    const sab = createMailbox(capacity);
    const p = new MailboxProducer(sab, { spinPolls: 0 });
    const c = new MailboxConsumer(sab, { spinPolls: 0 });
    p.send([1]);
    p.send([2]);
    c.close();
    closeMailbox(sab); // idempotent
    expect(p.closed && c.closed && mailboxStats(sab).closed).toBe(true);
    // Ring full and closed: a blocking send must not wait.
    expect(() => p.send([3])).toThrow(MailboxClosedError);
    const out = new Float64Array(SLOT_WORDS);
    expect(c.receive(out, 5000)).toBe(true);
    expect(out[0]).toBe(1);
    expect(c.receive(out, 5000)).toBe(true);
    expect(out[0]).toBe(2);
    expect(c.receive(out, 5000)).toBe(false); // position 2 was abandoned by the failed send
    expect(c.receive(out)).toBe(false); // no timeout: must not block once closed
  });
});

// ---------------------------------------------------------------------------
// Worker threads.
// ---------------------------------------------------------------------------

const live = new Set<Worker>();
const liveMailboxes = new Set<SharedArrayBuffer>();

afterEach(async () => {
  for (const sab of liveMailboxes) closeMailbox(sab); // wake anything still blocked
  liveMailboxes.clear();
  await Promise.all([...live].map((w) => w.terminate()));
  live.clear();
});

type StressData = StressProducerData | StressConsumerData;

/** Starts a stress worker; the promise settles with its report, or rejects on error/exit/timeout. */
function startStress<R>(data: StressData, timeoutMs: number): Promise<R> {
  const w = new Worker(workerUrl('mailbox-stress-worker'), { workerData: data });
  live.add(w);
  const report = new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${data.role} worker did not finish within ${timeoutMs} ms`)), timeoutMs);
    w.once('message', (m: R) => {
      clearTimeout(timer);
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    w.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${data.role} worker exited (code ${code}) without a report`));
    });
  });
  // Callers may stop awaiting after another worker's failure; don't turn
  // this one's later rejection into an "unhandled rejection" error.
  report.catch(() => undefined);
  return report;
}

interface StressRun {
  capacity: number;
  perProducer: number[];
  spinPolls?: number;
  timeoutMs: number;
}

async function stress(run: StressRun): Promise<{ consumer: StressConsumerReport; producers: StressProducerReport[] }> {
  const sab = createMailbox(run.capacity);
  liveMailboxes.add(sab);
  const expectedTotal = run.perProducer.reduce((a, b) => a + b, 0);
  const consumer = startStress<StressConsumerReport>(
    { role: 'consumer', sab, producers: run.perProducer.length, expectedTotal, idleTimeoutMs: 10_000, spinPolls: run.spinPolls },
    run.timeoutMs,
  );
  const producers = run.perProducer.map((count, id) =>
    startStress<StressProducerReport>({ role: 'producer', sab, id, count, spinPolls: run.spinPolls }, run.timeoutMs),
  );
  // Surface worker errors from either side as soon as they happen.
  const c = await Promise.race([consumer, Promise.all(producers).then(() => consumer)]);
  // If the consumer gave up (idle timeout), producers may be blocked on a
  // full ring: close so they return and the test fails with the report
  // instead of a hang. After a clean run this is a no-op for them.
  closeMailbox(sab);
  const ps = await Promise.all(producers);
  return { consumer: c, producers: ps };
}

function expectClean(r: { consumer: StressConsumerReport; producers: StressProducerReport[] }, perProducer: number[]): void {
  const c = r.consumer;
  expect(c.firstErrors).toEqual([]);
  expect(c.seqErrors).toBe(0);
  expect(c.payloadErrors).toBe(0);
  expect(c.timedOut).toBe(false);
  expect(c.nextSeq).toEqual(perProducer); // every producer's 0..count-1, in order
  expect(c.received).toBe(perProducer.reduce((a, b) => a + b, 0));
  expect(r.producers.map((p) => p.sent)).toEqual(perProducer);
}

describe('mailbox across worker threads', () => {
  it('3 producers x 10M messages into a 1024-slot ring: no loss, duplication or reordering', async () => {
    const perProducer = [3_333_334, 3_333_333, 3_333_333];
    const r = await stress({ capacity: 1024, perProducer, timeoutMs: 55_000 });
    expectClean(r, perProducer);
  }, 60_000);

  it('sleep-heavy: no spinning, 2-slot ring shared by 3 producers (several waiters per slot word)', async () => {
    const perProducer = [20_000, 20_000, 20_000];
    const r = await stress({ capacity: 2, perProducer, spinPolls: 0, timeoutMs: 55_000 });
    expectClean(r, perProducer);
  }, 60_000);

  it('waitAsync consumer on this thread (event loop stays free), 2 producer workers, 16-slot ring', async () => {
    const perProducer = [100_000, 100_000];
    const sab = createMailbox(16);
    liveMailboxes.add(sab);
    const producers = perProducer.map((count, id) => startStress<StressProducerReport>({ role: 'producer', sab, id, count }, 50_000));
    const c = new MailboxConsumer(sab, { spinPolls: 0 });
    const nextSeq = perProducer.map(() => 0);
    let errors = 0;
    const check = (slot: Float64Array, offset: number): void => {
      const id = slot[offset] as number;
      if (slot[offset + 1] !== nextSeq[id]) errors++;
      nextSeq[id] = (slot[offset + 1] as number) + 1;
    };
    const total = perProducer[0]! + perProducer[1]!;
    let received = 0;
    // Only tryReceive + waitAsync: this thread never blocks in Atomics.wait.
    while (received < total) {
      if (c.tryReceiveWith(check)) received++;
      else if (!(await c.waitAsync(10_000))) break; // idle 10 s: give up (reported below)
    }
    expect({ received, errors, nextSeq }).toEqual({ received: total, errors: 0, nextSeq: perProducer });
    expect((await Promise.all(producers)).map((p) => p.sent)).toEqual(perProducer);
  }, 60_000);

  it('close wakes producers blocked on a full ring and a consumer blocked on an empty one', async () => {
    const full = createMailbox(4);
    const empty = createMailbox(4);
    liveMailboxes.add(full);
    liveMailboxes.add(empty);
    const producers = [0, 1].map((id) =>
      startStress<StressProducerReport>({ role: 'producer', sab: full, id, count: 1_000_000, spinPolls: 0 }, 20_000),
    );
    const consumer = startStress<StressConsumerReport>(
      { role: 'consumer', sab: empty, producers: 1, expectedTotal: 1, idleTimeoutMs: 60_000, spinPolls: 0 },
      20_000,
    );
    // Wait (bounded) until the ring is full and both producers have gone to sleep.
    const deadline = Date.now() + 10_000;
    while (mailboxStats(full).producerFullWaits < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
    while (mailboxStats(empty).consumerSleeps < 1 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
    closeMailbox(full);
    closeMailbox(empty);
    const ps = await Promise.all(producers);
    expect(ps.every((p) => p.closed)).toBe(true);
    expect(ps.reduce((a, p) => a + p.sent, 0)).toBe(4); // exactly the ring's capacity got in
    const c = await consumer;
    expect(c).toMatchObject({ received: 0, closed: true, timedOut: false });
  }, 30_000);
});

describe('mailbox bench (smoke, tiny sizes, no timing assertions)', () => {
  it('runs every transport and reports finite positive numbers', async () => {
    const r = await runMailboxBench({ messages: 20_000, roundTrips: 200, repetitions: 1, capacity: 64 });
    const values = [...Object.values(r.roundTripNs), ...Object.values(r.meanRoundTripNs), r.oneWay.messagesPerSec, ...Object.values(r.ratios)];
    for (const v of values) expect(Number.isFinite(v) && v > 0).toBe(true);
    expect(r.machine.cores).toBeGreaterThan(0);
    expect(r.samples.sabSpin).toHaveLength(1);
  }, 60_000);
});
