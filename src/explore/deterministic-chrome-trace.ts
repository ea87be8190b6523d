/**
 * The deterministic runtime's trace in the same Chrome Trace Event Format
 * as `convsim run --trace`: one track per actor, a slice per delivery (one
 * "microsecond" per scheduling step), flow arrows from the delivery during
 * which a message was sent to the one that delivered it, and each
 * violation (or QEMU's exit or abort) as an instant event on the track of
 * the actor that found it. Slice arguments name actors, addresses, sizes,
 * directions and errnos, and carry the story step that tells the delivery
 * (`step`, numbered from 1 as the story is), the delivery's own number
 * (`delivery`, from 1), the QEMU thread it runs for (`thread`) and the one
 * it preempted, if it did (`preempts`).
 */
import { messageArgs, violationArgs } from '../actors/message-args.js';
import { buildChromeTrace, type ChromeTrace } from '../runtime/chrome-trace.js';
import type { DeterministicResult } from '../runtime/deterministic/deterministic-run.js';
import { TRACE_PID, type TraceEvent } from '../workers/trace-recorder.js';
import { firstFailure } from './failure.js';
import { threadName } from '../runtime/deterministic/qemu-threads.js';
import { numberedStory } from './story.js';

/** @param result a run recorded with `recordTrace` (its deliveries and who found each violation). */
export function deterministicChromeTrace(result: DeterministicResult, title: string): ChromeTrace {
  const perActor: TraceEvent[][] = result.actors.map(() => []);
  const tid = (actor: number): number => actor + 1;
  const name = (actor: number): string => result.actors[actor]?.id ?? `actor${actor}`;
  const { stepOf } = numberedStory(result);
  const storyStep = (delivery: number): Record<string, number> => (stepOf[delivery] ?? 0) > 0 ? { step: stepOf[delivery]! } : {};
  // The QEMU thread a delivery runs for, and the one it preempted (named as the story names them).
  const names = result.actors.map((a) => a.id);
  const threadArgs = (d: (typeof result.trace)[number]): Record<string, string> =>
    ({ thread: threadName(d.thread, names), ...(d.preempts === undefined ? {} : { preempts: threadName(d.preempts, names) }) });
  result.trace.forEach((d, i) => {
    const flowId = i + 1;
    if (d.sentStep >= 0) {
      // The send happened inside the sender's slice at `sentStep`: start the arrow in its middle.
      perActor[d.from]!.push({ name: d.message.type, cat: 'message', ph: 's', id: flowId, ts: d.sentStep + 0.5, pid: TRACE_PID, tid: tid(d.from) });
    }
    perActor[d.to]!.push({ name: d.message.type, cat: 'message', ph: 'X', ts: d.step, dur: 1, pid: TRACE_PID, tid: tid(d.to),
      args: { ...storyStep(d.step), delivery: d.step + 1, ...threadArgs(d), ...messageArgs(d.message, name) } });
    if (d.sentStep >= 0) perActor[d.to]!.push({ name: d.message.type, cat: 'message', ph: 'f', bp: 'e', id: flowId, ts: d.step, pid: TRACE_PID, tid: tid(d.to) });
  });
  // Violations at the end of the delivery after which they were found, on the finder's track.
  for (const { step, actor, violation } of result.foundBy ?? []) {
    perActor[actor]!.push({ name: `violation: ${violation.invariant}`, cat: 'violation', ph: 'i', s: 't', ts: step + 1, pid: TRACE_PID, tid: tid(actor),
      args: { ...storyStep(step), delivery: step + 1, ...violationArgs(violation) } });
  }
  // QEMU exiting or aborting: on the track of the actor whose delivery ended it.
  const failure = firstFailure(result);
  const fatal = result.fatal;
  if (fatal !== undefined && failure !== undefined && failure.name === result.qemuOutcome) {
    const actor = result.trace[fatal.step]?.to ?? 0;
    perActor[actor]!.push({ name: `QEMU: ${result.qemuOutcome}`, cat: 'violation', ph: 'i', s: 't', ts: fatal.step + 1, pid: TRACE_PID, tid: tid(actor),
      args: { ...storyStep(fatal.step), delivery: fatal.step + 1, outcome: result.qemuOutcome, message: fatal.message } });
  }
  const tracks = result.actors.map((a, i) => ({ name: a.id, role: a.role, tid: tid(i), events: perActor[i]!, dropped: 0 }));
  return buildChromeTrace(tracks, result.trace.length, title);
}
