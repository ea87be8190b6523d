/**
 * Reference RamBlockAttributes (spec sections 2, 3 and 7), written from the
 * spec only: a `boolean[]` bitmap (true = shared = populated), a listener
 * list in notification order (newest first), and the state change spelled
 * out case by case.
 */
import { EINVAL, intersect, type RefEvent, type RefSection } from './events.js';

export type RefRollback = 'none' | 'listener' | 'full';

/** What the reference manager needs from a listener. */
export interface RefListener {
  readonly name: string;
  /** 0 or a negative errno. */
  populate(section: RefSection): number;
  discard(section: RefSection): void;
}

interface Registered {
  readonly listener: RefListener;
  readonly section: RefSection;
}

export class RefRamBlockAttributes {
  readonly bits: boolean[];
  /** Notification order: the newest registration first (QLIST_INSERT_HEAD). */
  registered: Registered[] = [];

  readonly regionSize: number;
  readonly blockSize: number;
  readonly rollback: RefRollback;
  readonly #log: RefEvent[];

  constructor(regionSize: number, blockSize: number, rollback: RefRollback, log: RefEvent[]) {
    this.regionSize = regionSize;
    this.blockSize = blockSize;
    this.rollback = rollback;
    this.#log = log;
    this.bits = new Array<boolean>(Math.ceil(regionSize / blockSize)).fill(false);
  }

  get listenerNames(): string[] {
    return this.registered.map((r) => r.listener.name);
  }

  /** The blocks of `[offset, offset+size)` as '0'/'1' characters. */
  bitsOf(offset: number, size: number): string {
    let s = '';
    for (let b = offset / this.blockSize; b < (offset + size) / this.blockSize; b++) s += this.bits[b] ? '1' : '0';
    return s;
  }

  isPopulated(section: RefSection): boolean {
    return this.bitsOf(section.offset, section.size).indexOf('0') < 0;
  }

  /**
   * The maximal runs of blocks in state `populated`, each clipped to the
   * section, ascending. (A run that starts before the section and reaches
   * into it counts from the section's start.)
   */
  runs(section: RefSection, populated: boolean): RefSection[] {
    const out: RefSection[] = [];
    let b = 0;
    while (b < this.bits.length) {
      if (this.bits[b] !== populated) {
        b++;
        continue;
      }
      let e = b;
      while (e < this.bits.length && this.bits[e] === populated) e++;
      const run = intersect(section, b * this.blockSize, (e - b) * this.blockSize);
      if (run !== undefined) out.push(run);
      b = e;
    }
    return out;
  }

  /** `replay_populated` / `replay_discarded`: one call per run, the first error stops. */
  replay(section: RefSection, populated: boolean, fn: (run: RefSection) => number): number {
    for (const run of this.runs(section, populated)) {
      const ret = fn(run);
      if (ret !== 0) return ret;
    }
    return 0;
  }

  /** Insert at the head, then replay every populated run of the section to it. */
  register(listener: RefListener, section: RefSection): number {
    this.registered = [{ listener, section: { ...section } }, ...this.registered];
    for (const run of this.runs(section, true)) {
      const ret = this.#populate(listener, run);
      if (ret !== 0) return ret;
    }
    return 0;
  }

  /** `doubleDiscardSupported` (VFIO): one discard of the whole registered section, then unlink. */
  unregister(listener: RefListener): void {
    const entry = this.registered.find((r) => r.listener === listener);
    if (entry === undefined) throw new Error(`reference: ${listener.name} not registered`);
    this.#discard(listener, entry.section);
    this.registered = this.registered.filter((r) => r !== entry);
  }

  stateChange(offset: number, size: number, toDiscard: boolean): number {
    // 1. Validity: block-aligned offset and size, non-empty (QEMU: `offset + size <= offset`), inside the region.
    if (offset % this.blockSize !== 0 || size % this.blockSize !== 0 || size === 0 || offset + size > this.regionSize) return -EINVAL;
    const first = offset / this.blockSize;
    const count = size / this.blockSize;
    const blocks: number[] = [];
    for (let b = first; b < first + count; b++) blocks.push(b);
    const allShared = blocks.every((b) => this.bits[b]);
    const allPrivate = blocks.every((b) => !this.bits[b]);

    if (toDiscard) {
      if (allPrivate) return 0;
      if (allShared) {
        for (const b of blocks) this.bits[b] = false;
        this.#discardAll(offset, size);
        return 0;
      }
      for (const b of blocks) {
        if (!this.bits[b]) continue;
        this.bits[b] = false;
        this.#discardAll(b * this.blockSize, this.blockSize);
      }
      return 0;
    }

    if (allShared) return 0;
    if (allPrivate) {
      for (const b of blocks) this.bits[b] = true;
      const ret = this.#populateAll(offset, size);
      if (ret !== 0 && this.rollback !== 'none') for (const b of blocks) this.bits[b] = false;
      return ret;
    }
    const changed: number[] = [];
    for (const b of blocks) {
      if (this.bits[b]) continue;
      this.bits[b] = true;
      const ret = this.#populateAll(b * this.blockSize, this.blockSize);
      if (ret === 0) {
        changed.push(b);
        continue;
      }
      if (this.rollback !== 'none') this.bits[b] = false;
      if (this.rollback === 'full') {
        for (const c of changed) {
          this.bits[c] = false;
          this.#discardAll(c * this.blockSize, this.blockSize);
        }
      }
      return ret;
    }
    return 0;
  }

  /**
   * One populate walk: every intersecting listener in list order, stopping
   * at the first error. Under `listener`/`full` rollback, the listeners that
   * succeeded in this walk (never the failing one) are told to discard, in
   * the order they were notified (virtio-mem); the caller then clears the bits.
   */
  #populateAll(offset: number, size: number): number {
    const notified: Registered[] = [];
    for (const r of this.registered) {
      const s = intersect(r.section, offset, size);
      if (s === undefined) continue;
      const ret = this.#populate(r.listener, s);
      if (ret === 0) {
        notified.push({ listener: r.listener, section: s });
        continue;
      }
      if (this.rollback !== 'none') for (const n of notified) this.#discard(n.listener, n.section);
      return ret;
    }
    return 0;
  }

  #discardAll(offset: number, size: number): void {
    for (const r of this.registered) {
      const s = intersect(r.section, offset, size);
      if (s !== undefined) this.#discard(r.listener, s);
    }
  }

  #populate(listener: RefListener, s: RefSection): number {
    this.#log.push({ kind: 'notifyPopulate', listener: listener.name, offset: s.offset, size: s.size, bits: this.bitsOf(s.offset, s.size) });
    return listener.populate(s);
  }

  #discard(listener: RefListener, s: RefSection): void {
    this.#log.push({ kind: 'notifyDiscard', listener: listener.name, offset: s.offset, size: s.size, bits: this.bitsOf(s.offset, s.size) });
    listener.discard(s);
  }
}
