/**
 * The piscina task of a systematic search: one shard of the DFS on a pool
 * thread. Threads share a small control array: a stop flag (Ctrl-C, time
 * budget), the earliest failure position any thread has found (a thread
 * stops once everything it has left comes later in the unsharded order),
 * and per-thread progress counters for the host's progress line.
 *
 * Compiled to `dist/explore/dfs/dfs-task.js`; see {@link dfsTaskFile}.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../workers/worker-url.js';
import { exploreDfs, type DfsResult, type DfsSearch } from './explore-dfs.js';

/** Control array cells (Int32). */
export const CONTROL_STOP = 0;
export const CONTROL_STOP_AT = 1;
/** Then two cells per thread: executions, distinct traces. */
export const CONTROL_PROGRESS = 2;
export const NO_FAILURE_POSITION = 0x7fffffff;

export interface DfsTaskInput extends DfsSearch {
  readonly shard: { readonly index: number; readonly count: number };
  /** Int32 cells, see CONTROL_*. */
  readonly control: SharedArrayBuffer;
  /** This thread's progress cells: CONTROL_PROGRESS + 2 * slot. */
  readonly slot: number;
}

/** A control array for `threads` threads. */
export function dfsControl(threads: number): SharedArrayBuffer {
  const control = new SharedArrayBuffer(4 * (CONTROL_PROGRESS + 2 * threads));
  Atomics.store(new Int32Array(control), CONTROL_STOP_AT, NO_FAILURE_POSITION);
  return control;
}

/** Lower the shared earliest failure position to `position` (a compare-and-swap loop: Atomics has no min). */
function lowerStopAt(control: Int32Array, position: number): void {
  for (;;) {
    const current = Atomics.load(control, CONTROL_STOP_AT);
    if (current <= position || Atomics.compareExchange(control, CONTROL_STOP_AT, current, position) === current) return;
  }
}

export default function runDfsTask(input: DfsTaskInput): DfsResult {
  const control = new Int32Array(input.control);
  const cell = CONTROL_PROGRESS + 2 * input.slot;
  const { control: _control, slot: _slot, ...search } = input;
  const result = exploreDfs({
    ...search,
    keepTraceHashes: true,
    // A failure another thread found earlier in the order makes the rest of this shard moot.
    shouldStop: (next) => Atomics.load(control, CONTROL_STOP) !== 0 || next > Atomics.load(control, CONTROL_STOP_AT),
    onExecution: (executions, distinct) => {
      Atomics.store(control, cell, executions);
      Atomics.store(control, cell + 1, distinct);
    },
  });
  if (result.failure !== undefined) lowerStopAt(control, result.failure.position);
  return result;
}

/** Path of the compiled task module, for `new Piscina({ filename })`. */
export function dfsTaskFile(): string {
  const file = join(packageRoot(), 'dist', 'explore', 'dfs', 'dfs-task.js');
  if (!existsSync(file)) throw new Error(`dfs task not built: ${file} is missing (run \`npm run build\`)`);
  return file;
}
