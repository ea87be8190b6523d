/**
 * Bounded multi-producer / single-consumer mailbox over a SharedArrayBuffer.
 *
 * ## Design (Vyukov bounded queue, specialised to one consumer)
 *
 * The ring has `capacity` (power of two) fixed-size slots of 8 Float64 words
 * (64 bytes) plus one Int32 sequence word per slot (`seq[]`, a separate area;
 * offsets and encoding in `layout.ts`: `seq = (n << 1) | waiterBit`).
 * Positions are free-running Int32 counters (`tail` for producers, `head` for
 * the consumer); the slot of position `pos` is `pos & (capacity - 1)`.
 *
 * - A slot whose `n == pos` is free for the producer owning position `pos`.
 * - Producer (`send`): claims `pos = Atomics.add(tail, 1)`, waits until its
 *   slot is free (normally it already is), writes the payload with plain
 *   stores, then PUBLISHES with `Atomics.exchange(seq, (pos + 1) << 1)`.
 *   (`trySend` instead claims with `compareExchange` only after seeing the
 *   slot free, so it never has to wait.)
 * - Consumer: at `head`, `n == head + 1` means the slot is complete; it reads
 *   the payload with plain loads, then RELEASES the slot with
 *   `Atomics.exchange(seq, (head + capacity) << 1)` (free for the next lap).
 *
 * Ordering guarantees: the consumer reads positions strictly in order, so it
 * sees messages in claim order. One producer claims its positions in program
 * order, so its messages are never reordered; each position is claimed by
 * exactly one `add`/CAS winner and read exactly once, so nothing is lost or
 * duplicated. A claimed-but-unpublished slot at `head` holds the consumer
 * back even if later slots are published: that is what keeps FIFO order.
 *
 * ## Blocking: spin, then futex on the slot's own seq word
 *
 * A blocked side (consumer waiting for `head` to be published, producer
 * waiting for its claimed slot to be released) polls the slot's seq word
 * `spinPolls` times, then announces itself by setting the waiter bit in that
 * same word and sleeps on it with `Atomics.wait`. Publish and release are
 * `Atomics.exchange`, which returns the previous value: the waker calls
 * `Atomics.notify` only if the waiter bit was set, so a busy peer costs no
 * notify (and no extra atomic: there is no separate "sleeping" flag to load).
 *
 * Lost wake-up argument (one word, so no memory-ordering subtleties):
 *
 * ```
 * waiter                                   waker
 * v = load(seq)  // not ready      (1)     old = exchange(seq, next)  (a)
 * if CAS(seq, v, v | 1) fails: goto 1 (2)  if (old & 1) notify(seq)   (b)
 * wait(seq, v | 1)                 (3)
 * ```
 *
 * RMWs on one word are totally ordered. If (a) precedes (2), the CAS fails and
 * the waiter re-reads (sees the new state). If (a) follows (2), `old` has the
 * bit, so the waker notifies; if (a) also precedes (3), the word is no longer
 * `v | 1` and `Atomics.wait` returns "not-equal" at once; otherwise (3)
 * enqueued the waiter before (b) and (b) wakes it (`Atomics.wait` compares and
 * enqueues atomically with respect to `Atomics.notify`). Several agents may
 * wait on one word (consumer and an over-claiming producer, or producers when
 * there are more producers than slots), so the waker notifies ALL; each woken
 * waiter re-checks and re-sets the bit if it must keep waiting. A bit left set
 * after a timeout only costs the next waker one spurious notify.
 *
 * `MailboxConsumer.waitAsync` runs the same protocol with `Atomics.waitAsync`
 * for consumers that must keep their event loop free.
 *
 * `close` sets CLOSED, then clears every waiter bit (`Atomics.and`) and
 * notifies where it was set; waiters check CLOSED after setting the bit
 * (details at `H_CLOSED` in `layout.ts`).
 *
 * @module
 */
import {
  H_CLOSED,
  H_HEAD,
  H_STAT_CONSUMER_SLEEPS,
  H_STAT_PRODUCER_FULL_WAITS,
  H_TAIL,
  SEQ_BASE,
  SEQ_VALUE_MASK,
  SEQ_WAITER_BIT,
  SLOT_WORDS,
  initMailbox,
  mailboxViews,
  seqOf,
} from './layout.js';

export { SLOT_WORDS } from './layout.js';

