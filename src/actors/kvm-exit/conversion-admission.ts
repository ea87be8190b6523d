/**
 * Admission of conversions at the KVM exit handler: at most N in flight,
 * first come first served. The threaded runtime uses p-queue (its
 * `concurrency` is the number of conversions in flight); the deterministic
 * runtime uses the synchronous equivalent below, so that a delivery never
 * depends on when the microtask queue drains.
 */
import PQueue from 'p-queue';

export interface ConversionAdmission {
  /** Start `task` when a slot is free; `task` calls `done()` when its conversion has ended. */
  admit(task: (done: () => void) => void): void;
  /** Stop starting new tasks (those in flight go on). */
  pause(): void;
  resume(): void;
  /** Call `fn` once nothing is in flight (typically after `pause`). */
  whenIdle(fn: () => void): void;
  /** Tasks running now. */
  readonly inFlight: number;
}

/** p-queue: the threaded runtime's admission. */
export class PQueueAdmission implements ConversionAdmission {
  readonly #queue: PQueue;

  constructor(concurrency: number) {
    this.#queue = new PQueue({ concurrency });
  }

  admit(task: (done: () => void) => void): void {
    void this.#queue.add(() => new Promise<void>((resolve) => task(resolve)));
  }

  pause(): void {
    this.#queue.pause();
  }

  resume(): void {
    this.#queue.start();
  }

  whenIdle(fn: () => void): void {
    void this.#queue.onPendingZero().then(fn);
  }

  get inFlight(): number {
    return this.#queue.pending;
  }
}

/** The same policy, synchronously: for the deterministic runtime. */
export class SyncAdmission implements ConversionAdmission {
  readonly #concurrency: number;
  readonly #waiting: Array<(done: () => void) => void> = [];
  readonly #idle: Array<() => void> = [];
  #running = 0;
  #paused = false;

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  admit(task: (done: () => void) => void): void {
    this.#waiting.push(task);
    this.#drain();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#drain();
  }

  whenIdle(fn: () => void): void {
    if (this.#running === 0) fn();
    else this.#idle.push(fn);
  }

  get inFlight(): number {
    return this.#running;
  }

  #drain(): void {
    while (!this.#paused && this.#running < this.#concurrency && this.#waiting.length > 0) {
      const task = this.#waiting.shift()!;
      this.#running++;
      let finished = false;
      task(() => {
        if (finished) return;
        finished = true;
        this.#running--;
        if (this.#running === 0) for (const fn of this.#idle.splice(0)) fn();
        this.#drain();
      });
    }
  }
}
