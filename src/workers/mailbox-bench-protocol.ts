/**
 * Shared between `src/bench/mailbox.ts` and `mailbox-bench-worker.ts`: the
 * worker's `workerData` shapes.
 *
 * @module
 */

/** Echo every mailbox message back; `spin` busy-polls, `block` sleeps in `Atomics.wait` between messages. */
export interface EchoWorkerData {
  mode: 'echo-spin' | 'echo-block';
  /** Mailbox the worker consumes. */
  req: SharedArrayBuffer;
  /** Mailbox the worker produces into. */
  resp: SharedArrayBuffer;
}

/** Echo every `postMessage` back. */
export interface PostEchoWorkerData {
  mode: 'post-echo';
}

/** Expose {@link ComlinkEcho} with comlink. */
export interface ComlinkWorkerData {
  mode: 'comlink';
}

/** On each `postMessage(n)`, send `n` messages into `sab`, then post `'sent'`. */
export interface ProduceWorkerData {
  mode: 'produce';
  sab: SharedArrayBuffer;
}

export type BenchWorkerData = EchoWorkerData | PostEchoWorkerData | ComlinkWorkerData | ProduceWorkerData;

/** API the comlink worker exposes. */
export interface ComlinkEcho {
  echo(x: number): number;
}

