/**
 * The real core seen in the reference model's terms, so the property tests
 * can compare the two with `toEqual`: effect events (notifications carry the
 * bitmap of the notified range at the moment they are sent), the bitmap as a
 * '0'/'1' string, and a container's mapping list.
 */
import type { ConfidentialVm } from '../../../src/core/confidential-vm.js';
import { isEffect, type CoreEvent } from '../../../src/core/events.js';
import type { SharedBitmap } from '../../../src/core/shared-bitmap.js';
import type { VfioContainer } from '../../../src/core/vfio/container.js';
import type { RefMapping } from './containers.js';
import type { RefEvent } from './events.js';

/** A RefEvent, or any other effect the core emitted (the reference never emits those). */
export type ObservedEvent = RefEvent | { kind: string; [key: string]: unknown };

export function bitsString(bitmap: SharedBitmap, first = 0, count = bitmap.size - first): string {
  let s = '';
  for (let b = first; b < first + count; b++) s += bitmap.test(b) ? '1' : '0';
  return s;
}

export function mappingsOf(container: VfioContainer): RefMapping[] {
  const out: RefMapping[] = [];
  container.mappings.forEach((iova, size, host) => {
    out.push({ iova, size, host });
  });
  return out;
}

/** Collects the effect events of a VM in the reference's shape until disposed. */
export class EffectRecorder {
  #events: ObservedEvent[] = [];
  readonly #vm: ConfidentialVm;
  readonly #unsubscribe: () => void;

  constructor(vm: ConfidentialVm) {
    this.#vm = vm;
    this.#unsubscribe = vm.bus.subscribe((event) => this.#on(event));
  }

  /** Take (and forget) the events since the last call. */
  take(): ObservedEvent[] {
    return this.#events.splice(0);
  }

  dispose(): void {
    this.#unsubscribe();
  }

  #on(event: CoreEvent): void {
    if (!isEffect(event)) return;
    const blockSize = this.#vm.config.blockSize;
    switch (event.kind) {
      case 'notifyPopulate':
      case 'notifyDiscard':
        // The `rollback` bookkeeping flag is not part of the protocol's effects.
        this.#events.push({
          kind: event.kind, listener: event.listener, offset: event.offset, size: event.size,
          bits: bitsString(this.#vm.rba.bitmap, event.offset / blockSize, event.size / blockSize),
        });
        return;
      case 'dmaMap':
      case 'dmaUnmap':
        this.#events.push({ kind: event.kind, container: event.container, iova: event.iova, size: event.size, ret: event.ret });
        return;
      default:
        this.#events.push({ ...event });
    }
  }
}
