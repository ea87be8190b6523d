/**
 * The deterministic runtime's trace in the same Chrome Trace Event Format
 * as `convsim run --trace`: one track per actor, a slice per delivery (one
 * "microsecond" per scheduling step), flow arrows from the delivery during
 * which a message was sent to the one that delivered it.
 */
import { buildChromeTrace, type ChromeTrace } from '../runtime/chrome-trace.js';
import type { DeterministicResult } from '../runtime/deterministic/deterministic-run.js';
import { TRACE_PID, type TraceEvent } from '../workers/trace-recorder.js';

export function deterministicChromeTrace(result: DeterministicResult, title: string): ChromeTrace {
  const perActor: TraceEvent[][] = result.actors.map(() => []);
  const tid = (actor: number): number => actor + 1;
  result.trace.forEach((d, i) => {
    const flowId = i + 1;
    if (d.sentStep >= 0) {
      // The send happened inside the sender's slice at `sentStep`: start the arrow in its middle.
      perActor[d.from]!.push({ name: d.message.type, cat: 'message', ph: 's', id: flowId, ts: d.sentStep + 0.5, pid: TRACE_PID, tid: tid(d.from) });
    }
    perActor[d.to]!.push({ name: d.message.type, cat: 'message', ph: 'X', ts: d.step, dur: 1, pid: TRACE_PID, tid: tid(d.to), args: { step: d.step, from: d.from, tag: d.message.tag } });
    if (d.sentStep >= 0) perActor[d.to]!.push({ name: d.message.type, cat: 'message', ph: 'f', bp: 'e', id: flowId, ts: d.step, pid: TRACE_PID, tid: tid(d.to) });
  });
  const tracks = result.actors.map((a, i) => ({ name: a.id, role: a.role, tid: tid(i), events: perActor[i]!, dropped: 0 }));
  return buildChromeTrace(tracks, result.trace.length, title);
}
