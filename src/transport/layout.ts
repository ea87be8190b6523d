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
 *   (or RMW) that reads the value written by an `Atomics.store` (or RMW)
 *   synchronizes-with it.
 * - Payload words (Float64) are written and read with PLAIN typed-array
 *   accesses. They are made safe by the slot protocol alone: the producer's
 *   plain writes are sequenced before its publishing `Atomics.exchange(seq)`,
 *   and the consumer's plain reads are sequenced after the `Atomics.load(seq)`
 *   that observed the publish, so the writes happen-before the reads. The
 *   same argument, mirrored, covers slot reuse (the consumer's reads happen
 *   before its releasing exchange, which happens before the next producer's
 *   load of seq, which precedes its writes). No payload word is ever accessed
 *   by two agents without such an edge in between.
 * - Each `seq[]` word is also the FUTEX word for its slot, and its low bit is
 *   the "a waiter is (about to be) asleep on this word" flag. Lost wake-ups
 *   are excluded by the atomicity of read-modify-writes on that ONE word (the
 *   waiter sets the bit with `compareExchange`; wakers change the word with
 *   `exchange` and see the bit in the old value), not by cross-location
 *   ordering. The only cross-location ordering relied on is for {@link H_CLOSED}
 *   (see there), which uses SeqCst store->load ordering (the "Dekker"
 *   pattern; V8 emits `xchg`/`mfence` on x86 and `stlr`+`ldar` on ARMv8).
 *
 * Why so few header words: in Node 20 (V8 11.3) every `Atomics.*` call is an
 * out-of-line builtin call (~15–25 ns, vs ~2 ns for a plain load), so the hot
 * path is designed around the number of atomic operations per message
 * (producer 3, consumer 2), not just around cache lines.
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
 * Largest supported capacity. Positions wrap at 2^32 and seq words hold them
 * mod 2^31 (shifted left by one); the wrapped comparison is only meaningful
 * while the distance between a live seq and a position (at most
 * capacity + number of producers) stays far below 2^30.
 */
export const MAX_CAPACITY = 1 << 24;

// ---------------------------------------------------------------------------
// Header: Int32 indices into `new Int32Array(sab)`.
// ---------------------------------------------------------------------------

/**
 * Line 0 — producers' claim counter: the next position to hand out. Wraps at
 * 2^32. Changed only by `Atomics.add` (blocking send: claim first, then wait
 * for the slot) or `Atomics.compareExchange` (`trySend`: claim only a free
 * slot). Since every claim increments it by one, it doubles as the
 * "messages sent" statistic (read as uint32). Hot and contended between
 * producers, so it sits alone on its line.
 */
export const H_TAIL = 0 * LINE;

/**
 * Line 1 — the consumer's position (next position to read), wraps at 2^32.
 * STATISTICS ONLY: the consumer keeps its own copy and mirrors it here with
 * `Atomics.store` every `HEAD_MIRROR_INTERVAL` messages and whenever it finds
 * the ring empty, always AFTER the release of the positions it covers, so
 * `tail - head` never under-counts. Nothing synchronizes on it.
 */
export const H_HEAD = 1 * LINE;

/**
 * Line 2 — 1 once the mailbox is closed (never reset). `close` does
 * `Atomics.store(CLOSED, 1)` and THEN, on every seq word, `Atomics.and(~1)`
 * (clear the waiter bit) and notifies if the bit was set. A waiter sets the
 * bit (`compareExchange`) and THEN loads CLOSED. SeqCst gives: either the
 * waiter sees CLOSED = 1, or its bit-set precedes close's `and` on that word,
 * so close changes the word (the waiter's `Atomics.wait(word, v | 1)` fails
 * or is woken by the notify).
 */
export const H_CLOSED = 2 * LINE;

/** Line 2 — capacity (power of two). Written once before the SAB is shared; read-only afterwards. */
export const H_CAPACITY = 2 * LINE + 1;

/** Line 2 — {@link MAILBOX_MAGIC}. Write-once. */
export const H_MAGIC = 2 * LINE + 2;

/** Line 2 — {@link MAILBOX_LAYOUT_VERSION}. Write-once. */
export const H_VERSION = 2 * LINE + 3;

/** Line 3 — stats: consumer waits that ended their spin and entered `Atomics.wait` (consumer only, `Atomics.add`). */
export const H_STAT_CONSUMER_SLEEPS = 3 * LINE;

/** Line 3 — stats: producer sends that found their slot still occupied (ring full) and entered `Atomics.wait` (`Atomics.add`). */
export const H_STAT_PRODUCER_FULL_WAITS = 3 * LINE + 1;

/** Header size in Int32 words (4 lines). */
export const HEADER_WORDS = 4 * LINE;

/** Header size in bytes; the seq area starts here. */
export const HEADER_BYTES = HEADER_WORDS * Int32Array.BYTES_PER_ELEMENT; // 256

// ---------------------------------------------------------------------------
// Areas after the header.
// ---------------------------------------------------------------------------

/**
 * Int32 index (into `new Int32Array(sab)`) of slot 0's sequence word.
 *
 * Encoding: `seq = (n << 1) | W`, where `n` is a position (mod 2^31) and `W`
 * is the waiter bit ({@link SEQ_WAITER_BIT}). Vyukov protocol on `n`:
 * - `n == pos`      free for the producer owning position `pos`;
 * - `n == pos + 1`  published: readable by the consumer at `pos`;
 * - released by the consumer as `n = pos + capacity` (free for the next lap).
 * Compare `(seq & SEQ_VALUE_MASK) - (pos << 1)` as a wrapped Int32 (`| 0`).
 */
export const SEQ_BASE = HEADER_WORDS;

/** Low bit of a seq word: set by a waiter (consumer or producer) before it `Atomics.wait`s on that word. */
export const SEQ_WAITER_BIT = 1;

/** Mask selecting the position part of a seq word. */
export const SEQ_VALUE_MASK = ~SEQ_WAITER_BIT;

/** Seq word (without waiter bit) for position `pos`; Int32 wrap-around intended. */
export function seqOf(pos: number): number {
  return pos << 1;
}

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
  // Fresh SAB is zeroed: TAIL = HEAD = 0, CLOSED = 0, stats = 0.
  for (let i = 0; i < capacity; i++) Atomics.store(i32, SEQ_BASE + i, seqOf(i)); // slot i free for position i
  Atomics.store(i32, H_CAPACITY, capacity);
  Atomics.store(i32, H_VERSION, MAILBOX_LAYOUT_VERSION);
  Atomics.store(i32, H_MAGIC, MAILBOX_MAGIC); // last: a half-initialised buffer never validates
  return sab;
}
