/**
 * A hash of a run's partial order (its Mazurkiewicz trace) rather than of
 * its interleaving: two runs that differ only in the order of independent
 * steps hash the same. Counting distinct values tells how many genuinely
 * different executions a search has seen (saturation), where the ordinary
 * trace hash counts every reordering.
 *
 * Each step's hash covers what it did (actor and message) and the hashes of
 * the steps it depends on: the previous step of its actor, the last writer
 * of each memory chunk it touches and, when it writes, the readers since.
 * The run's hash combines each actor's last step, which transitively
 * covers every step. Memory is tracked in chunks of {@link CHUNK_CELLS}
 * cells: coarser than the footprints, so a few commuting steps are told
 * apart (the count errs high, never merges different traces).
 */
import { encodedWords, encodeMessage, MESSAGE_WORDS } from '../../actors/codec.js';
import type { Message } from '../../actors/protocol.js';
import type { Footprint } from './footprint.js';

/** Cells per tracked chunk of shared memory (1,024 bitmap words or page counters). */
export const CHUNK_CELLS = 1024;

function mix(h: number, v: number): number {
  return Math.imul(h ^ v, 2654435761) ^ (h >>> 15);
}

export class PartialOrderHasher {
  // Hashes are pairs of 32-bit lanes, kept in parallel structures (no per-step allocation).
  readonly #actor1: Int32Array;
  readonly #actor2: Int32Array;
  /** Chunk key -> slot in the arrays below (one Map lookup per chunk touched). */
  readonly #slots = new Map<number, number>();
  /** Per slot: the last writer's hash (0 lanes and `#written` 0: none yet). */
  #writer1 = new Int32Array(64);
  #writer2 = new Int32Array(64);
  #written = new Uint8Array(64);
  /** Per slot: the sum (mod 2^32, order-free) of the readers' hashes since the last write. */
  #readers1 = new Int32Array(64);
  #readers2 = new Int32Array(64);
  readonly #words = new Float64Array(MESSAGE_WORDS);
  readonly #bytes = new Uint32Array(this.#words.buffer);
  readonly #chunk: number;
  /** Scratch: the step's predecessors (lane 1, lane 2) and chunks touched (key, written). */
  #pred1: number[] = [];
  #pred2: number[] = [];
  #chunks: number[] = [];

  /** @param chunk cells per tracked chunk (1: exactly the footprints' dependency; tests use it). */
  constructor(actors: number, chunk = CHUNK_CELLS) {
    this.#chunk = chunk;
    this.#actor1 = Int32Array.from({ length: actors }, (_, a) => a + 1);
    this.#actor2 = Int32Array.from({ length: actors }, (_, a) => ~a);
  }

  #slot(key: number): number {
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = this.#slots.size;
      this.#slots.set(key, slot);
      if (slot === this.#written.length) {
        const grow = <T extends Int32Array | Uint8Array>(old: T, fresh: T): T => {
          fresh.set(old);
          return fresh;
        };
        const n = slot * 2;
        this.#writer1 = grow(this.#writer1, new Int32Array(n));
        this.#writer2 = grow(this.#writer2, new Int32Array(n));
        this.#written = grow(this.#written, new Uint8Array(n));
        this.#readers1 = grow(this.#readers1, new Int32Array(n));
        this.#readers2 = grow(this.#readers2, new Int32Array(n));
      }
    }
    return slot;
  }

  #pred(h1: number | undefined, h2: number | undefined): void {
    if (h1 === undefined || h2 === undefined) return;
    const p1 = this.#pred1;
    for (let i = 0; i < p1.length; i++) if (p1[i] === h1 && this.#pred2[i] === h2) return;
    p1.push(h1);
    this.#pred2.push(h2);
  }

  /** One step: `what` is the message delivered (or what the device or host did). */
  add(footprint: Footprint, kind: number, what: Message): void {
    encodeMessage(what, this.#words, 0);
    let h1 = 0x9e3779b9 ^ kind;
    let h2 = 0x85ebca6b ^ footprint.actor;
    const halves = encodedWords(what.type) * 2;
    for (let i = 0; i < halves; i++) {
      h1 = mix(h1, this.#bytes[i]!);
      h2 = mix(h2, this.#bytes[i]! + i);
    }
    this.#pred1.length = 0;
    this.#pred2.length = 0;
    const chunks = this.#chunks;
    chunks.length = 0;
    this.#pred(this.#actor1[footprint.actor], this.#actor2[footprint.actor]);
    const a = footprint.accesses;
    for (let i = 0; i < a.length; i += 4) {
      for (let c = Math.floor(a[i + 1]! / this.#chunk); c <= Math.floor(a[i + 2]! / this.#chunk); c++) {
        // Small integer keys (V8 Smis hash fast): the chunk, then the buffer id (fewer than 64 buffers).
        const slot = this.#slot(c * 64 + a[i]!);
        if (this.#written[slot] === 1) this.#pred(this.#writer1[slot], this.#writer2[slot]);
        // A write follows every read since the last write (their sum stands for them all; 0 when none).
        if (a[i + 3] === 1 && (this.#readers1[slot] !== 0 || this.#readers2[slot] !== 0)) this.#pred(this.#readers1[slot], this.#readers2[slot]);
        chunks.push(slot, a[i + 3]!);
      }
    }
    if (footprint.global) for (let x = 0; x < this.#actor1.length; x++) this.#pred(this.#actor1[x], this.#actor2[x]);
    // Predecessors combined order-free: a sum of distinct hashes.
    let p1 = 0;
    let p2 = 0;
    for (let i = 0; i < this.#pred1.length; i++) {
      p1 = (p1 + this.#pred1[i]!) | 0;
      p2 = (p2 + this.#pred2[i]!) | 0;
    }
    h1 = mix(mix(h1, p1), p2) | 0;
    h2 = mix(mix(h2, p2), p1) | 0;
    this.#actor1[footprint.actor] = h1;
    this.#actor2[footprint.actor] = h2;
    for (let i = 0; i < chunks.length; i += 2) {
      const slot = chunks[i]!;
      if (chunks[i + 1] === 1) {
        this.#writer1[slot] = h1;
        this.#writer2[slot] = h2;
        this.#written[slot] = 1;
        this.#readers1[slot] = 0;
        this.#readers2[slot] = 0;
      } else {
        this.#readers1[slot] = (this.#readers1[slot]! + h1) | 0;
        this.#readers2[slot] = (this.#readers2[slot]! + h2) | 0;
      }
    }
  }

  /** The hash as a 53-bit integer (no allocation: the state key of a systematic search, at every step). */
  value(): number {
    let h1 = 0x1b873593;
    let h2 = 0xcc9e2d51;
    for (let x = 0; x < this.#actor1.length; x++) {
      h1 = mix(h1, this.#actor1[x]!);
      h2 = mix(h2, this.#actor2[x]!);
    }
    return 4294967296 * (2097151 & h2) + (h1 >>> 0);
  }

  /** 14 hex digits. */
  digest(): string {
    return this.value().toString(16).padStart(14, '0');
  }
}
