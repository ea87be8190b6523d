/**
 * A bounded ring of the KVM exit handler's most recent conversions, for the
 * HTML report's memory-map overlay: the host reads it every ~100 ms and
 * carries on from the sequence number it last saw. Fixed memory (typed
 * arrays), one write per conversion; pure (times come from the caller).
 */

/** One finished conversion. */
export interface ConversionMark {
  /** Sequence number, from 1. */
  readonly seq: number;
  /** When it finished, on the actor context's clock (nanoseconds on threads). */
  readonly t: number;
  readonly gpa: number;
  readonly size: number;
  readonly toPrivate: boolean;
  /** `kvm_convert_memory` returned 0. */
  readonly ok: boolean;
}

/** What {@link ConversionLog.since} returns. */
export interface ConversionBatch {
  readonly marks: ConversionMark[];
  /** Pass this as `after` next time. */
  readonly last: number;
  /** Conversions after `after` that the ring had already overwritten. */
  readonly lost: number;
}

/** Bounded ring of recent conversions. */
export class ConversionLog {
  readonly #capacity: number;
  #t: Float64Array;
  #gpa: Float64Array;
  #size: Float64Array;
  #flags: Uint8Array;
  #count = 0;

  /** @param capacity entries kept; older ones are overwritten. */
  constructor(capacity = 4096) {
    this.#capacity = capacity;
    // Grown on demand up to the capacity: a short run (an exploration's) allocates little.
    const initial = Math.min(capacity, 32);
    this.#t = new Float64Array(initial);
    this.#gpa = new Float64Array(initial);
    this.#size = new Float64Array(initial);
    this.#flags = new Uint8Array(initial);
  }

  /** Double the arrays (the ring has not wrapped yet: entries keep their index). */
  #grow(): void {
    const length = Math.min(this.#capacity, this.#t.length * 2);
    const grown = <T extends Float64Array | Uint8Array>(old: T, fresh: T): T => {
      fresh.set(old);
      return fresh;
    };
    this.#t = grown(this.#t, new Float64Array(length));
    this.#gpa = grown(this.#gpa, new Float64Array(length));
    this.#size = grown(this.#size, new Float64Array(length));
    this.#flags = grown(this.#flags, new Uint8Array(length));
  }

  /** Record one finished conversion. */
  record(t: number, gpa: number, size: number, toPrivate: boolean, ok: boolean): void {
    if (this.#count >= this.#t.length && this.#t.length < this.#capacity) this.#grow();
    const i = this.#count++ % this.#capacity;
    this.#t[i] = t;
    this.#gpa[i] = gpa;
    this.#size[i] = size;
    this.#flags[i] = (toPrivate ? 1 : 0) | (ok ? 2 : 0);
  }

  /** The conversions with a sequence number above `after` that are still in the ring. */
  since(after: number): ConversionBatch {
    const first = Math.max(after, this.#count - this.#capacity);
    const marks: ConversionMark[] = [];
    for (let seq = first + 1; seq <= this.#count; seq++) {
      const i = (seq - 1) % this.#capacity;
      const flags = this.#flags[i]!;
      marks.push({ seq, t: this.#t[i]!, gpa: this.#gpa[i]!, size: this.#size[i]!, toPrivate: (flags & 1) !== 0, ok: (flags & 2) !== 0 });
    }
    return { marks, last: this.#count, lost: Math.max(0, first - after) };
  }
}
