/**
 * A mistake in what the user typed or gave us. The CLI prints its message as
 * one line, with no stack trace, and exits with status 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit statuses shared by every command. */
export const EXIT_OK = 0;
export const EXIT_VIOLATIONS = 1;
export const EXIT_USAGE = 2;
/** The run itself broke (a worker crashed, a deadlock): not the protocol's fault. */
export const EXIT_RUNTIME = 3;
/**
 * QEMU would not run on: it refuses a VFIO device at start-up (device
 * realize fails on the mapping estimate; nothing ran, and the one-line
 * message gives the numbers and the smallest limit that fits), or it exits
 * or aborts during the run (`qemu-exit`, `qemu-abort`).
 */
export const EXIT_REFUSED = 4;
