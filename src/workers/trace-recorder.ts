/**
 * Chrome Trace Event Format recording for one worker: a complete event per
 * handled message, flow events from each send to its delivery, counters.
 * Lives in the host (not the actor logic): it needs the real clock and the
 * transport's flow ids. Timestamps are microseconds of `process.hrtime`,
 * one monotonic clock shared by every thread of the process.
 *
 * Bounded for a run of any length: past the limit it keeps the most recent
 * events in full and an even sample of the older ones (see
 * {@link WholeRunBuffer}), so the trace covers the whole run. With a
 * window, only events inside it are recorded.
 */
import { WholeRunBuffer, type BufferCoverage } from './whole-run-buffer.js';

/** One Trace Event Format event (the subset convsim writes). */
export interface TraceEvent {
  readonly name: string;
  readonly ph: 'X' | 's' | 'f' | 'C' | 'M' | 'i';
  readonly ts: number;
  readonly pid: number;
  readonly tid: number;
  readonly dur?: number;
  readonly id?: number;
  readonly bp?: 'e';
  readonly s?: 't';
  readonly cat?: string;
  readonly args?: Record<string, number | string>;
}

export const TRACE_PID = 1;

/** Most instant events (violations) a recorder keeps; the rest are counted as dropped. */
export const MAX_INSTANTS = 1000;

/** Microseconds since an arbitrary origin, as a float (Perfetto accepts fractions). */
export function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/** A time window to record, in `nowUs` microseconds (absolute). */
export interface TraceWindow {
  readonly fromUs: number;
  readonly toUs: number;
}

/** What a recorder kept: the buffer's coverage, events outside the window, and the first and last times seen. */
export interface TraceCoverage extends BufferCoverage {
  readonly outsideWindow: number;
  readonly firstUs: number | undefined;
  readonly lastUs: number | undefined;
}

export class TraceRecorder {
  readonly #tid: number;
  readonly #buffer: WholeRunBuffer<TraceEvent>;
  readonly #window: TraceWindow | undefined;
  readonly #instants: TraceEvent[] = [];
  #instantsDropped = 0;
  #outside = 0;
  #firstUs: number | undefined;
  #lastUs: number | undefined;

  constructor(tid: number, limit: number, window?: TraceWindow) {
    this.#tid = tid;
    this.#buffer = new WholeRunBuffer(limit);
    this.#window = window;
  }

  /** Every event kept, oldest first. */
  get events(): TraceEvent[] {
    return [...this.#buffer.events(), ...this.#instants];
  }

  /** Events not kept (decimated, outside the window, or instants past {@link MAX_INSTANTS}). */
  get dropped(): number {
    return this.#buffer.dropped + this.#outside + this.#instantsDropped;
  }

  coverage(): TraceCoverage {
    return { ...this.#buffer.coverage(), outsideWindow: this.#outside, firstUs: this.#firstUs, lastUs: this.#lastUs };
  }

  #push(events: TraceEvent[]): void {
    const ts = events[0]!.ts;
    this.#firstUs ??= ts;
    this.#lastUs = ts;
    if (this.#window !== undefined && (ts < this.#window.fromUs || ts > this.#window.toUs)) {
      this.#outside += events.length;
      return;
    }
    this.#buffer.push(events);
  }

  /** A flow starts here (inside the slice of the message being handled). */
  flowStart(id: number, ts: number, name: string): void {
    this.#push([{ name, cat: 'message', ph: 's', id, ts, pid: TRACE_PID, tid: this.#tid }]);
  }

  /** A handled message: the slice, and the end of its flow (bound to the slice's start), kept or dropped together. */
  slice(name: string, ts: number, dur: number, flowId: number, args: Record<string, number | string>): void {
    const events: TraceEvent[] = [{ name, cat: 'message', ph: 'X', ts, dur, pid: TRACE_PID, tid: this.#tid, args }];
    if (flowId > 0) events.push({ name, cat: 'message', ph: 'f', bp: 'e', id: flowId, ts, pid: TRACE_PID, tid: this.#tid });
    this.#push(events);
  }

  /** An instant event on this track (scope thread): a violation this actor found. Never sampled out. */
  instant(name: string, ts: number, args: Record<string, number | string>): void {
    if (this.#window !== undefined && (ts < this.#window.fromUs || ts > this.#window.toUs)) {
      this.#outside++;
      return;
    }
    if (this.#instants.length >= MAX_INSTANTS) {
      this.#instantsDropped++;
      return;
    }
    this.#instants.push({ name, cat: 'violation', ph: 'i', s: 't', ts, pid: TRACE_PID, tid: this.#tid, args });
  }

  counter(name: string, ts: number, args: Record<string, number>): void {
    this.#push([{ name, ph: 'C', ts, pid: TRACE_PID, tid: this.#tid, args }]);
  }
}
