/**
 * `rdl_list`, RamBlockAttributes' list of RamDiscardListeners, under one of
 * the two {@link ListenerListPolicy} policies. This module is the only
 * place the policy makes a difference.
 *
 * Both are a doubly linked list; a walk holds a pointer to the listener it
 * stands on and reads its `next` when it steps on, so it sees listeners
 * linked or unlinked ahead of it.
 * - `free` (merged): unregistration unlinks the listener with `QLIST_REMOVE`,
 *   which also sets the node's own `le_next`/`le_prev` to NULL
 *   (include/qemu/queue.h), and `vfio_ram_discard_unregister_listener` frees
 *   it (`g_free`) right after. A walk that stood on it (parked in a call to
 *   that listener, on another thread) then steps on by reading freed memory:
 *   `use-after-free`. What it reads is most likely still the NULL, so the
 *   walk ends there: the listeners after it are not notified.
 * - `rcu`: `QLIST_REMOVE_RCU` unlinks and leaves the node's `next` intact,
 *   and the free waits for a grace period (`call_rcu`): a walk standing on
 *   the node steps on to what followed it, and no walk ever reads freed
 *   memory. A walk may still call a listener it had already reached before
 *   the listener was unlinked (its consequences are the containers' business
 *   and are checked there).
 *
 * @module
 */
import type { MemoryRegionSection } from './memory-region-section.js';
import type { ListenerListPolicy } from './protocol-policy.js';
import type { RamDiscardListener } from './ram-discard-manager.js';

/** A registered listener and the copy of the section it registered with (`rdl->section`). */
export interface Registration {
  readonly listener: RamDiscardListener;
  readonly section: MemoryRegionSection;
}

/** One walk over the list, forward (populate-walk order) or in reverse. */
export interface ListenerWalk {
  /** The next listener, or undefined at the end of the list. */
  next(): Registration | undefined;
}

export interface ListenerList {
  /** Link a registration: at the head (`QLIST_INSERT_HEAD`) or, with priorities, by ascending priority (ties in registration order). */
  insert(registration: Registration, priorities: boolean): void;
  /** Unlink a registration and free it (the policy decides when the memory goes). */
  remove(registration: Registration): void;
  find(listener: RamDiscardListener): Registration | undefined;
  /** Every linked registration, in list (populate-walk) order. */
  all(): Registration[];
  /**
   * Begin a walk. `onFreed` is called when the walk steps on from a
   * listener that was freed while the walk stood on it.
   */
  walk(reverse: boolean, onFreed: (freed: Registration) => void): ListenerWalk;
}

/** Where a new registration goes in an array in list order. */
function insertAt(list: readonly Registration[], registration: Registration, priorities: boolean): number {
  if (!priorities) return 0;
  const at = list.findIndex((r) => r.listener.priority > registration.listener.priority);
  return at < 0 ? list.length : at;
}

interface Node {
  readonly registration: Registration;
  next: Node | undefined;
  prev: Node | undefined;
  /** Set by `g_free`: the node's memory is gone, its pointers are what they were at unlink. */
  freed: boolean;
}

/** `rdl_list` as a QLIST; `rcu` decides what an unlink leaves behind. */
class LinkedListenerList implements ListenerList {
  #head: Node | undefined;
  #tail: Node | undefined;
  readonly #nodes = new Map<Registration, Node>();
  readonly #rcu: boolean;

  constructor(rcu: boolean) {
    this.#rcu = rcu;
  }

  insert(registration: Registration, priorities: boolean): void {
    const order = this.all();
    const at = insertAt(order, registration, priorities);
    const before = at < order.length ? this.#nodes.get(order[at]!) : undefined;
    const node: Node = { registration, next: before, prev: before === undefined ? this.#tail : before.prev, freed: false };
    if (node.prev === undefined) this.#head = node;
    else node.prev.next = node;
    if (before === undefined) this.#tail = node;
    else before.prev = node;
    this.#nodes.set(registration, node);
  }

  remove(registration: Registration): void {
    const node = this.#nodes.get(registration);
    if (node === undefined) throw new RangeError(`listener ${registration.listener.name} is not linked`);
    // Neighbours skip the node.
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev;
    else node.next.prev = node.prev;
    this.#nodes.delete(registration);
    if (this.#rcu) return; // QLIST_REMOVE_RCU keeps the node's pointers; call_rcu frees it after every walk
    // QLIST_REMOVE: le_next = le_prev = NULL; then g_free(vrdl) in vfio_ram_discard_unregister_listener.
    node.next = undefined;
    node.prev = undefined;
    node.freed = true;
  }

  find(listener: RamDiscardListener): Registration | undefined {
    for (let n = this.#head; n !== undefined; n = n.next) if (n.registration.listener === listener) return n.registration;
    return undefined;
  }

  all(): Registration[] {
    const out: Registration[] = [];
    for (let n = this.#head; n !== undefined; n = n.next) out.push(n.registration);
    return out;
  }

  walk(reverse: boolean, onFreed: (freed: Registration) => void): ListenerWalk {
    let current: Node | undefined;
    let started = false;
    return {
      next: () => {
        if (!started) {
          started = true;
          current = reverse ? this.#tail : this.#head;
        } else if (current !== undefined) {
          // Reading `rdl->next` of the listener the walk stands on: freed memory if it was unregistered meanwhile.
          if (current.freed) onFreed(current.registration);
          current = reverse ? current.prev : current.next;
        }
        return current?.registration;
      },
    };
  }
}

/** The list of a listener-list policy. */
export function createListenerList(policy: ListenerListPolicy): ListenerList {
  return new LinkedListenerList(policy === 'rcu');
}
