/**
 * An optional observer of every access to the run's shared memory (the
 * RamBlockAttributes bitmap, KVM's attributes, guest_memfd's state and the
 * page counters), for partial-order reduction: two steps of different
 * actors that touch disjoint memory (or only read the same) commute.
 *
 * The deterministic runtime installs a recorder around each step when it
 * explores systematically, and removes it afterwards; the threaded runtime
 * never installs one, so there the hook costs one `undefined` test per
 * access. One recorder for the whole thread is enough because the
 * deterministic runtime runs one step at a time on one thread.
 */

/** Receives each access: cells `[first, last]` of the array over `buffer`, read or written. */
export interface SharedAccessRecorder {
  access(buffer: SharedArrayBuffer, write: boolean, first: number, last: number): void;
}

/** The recorder in effect on this thread, if any (read by the shared-memory classes on every access). */
export let sharedAccessRecorder: SharedAccessRecorder | undefined;

/** Install (or, with `undefined`, remove) this thread's recorder. */
export function recordSharedAccesses(recorder: SharedAccessRecorder | undefined): void {
  sharedAccessRecorder = recorder;
}
