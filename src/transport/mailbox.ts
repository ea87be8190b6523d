/**
 * Bounded multi-producer / single-consumer mailbox over a SharedArrayBuffer.
 *
 * ## Design (Vyukov bounded queue, specialised to one consumer)
 *
 * The ring has `capacity` (power of two) fixed-size slots of 8 Float64 words
 * (64 bytes) plus one Int32 sequence number per slot (`seq[]`, a separate
 * area; offsets in `layout.ts`). Positions are free-running Int32 counters
 * (`tail` for producers, `head` for the consumer) that wrap at 2^32; slot of
 * position `pos` is `pos & (capacity - 1)`. All position arithmetic is done
 * `| 0` so comparisons survive the wrap.
 *
 * - A slot whose `seq == pos` is free for the producer that claims `pos`.
 * - Producer: reads `tail`, checks `seq[slot] == tail`, claims with
 *   `Atomics.compareExchange(tail, pos, pos + 1)`, writes the payload with
 *   plain stores, then PUBLISHES with `Atomics.store(seq[slot], pos + 1)`.
 * - Consumer: at `head`, `Atomics.load(seq[slot]) == head + 1` means the slot
 *   is complete; it reads the payload with plain loads, then RELEASES it with
 *   `Atomics.store(seq[slot], head + capacity)` (free for the next lap).
 * - `seq[slot] < pos` (as a wrapped difference) at the producer means the
 *   previous lap's message is still there: the ring is full.
 *
 * Ordering guarantees: the consumer reads positions strictly in order, so it
 * sees messages in claim order. One producer claims its positions in program
 * order, so messages of one producer are never reordered; each position is
 * claimed by exactly one CAS winner and read exactly once, so nothing is
 * duplicated or lost. (A claimed-but-not-yet-published slot at `head` holds
 * the consumer back even if later slots are published: that is what keeps
 * FIFO order.)
 *
 * ## Blocking (spin, then futex)
 *
 * Both sides first poll a bounded number of times, then sleep with
 * `Atomics.wait` on a futex word. The waker only pays for `Atomics.notify`
 * when the sleeper announced itself in a flag/counter, so the fast path of a
 * busy peer is syscall-free. The lost-wake-up argument (same on both sides):
 *
 * ```
 * sleeper                                  waker
 * v = load(futex)            (1)           store(seq, ...)      (a)  publish/release
 * store(announce, 1)         (2)           if load(announce)    (b)
 * if (condition now true) return (3)          add(futex, 1)     (c)
 * wait(futex, v)             (4)              notify(futex)     (d)
 * ```
 *
 * All `Atomics` are SeqCst, so (2)->(3) vs (a)->(b) is the Dekker pattern: either
 * (3) sees (a) and the sleeper does not sleep, or (b) sees (2) and the waker
 * bumps + notifies. In the latter case the bump (c) either precedes (4) — then
 * the futex value differs from `v` (read at (1), before (2)) and `Atomics.wait`
 * returns `"not-equal"` at once — or follows it, and (d) wakes the sleeper
 * (`Atomics.wait` checks the value and enqueues atomically with respect to
 * `Atomics.notify`). Reading `v` AFTER the re-check would reopen the race.
 *
 * @module
 */
import {
  H_CLOSED,
  H_CONSUMER_SLEEPING,
  H_DATA_FUTEX,
  H_HEAD,
  H_PRODUCERS_WAITING,
  H_SPACE_FUTEX,
  H_STAT_CONSUMER_SLEEPS,
  H_STAT_PRODUCER_FULL_WAITS,
  H_STAT_SENT,
  H_TAIL,
  SEQ_BASE,
  SLOT_WORDS,
  initMailbox,
  mailboxViews,
} from './layout.js';

export { SLOT_WORDS } from './layout.js';

/**
 * Default number of polls before a blocked side goes to sleep. One poll is
 * one `Atomics.load` (plus a CAS attempt on the producer side), i.e. a few
 * ns to ~100 ns when the line has to come from another core, so this bounds
 * spinning to roughly 1–50 µs.
 */
export const DEFAULT_SPIN_POLLS = 1000;

/** Writes one message into a claimed slot: words `slot[offset] .. slot[offset + 7]`. Must not retain `slot`. */
export type SlotWriter = (slot: Float64Array, offset: number) => void;

/** Reads one message from a slot: words `slot[offset] .. slot[offset + 7]`. Must not retain `slot`; the slot is reused once it returns. */
export type SlotReader = (slot: Float64Array, offset: number) => void;

