/**
 * Assembles the workers' events into one Chrome Trace Event Format file
 * that Perfetto (ui.perfetto.dev) and chrome://tracing open: one process,
 * one named track per worker, a slice per handled message, flow arrows
 * from each send to its delivery, counter tracks.
 */
import { TRACE_PID, type TraceCoverage, type TraceEvent } from '../workers/trace-recorder.js';

export interface TraceTrack {
  readonly name: string;
  readonly role: string;
  readonly tid: number;
  readonly events: readonly TraceEvent[];
  readonly dropped: number;
  /** What the worker's recorder kept (threaded runs). */
  readonly coverage?: TraceCoverage;
}

export interface ChromeTrace {
  readonly traceEvents: TraceEvent[];
  readonly displayTimeUnit: 'ms' | 'ns';
  readonly otherData: Record<string, string | number | boolean>;
}

const seconds = (us: number): string => `${(us / 1e6).toFixed(2)} s`;

/** One track's coverage in words, times in seconds from `originUs`. */
function trackCoverage(track: TraceTrack, originUs: number): string {
  const c = track.coverage;
  if (c === undefined || c.firstUs === undefined || c.lastUs === undefined) return `${track.name}: no events`;
  const span = `${seconds(c.firstUs - originUs)}-${seconds(c.lastUs - originUs)}`;
  if (c.droppedEvents === 0) return `${track.name}: ${span} in full`;
  const fullFrom = c.fullFromUs === undefined ? c.firstUs : c.fullFromUs;
  return `${track.name}: ${span}, in full from ${seconds(fullFrom - originUs)}, 1 in ${c.stride} before`;
}

/**
 * @param originUs the run's start on the recorders' clock: event times are
 * rebased to the earliest event, coverage times are given from this origin.
 */
export function buildChromeTrace(tracks: readonly TraceTrack[], limit: number, title: string, originUs?: number): ChromeTrace {
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
  const outside = tracks.reduce((sum, t) => sum + (t.coverage?.outsideWindow ?? 0), 0);
  const otherData: Record<string, string | number | boolean> = { generator: 'convsim', traceLimit: limit, truncated: dropped > 0, droppedEvents: dropped };
  const withCoverage = tracks.some((t) => t.coverage !== undefined);
  if (withCoverage) {
    const from = originUs ?? origin;
    otherData['coverage'] = tracks.map((t) => trackCoverage(t, from)).join('; ');
  }
  const sampled = dropped - outside;
  if (sampled > 0 && withCoverage) {
    otherData['note'] = `trace limit of ${limit} events reached: ${sampled} events were sampled out; each track keeps its most recent events ` +
      `in full and an even sample of the earlier ones, so the trace covers the whole run (raise --trace-limit, or --trace-window START-END ` +
      `for a span in full); per track: ${otherData['coverage']}`;
  } else if (sampled > 0) {
    otherData['note'] = `trace limit of ${limit} events reached: ${sampled} events were not recorded`;
  }
  if (outside > 0) otherData['window'] = `${outside} events outside --trace-window were not recorded`;
  return { traceEvents: events, displayTimeUnit: 'ms', otherData };
}
