/**
 * SharedArrayBuffer layout of the mailbox ring (see `mailbox.ts`).
 *
 * This is the ONE module that knows where things live inside a mailbox SAB.
 * Everything else addresses the buffer through the named offsets below.
 *
 * ```
 * byte 0                      HEADER_BYTES                 payloadByteOffset(cap)
 * | header (Int32 words,      | seq[cap] (Int32, one per   | payload[cap][8] (Float64,
 * |  one 64-byte line per     |  slot)                     |  64 bytes per slot)
 * |  hot field)               |                            |
 * ```
 *
 * ## Memory-ordering assumptions (apply to every field below)
 *
 * - Every access to a header word or a `seq[]` word goes through `Atomics.*`.
 *   All `Atomics` operations are sequentially consistent (SeqCst) in the
 *   ECMAScript memory model: they are totally ordered, and an `Atomics.load`
 *   that reads the value written by an `Atomics.store` synchronizes-with that
 *   store.
 * - Payload words (Float64) are written and read with PLAIN typed-array
 *   accesses. They are made safe by the slot protocol alone: the producer's
 *   plain writes are sequenced before its `Atomics.store(seq)` (publish), and
 *   the consumer's plain reads are sequenced after the `Atomics.load(seq)`
 *   that observed the publish, so the writes happen-before the reads. The
 *   same argument, mirrored, covers slot reuse (the consumer's reads happen
 *   before the release store, which happens before the next producer's
 *   writes). No payload word is ever accessed by two agents without such an
 *   edge in between.
 * - The wake-up protocols rely on SeqCst *store -> load* ordering (the
 *   "Dekker" pattern): if agent A stores X then loads Y, and agent B stores Y
 *   then loads X, at least one of them observes the other's store. Plain
 *   acquire/release would NOT give this; SeqCst `Atomics` does (V8 emits
 *   `xchg`/`mfence` on x86 and `stlr`+`ldar` on ARMv8, both of which forbid
 *   the store->load reordering).
 *
 * @module
 */

/** Bytes in a cache line; hot header fields are padded to one line each to avoid false sharing. */
export const CACHE_LINE_BYTES = 64;

/** Int32 words per cache line. */
const LINE = CACHE_LINE_BYTES / Int32Array.BYTES_PER_ELEMENT; // 16

/** Float64 payload words per slot (64 bytes). */
export const SLOT_WORDS = 8;

/** Payload bytes per slot. */
export const SLOT_BYTES = SLOT_WORDS * Float64Array.BYTES_PER_ELEMENT; // 64

/** Marker in {@link H_MAGIC} so a random SAB is not mistaken for a mailbox. */
export const MAILBOX_MAGIC = 0x4d424f58; // "MBOX"

/** Layout version in {@link H_VERSION}; bump when offsets change. */
export const MAILBOX_LAYOUT_VERSION = 1;

/**
 * Largest supported capacity. Positions are Int32 counters that wrap at 2^32;
 * the Vyukov comparison `(seq - pos) | 0` is only meaningful while the
 * distance between any live seq and position stays far below 2^31.
 */
export const MAX_CAPACITY = 1 << 24;

// ---------------------------------------------------------------------------
// Header: Int32 indices into `new Int32Array(sab)`.
// ---------------------------------------------------------------------------

/**
 * Line 0 — producers' claim counter (next position to hand out), wraps at 2^32.
 * Written only by `Atomics.compareExchange` (producers). Read by the consumer
 * and by anyone computing `pending()`. Hot and contended between producers,
 * so it sits alone on its line.
 */
export const H_TAIL = 0 * LINE;

/**
 * Line 1 — consumer's position (next position to read), wraps at 2^32.
 * Written only by the consumer with `Atomics.store` AFTER the slot's release
 * store, so `tail - head` never under-counts a message still in a slot.
 * Read only for `pending()`; the consumer keeps its own copy.
 */
export const H_HEAD = 1 * LINE;

/**
 * Line 2 — 1 while the consumer has announced it is about to sleep / is
 * sleeping on {@link H_DATA_FUTEX}, else 0. Written only by the consumer.
 * Producers `Atomics.load` it after their publish store (Dekker pairing with
 * the consumer's store-then-recheck; see `MailboxConsumer.receive`).
 */
export const H_CONSUMER_SLEEPING = 2 * LINE;

/**
 * Line 2 — futex word the consumer `Atomics.wait`s on. Its value carries no
 * meaning except "changed": producers (and `close`) `Atomics.add` 1 before
 * `Atomics.notify`, so a consumer that read the old value before its final
 * re-check returns from `Atomics.wait` immediately ("not-equal") instead of
 * missing the wake-up. Shares the line with the sleeping flag: both are only
 * touched on the slow path.
 */
export const H_DATA_FUTEX = 2 * LINE + 1;

/**
 * Line 3 — number of producers that announced they are about to sleep / are
 * sleeping on {@link H_SPACE_FUTEX} because the ring was full. Producers
 * `Atomics.add(+1)` before their final re-check and `Atomics.sub(-1)` after
 * waking. The consumer `Atomics.load`s it after each release store (Dekker
 * pairing, mirrored from the data side).
 */
export const H_PRODUCERS_WAITING = 3 * LINE;

/** Line 3 — futex word full-ring producers wait on; bumped by the consumer (and `close`) before notifying. */
export const H_SPACE_FUTEX = 3 * LINE + 1;

/**
 * Line 4 — 1 once the mailbox is closed (never reset). Set with
 * `Atomics.store` BEFORE both futex words are bumped, so any sleeper that
 * re-checks after the bump (or whose `Atomics.wait` is failed by it) sees it.
 */
