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
  readonly #lastOfActor: Array<[number, number]>;
  readonly #lastWriter = new Map<number, [number, number]>();
  /** Sum (mod 2^32, order-free) of the readers' hashes since the last write, per chunk. */
  readonly #readers = new Map<number, [number, number]>();
  readonly #words = new Float64Array(MESSAGE_WORDS);
  readonly #bytes = new Uint32Array(this.#words.buffer);
  readonly #chunk: number;

  /** @param chunk cells per tracked chunk (1: exactly the footprints' dependency; tests use it). */
  constructor(actors: number, chunk = CHUNK_CELLS) {
    this.#chunk = chunk;
    this.#lastOfActor = Array.from({ length: actors }, (_, a) => [a + 1, ~a]);
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
    // Predecessors, combined order-free (a sum of distinct hashes).
    const seen = new Set<number>();
    let p1 = 0;
    let p2 = 0;
    const pred = (h: [number, number] | undefined): void => {
      if (h === undefined || seen.has(h[0])) return;
      seen.add(h[0]);
      p1 = (p1 + h[0]) | 0;
      p2 = (p2 + h[1]) | 0;
    };
    pred(this.#lastOfActor[footprint.actor]);
    const chunks: number[] = [];
    const a = footprint.accesses;
    for (let i = 0; i < a.length; i += 4) {
      for (let c = Math.floor(a[i + 1]! / this.#chunk); c <= Math.floor(a[i + 2]! / this.#chunk); c++) {
        const key = a[i]! * 2 ** 32 + c;
        pred(this.#lastWriter.get(key));
        if (a[i + 3] === 1) {
          pred(this.#readers.get(key));
          chunks.push(key, 1);
        } else {
          chunks.push(key, 0);
        }
      }
    }
    if (footprint.global) for (const h of this.#lastOfActor) pred(h);
    h1 = mix(mix(h1, p1), p2) >>> 0;
    h2 = mix(mix(h2, p2), p1) >>> 0;
    const mine: [number, number] = [h1, h2];
    this.#lastOfActor[footprint.actor] = mine;
    for (let i = 0; i < chunks.length; i += 2) {
      const key = chunks[i]!;
      if (chunks[i + 1] === 1) {
        this.#lastWriter.set(key, mine);
        this.#readers.delete(key);
      } else {
        const r = this.#readers.get(key) ?? [0, 0];
        this.#readers.set(key, [(r[0] + h1) | 0, (r[1] + h2) | 0]);
      }
    }
  }

  /** 14 hex digits. */
  digest(): string {
    let h1 = 0x1b873593;
    let h2 = 0xcc9e2d51;
    for (const [a, b] of this.#lastOfActor) {
      h1 = mix(h1, a);
      h2 = mix(h2, b);
    }
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
  }
}
