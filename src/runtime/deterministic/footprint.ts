/**
 * What one step of a deterministic run touched: the actor whose own state
 * it used and the cells of shared memory it read or wrote. Two steps are
 * independent (they commute: either order gives the same state and the
 * same later behaviour) when they belong to different actors, touch no
 * common cell where one of them writes, and neither ends the run.
 *
 * This is the dependency relation of partial-order reduction for actor
 * programs with shared memory (TransDPOR / Basset: deliveries to different
 * actors commute; here also the memory the actors share in QEMU, as the
 * vCPU threads' bitmap words and KVM's attributes are shared).
 */
import type { SharedAccessRecorder } from '../../core/shared-access.js';

/** Pseudo-buffers of state the runtime itself keeps, which steps read or write like memory. */
export const GUEST_RUNNING = 0;
/** The hot-plug cycles left to schedule (shared by every container). */
export const HOTPLUG_BUDGET = 1;
const FIRST_BUFFER_ID = 2;

export interface Footprint {
  /** The actor whose own state the step used: the receiver, or the container of a device access or a hot-plug. */
  readonly actor: number;
  /** Flat quadruples `[buffer, first cell, last cell, 1 if written]`, adjacent accesses merged. */
  readonly accesses: readonly number[];
  /** The step ended the run (QEMU exited, aborted or refused the device): dependent with every step. */
  readonly global: boolean;
}

/** Whether two steps commute. */
export function independent(a: Footprint, b: Footprint): boolean {
  if (a.global || b.global || a.actor === b.actor) return false;
  const x = a.accesses;
  const y = b.accesses;
  for (let i = 0; i < x.length; i += 4) {
    for (let j = 0; j < y.length; j += 4) {
      if (x[i] === y[j] && (x[i + 3]! | y[j + 3]!) !== 0 && x[i + 1]! <= y[j + 2]! && y[j + 1]! <= x[i + 2]!) return false;
    }
  }
  return true;
}

/**
 * Collects the accesses of one step at a time (install it with
 * `recordSharedAccesses`). Buffers are numbered in order of first access,
 * so numbering is the same in every run of the same case.
 */
export class FootprintRecorder implements SharedAccessRecorder {
  readonly #ids = new Map<SharedArrayBuffer, number>();
  #accesses: number[] = [];

  access(buffer: SharedArrayBuffer, write: boolean, first: number, last: number): void {
    let id = this.#ids.get(buffer);
    if (id === undefined) {
      id = FIRST_BUFFER_ID + this.#ids.size;
      this.#ids.set(buffer, id);
    }
    this.note(id, write, first, last);
  }

  /** An access to a pseudo-buffer (or a numbered one). */
  note(id: number, write: boolean, first: number, last: number): void {
    const a = this.#accesses;
    const w = write ? 1 : 0;
    // Loops over consecutive cells merge into one range: a pin per block, a word per store, and
    // loops that read then write each cell (an unpin), whose two ranges grow side by side.
    for (let n = a.length; n > 0 && n >= a.length - 4; n -= 4) {
      if (a[n - 4] === id && a[n - 1] === w && first <= a[n - 2]! + 1 && last >= a[n - 3]! - 1) {
        a[n - 3] = Math.min(a[n - 3]!, first);
        a[n - 2] = Math.max(a[n - 2]!, last);
        return;
      }
    }
    a.push(id, first, last, w);
  }

  /** The step's footprint; the recorder starts afresh for the next step. */
  take(actor: number, global: boolean): Footprint {
    const accesses = this.#accesses;
    this.#accesses = [];
    return { actor, accesses, global };
  }
}
