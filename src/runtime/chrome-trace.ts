/**
 * Assembles the workers' events into one Chrome Trace Event Format file
 * that Perfetto (ui.perfetto.dev) and chrome://tracing open: one process,
 * one named track per worker, a slice per handled message, flow arrows
 * from each send to its delivery, counter tracks.
 */
import { TRACE_PID, type TraceEvent } from '../workers/trace-recorder.js';

export interface TraceTrack {
  readonly name: string;
  readonly role: string;
  readonly tid: number;
  readonly events: readonly TraceEvent[];
  readonly dropped: number;
}

export interface ChromeTrace {
  readonly traceEvents: TraceEvent[];
  readonly displayTimeUnit: 'ms' | 'ns';
  readonly otherData: Record<string, string | number | boolean>;
}

export function buildChromeTrace(tracks: readonly TraceTrack[], limit: number, title: string): ChromeTrace {
  const events: TraceEvent[] = [
    { name: 'process_name', ph: 'M', ts: 0, pid: TRACE_PID, tid: 0, args: { name: title } },
  ];
  tracks.forEach((track, i) => {
    events.push({ name: 'thread_name', ph: 'M', ts: 0, pid: TRACE_PID, tid: track.tid, args: { name: `${track.name} (${track.role})` } });
    events.push({ name: 'thread_sort_index', ph: 'M', ts: 0, pid: TRACE_PID, tid: track.tid, args: { sort_index: i } });
  });
  // A flow needs both ends; an end may be missing where a worker reached its event limit.
  const starts = new Set<number>();
  const ends = new Set<number>();
  for (const track of tracks) {
    for (const e of track.events) {
      if (e.ph === 's') starts.add(e.id!);
      else if (e.ph === 'f') ends.add(e.id!);
    }
  }
  let origin = Infinity;
  for (const track of tracks) for (const e of track.events) if (e.ts < origin) origin = e.ts;
  if (origin === Infinity) origin = 0;
  for (const track of tracks) {
    for (const e of track.events) {
      if ((e.ph === 's' || e.ph === 'f') && !(starts.has(e.id!) && ends.has(e.id!))) continue;
      events.push({ ...e, ts: e.ts - origin });
    }
  }
  const dropped = tracks.reduce((sum, t) => sum + t.dropped, 0);
  const otherData: Record<string, string | number | boolean> = { generator: 'convsim', traceLimit: limit, truncated: dropped > 0 };
  if (dropped > 0) {
    otherData['note'] = `trace limit of ${limit} events reached: ${dropped} later events were not recorded (raise --trace-limit)`;
  }
  return { traceEvents: events, displayTimeUnit: 'ms', otherData };
}
