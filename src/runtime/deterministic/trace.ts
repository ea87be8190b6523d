/** The record of a deterministic run: every delivery, and a hash of them all. */
import { encodedWords, encodeMessage, MESSAGE_WORDS } from '../../actors/codec.js';
import type { Message } from '../../actors/protocol.js';

export interface Delivery {
  readonly step: number;
  readonly from: number;
  readonly to: number;
  readonly message: Message;
  /** The step during which the sender sent it (-1: sent at start-up, outside any delivery). */
  readonly sentStep: number;
  /** Which candidate the scheduler took, and out of how many. */
  readonly choice: number;
  readonly candidates: number;
  /** The QEMU thread the step ran for (see `Candidate.thread`). */
  readonly thread: number;
  /**
   * The thread this step preempted: the one that ran the step before still
   * had a step waiting (a preemption as a systematic search counts it).
   */
  readonly preempts?: number;
}

/**
 * Incremental 53-bit hash (cyrb53-style) over the binary encoding of every
 * delivery: two runs with the same hash delivered the same messages in the
 * same order.
 */
export class TraceHasher {
  #h1 = 0xdeadbeef;
  #h2 = 0x41c6ce57;
  readonly #words = new Float64Array(MESSAGE_WORDS);
  readonly #bytes = new Uint32Array(this.#words.buffer);

  add(to: number, message: Message): void {
    encodeMessage(message, this.#words, 0);
    this.#mix(to);
    const halves = encodedWords(message.type) * 2;
    for (let i = 0; i < halves; i++) this.#mix(this.#bytes[i]!);
  }

  #mix(value: number): void {
    this.#h1 = Math.imul(this.#h1 ^ value, 2654435761);
    this.#h2 = Math.imul(this.#h2 ^ value, 1597334677);
  }

  /** 14 hex digits. */
  digest(): string {
    let h1 = Math.imul(this.#h1 ^ (this.#h1 >>> 16), 2246822507);
    h1 ^= Math.imul(this.#h2 ^ (this.#h2 >>> 13), 3266489909);
    let h2 = Math.imul(this.#h2 ^ (this.#h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
  }
}