export const H_CLOSED = 4 * LINE;

/** Line 4 — capacity (power of two). Written once before the SAB is shared; read-only afterwards. */
export const H_CAPACITY = 4 * LINE + 1;

/** Line 4 — {@link MAILBOX_MAGIC}. Write-once. */
export const H_MAGIC = 4 * LINE + 2;

/** Line 4 — {@link MAILBOX_LAYOUT_VERSION}. Write-once. */
export const H_VERSION = 4 * LINE + 3;

/**
 * Line 5 — stats: messages published (producers, `Atomics.add` after the
 * publish store). Int32; wraps after 2^31 messages, read it as a rate or
 * a small-run total. Alone on its line because every send touches it.
 */
export const H_STAT_SENT = 5 * LINE;

/** Line 6 — stats: consumer receives that ended their spin and entered `Atomics.wait` (consumer, `Atomics.add`). */
export const H_STAT_CONSUMER_SLEEPS = 6 * LINE;

/** Line 6 — stats: producer sends that found the ring full and entered `Atomics.wait` (producers, `Atomics.add`). */
export const H_STAT_PRODUCER_FULL_WAITS = 6 * LINE + 1;

/** Header size in Int32 words (7 lines used, padded to 8). */
export const HEADER_WORDS = 8 * LINE;

/** Header size in bytes; the seq area starts here. */
export const HEADER_BYTES = HEADER_WORDS * Int32Array.BYTES_PER_ELEMENT; // 512

// ---------------------------------------------------------------------------
// Areas after the header.
// ---------------------------------------------------------------------------

/**
 * Int32 index (into `new Int32Array(sab)`) of slot 0's sequence number.
 * `seq[i]` protocol (Vyukov): `seq == pos` → free for the producer claiming
 * `pos`; `seq == pos + 1` → published, readable by the consumer at `pos`;
 * released by the consumer as `seq = pos + capacity` (free for the next lap).
 */
export const SEQ_BASE = HEADER_WORDS;

/** Byte offset of the payload area, aligned to a cache line. */
export function payloadByteOffset(capacity: number): number {
  const seqEnd = HEADER_BYTES + capacity * Int32Array.BYTES_PER_ELEMENT;
  return Math.ceil(seqEnd / CACHE_LINE_BYTES) * CACHE_LINE_BYTES;
}

/** Total SAB size for a ring of `capacity` slots. */
export function mailboxByteLength(capacity: number): number {
  return payloadByteOffset(capacity) + capacity * SLOT_BYTES;
}

/** True when `n` is a power of two within `[1, MAX_CAPACITY]`. */
export function isValidCapacity(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= MAX_CAPACITY && (n & (n - 1)) === 0;
}

/** Typed views over one mailbox SAB. */
export interface MailboxViews {
  /** Header + seq area (indices from the `H_*` constants and {@link SEQ_BASE}). */
  readonly i32: Int32Array;
  /** Payload area; slot `i` occupies words `[i * SLOT_WORDS, (i + 1) * SLOT_WORDS)`. */
  readonly payload: Float64Array;
  readonly capacity: number;
  /** `capacity - 1`; `pos & mask` is the slot index of position `pos`. */
  readonly mask: number;
}

/**
 * Validates `sab` as a mailbox and returns views over it.
 * @throws TypeError if the buffer is not a mailbox of this layout version.
 */
export function mailboxViews(sab: SharedArrayBuffer): MailboxViews {
  if (sab.byteLength < HEADER_BYTES) throw new TypeError('not a mailbox: buffer too small');
  const header = new Int32Array(sab, 0, HEADER_WORDS);
  // Write-once fields: initialised before the SAB was shared (postMessage /
  // workerData transfer is itself a happens-before edge), so load is enough.
  const magic = Atomics.load(header, H_MAGIC);
  const version = Atomics.load(header, H_VERSION);
  const capacity = Atomics.load(header, H_CAPACITY);
  if (magic !== MAILBOX_MAGIC) throw new TypeError('not a mailbox: bad magic');
  if (version !== MAILBOX_LAYOUT_VERSION) throw new TypeError(`mailbox layout version ${version}, expected ${MAILBOX_LAYOUT_VERSION}`);
  if (!isValidCapacity(capacity) || sab.byteLength !== mailboxByteLength(capacity)) {
    throw new TypeError('not a mailbox: capacity/size mismatch');
  }
  return {
    i32: new Int32Array(sab, 0, HEADER_WORDS + capacity),
    payload: new Float64Array(sab, payloadByteOffset(capacity), capacity * SLOT_WORDS),
    capacity,
    mask: capacity - 1,
  };
}

/**
 * Allocates and initialises a mailbox SAB (header + `seq[i] = i`).
 * Must complete before the buffer is shared with other agents.
 */
export function initMailbox(capacity: number): SharedArrayBuffer {
  if (!isValidCapacity(capacity)) {
    throw new RangeError(`mailbox capacity must be a power of two in [1, ${MAX_CAPACITY}], got ${capacity}`);
  }
  const sab = new SharedArrayBuffer(mailboxByteLength(capacity));
  const i32 = new Int32Array(sab, 0, HEADER_WORDS + capacity);
  // Fresh SAB is zeroed: TAIL = HEAD = 0, flags/futexes/stats = 0.
  for (let i = 0; i < capacity; i++) Atomics.store(i32, SEQ_BASE + i, i); // slot i free for position i
  Atomics.store(i32, H_CAPACITY, capacity);
  Atomics.store(i32, H_VERSION, MAILBOX_LAYOUT_VERSION);
  Atomics.store(i32, H_MAGIC, MAILBOX_MAGIC); // last: a half-initialised buffer never validates
  return sab;
}