/** Tuning for a mailbox endpoint. */
export interface MailboxEndpointOptions {
  /** Polls before sleeping in `Atomics.wait` (0 = sleep at once). Default {@link DEFAULT_SPIN_POLLS}. */
  spinPolls?: number;
}

/** Thrown by blocking sends on a closed mailbox. */
export class MailboxClosedError extends Error {
  constructor() {
    super('mailbox is closed');
    this.name = 'MailboxClosedError';
  }
}

/** Counters kept in the mailbox SAB, plus a snapshot of its state. */
export interface MailboxStats {
  /** Messages published by producers (Int32, wraps after 2^31). */
  sent: number;
  /** Consumer receives whose spin ended in `Atomics.wait`. */
  consumerSleeps: number;
  /** Producer sends that found the ring full and entered `Atomics.wait`. */
  producerFullWaits: number;
  /** Claimed-but-unconsumed positions (see {@link pendingMessages}). */
  pending: number;
  capacity: number;
  closed: boolean;
}

/**
 * Allocates a mailbox of `capacity` slots (a power of two, up to 2^24).
 * Share the returned SAB with producers and the consumer (e.g. via `workerData`).
 * @throws RangeError if `capacity` is not a power of two in range.
 */
export function createMailbox(capacity: number): SharedArrayBuffer {
  return initMailbox(capacity);
}

/** Number of messages in the ring: positions claimed by producers and not yet consumed (includes slots still being written). */
export function pendingMessages(sab: SharedArrayBuffer): number {
  const { i32 } = mailboxViews(sab);
  return pendingOf(i32);
}

function pendingOf(i32: Int32Array): number {
  // Head is stored after each release, tail is only ever CAS'ed upwards, so
  // the wrapped difference is in [0, capacity] — modulo the two loads not
  // being one snapshot (a concurrent send/receive may be counted or not).
  const tail = Atomics.load(i32, H_TAIL);
  const head = Atomics.load(i32, H_HEAD);
  return (tail - head) | 0;
}

/** Reads the stats counters and state of a mailbox. Safe from any thread at any time. */
export function mailboxStats(sab: SharedArrayBuffer): MailboxStats {
  const { i32, capacity } = mailboxViews(sab);
  return {
    sent: Atomics.load(i32, H_STAT_SENT),
    consumerSleeps: Atomics.load(i32, H_STAT_CONSUMER_SLEEPS),
    producerFullWaits: Atomics.load(i32, H_STAT_PRODUCER_FULL_WAITS),
    pending: pendingOf(i32),
    capacity,
    closed: Atomics.load(i32, H_CLOSED) !== 0,
  };
}

/**
 * Closes the mailbox and wakes every sleeper on both futexes. Idempotent and
 * callable from any thread.
 *
 * After close: blocking sends throw {@link MailboxClosedError}, `trySend`
 * returns false, and the consumer can still drain messages already published;
 * once the head slot is empty `receive` returns false at once. A send racing
 * with `close` may be accepted or rejected; an accepted one is delivered
 * only if the consumer keeps draining.
 */
export function closeMailbox(sab: SharedArrayBuffer): void {
  closeI32(mailboxViews(sab).i32);
}

function closeI32(i32: Int32Array): void {
  // CLOSED is stored BEFORE the futex bumps: a sleeper either re-checks
  // CLOSED after its futex snapshot was taken (and sees 1), or its
  // Atomics.wait fails with "not-equal" / is woken by the notify below and
  // its next loop iteration sees CLOSED = 1.
  Atomics.store(i32, H_CLOSED, 1);
  Atomics.add(i32, H_DATA_FUTEX, 1);
  Atomics.notify(i32, H_DATA_FUTEX);
  Atomics.add(i32, H_SPACE_FUTEX, 1);
  Atomics.notify(i32, H_SPACE_FUTEX);
}

function checkSpin(options: MailboxEndpointOptions | undefined): number {
  const n = options?.spinPolls ?? DEFAULT_SPIN_POLLS;
  if (!(n >= 0)) throw new RangeError(`spinPolls must be >= 0, got ${n}`);
  return n;
}

/**
 * Sending end of a mailbox. Any number of producers (in any threads) may each
 * own a `MailboxProducer` over the same SAB. One instance must not be used
 * concurrently (it is per-thread state), which JS guarantees anyway.
 */
