/**
 * Per-actor status words in one SharedArrayBuffer, written by each worker
 * and read by the host's watchdog. Plain Atomics loads/stores: the watchdog
 * only needs eventually-visible progress counters, not ordering.
 */
import { messageTypeOf } from '../actors/codec.js';

/** Int32 words per actor. */
const WORDS = 5;
/** 1 while handling a message, 0 while waiting for one. */
const BUSY = 0;
/** Messages handled so far (wraps; compared for change only). */
const HANDLED = 1;
/** Type code of the last message taken, -1 before the first. */
const LAST = 2;
/** Times the worker went to sleep waiting for a message. */
const SLEEPS = 3;
/**
 * HANDLED as it will stand once the message being handled at the last send
 * is done: when HANDLED passes it, the actor took a message and sent
 * nothing in reply (a silent actor).
 */
const HANDLED_AT_SEND = 4;

export function allocateStatus(actors: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(actors * WORDS * 4);
  const words = new Int32Array(sab);
  for (let a = 0; a < actors; a++) words[a * WORDS + LAST] = -1;
  return sab;
}

/** The worker's side: cheap stores around each message. */
export class StatusWriter {
  readonly #words: Int32Array;
  readonly #base: number;

  constructor(sab: SharedArrayBuffer, actor: number) {
    this.#words = new Int32Array(sab);
    this.#base = actor * WORDS;
  }

  begin(code: number): void {
    Atomics.store(this.#words, this.#base + LAST, code);
    Atomics.store(this.#words, this.#base + BUSY, 1);
  }

  end(): void {
    Atomics.store(this.#words, this.#base + BUSY, 0);
    Atomics.add(this.#words, this.#base + HANDLED, 1);
  }

  slept(): void {
    Atomics.add(this.#words, this.#base + SLEEPS, 1);
  }

  sent(): void {
    const busy = Atomics.load(this.#words, this.#base + BUSY);
    Atomics.store(this.#words, this.#base + HANDLED_AT_SEND, Atomics.load(this.#words, this.#base + HANDLED) + busy);
  }
}

export interface ActorStatus {
  readonly busy: boolean;
  readonly handled: number;
  readonly last: string;
  readonly sleeps: number;
  /** Messages taken since the actor last sent anything. */
  readonly handledSinceSend: number;
}

export function readStatus(sab: SharedArrayBuffer, actor: number): ActorStatus {
  const words = new Int32Array(sab);
  const base = actor * WORDS;
  const code = Atomics.load(words, base + LAST);
  return {
    busy: Atomics.load(words, base + BUSY) === 1,
    handled: Atomics.load(words, base + HANDLED),
    last: code < 0 ? 'nothing yet' : (messageTypeOf(code) ?? `code ${code}`),
    sleeps: Atomics.load(words, base + SLEEPS),
    handledSinceSend: (Atomics.load(words, base + HANDLED) - Atomics.load(words, base + HANDLED_AT_SEND)) | 0,
  };
}
