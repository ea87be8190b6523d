/**
 * Everything the core does that an observer (the ops runner, the invariant
 * checker, a tracer) may want to see, as one discriminated union. Emitted
 * synchronously, in the order things happen.
 */
import type { Ret } from './errno.js';

/** Effects: what `convsim ops` prints under `events`. */
export type EffectEvent =
  | { kind: 'kvmSetAttributes'; gpa: number; size: number; private: boolean }
  | { kind: 'notifyPopulate'; listener: string; offset: number; size: number }
  | { kind: 'notifyDiscard'; listener: string; offset: number; size: number; rollback?: true }
  | { kind: 'dmaMap'; container: string; iova: number; size: number; ret: Ret }
  | { kind: 'dmaUnmap'; container: string; iova: number; size: number; ret: Ret }
  | { kind: 'discardShared'; offset: number; size: number }
  | { kind: 'discardPrivate'; offset: number; size: number }
  | { kind: 'gmemConvertPrivate'; offset: number; size: number; ret: Ret }
  | { kind: 'gmemConvertShared'; offset: number; size: number; ret: Ret }
  | { kind: 'vmStop'; reason: string };

/** Bookkeeping events that delimit calls, for checkers and tracers. */
export type MarkerEvent =
  | { kind: 'stateChangeBegin'; offset: number; size: number; toDiscard: boolean }
  | { kind: 'stateChangeEnd'; offset: number; size: number; toDiscard: boolean; ret: Ret }
  | { kind: 'notifyPopulateDone'; listener: string; offset: number; size: number; ret: Ret }
  /** One `ram_block_attributes_notify_populate` walk over all listeners for one range. */
  | { kind: 'populateStep'; offset: number; size: number }
  /** A walk of rdl_list stepped on from a listener freed while it stood on it (listener-list.ts). */
  | { kind: 'listenerUseAfterFree'; listener: string }
  /** A map about to be attempted, with the host offset it targets. */
  | { kind: 'dmaMapAttempt'; container: string; iova: number; size: number; hostOffset: number };

export type CoreEvent = EffectEvent | MarkerEvent;

export type CoreEventKind = CoreEvent['kind'];

const EFFECT_KINDS: ReadonlySet<CoreEventKind> = new Set<CoreEventKind>([
  'kvmSetAttributes', 'notifyPopulate', 'notifyDiscard', 'dmaMap', 'dmaUnmap',
  'discardShared', 'discardPrivate', 'gmemConvertPrivate', 'gmemConvertShared', 'vmStop',
]);

export function isEffect(event: CoreEvent): event is EffectEvent {
  return EFFECT_KINDS.has(event.kind);
}

/** Receives events. Must not re-enter the core. */
export type CoreObserver = (event: CoreEvent) => void;

/** Fans one event out to several observers. */
export class EventBus {
  readonly #observers: CoreObserver[] = [];

  subscribe(observer: CoreObserver): () => void {
    this.#observers.push(observer);
    return () => {
      const i = this.#observers.indexOf(observer);
      if (i >= 0) this.#observers.splice(i, 1);
    };
  }

  /** True when someone listens: callers skip building event objects otherwise. */
  get active(): boolean {
    return this.#observers.length > 0;
  }

  emit(event: CoreEvent): void {
    for (const observer of this.#observers) observer(event);
  }
}
