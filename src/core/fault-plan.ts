/**
 * Seeded fault injection: at each kernel call of a kind it covers, a fault
 * plan decides (from its own seeded stream) whether the call fails and with
 * which errno the kernel would return. A plan is a value chosen when an
 * actor is built; the code under test only asks it.
 *
 * - `map`: `VFIO_IOMMU_MAP_DMA` / `IOMMU_IOAS_MAP` fails: -ENOMEM (pinning
 *   past RLIMIT_MEMLOCK, or no memory for the IOMMU tables), -ENOSPC (no
 *   DMA entry left), -EFAULT (the host address has no VMA).
 * - `unmap`: the unmap ioctl fails and unmaps nothing (-EINVAL, -EFAULT).
 *   QEMU only logs a failed unmap (`vfio_ram_discard_notify_discard`), so
 *   the mapping outlives the page: QEMU as merged has a stale mapping
 *   then, which is why `--vary` leaves this kind out.
 * - `attributes`: `KVM_SET_MEMORY_ATTRIBUTES` fails (-ENOMEM, -EFAULT).
 * - `discard`: freeing the page left behind fails (`ram_block_discard_range`
 *   / `ram_block_discard_guest_memfd_range`: -ENOMEM, -EIO).
 */
import type { ConversionFaults } from './conversion-faults.js';
import { EFAULT, EINVAL, EIO, ENOMEM, ENOSPC, type Ret } from './errno.js';
import { Prng } from './prng.js';

export type FaultKind = 'map' | 'unmap' | 'attributes' | 'discard';
export const FAULT_KINDS: readonly FaultKind[] = ['map', 'unmap', 'attributes', 'discard'];

/** What to inject: each call of a listed kind fails with probability `rate`. */
export interface FaultSpec {
  readonly rate: number;
  readonly kinds: readonly FaultKind[];
}

const ERRNOS: { readonly [K in FaultKind]: readonly number[] } = {
  map: [ENOMEM, ENOSPC, EFAULT],
  unmap: [EINVAL, EFAULT],
  attributes: [ENOMEM, EFAULT],
  discard: [ENOMEM, EIO],
};

/** Faults decided and injected so far, by kind. */
export type FaultCounts = { [K in FaultKind]: number };

export class FaultPlan {
  readonly #rate: number;
  readonly #kinds: ReadonlySet<FaultKind>;
  readonly #prng: Prng;
  readonly injected: FaultCounts = { map: 0, unmap: 0, attributes: 0, discard: 0 };

  /** `stream` separates the plans of different actors drawn from one seed. */
  constructor(spec: FaultSpec | undefined, seed: number, stream: number) {
    this.#rate = spec?.rate ?? 0;
    this.#kinds = new Set(spec?.kinds ?? []);
    this.#prng = new Prng((seed * 7919 + stream * 104729 + 0xfa17) | 0);
  }

  /** A plan that never injects. */
  static none(): FaultPlan {
    return new FaultPlan(undefined, 0, 0);
  }

  /** The plan as `kvm_convert_memory`'s failures: the attribute ioctl and the discards. */
  conversionFaults(): ConversionFaults {
    return {
      failSetAttributes: () => this.next('attributes'),
      failDiscard: () => this.next('discard'),
    };
  }

  /** 0, or the negative errno this call of `kind` fails with. */
  next(kind: FaultKind): Ret {
    if (this.#rate === 0 || !this.#kinds.has(kind)) return 0;
    if (this.#prng.next() >= this.#rate) return 0;
    this.injected[kind]++;
    const errnos = ERRNOS[kind];
    return -errnos[this.#prng.int(errnos.length)]!;
  }
}
