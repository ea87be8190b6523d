/**
 * Worker entry point for the mailbox stress test (`test/integration/mailbox.test.ts`).
 *
 * Roles (from `workerData`):
 * - `producer`: sends `count` messages `stressWord(id, seq, k)` for seq = 0..count-1.
 * - `consumer`: receives until `expectedTotal` messages arrived (or an idle
 *   timeout / close), checking per producer that seq runs 0,1,2,... and that
 *   every payload word is intact; posts a {@link StressConsumerReport}.
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MailboxClosedError, MailboxConsumer, MailboxProducer, SLOT_WORDS } from '../transport/mailbox.js';
import type { SlotReader, SlotWriter } from '../transport/mailbox.js';

/** `workerData` for a producer. */
export interface StressProducerData {
  role: 'producer';
  sab: SharedArrayBuffer;
  id: number;
  count: number;
  spinPolls?: number;
}

/** `workerData` for the consumer. */
export interface StressConsumerData {
  role: 'consumer';
  sab: SharedArrayBuffer;
  producers: number;
  expectedTotal: number;
  /** Give up if no message arrives for this long. */
  idleTimeoutMs: number;
  spinPolls?: number;
}

/** Posted by a producer when done. */
export interface StressProducerReport {
  kind: 'producer';
  id: number;
  sent: number;
  closed: boolean;
}

/** Posted by the consumer when done. */
export interface StressConsumerReport {
  kind: 'consumer';
  received: number;
  /** Next expected seq per producer = messages received in order from it. */
  nextSeq: number[];
  /** Messages whose seq was not the expected one (loss, duplication or reordering). */
  seqErrors: number;
  /** Messages with an unknown producer id or a corrupted payload word. */
  payloadErrors: number;
  /** Up to 10 human-readable descriptions of the first errors. */
  firstErrors: string[];
  timedOut: boolean;
  closed: boolean;
}

/**
 * Word `k` of message `seq` from producer `id`. Distinct per (id, seq, k) and
 * beyond 2^32, so torn or mixed-up slots and Int32 truncation are detected.
 */
export function stressWord(id: number, seq: number, k: number): number {
  return id * 2 ** 40 + seq * SLOT_WORDS + k;
}

function runProducer(d: StressProducerData): StressProducerReport {
  const producer = new MailboxProducer(d.sab, { spinPolls: d.spinPolls });
  const id = d.id;
  let seq = 0;
  // Long-lived writer: no allocation per message.
  const fill: SlotWriter = (slot, offset) => {
    slot[offset] = id;
    slot[offset + 1] = seq;
    for (let k = 2; k < SLOT_WORDS; k++) slot[offset + k] = stressWord(id, seq, k);
  };
  try {
    for (; seq < d.count; seq++) producer.sendWith(fill);
  } catch (e) {
    if (e instanceof MailboxClosedError) return { kind: 'producer', id, sent: seq, closed: true };
    throw e;
  }
  return { kind: 'producer', id, sent: seq, closed: false };
}

function runConsumer(d: StressConsumerData): StressConsumerReport {
  const consumer = new MailboxConsumer(d.sab, { spinPolls: d.spinPolls });
  const nextSeq = new Array<number>(d.producers).fill(0);
  const firstErrors: string[] = [];
  let seqErrors = 0;
  let payloadErrors = 0;
  const note = (msg: string): void => {
    if (firstErrors.length < 10) firstErrors.push(msg);
  };
  const check: SlotReader = (slot, offset) => {
    const id = slot[offset] as number;
    const seq = slot[offset + 1] as number;
    const expected = nextSeq[id];
    if (expected === undefined) {
      payloadErrors++;
      note(`unknown producer id ${id} (seq ${seq})`);
      return;
    }
    for (let k = 2; k < SLOT_WORDS; k++) {
      if (slot[offset + k] !== stressWord(id, seq, k)) {
        payloadErrors++;
        note(`producer ${id} seq ${seq}: word ${k} is ${slot[offset + k]}`);
        break;
      }
    }
    if (seq !== expected) {
      seqErrors++;
      note(`producer ${id}: got seq ${seq}, expected ${expected}`);
    }
    nextSeq[id] = seq + 1;
  };
  let received = 0;
  let timedOut = false;
  while (received < d.expectedTotal) {
    if (!consumer.receiveWith(check, d.idleTimeoutMs)) {
      timedOut = !consumer.closed;
      break;
    }
    received++;
  }
  return { kind: 'consumer', received, nextSeq, seqErrors, payloadErrors, firstErrors, timedOut, closed: consumer.closed };
}

// Run only when started as this worker (not when imported for its types/helpers).
const data = workerData as StressProducerData | StressConsumerData | undefined;
if (parentPort !== null && (data?.role === 'producer' || data?.role === 'consumer')) {
  const report = data.role === 'producer' ? runProducer(data) : runConsumer(data);
  parentPort.postMessage(report);
}
