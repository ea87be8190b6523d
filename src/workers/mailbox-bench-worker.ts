/**
 * Worker entry point for `src/bench/mailbox.ts`; the mode comes from
 * `workerData` (see `mailbox-bench-protocol.ts`).
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { expose } from 'comlink';
import { MailboxConsumer, MailboxProducer, SLOT_WORDS } from '../transport/mailbox.js';
import type { SlotWriter } from '../transport/mailbox.js';
import { nodeEndpoint } from './comlink-endpoint.js';
import type { BenchWorkerData, ComlinkEcho, EchoWorkerData, ProduceWorkerData } from './mailbox-bench-protocol.js';

/**
 * Spin-mode polls before the echo worker falls asleep: ~milliseconds of
 * polling, far longer than any gap inside a round-trip loop (so the peer
 * busy-polls throughout a measurement) but the worker does not burn a core
 * while the bench measures the other transports.
 */
const ECHO_SPIN_POLLS = 2_000_000;

function echo(d: EchoWorkerData): void {
  // Blocking mode: spinPolls 0, so the worker is asleep in Atomics.wait
  // whenever it is idle and every request pays the full futex wake path.
  const spinPolls = d.mode === 'echo-spin' ? ECHO_SPIN_POLLS : 0;
  const consumer = new MailboxConsumer(d.req, { spinPolls });
  const producer = new MailboxProducer(d.resp, { spinPolls: 0 });
  const buf = new Float64Array(SLOT_WORDS);
  while (consumer.receive(buf)) producer.send(buf); // receive is false once closed
}

function produce(port: MessagePort, d: ProduceWorkerData): void {
  const producer = new MailboxProducer(d.sab);
  let i = 0;
  const fill: SlotWriter = (slot, offset) => {
    slot[offset] = i;
    for (let k = 1; k < SLOT_WORDS; k++) slot[offset + k] = k;
  };
  port.on('message', (n: number) => {
    for (i = 0; i < n; i++) producer.sendWith(fill);
    port.postMessage('sent');
  });
}

const data = workerData as BenchWorkerData | undefined;
const port = parentPort;
if (port !== null && data !== undefined) {
  switch (data.mode) {
    case 'echo-spin':
    case 'echo-block':
      echo(data);
      break;
    case 'post-echo':
      port.on('message', (m: unknown) => port.postMessage(m));
      break;
    case 'comlink': {
      const api: ComlinkEcho = { echo: (x) => x };
      expose(api, nodeEndpoint(port));
      break;
    }
    case 'produce':
      produce(port, data);
      break;
  }
}