/**
 * Default number of polls before a blocked side goes to sleep. One poll is
 * one `Atomics.load` (~15–20 ns in Node 20, more when the line has to come
 * from another core), so this bounds spinning to roughly 20–100 µs.
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

/** Thrown by a blocking send that has to wait on a closed mailbox. */
export class MailboxClosedError extends Error {
  constructor() {
    super('mailbox is closed');
    this.name = 'MailboxClosedError';
  }
}

/** Counters kept in the mailbox SAB, plus a snapshot of its state. */
export interface MailboxStats {
  /** Positions claimed by producers = messages sent, including ones still being written (the tail counter, mod 2^32). */
  sent: number;
  /** Messages consumed (the head counter, mod 2^32; lags by < {@link HEAD_MIRROR_INTERVAL} while the consumer is busy). */
  received: number;
  /** Consumer waits whose spin ended in `Atomics.wait`. */
  consumerSleeps: number;
  /** Producer sends that found their slot occupied (ring full) and entered `Atomics.wait`. */
  producerFullWaits: number;
  /** `sent - received` (see {@link pendingMessages}). */
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

/**
 * Messages in the mailbox: positions claimed by producers and not yet
 * consumed. Includes messages still being written and blocking senders
 * waiting for a full ring, so it can exceed the capacity by up to the number
 * of producers. Safe from any thread; not a single snapshot of tail and head,
 * and over-counts by less than {@link HEAD_MIRROR_INTERVAL} while the consumer
 * is busy ({@link MailboxConsumer.pending} is exact).
 */
export function pendingMessages(sab: SharedArrayBuffer): number {
  return pendingOf(mailboxViews(sab).i32);
}

function pendingOf(i32: Int32Array): number {
  // Head is stored after each release and tail only grows, so reading head
  // first keeps the wrapped difference >= 0.
  const head = Atomics.load(i32, H_HEAD);
  const tail = Atomics.load(i32, H_TAIL);
  return (tail - head) | 0;
}

/** Reads the counters and state of a mailbox. Safe from any thread at any time. */
export function mailboxStats(sab: SharedArrayBuffer): MailboxStats {
  const { i32, capacity } = mailboxViews(sab);
  const head = Atomics.load(i32, H_HEAD);
  const tail = Atomics.load(i32, H_TAIL);
  return {
    sent: tail >>> 0,
    received: head >>> 0,
    consumerSleeps: Atomics.load(i32, H_STAT_CONSUMER_SLEEPS),
    producerFullWaits: Atomics.load(i32, H_STAT_PRODUCER_FULL_WAITS),
    pending: (tail - head) | 0,
    capacity,
    closed: Atomics.load(i32, H_CLOSED) !== 0,
  };
}

/**
 * Closes the mailbox and wakes every sleeper. Idempotent; callable from any
 * thread. O(capacity).
 *
 * Close is a "stop waiting" signal, checked only where an endpoint would
 * wait: afterwards a send that has to wait for space throws
 * {@link MailboxClosedError} (a send that finds space still succeeds, so the
 * ring may fill up), and `receive` returns false once the next message is not
 * published; the consumer can still drain published messages. Abandoned
 * claims make the mailbox unusable after close — it is meant for ending a run.
 */
export function closeMailbox(sab: SharedArrayBuffer): void {
  const { i32, capacity } = mailboxViews(sab);
  closeI32(i32, capacity);
}

function closeI32(i32: Int32Array, capacity: number): void {
  // CLOSED first, then clear the bits: a waiter that sets its bit after our
  // `and` on its word is later than our CLOSED store in the SeqCst order, so
  // its own CLOSED check (after the bit-set) sees 1. A waiter whose bit we
  // clear has its Atomics.wait(word, v | 1) fail or woken by the notify.
  Atomics.store(i32, H_CLOSED, 1);
  for (let s = 0; s < capacity; s++) {
    if ((Atomics.and(i32, SEQ_BASE + s, SEQ_VALUE_MASK) & SEQ_WAITER_BIT) !== 0) Atomics.notify(i32, SEQ_BASE + s);
  }
}

function checkSpin(options: MailboxEndpointOptions | undefined): number {
  const n = options?.spinPolls ?? DEFAULT_SPIN_POLLS;
  if (!(n >= 0)) throw new RangeError(`spinPolls must be >= 0, got ${n}`);
  return n;
}

/**
 * The consumer mirrors its head to H_HEAD every this many messages (power of
 * two) and whenever it finds the ring empty, so from other threads
 * `pending`/`received` are exact while the consumer is idle and lag by less
 * than this while it is busy.
 */
export const HEAD_MIRROR_INTERVAL = 64;

/** Outcome of {@link waitForSeq}. */
const READY = 0;
const TIMED_OUT = 1;
const CLOSED = 2;

/**
 * Results of {@link armWaiter} other than an armed word value. Armed values
 * always have the waiter bit set (odd), so these even codes cannot collide.
 */
const ARM_READY = 0;
const ARM_CLOSED = 2;
const ARM_RETRY = 4;

/**
 * Steps (1)–(2) of the waiter protocol (module doc) for "seq word at `index`
 * holds `want`, ignoring the waiter bit". Returns the word value to pass to
 * `Atomics.wait`/`waitAsync` (odd: our waiter bit is set on it), or
 * {@link ARM_READY}, {@link ARM_CLOSED}, or {@link ARM_RETRY} (the word
 * changed under us: judge it again).
 */
function armWaiter(i32: Int32Array, index: number, want: number): number {
  const v = Atomics.load(i32, index); // (1)
  if ((v & SEQ_VALUE_MASK) === want) return ARM_READY;
  if (Atomics.load(i32, H_CLOSED) !== 0) return ARM_CLOSED;
  const armed = v | SEQ_WAITER_BIT;
  // (2) Announce: set the waiter bit on exactly the value we judged. If the
  // word changed in between (publish/release/close), re-judge it instead.
  // Already set (another waiter, or us before a timeout)? Just join it.
  if (v !== armed && Atomics.compareExchange(i32, index, v, armed) !== v) return ARM_RETRY;
  // After the bit-set (SeqCst): see H_CLOSED in layout.ts.
  if (Atomics.load(i32, H_CLOSED) !== 0) return ARM_CLOSED;
  return armed;
}

/**
 * Waits until the seq word at `index` holds `want` (ignoring the waiter bit):
 * spins `spinPolls` loads, then sleeps on the word (protocol in the module
 * doc). Shared by the consumer (want = published) and producers (want = free).
 * Counts each actual sleep in the stats word `stat`.
 */
function waitForSeq(i32: Int32Array, index: number, want: number, spinPolls: number, deadline: number, stat: number): number {
  for (let n = spinPolls; n > 0; n--) {
    if ((Atomics.load(i32, index) & SEQ_VALUE_MASK) === want) return READY;
  }
  for (;;) {
    const armed = armWaiter(i32, index, want);
    if (armed === ARM_READY) return READY;
    if (armed === ARM_CLOSED) return CLOSED;
    if (armed === ARM_RETRY) continue;
    const remaining = deadline - performance.now(); // Infinity stays Infinity
    if (remaining <= 0) return TIMED_OUT; // leaving the bit set is harmless
    Atomics.add(i32, stat, 1);
    // (3) Sleep only while the word is still exactly what we armed.
    Atomics.wait(i32, index, armed, remaining);
  }
}

/** `Atomics.waitAsync` (Node >= 16; typed only in TS's ES2024 lib, this project targets ES2023). */
type WaitAsync = (
  typedArray: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };

const atomicsWaitAsync: WaitAsync | undefined = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

/**
 * Sending end of a mailbox. Any number of producers (in any threads) may each
 * own a `MailboxProducer` over the same SAB.
 */
export class MailboxProducer {
  readonly #i32: Int32Array;
  readonly #payload: Float64Array;
  readonly #mask: number;
  readonly #spinPolls: number;
  /** Words for `#fillFromWords` (avoids a closure per `send`). */
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
   * @throws MailboxClosedError if it has to wait and the mailbox is closed.
   */
  send(words: ArrayLike<number>): void {
    this.#setWords(words);
    this.sendWith(this.#fillFromWords);
  }

  /**
   * Like {@link send} but returns false instead of waiting when the ring is
   * full. Does not check the closed flag (see {@link closeMailbox}; use
   * {@link closed}).
   * @throws RangeError if `words.length > 8`.
   */
  trySend(words: ArrayLike<number>): boolean {
    this.#setWords(words);
    return this.trySendWith(this.#fillFromWords);
  }

  /**
   * Allocation-free send: claims the next position, waits (spin, then
   * `Atomics.wait`) until its slot is free, lets `fill` write the 8 words
   * `slot[offset..offset+7]`, then publishes. Pass a long-lived function to
   * avoid a closure per message. Three atomic operations on the fast path.
   *
   * `fill` must not throw: the position is already claimed and cannot be
   * given back, so the slot is published anyway (with whatever `fill` wrote
   * over the previous lap's data) and the error is rethrown.
   * @throws MailboxClosedError if it has to wait and the mailbox is closed
   *   (the claimed position is abandoned; the mailbox is finished anyway).
   */
  sendWith(fill: SlotWriter): void {
    const i32 = this.#i32;
    // Claim first (one RMW, no retry loop), then make sure the slot is ours.
    const pos = Atomics.add(i32, H_TAIL, 1);
    const index = SEQ_BASE + (pos & this.#mask);
    const want = seqOf(pos);
    if ((Atomics.load(i32, index) & SEQ_VALUE_MASK) !== want) {
      // Slot still holds the message from `pos - capacity` (or that one is
      // still being written): the ring is full from our point of view.
      const r = waitForSeq(i32, index, want, this.#spinPolls, Infinity, H_STAT_PRODUCER_FULL_WAITS);
      if (r !== READY) throw new MailboxClosedError();
    }
    this.#fillAndPublish(pos, index, fill);
  }

  /** Non-blocking {@link sendWith}: false if the ring is full (then `fill` is not called). */
  trySendWith(fill: SlotWriter): boolean {
    const i32 = this.#i32;
    const mask = this.#mask;
    let pos = Atomics.load(i32, H_TAIL);
    for (;;) {
      const index = SEQ_BASE + (pos & mask);
      const dif = ((Atomics.load(i32, index) & SEQ_VALUE_MASK) - seqOf(pos)) | 0;
      if (dif === 0) {
        // Slot free for `pos`: the CAS makes us its unique owner; on failure
        // it returns the current tail, from which we retry.
        const prev = Atomics.compareExchange(i32, H_TAIL, pos, (pos + 1) | 0);
        if (prev === pos) {
          this.#fillAndPublish(pos, index, fill);
          return true;
        }
        pos = prev;
      } else if (dif < 0) {
        // The slot still belongs to an earlier lap: the consumer has not
        // released position pos - capacity, so at least `capacity` messages
        // are pending — the ring is full (even if a blocking send has since
        // claimed `pos` with `add`).
        return false;
      } else {
        // Another producer claimed `pos` and published since we read tail.
        pos = Atomics.load(i32, H_TAIL);
      }
    }
  }

  #setWords(words: ArrayLike<number>): void {
    if (words.length > SLOT_WORDS) throw new RangeError(`a message has at most ${SLOT_WORDS} words, got ${words.length}`);
    this.#words = words;
  }

  #fillAndPublish(pos: number, index: number, fill: SlotWriter): void {
    try {
      fill(this.#payload, (pos & this.#mask) * SLOT_WORDS);
    } finally {
      // Publish. The plain payload writes above happen-before any consumer
      // load of this word that observes pos + 1. The old value tells us
      // whether someone announced sleeping on the word.
      const old = Atomics.exchange(this.#i32, index, seqOf(pos + 1));
      if ((old & SEQ_WAITER_BIT) !== 0) Atomics.notify(this.#i32, index);
    }
  }
}

/**
 * Receiving end of a mailbox. Exactly ONE consumer at a time per mailbox (the
 * ring is single-consumer: `head` is private to this object).
 *
 * Handing the mailbox to a new consumer (e.g. a restarted worker): the new
 * one starts at the position last mirrored to the SAB, which is exact only
 * after the old one called {@link detach} (or {@link close}), or last found
 * the ring empty. Otherwise it would wait for an already consumed position.
 */
export class MailboxConsumer {
  readonly #i32: Int32Array;
  readonly #payload: Float64Array;
  readonly #mask: number;
  readonly #capacity: number;
  readonly #spinPolls: number;
  /** Next position to read (private to this consumer). */
  #head: number;
  /** Last value stored to H_HEAD (see {@link HEAD_MIRROR_INTERVAL}). */
  #mirrored: number;
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
    // Resume where a previous consumer left off (see class doc).
    this.#head = Atomics.load(v.i32, H_HEAD);
    this.#mirrored = this.#head;
  }

  /** True once the mailbox has been closed (messages may still be pending). */
  get closed(): boolean {
    return Atomics.load(this.#i32, H_CLOSED) !== 0;
  }

  /** Messages claimed by producers and not yet received (see {@link pendingMessages}). */
  pending(): number {
    return (Atomics.load(this.#i32, H_TAIL) - this.#head) | 0;
  }

  /** Closes the mailbox (see {@link closeMailbox}), waking blocked producers and this consumer. */
  close(): void {
    this.#mirrorHead();
    closeI32(this.#i32, this.#capacity);
  }

  /**
   * Stores this consumer's exact position in the SAB so that a new
   * `MailboxConsumer` can take over (see class doc). Stop using this object
   * afterwards.
   */
  detach(): void {
    this.#mirrorHead();
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
   * `spinPolls` times, then sleeps in `Atomics.wait` (allowed on Node's main
   * thread too, but it blocks that thread's event loop).
   * @param timeoutMs maximum wait; default forever.
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
   * message is still consumed and the error is rethrown. Two atomic
   * operations (+1 statistics store) per message.
   */
  tryReceiveWith(read: SlotReader): boolean {
    const pos = this.#head;
    const index = SEQ_BASE + (pos & this.#mask);
    // Observing pos + 1 synchronizes-with the producer's publish exchange.
    if ((Atomics.load(this.#i32, index) & SEQ_VALUE_MASK) !== seqOf(pos + 1)) {
      this.#mirrorHead(); // idle: make the statistics exact
      return false;
    }
    this.#consume(pos, index, read);
    return true;
  }

  /**
   * Waits WITHOUT blocking the event loop (`Atomics.waitAsync`, no spinning)
   * until the next message is published; does not consume it — follow with
   * {@link tryReceive}/{@link tryReceiveWith}. Don't receive while a
   * `waitAsync` is pending (the consumer is single-threaded, so simply await it).
   * @param timeoutMs maximum wait; default forever.
   * @returns true when a message is ready; false on timeout, or when the
   *   mailbox is closed and the next message is not published.
   */
  async waitAsync(timeoutMs?: number): Promise<boolean> {
    if (atomicsWaitAsync === undefined) throw new Error('Atomics.waitAsync is not available in this runtime');
    const i32 = this.#i32;
    const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
    this.#mirrorHead(); // about to idle: make the statistics exact
    for (;;) {
      const pos = this.#head;
      const index = SEQ_BASE + (pos & this.#mask);
      const armed = armWaiter(i32, index, seqOf(pos + 1));
      if (armed === ARM_READY) return true;
      if (armed === ARM_CLOSED) return false;
      if (armed === ARM_RETRY) continue;
      const remaining = deadline - performance.now();
      if (remaining <= 0) return false;
      Atomics.add(i32, H_STAT_CONSUMER_SLEEPS, 1);
      // Same protocol as the blocking wait: waitAsync compares and registers
      // the waiter synchronously, atomically with respect to Atomics.notify
      // (which wakes async waiters too); only the resumption is deferred.
      const r = atomicsWaitAsync(i32, index, armed, remaining);
      if (r.async) await r.value;
    }
  }

  /** Zero-copy {@link receive}. */
  receiveWith(read: SlotReader, timeoutMs?: number): boolean {
    if (this.tryReceiveWith(read)) return true;
    const pos = this.#head;
    const index = SEQ_BASE + (pos & this.#mask);
    const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
    if (waitForSeq(this.#i32, index, seqOf(pos + 1), this.#spinPolls, deadline, H_STAT_CONSUMER_SLEEPS) !== READY) return false;
    this.#consume(pos, index, read);
    return true;
  }

  #setOut(out: Float64Array): void {
    if (out.length < SLOT_WORDS) throw new RangeError(`out must hold ${SLOT_WORDS} words`);
    this.#out = out;
  }

  /** Stores `head` to H_HEAD if stale. Statistics only: nothing synchronizes on it. */
  #mirrorHead(): void {
    if (this.#mirrored !== this.#head) {
      this.#mirrored = this.#head;
      Atomics.store(this.#i32, H_HEAD, this.#head);
    }
  }

  #consume(pos: number, index: number, read: SlotReader): void {
    const i32 = this.#i32;
    try {
      read(this.#payload, (pos & this.#mask) * SLOT_WORDS);
    } finally {
      // Release: our plain payload reads happen-before the next owner's
      // writes, which start only after it observes this value. A producer
      // sleeping on the word (ring full) set the waiter bit.
      const old = Atomics.exchange(i32, index, seqOf(pos + this.#capacity));
      const head = (pos + 1) | 0;
      this.#head = head;
      // H_HEAD is statistics only, and an atomic store costs about as much as
      // the release itself, so mirror it every HEAD_MIRROR_INTERVAL messages
      // (and whenever the ring is seen empty). Always after the release, so
      // `tail - H_HEAD` never undercounts.
      if ((head & (HEAD_MIRROR_INTERVAL - 1)) === 0) this.#mirrorHead();
      if ((old & SEQ_WAITER_BIT) !== 0) Atomics.notify(i32, index);
    }
  }
}