export class MailboxProducer {
  readonly #i32: Int32Array;
  readonly #payload: Float64Array;
  readonly #mask: number;
  readonly #spinPolls: number;
  /** Position won by the last successful `#tryClaim`, valid until `#publish`. */
  #claimed = 0;
  /** Pending words for `#fillFromWords` (avoids a closure per `send`). */
  #words: ArrayLike<number> = [];
  readonly #fillFromWords: SlotWriter = (slot, offset) => {
    const words = this.#words;
    const n = words.length;
    for (let i = 0; i < n; i++) slot[offset + i] = words[i] as number;
    for (let i = n; i < SLOT_WORDS; i++) slot[offset + i] = 0;
  };

  /** @throws TypeError if `sab` is not a mailbox. */
  constructor(sab: SharedArrayBuffer, options?: MailboxEndpointOptions) {
    const v = mailboxViews(sab);
    this.#i32 = v.i32;
    this.#payload = v.payload;
    this.#mask = v.mask;
    this.#spinPolls = checkSpin(options);
  }

  /** True once the mailbox has been closed. */
  get closed(): boolean {
    return Atomics.load(this.#i32, H_CLOSED) !== 0;
  }

  /**
   * Sends up to 8 words (missing words are sent as 0). Waits while the ring
   * is full (spin, then `Atomics.wait`); never drops.
   * @throws RangeError if `words.length > 8` (nothing is sent).
   * @throws MailboxClosedError if the mailbox is (or becomes, while waiting) closed.
   */
  send(words: ArrayLike<number>): void {
    this.#setWords(words);
    this.sendWith(this.#fillFromWords);
  }

  /**
   * Like {@link send} but returns false instead of waiting when the ring is
   * full, and instead of throwing when the mailbox is closed.
   * @throws RangeError if `words.length > 8`.
   */
  trySend(words: ArrayLike<number>): boolean {
    this.#setWords(words);
    return this.trySendWith(this.#fillFromWords);
  }

  /**
   * Allocation-free send: claims a slot (waiting while the ring is full),
   * lets `fill` write the 8 words `slot[offset..offset+7]`, then publishes.
   * Pass a long-lived function to avoid a closure per message.
   *
   * `fill` must not throw: the position is already claimed and cannot be
   * given back, so the slot is published anyway (with whatever `fill` wrote
   * over the previous lap's data) and the error is rethrown.
   * @throws MailboxClosedError if the mailbox is (or becomes, while waiting) closed.
   */
  sendWith(fill: SlotWriter): void {
    if (Atomics.load(this.#i32, H_CLOSED) !== 0) throw new MailboxClosedError();
    if (!this.#tryClaim()) this.#claimSlow();
    this.#fillAndPublish(fill);
  }

  /** Non-blocking {@link sendWith}: false if the ring is full or closed (then `fill` is not called). */
  trySendWith(fill: SlotWriter): boolean {
    if (Atomics.load(this.#i32, H_CLOSED) !== 0) return false;
    if (!this.#tryClaim()) return false;
    this.#fillAndPublish(fill);
    return true;
  }

  #setWords(words: ArrayLike<number>): void {
    if (words.length > SLOT_WORDS) throw new RangeError(`a message has at most ${SLOT_WORDS} words, got ${words.length}`);
    this.#words = words;
  }

  /**
   * One claim attempt (Vyukov enqueue). Returns false only if the ring was
   * observed full; retries internally when merely losing a CAS race.
   */
  #tryClaim(): boolean {
    const i32 = this.#i32;
    const mask = this.#mask;
    let pos = Atomics.load(i32, H_TAIL);
    for (;;) {
      const seq = Atomics.load(i32, SEQ_BASE + (pos & mask));
      const dif = (seq - pos) | 0;
      if (dif === 0) {
        // Slot free for `pos`. The CAS makes us its unique owner; on failure
        // it returns the current tail, from which we retry.
        const prev = Atomics.compareExchange(i32, H_TAIL, pos, (pos + 1) | 0);
        if (prev === pos) {
          this.#claimed = pos;
          return true;
        }
        pos = prev;
      } else if (dif < 0) {
        // seq is still from the previous lap: the consumer has not released
        // this slot. No producer can claim `pos` until it does, so tail is
        // still `pos` and the ring is genuinely full right now.
        return false;
      } else {
        // Another producer claimed `pos` (and published) since we read tail.
        pos = Atomics.load(i32, H_TAIL);
      }
    }
  }

  /** Full ring: spin, then sleep on the space futex until a slot is released or the mailbox closes. */
  #claimSlow(): void {
    const i32 = this.#i32;
    for (;;) {
      for (let n = this.#spinPolls; n > 0; n--) {
        if (this.#tryClaim()) return;
      }
      if (Atomics.load(i32, H_CLOSED) !== 0) throw new MailboxClosedError();
      // (1) Snapshot the futex BEFORE announcing and re-checking (see module doc).
      const v = Atomics.load(i32, H_SPACE_FUTEX);
      // (2) Announce. The consumer loads this after every release store.
      Atomics.add(i32, H_PRODUCERS_WAITING, 1);
      // (3) Re-check after announcing: a release that happened before (2) is
      //     visible here; one after (2) will see our announcement and notify.
      if (this.#tryClaim()) {
        Atomics.sub(i32, H_PRODUCERS_WAITING, 1);
        return;
      }
      if (Atomics.load(i32, H_CLOSED) === 0) {
        Atomics.add(i32, H_STAT_PRODUCER_FULL_WAITS, 1);
        // (4) Sleeps only if nobody bumped the futex since (1).
        Atomics.wait(i32, H_SPACE_FUTEX, v);
      }
      Atomics.sub(i32, H_PRODUCERS_WAITING, 1);
      if (Atomics.load(i32, H_CLOSED) !== 0) throw new MailboxClosedError();
    }
  }

  #fillAndPublish(fill: SlotWriter): void {
    const pos = this.#claimed;
    const i32 = this.#i32;
    const slot = pos & this.#mask;
    try {
      fill(this.#payload, slot * SLOT_WORDS);
    } finally {
      // Publish: the plain payload writes above happen-before any consumer
      // load of seq that observes pos + 1.
      Atomics.store(i32, SEQ_BASE + slot, (pos + 1) | 0);
      Atomics.add(i32, H_STAT_SENT, 1);
      // Dekker half of the wake-up protocol: this load is ordered after the
      // publish store; if the consumer's re-check missed our publish, we see
      // its sleeping flag here. A stale 1 only costs a spurious wake.
      if (Atomics.load(i32, H_CONSUMER_SLEEPING) !== 0) {
        Atomics.add(i32, H_DATA_FUTEX, 1);
        Atomics.notify(i32, H_DATA_FUTEX, 1); // only the consumer waits here
      }
    }
  }
}

/**
 * Receiving end of a mailbox. Exactly ONE consumer per mailbox (the ring is
 * single-consumer: `head` is private to this object); create it in the thread
 * that receives.
 */
export class MailboxConsumer {
  readonly #i32: Int32Array;
  readonly #payload: Float64Array;
  readonly #mask: number;
  readonly #capacity: number;
  readonly #spinPolls: number;
  /** Next position to read; mirrored to H_HEAD after each release. */
  #head: number;
  #out: Float64Array = new Float64Array(SLOT_WORDS);
  readonly #copyOut: SlotReader = (slot, offset) => {
    const out = this.#out;
    for (let i = 0; i < SLOT_WORDS; i++) out[i] = slot[offset + i] as number;
  };

  /** @throws TypeError if `sab` is not a mailbox. */
  constructor(sab: SharedArrayBuffer, options?: MailboxEndpointOptions) {
    const v = mailboxViews(sab);
    this.#i32 = v.i32;
    this.#payload = v.payload;
    this.#mask = v.mask;
    this.#capacity = v.capacity;
    this.#spinPolls = checkSpin(options);
    // Resume where a previous consumer left off (only one at a time!).
    this.#head = Atomics.load(v.i32, H_HEAD);
  }

  /** True once the mailbox has been closed (messages may still be pending). */
  get closed(): boolean {
    return Atomics.load(this.#i32, H_CLOSED) !== 0;
  }

  /** Messages claimed by producers and not yet received (includes slots still being written). */
  pending(): number {
    return pendingOf(this.#i32);
  }

  /** Closes the mailbox (see {@link closeMailbox}), waking blocked producers and this consumer. */
  close(): void {
    closeI32(this.#i32);
  }

  /**
   * Copies the next message (8 words) into `out[0..7]` if one is complete.
   * @returns false if the next message is not (yet) published.
   * @throws RangeError if `out.length < 8`.
   */
  tryReceive(out: Float64Array): boolean {
    this.#setOut(out);
    return this.tryReceiveWith(this.#copyOut);
  }

  /**
   * Waits for the next message and copies it into `out[0..7]`: spins
   * `spinPolls` times, then sleeps in `Atomics.wait` (fine on the main thread
   * in Node, but it blocks that thread's event loop).
   * @param timeoutMs maximum total wait; default: forever.
   * @returns true when a message was received; false on timeout, or when the
   *   mailbox is closed and the next message is not published.
   */
  receive(out: Float64Array, timeoutMs?: number): boolean {
    this.#setOut(out);
    return this.receiveWith(this.#copyOut, timeoutMs);
  }

  /**
   * Zero-copy, allocation-free {@link tryReceive}: calls `read(slot, offset)`
   * on the message in place, then releases the slot. If `read` throws, the
   * message is still consumed (released) and the error is rethrown.
   */
  tryReceiveWith(read: SlotReader): boolean {
    const pos = this.#head;
    const slot = pos & this.#mask;
    // Only possible values at head: pos (free / being written) or pos + 1
    // (published). Observing pos + 1 synchronizes-with the producer's publish.
    if (Atomics.load(this.#i32, SEQ_BASE + slot) !== ((pos + 1) | 0)) return false;
    try {
      read(this.#payload, slot * SLOT_WORDS);
    } finally {
      this.#release(pos, slot);
    }
    return true;
  }

  /** Zero-copy {@link receive}. */
  receiveWith(read: SlotReader, timeoutMs?: number): boolean {
    if (this.tryReceiveWith(read)) return true;
    if (!this.#waitForData(timeoutMs ?? Infinity)) return false;
    return this.tryReceiveWith(read);
  }

  #setOut(out: Float64Array): void {
    if (out.length < SLOT_WORDS) throw new RangeError(`out must hold ${SLOT_WORDS} words`);
    this.#out = out;
  }

  #headReady(): boolean {
    const pos = this.#head;
    return Atomics.load(this.#i32, SEQ_BASE + (pos & this.#mask)) === ((pos + 1) | 0);
  }

  #release(pos: number, slot: number): void {
    const i32 = this.#i32;
    // Release: our plain payload reads happen-before the next producer's
    // writes, which start only after it observes this store.
    Atomics.store(i32, SEQ_BASE + slot, (pos + this.#capacity) | 0);
    this.#head = (pos + 1) | 0;
    // After the release store, so `tail - head` never undercounts.
    Atomics.store(i32, H_HEAD, this.#head);
    // Dekker half of the space protocol: ordered after the release store; if
    // a full-ring producer's re-check missed it, we see its announcement.
    if (Atomics.load(i32, H_PRODUCERS_WAITING) !== 0) {
      Atomics.add(i32, H_SPACE_FUTEX, 1);
      // Wake all: any of several waiting producers may take the slot, and a
      // waiter that loses the race simply waits again. Waking just one could
      // pick a producer that is between its announce and its wait (no-op
      // notify) while another stays asleep.
      Atomics.notify(i32, H_SPACE_FUTEX);
    }
  }

  /** Spins, then sleeps until the head slot is published. False on timeout or closed-and-empty. */
  #waitForData(timeoutMs: number): boolean {
    const i32 = this.#i32;
    const deadline = performance.now() + timeoutMs; // Infinity stays Infinity
    for (let n = this.#spinPolls; n > 0; n--) {
      if (this.#headReady()) return true;
    }
    for (;;) {
      if (this.#headReady()) return true;
      if (Atomics.load(i32, H_CLOSED) !== 0) return false;
      // (1) Snapshot the futex BEFORE announcing and re-checking (see module doc).
      const v = Atomics.load(i32, H_DATA_FUTEX);
      // (2) Announce; producers load this after each publish store.
      Atomics.store(i32, H_CONSUMER_SLEEPING, 1);
      // (3) Re-check after announcing. CLOSED is checked too: close() stores it
      //     before bumping the futex, so a close after (1) fails the wait.
      if (this.#headReady()) {
        Atomics.store(i32, H_CONSUMER_SLEEPING, 0);
        return true;
      }
      const remaining = deadline - performance.now();
      if (remaining <= 0 || Atomics.load(i32, H_CLOSED) !== 0) {
        Atomics.store(i32, H_CONSUMER_SLEEPING, 0);
        return this.#headReady();
      }
      Atomics.add(i32, H_STAT_CONSUMER_SLEEPS, 1);
      // (4) Sleeps only if no producer/close bumped the futex since (1).
      Atomics.wait(i32, H_DATA_FUTEX, v, remaining);
      // Awake (woken, timed out, spurious or not-equal): clear the flag so
      // producers stop paying for notify while we are busy, then loop.
      Atomics.store(i32, H_CONSUMER_SLEEPING, 0);
    }
  }
}
