/**
 * Shared between `src/bench/mailbox.ts` and `mailbox-bench-worker.ts`: the
 * worker's `workerData` shapes and the comlink Node adapter import.
 *
 * @module
 */
import nodeAdapterModule from 'comlink/dist/umd/node-adapter.js';

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

/**
 * comlink's Node adapter (`nodeEndpoint`). The package has no `exports` map
 * and ships UMD/CommonJS, where the bundle assigns the function to
 * `module.exports` itself. Under NodeNext, TypeScript models that file's
 * `export default` as `module.exports.default`, so the default import is
 * typed as a namespace while at runtime it IS the function; accept both.
 */
const interop: unknown = nodeAdapterModule;
export const nodeEndpoint = (typeof interop === 'function' ? interop : nodeAdapterModule.default) as typeof nodeAdapterModule.default;
