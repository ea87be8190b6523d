/**
 * Mailbox transport benchmark: SAB mailbox vs `postMessage` vs comlink.
 *
 * Measured side by side in one run, each as the median over `repetitions`:
 * - round-trip latency (main thread <-> echo worker) of
 *   - the SAB mailbox on the spin path (both sides busy-poll),
 *   - the SAB mailbox on the blocking path (both sides sleep in
 *     `Atomics.wait` between messages: `spinPolls: 0`),
 *   - `postMessage` ping-pong,
 *   - a comlink call (`wrap`/`expose` over `nodeEndpoint`);
 * - one-way throughput of 64-byte messages, one producer worker -> the main
 *   thread as consumer (default spin-then-wait receive).
 *
 * Run directly: `node dist/bench/mailbox.js [messages] [roundTrips]`.
 *
 * @module
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { releaseProxy, wrap } from 'comlink';
import type { Remote } from 'comlink';
import { MailboxConsumer, MailboxProducer, SLOT_WORDS, closeMailbox, createMailbox, mailboxStats } from '../transport/mailbox.js';
import type { SlotReader } from '../transport/mailbox.js';
import { nodeEndpoint } from '../workers/comlink-endpoint.js';
import type { BenchWorkerData, ComlinkEcho } from '../workers/mailbox-bench-protocol.js';
import { workerUrl } from '../workers/worker-url.js';
import { median } from './median.js';

/** Options for {@link runMailboxBench}. */
export interface MailboxBenchOptions {
  /** Messages per one-way throughput repetition. Default 2,000,000. */
  messages?: number;
  /** Round trips per latency repetition (each transport). Default 10,000. */
  roundTrips?: number;
  /** Repetitions; medians are reported. Default 5. */
  repetitions?: number;
  /** Ring capacity (slots) of every mailbox. Default 1024. */
  capacity?: number;
}

/** Round-trip latencies of the four transports, ns. */
export interface RoundTrips {
  /** SAB mailbox, both sides busy-poll. */
  sabSpin: number;
  /** SAB mailbox, both sides sleep in `Atomics.wait` between messages. */
  sabBlocking: number;
  postMessage: number;
  comlink: number;
}

/** Latency ratios (how many times slower the numerator is). */
export interface RoundTripRatios {
  /** postMessage RTT / SAB spin RTT (goal ≥ 100). */
  postMessageOverSpin: number;
  /** postMessage RTT / SAB blocking RTT (goal ≥ 1). */
  postMessageOverBlocking: number;
  /** comlink RTT / postMessage RTT. */
  comlinkOverPostMessage: number;
}

/** Result of {@link runMailboxBench}. All values are medians over the repetitions. */
export interface MailboxBenchResult {
  machine: { cores: number; availableParallelism: number; cpuModel: string; node: string; v8: string; platform: string; arch: string; loadAverage1m: number };
  params: { messages: number; roundTrips: number; repetitions: number; capacity: number; messageBytes: number; batch: number };
  /** Typical round trip: per repetition the median {@link BATCH}-round-trip batch, then the median over repetitions. */
  roundTripNs: RoundTrips;
  /** Mean round trip (total time / round trips) per repetition, median over repetitions; includes scheduler noise. */
  meanRoundTripNs: RoundTrips;
  oneWay: { messagesPerSec: number; nsPerMessage: number };
  /** Ratios of {@link roundTripNs}. */
  ratios: RoundTripRatios;
  /** Ratios of {@link meanRoundTripNs}. */
  meanRatios: RoundTripRatios;
  /** Per-repetition values behind the medians. */
  samples: {
    sabSpin: RoundTripSample[];
    sabBlocking: RoundTripSample[];
    postMessage: RoundTripSample[];
    comlink: RoundTripSample[];
    oneWayMessagesPerSec: number[];
  };
  /**
   * Mailbox counters over the whole run: how often the blocking-path echo
   * worker actually slept, and how often the one-way consumer slept / the
   * producer hit a full ring.
   */
  mailboxCounters: { blockingWorkerSleeps: number; blockingMainSleeps: number; oneWayConsumerSleeps: number; oneWayProducerFullWaits: number };
}

