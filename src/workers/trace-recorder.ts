/**
 * Chrome Trace Event Format recording for one worker: a complete event per
 * handled message, flow events from each send to its delivery, counters.
 * Lives in the host (not the actor logic): it needs the real clock and the
 * transport's flow ids. Timestamps are microseconds of `process.hrtime`,
 * one monotonic clock shared by every thread of the process.
 */

/** One Trace Event Format event (the subset convsim writes). */
export interface TraceEvent {
  readonly name: string;
  readonly ph: 'X' | 's' | 'f' | 'C' | 'M';
  readonly ts: number;
  readonly pid: number;
  readonly tid: number;
  readonly dur?: number;
  readonly id?: number;
  readonly bp?: 'e';
  readonly cat?: string;
  readonly args?: Record<string, number | string>;
}

export const TRACE_PID = 1;

/** Microseconds since an arbitrary origin, as a float (Perfetto accepts fractions). */
export function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

export class TraceRecorder {
  readonly #tid: number;
  readonly #limit: number;
  readonly events: TraceEvent[] = [];
  #dropped = 0;

  constructor(tid: number, limit: number) {
    this.#tid = tid;
    this.#limit = limit;
  }

  get dropped(): number {
    return this.#dropped;
  }

  #push(event: TraceEvent): void {
    if (this.events.length < this.#limit) this.events.push(event);
    else this.#dropped++;
  }

  /** A flow starts here (inside the slice of the message being handled). */
  flowStart(id: number, ts: number, name: string): void {
    this.#push({ name, cat: 'message', ph: 's', id, ts, pid: TRACE_PID, tid: this.#tid });
  }

  /** A handled message: the slice, and the end of its flow (bound to the slice's start). */
  slice(name: string, ts: number, dur: number, flowId: number, args: Record<string, number | string>): void {
    // Keep the slice and its flow end together, or drop both: an unmatched flow would not load.
    if (this.events.length + 2 > this.#limit) {
      this.#dropped += flowId > 0 ? 2 : 1;
      return;
    }
    this.events.push({ name, cat: 'message', ph: 'X', ts, dur, pid: TRACE_PID, tid: this.#tid, args });
    if (flowId > 0) this.events.push({ name, cat: 'message', ph: 'f', bp: 'e', id: flowId, ts, pid: TRACE_PID, tid: this.#tid });
  }

  counter(name: string, ts: number, args: Record<string, number>): void {
    this.#push({ name, ph: 'C', ts, pid: TRACE_PID, tid: this.#tid, args });
  }
}
