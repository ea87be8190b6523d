/**
 * How the QEMU process stands at the end of a run (or of an ops script).
 * The three fatal ones end the process (or never start the VM); nothing
 * after them runs.
 *
 * - `running`: the VM runs.
 * - `vm-stopped`: a conversion failed; `kvm_cpu_exec` called
 *   `vm_stop(RUN_STATE_INTERNAL_ERROR)`; the process stays.
 * - `qemu-exit`: the replay at `ram_block_attributes_rdm_register_listener`
 *   failed; QEMU reported it and called `exit(1)`.
 * - `realize-failed`: `vfio_container_region_add` failed while the container
 *   was being set up (`!bcontainer->initialized`), e.g. the mapping estimate
 *   of `vfio_ram_discard_register_listener`: device realize fails, and at
 *   start-up QEMU does not start.
 * - `qemu-abort`: a region add failed on an initialized container:
 *   `hw_error("vfio: DMA mapping failed, unable to continue")` aborts.
 */
export type QemuOutcome = 'running' | 'vm-stopped' | 'qemu-exit' | 'realize-failed' | 'qemu-abort';
export const QEMU_OUTCOMES: readonly QemuOutcome[] = ['running', 'vm-stopped', 'qemu-exit', 'realize-failed', 'qemu-abort'];

export type FatalOutcome = Extract<QemuOutcome, 'qemu-exit' | 'realize-failed' | 'qemu-abort'>;

export function isFatal(outcome: QemuOutcome): outcome is FatalOutcome {
  return outcome === 'qemu-exit' || outcome === 'realize-failed' || outcome === 'qemu-abort';
}

/** Why a VFIO registration failed, as `vfio_ram_discard_register_listener`'s callers see it. */
export type RegisterFailure = 'none' | 'replay' | 'estimate';

/**
 * The outcome of a failed registration: a failed replay exits whenever it
 * happens; the estimate fails realize while the container is set up and
 * aborts once it is initialized.
 */
export function registerOutcome(failure: RegisterFailure, containerInitialized: boolean): QemuOutcome | undefined {
  switch (failure) {
    case 'none': return undefined;
    case 'replay': return 'qemu-exit';
    case 'estimate': return containerInitialized ? 'qemu-abort' : 'realize-failed';
    default: {
      const unreachable: never = failure;
      throw new Error(`unknown failure ${String(unreachable)}`);
    }
  }
}