/** A peer that has not answered for this long is considered dead. */
const STALL_MS = 10_000;

/** Median of a non-empty list. */

function ratiosOf(rt: RoundTrips): RoundTripRatios {
  return {
    postMessageOverSpin: rt.postMessage / rt.sabSpin,
    postMessageOverBlocking: rt.postMessage / rt.sabBlocking,
    comlinkOverPostMessage: rt.comlink / rt.postMessage,
  };
}

function startWorker(data: BenchWorkerData): Worker {
  return new Worker(workerUrl('mailbox-bench-worker'), { workerData: data });
}

/** Rejects when the worker errors or exits, so a dead peer fails the bench instead of hanging it. */
function watch(w: Worker): Promise<never> {
  return new Promise<never>((_, reject) => {
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`bench worker exited (code ${code})`)));
  });
}

interface EchoPair {
  worker: Worker;
  req: SharedArrayBuffer;
  resp: SharedArrayBuffer;
  send: MailboxProducer;
  recv: MailboxConsumer;
}

async function startEcho(mode: 'echo-spin' | 'echo-block', capacity: number): Promise<EchoPair> {
  const req = createMailbox(capacity);
  const resp = createMailbox(capacity);
  const worker = startWorker({ mode, req, resp });
  await once(worker, 'online');
  // Main thread side: spin mode busy-polls explicitly (tryReceive), blocking
  // mode sleeps at once (spinPolls 0).
  return { worker, req, resp, send: new MailboxProducer(req, { spinPolls: 0 }), recv: new MailboxConsumer(resp, { spinPolls: 0 }) };
}

/** Round trips per timing batch (see {@link RoundTripSample}). */
export const BATCH = 100;

/** One repetition of a round-trip measurement. */
export interface RoundTripSample {
  /** Total time / round trips. Includes every preemption the threads suffered. */
  meanNs: number;
  /**
   * Median over consecutive batches of {@link BATCH} round trips of the
   * batch mean: the typical round trip, robust against the occasional
   * descheduling of a spinning thread on a busy machine.
   */
  typicalNs: number;
}

/** Times `n` round trips in batches of {@link BATCH}; call `tick` after each one. */
class BatchTimer {
  readonly #n: number;
  readonly #batches: number[] = [];
  #count = 0;
  #t0 = 0;
  #last = 0;

  constructor(n: number) {
    this.#n = n;
  }

  start(): void {
    this.#t0 = this.#last = performance.now();
  }

  /** Returns true after the n-th round trip. */
  tick(): boolean {
    const c = ++this.#count;
    if (c % BATCH === 0 || c === this.#n) {
      const now = performance.now();
      this.#batches.push(((now - this.#last) * 1e6) / (c % BATCH === 0 ? BATCH : c % BATCH));
      this.#last = now;
    }
    return c >= this.#n;
  }

