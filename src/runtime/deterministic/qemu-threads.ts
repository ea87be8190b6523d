/**
 * The QEMU threads a deterministic run's steps run for (see
 * `Candidate.thread` and `ActorContext.bind`), numbered over a topology of
 * `actors` actors: a vCPU's thread is its actor's index, the main loop
 * (start-up, hot-plug, the final check) is `actors`, and the device behind
 * a container is negative, as a device never waits to continue.
 */

/** The main loop's thread. */
export function mainThread(actors: number): number {
  return actors;
}

/** The thread of the device behind container actor `actor`. */
export function deviceThread(actor: number): number {
  return -1 - actor;
}

/** "vcpu0", "the main loop" or "c0's device", given the actors' names. */
export function threadName(thread: number, names: readonly string[]): string {
  if (thread === mainThread(names.length)) return 'the main loop';
  if (thread < 0) return `${names[-1 - thread] ?? 'a container'}'s device`;
  return names[thread] ?? `actor${thread}`;
}