  result(): RoundTripSample {
    return { meanNs: ((this.#last - this.#t0) * 1e6) / this.#n, typicalNs: median(this.#batches) };
  }
}

/** `n` synchronous round trips over a mailbox pair. Blocks the calling thread. */
function sabRoundTrips(p: EchoPair, n: number, spin: boolean): RoundTripSample {
  const buf = new Float64Array(SLOT_WORDS);
  const timer = new BatchTimer(n);
  timer.start();
  for (let i = 0; ; i++) {
    buf[0] = i;
    p.send.send(buf);
    if (spin) {
      let polls = 0;
      while (!p.recv.tryReceive(buf)) {
        // Now and then fall back to a bounded blocking receive, so a dead
        // worker cannot hang us (it consumes the message if one arrives).
        if ((++polls & 0xfffff) === 0) {
          if (p.recv.receive(buf, STALL_MS)) break;
          throw new Error('echo worker stalled');
        }
      }
    } else if (!p.recv.receive(buf, STALL_MS)) {
      throw new Error('echo worker stalled');
    }
    if (buf[0] !== i) throw new Error(`echo mismatch: sent ${i}, got ${buf[0]}`);
    if (timer.tick()) return timer.result();
  }
}

/** `n` sequential postMessage ping-pongs. */
function postMessageRoundTrips(w: Worker, n: number): Promise<RoundTripSample> {
  return new Promise<RoundTripSample>((resolve, reject) => {
    let i = 0;
    const timer = new BatchTimer(n);
    const stall = setTimeout(() => done(new Error('post-echo worker stalled')), STALL_MS * 10);
    const onMessage = (m: unknown): void => {
      if (m !== i) return done(new Error(`echo mismatch: sent ${i}, got ${String(m)}`));
      if (timer.tick()) return done();
      w.postMessage(++i);
    };
    const done = (err?: Error): void => {
      clearTimeout(stall);
      w.off('message', onMessage);
      if (err) reject(err);
      else resolve(timer.result());
    };
    w.on('message', onMessage);
    timer.start();
    w.postMessage(0);
  });
}

async function comlinkRoundTrips(remote: Remote<ComlinkEcho>, n: number): Promise<RoundTripSample> {
  const timer = new BatchTimer(n);
  timer.start();
  for (let i = 0; ; i++) {
    const r = await remote.echo(i);
    if (r !== i) throw new Error(`comlink echo mismatch: sent ${i}, got ${r}`);
    if (timer.tick()) return timer.result();
  }
}

/** One-way: asks the producer worker for `n` messages and receives them here; messages per second. */
async function oneWayThroughput(w: Worker, consumer: MailboxConsumer, n: number): Promise<number> {
  let received = 0;
  let bad = 0;
  const read: SlotReader = (slot, offset) => {
    if (slot[offset] !== received) bad++;
  };
  const sent = once(w, 'message');
  const t0 = performance.now();
  w.postMessage(n);
  for (; received < n; received++) {
    if (!consumer.receiveWith(read, STALL_MS)) throw new Error(`producer stalled after ${received} messages`);
  }
  const dt = performance.now() - t0;
  await sent;
  if (bad !== 0) throw new Error(`${bad} messages out of order`);
  return (n * 1000) / dt;
}

/**
 * Runs the mailbox benchmark (see module doc). Starts and terminates its own
 * workers (needs `dist/workers/` built); blocks the calling thread during the
 * SAB phases.
 */
export async function runMailboxBench(opts: MailboxBenchOptions = {}): Promise<MailboxBenchResult> {
  const messages = opts.messages ?? 2_000_000;
  const roundTrips = opts.roundTrips ?? 10_000;
  const repetitions = opts.repetitions ?? 5;
  const capacity = opts.capacity ?? 1024;
  const warmup = Math.max(100, Math.floor(roundTrips / 10));

  const workers: Worker[] = [];
  const mailboxes: SharedArrayBuffer[] = [];
  const track = <T extends { worker: Worker }>(x: T): T => {
    workers.push(x.worker);
    return x;
  };
  let remote: Remote<ComlinkEcho> | undefined;
  try {
    const spin = track(await startEcho('echo-spin', capacity));
    const block = track(await startEcho('echo-block', capacity));
    mailboxes.push(spin.req, spin.resp, block.req, block.resp);
    const post = startWorker({ mode: 'post-echo' });
    const cl = startWorker({ mode: 'comlink' });
    const oneWaySab = createMailbox(capacity);
    mailboxes.push(oneWaySab);
    const producer = startWorker({ mode: 'produce', sab: oneWaySab });
    workers.push(post, cl, producer);
    await Promise.all([once(post, 'online'), once(cl, 'online'), once(producer, 'online')]);
    remote = wrap<ComlinkEcho>(nodeEndpoint(cl));
    const consumer = new MailboxConsumer(oneWaySab);
    const deaths = Promise.race(workers.map(watch));
    deaths.catch(() => undefined); // observed via the races below
    const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, deaths]);

    // Warm up every path (JIT, thread wake-up paths).
    sabRoundTrips(spin, warmup, true);
    sabRoundTrips(block, warmup, false);
    await guard(postMessageRoundTrips(post, warmup));
    await guard(comlinkRoundTrips(remote, Math.min(warmup, 1000)));
    await guard(oneWayThroughput(producer, consumer, Math.min(messages, 100_000)));
    const blockWorkerSleeps0 = mailboxStats(block.req).consumerSleeps;
    const blockMainSleeps0 = mailboxStats(block.resp).consumerSleeps;
    const oneWay0 = mailboxStats(oneWaySab);

    const samples: MailboxBenchResult['samples'] = { sabSpin: [], sabBlocking: [], postMessage: [], comlink: [], oneWayMessagesPerSec: [] };
    for (let r = 0; r < repetitions; r++) {
      // Interleave transports per repetition so drift (thermal, other load) hits all alike.
      samples.sabSpin.push(sabRoundTrips(spin, roundTrips, true));
      samples.sabBlocking.push(sabRoundTrips(block, roundTrips, false));
      samples.postMessage.push(await guard(postMessageRoundTrips(post, roundTrips)));
      samples.comlink.push(await guard(comlinkRoundTrips(remote, roundTrips)));
      samples.oneWayMessagesPerSec.push(await guard(oneWayThroughput(producer, consumer, messages)));
    }
    const oneWay1 = mailboxStats(oneWaySab);

    const pick = (key: keyof RoundTripSample): RoundTrips => ({
      sabSpin: median(samples.sabSpin.map((x) => x[key])),
      sabBlocking: median(samples.sabBlocking.map((x) => x[key])),
      postMessage: median(samples.postMessage.map((x) => x[key])),
      comlink: median(samples.comlink.map((x) => x[key])),
    });
    const roundTripNs = pick('typicalNs');
    const meanRoundTripNs = pick('meanNs');
    const messagesPerSec = median(samples.oneWayMessagesPerSec);
    const cpuList = cpus();
    return {
      machine: {
        cores: cpuList.length,
        availableParallelism: availableParallelism(),
        cpuModel: cpuList[0]?.model ?? 'unknown',
        node: process.version,
        v8: process.versions.v8,
        platform: process.platform,
        arch: process.arch,
        loadAverage1m: loadavg()[0] ?? NaN,
      },
      params: { messages, roundTrips, repetitions, capacity, messageBytes: SLOT_WORDS * Float64Array.BYTES_PER_ELEMENT, batch: BATCH },
      roundTripNs,
      meanRoundTripNs,
      oneWay: { messagesPerSec, nsPerMessage: 1e9 / messagesPerSec },
      ratios: ratiosOf(roundTripNs),
      meanRatios: ratiosOf(meanRoundTripNs),
      samples,
      mailboxCounters: {
        blockingWorkerSleeps: mailboxStats(block.req).consumerSleeps - blockWorkerSleeps0,
        blockingMainSleeps: mailboxStats(block.resp).consumerSleeps - blockMainSleeps0,
        oneWayConsumerSleeps: oneWay1.consumerSleeps - oneWay0.consumerSleeps,
        oneWayProducerFullWaits: oneWay1.producerFullWaits - oneWay0.producerFullWaits,
      },
    };
  } finally {
    remote?.[releaseProxy]();
    for (const sab of mailboxes) closeMailbox(sab); // lets the echo loops return
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

// `node dist/bench/mailbox.js [messages] [roundTrips]` prints the result as JSON.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [messages, roundTrips] = process.argv.slice(2).map(Number);
  runMailboxBench({ messages, roundTrips }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
