/**
 * The IOMMU mapping table of one VFIO container.
 *
 * Stores non-overlapping mappings `[iova, iova+size) -> hostOffset` (plus an
 * `epoch` tag) compactly: there is no JS object per mapping. Mappings live in
 * a sorted list of *leaves*; each leaf is four parallel typed arrays
 * (`Float64Array` iova page number, `Float64Array` size in pages,
 * `Float64Array` host-offset page number, `Uint32Array` epoch) = 28 bytes per
 * slot. Leaves are found by binary search over the leaves' first keys (with a
 * hint for sequential access), then by binary search inside the leaf.
 *
 * Each leaf keeps its entries in a window `[start, start+count)` of its
 * arrays, so inserting/removing at either end of a leaf is O(1) (ascending or
 * descending fills, and removal in either order, do not shift data).
 *
 * Memory policy (28 bytes per slot):
 * - Ascending fills append a fresh full-capacity leaf when the last leaf is
 *   full (no split in half), so leaves end up 100% full: ~28 B/mapping.
 * - Other inserts grow a full leaf by ~12.5% until the maximum capacity, and
 *   split a maximum-size leaf into two halves, each re-allocated with ~12.5%
 *   slack. So leaves are ~89-100% occupied whatever the insertion order:
 *   ~28-32 B/mapping for random order (measured by `src/bench/bitmap.ts`).
 * - Removal frees empty leaves, merges a leaf under 1/4 full into a neighbour
 *   when the result is at most 3/4 full, and shrinks leaves less than half
 *   occupied.
 *
 * All byte values passed in must be multiples of `pageSize` (insert checks and
 * throws RangeError); page numbers are stored, and values up to 2^52 (indeed
 * up to 2^53) are exact: only multiplication/division is used, never bit ops.
 *
 * Visitors must not mutate the store while it is being iterated.
 *
 * Not thread-safe (owned by one actor).
 *
 * @module
 */

export interface MappingVisitor {
  (iova: number, size: number, hostOffset: number, epoch: number): void | boolean /* return false to stop */;
}

export interface MappingStoreOptions {
  /**
   * Maximum entries per leaf (default 512, minimum 4). Small values are only
   * useful in tests, to exercise splits and merges.
   */
  leafCapacity?: number;
}

/** Bytes of typed-array storage per leaf slot: 3 x Float64 + 1 x Uint32. */
const BYTES_PER_SLOT = 8 * 3 + 4;
const GROWTH = 1.125;
const DEFAULT_LEAF = 512;
const MAX_BYTE = 2 ** 53;
const MAX_U32 = 0xffffffff;

class Leaf {
  iova: Float64Array;
  size: Float64Array;
  host: Float64Array;
  epoch: Uint32Array;
  /** First occupied slot. */
  start: number;
  /** Number of occupied slots, `[start, start+count)`. */
  count: number;

  constructor(cap: number) {
    // One allocation per leaf, four views into it.
    const buf = new ArrayBuffer(cap * BYTES_PER_SLOT);
    this.iova = new Float64Array(buf, 0, cap);
    this.size = new Float64Array(buf, cap * 8, cap);
    this.host = new Float64Array(buf, cap * 16, cap);
    this.epoch = new Uint32Array(buf, cap * 24, cap);
    this.start = 0;
    this.count = 0;
  }

  get cap(): number {
    return this.iova.length;
  }

  /** Copy `n` entries from `src` slot `from` to this leaf's slot `to`. */
  copyFrom(src: Leaf, from: number, n: number, to: number): void {
    if (n <= 0) return;
    const end = from + n;
    this.iova.set(src.iova.subarray(from, end), to);
    this.size.set(src.size.subarray(from, end), to);
    this.host.set(src.host.subarray(from, end), to);
    this.epoch.set(src.epoch.subarray(from, end), to);
  }

  /** Move slots `[from, end)` to `to` (memmove) in all four arrays. */
  move(to: number, from: number, end: number): void {
    this.iova.copyWithin(to, from, end);
    this.size.copyWithin(to, from, end);
    this.host.copyWithin(to, from, end);
    this.epoch.copyWithin(to, from, end);
  }

  write(slot: number, iova: number, size: number, host: number, epoch: number): void {
    this.iova[slot] = iova;
    this.size[slot] = size;
    this.host[slot] = host;
    this.epoch[slot] = epoch;
  }

  first(): number {
    return this.iova[this.start] as number;
  }

  /** Largest slot `j` in the window with `iova[j] <= key`, or `start-1`. */
  lastAtOrBelow(key: number): number {
    const iova = this.iova;
    let lo = this.start;
    let hi = this.start + this.count - 1;
    if ((iova[hi] as number) <= key) return hi;
    let ans = lo - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((iova[mid] as number) <= key) {
        ans = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return ans;
  }

  /** Remove `n` entries at window-relative index `r`, moving the shorter side. */
  deleteAt(r: number, n: number): void {
    const s = this.start;
    const c = this.count;
    if (r === 0) {
      this.start = s + n;
    } else if (r + n !== c) {
      if (r < c - r - n) {
        this.move(s + n, s, s + r);
        this.start = s + n;
      } else {
        this.move(s + r, s + r + n, s + c);
      }
    }
    this.count = c - n;
    if (this.count === 0) this.start = 0;
  }
}

function checkBytes(name: string, v: number, ps: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v % ps !== 0) {
    throw new RangeError(`${name} ${String(v)} must be a non-negative multiple of ${ps}`);
  }
}

function checkQuery(iova: number, size: number): void {
  if (!Number.isSafeInteger(iova) || iova < 0) {
    throw new RangeError(`iova ${String(iova)} must be a non-negative safe integer`);
  }
  if (!Number.isSafeInteger(size) || size < 0 || iova + size > MAX_BYTE) {
    throw new RangeError(`size ${String(size)} must be a non-negative safe integer with iova+size <= 2^53`);
  }
}

export class MappingStore {
  /** Bytes per page; every stored value is a multiple of it. */
  readonly pageSize: number;
  private readonly maxLeaf: number;
  private readonly minCap: number;
  private leaves: Leaf[] = [];
  /** `keys[i]` is the first iova page of `leaves[i]` (contiguous doubles: cache-friendly binary search). */
  private keys: number[] = [];
  private total = 0;
  /** Index of the most recently used leaf (a search hint). */
  private hint = 0;

  constructor(pageSize = 4096, options: MappingStoreOptions = {}) {
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      throw new RangeError(`pageSize ${String(pageSize)} must be a positive integer`);
    }
    const cap = options.leafCapacity ?? DEFAULT_LEAF;
    if (!Number.isSafeInteger(cap) || cap < 4 || cap > 1 << 20) {
      throw new RangeError(`leafCapacity ${String(cap)} must be an integer in [4, 2^20]`);
    }
    this.pageSize = pageSize;
    this.maxLeaf = cap;
    this.minCap = Math.min(16, cap);
  }

  /** Number of live mappings. */
  get count(): number {
    return this.total;
  }

  // ------------------------------------------------------------------ search

  /** Index of the last leaf whose first key is <= key, or -1. */
  private findLeaf(key: number): number {
    const keys = this.keys;
    const n = keys.length;
    if (n === 0) return -1;
    const h = this.hint;
    if (h < n && (keys[h] as number) <= key) {
      if (h + 1 === n || (keys[h + 1] as number) > key) return h;
      if (h + 2 === n || (keys[h + 2] as number) > key) return (this.hint = h + 1);
    }
    let lo = 0;
    let hi = n - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as number) <= key) {
        ans = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (ans >= 0) this.hint = ans;
    return ans;
  }

  /**
   * Position (leaf index, slot) of the first mapping whose end is > key, i.e.
   * the first mapping that could intersect `[key, ...)`; leaf index is
   * `leaves.length` if none.
   */
  private firstEndingAfter(key: number): [number, number] {
    const leaves = this.leaves;
    let li = this.findLeaf(key);
    if (li < 0) return leaves.length === 0 ? [0, 0] : [0, (leaves[0] as Leaf).start];
    const leaf = leaves[li] as Leaf;
    let j = leaf.lastAtOrBelow(key);
    if ((leaf.iova[j] as number) + (leaf.size[j] as number) <= key) {
      j++;
      if (j === leaf.start + leaf.count) {
        li++;
        j = li < leaves.length ? (leaves[li] as Leaf).start : 0;
      }
    }
    return [li, j];
  }

  /** Iterate from (li, j) over mappings with iova page < endKey. */
  private visitFrom(li: number, j: number, endKey: number, visit: MappingVisitor): void {
    const leaves = this.leaves;
    const ps = this.pageSize;
    for (; li < leaves.length; li++) {
      const leaf = leaves[li] as Leaf;
      const end = leaf.start + leaf.count;
      if (j < leaf.start) j = leaf.start;
      for (; j < end; j++) {
        const a = leaf.iova[j] as number;
        if (a >= endKey) return;
        if (visit(a * ps, (leaf.size[j] as number) * ps, (leaf.host[j] as number) * ps, leaf.epoch[j] as number) === false) {
          return;
        }
      }
      j = 0;
    }
  }

  /** True if any mapping intersects `[iova, iova+size)` (bytes; need not be aligned). */
  intersects(iova: number, size: number): boolean {
    checkQuery(iova, size);
    if (size === 0) return false;
    const ps = this.pageSize;
    const a = Math.floor(iova / ps);
    const b = Math.ceil((iova + size) / ps);
    const li = this.findLeaf(b - 1);
    if (li < 0) return false;
    const leaf = this.leaves[li] as Leaf;
    const j = leaf.lastAtOrBelow(b - 1);
    return (leaf.iova[j] as number) + (leaf.size[j] as number) > a;
  }

  /** Visit mappings intersecting `[iova, iova+size)` in ascending iova order. O(log n + k). */
  forEachIntersecting(iova: number, size: number, visit: MappingVisitor): void {
    checkQuery(iova, size);
    if (size === 0) return;
    const ps = this.pageSize;
    const [li, j] = this.firstEndingAfter(Math.floor(iova / ps));
    this.visitFrom(li, j, Math.ceil((iova + size) / ps), visit);
  }

  /** Visit every mapping in ascending iova order. */
  forEach(visit: MappingVisitor): void {
    this.visitFrom(0, 0, Infinity, visit);
  }

  /** The mapping containing the byte `iova`, or undefined. */
  find(iova: number): { iova: number; size: number; hostOffset: number; epoch: number } | undefined {
    checkQuery(iova, 0);
    const ps = this.pageSize;
    const key = Math.floor(iova / ps);
    const li = this.findLeaf(key);
    if (li < 0) return undefined;
    const leaf = this.leaves[li] as Leaf;
    const j = leaf.lastAtOrBelow(key);
    const a = leaf.iova[j] as number;
    const n = leaf.size[j] as number;
    if (key >= a + n) return undefined;
    return { iova: a * ps, size: n * ps, hostOffset: (leaf.host[j] as number) * ps, epoch: leaf.epoch[j] as number };
  }

  // ------------------------------------------------------------------ insert

  /**
   * Insert `[iova, iova+size) -> hostOffset` tagged with `epoch` (a uint32).
   * Returns false (and changes nothing) if it overlaps an existing mapping.
   * Throws RangeError for unaligned/negative values, size 0, or
   * iova+size > 2^53.
   */
  insert(iova: number, size: number, hostOffset: number, epoch: number): boolean {
    const ps = this.pageSize;
    checkBytes('iova', iova, ps);
    checkBytes('size', size, ps);
    checkBytes('hostOffset', hostOffset, ps);
    if (size === 0) throw new RangeError('size must be > 0');
    if (iova + size > MAX_BYTE) throw new RangeError(`iova+size ${iova + size} exceeds 2^53`);
    if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_U32) {
      throw new RangeError(`epoch ${String(epoch)} must be a uint32`);
    }
    const a = iova / ps;
    const n = size / ps;
    const h = hostOffset / ps;
    const e = a + n;
    const leaves = this.leaves;
    const nl = leaves.length;
    if (nl === 0) {
      const leaf = new Leaf(this.minCap);
      leaf.write(0, a, n, h, epoch);
      leaf.count = 1;
      leaves.push(leaf);
      this.keys.push(a);
      this.total = 1;
      this.hint = 0;
      return true;
    }
    // Fast path: append after the last mapping.
    const last = leaves[nl - 1] as Leaf;
    const lj = last.start + last.count - 1;
    if ((last.iova[lj] as number) + (last.size[lj] as number) <= a) {
      this.insertAt(nl - 1, last.count, a, n, h, epoch);
      return true;
    }
    const li = this.findLeaf(a);
    if (li < 0) {
      if ((this.keys[0] as number) < e) return false;
      this.insertAt(0, 0, a, n, h, epoch);
      return true;
    }
    const leaf = leaves[li] as Leaf;
    const j = leaf.lastAtOrBelow(a);
    if ((leaf.iova[j] as number) + (leaf.size[j] as number) > a) return false;
    const wend = leaf.start + leaf.count;
    if (j + 1 < wend) {
      if ((leaf.iova[j + 1] as number) < e) return false;
    } else if (li + 1 < nl && (this.keys[li + 1] as number) < e) {
      return false;
    }
    this.insertAt(li, j + 1 - leaf.start, a, n, h, epoch);
    return true;
  }

  /** Insert at window-relative index `r` of leaf `li` (order already checked). */
  private insertAt(li: number, r: number, a: number, n: number, h: number, epoch: number): void {
    const leaves = this.leaves;
    const leaf = leaves[li] as Leaf;
    const c = leaf.count;
    const cap = leaf.cap;
    const s = leaf.start;
    this.total++;
    this.hint = li;
    if (c < cap) {
      if (r === 0) this.keys[li] = a;
      const backRoom = cap - s - c;
      if (backRoom > 0 && (s === 0 || 2 * r >= c)) {
        if (r < c) leaf.move(s + r + 1, s + r, s + c);
        leaf.write(s + r, a, n, h, epoch);
      } else {
        if (r > 0) leaf.move(s - 1, s, s + r);
        leaf.start = s - 1;
        leaf.write(s - 1 + r, a, n, h, epoch);
      }
      leaf.count = c + 1;
      return;
    }
    const max = this.maxLeaf;
    if (cap < max) {
      // Grow by ~12.5%; place data at the end for front inserts (descending fills).
      const ncap = Math.min(max, Math.max(cap + 8, Math.ceil(cap * GROWTH)));
      const nl = new Leaf(ncap);
      const ns = r === 0 ? ncap - c - 1 : 0;
      nl.copyFrom(leaf, s, r, ns);
      nl.write(ns + r, a, n, h, epoch);
      nl.copyFrom(leaf, s + r, c - r, ns + r + 1);
      nl.start = ns;
      nl.count = c + 1;
      leaves[li] = nl;
      if (r === 0) this.keys[li] = a;
      return;
    }
    if (r === c) {
      // Appending past a full leaf: start a new leaf rather than splitting.
      const isLast = li === leaves.length - 1;
      const nl = new Leaf(isLast ? max : this.minCap);
      nl.write(0, a, n, h, epoch);
      nl.count = 1;
      leaves.splice(li + 1, 0, nl);
      this.keys.splice(li + 1, 0, a);
      this.hint = li + 1;
      return;
    }
    if (r === 0) {
      // Prepending before a full leaf: new leaf filled from its end.
      const ncap = li === 0 ? max : this.minCap;
      const nl = new Leaf(ncap);
      nl.write(ncap - 1, a, n, h, epoch);
      nl.start = ncap - 1;
      nl.count = 1;
      leaves.splice(li, 0, nl);
      this.keys.splice(li, 0, a);
      return;
    }
    // Split a full leaf in half; both halves re-allocated with ~12.5% slack.
    const hl = c >>> 1;
    const leftN = hl + (r <= hl ? 1 : 0);
    const rightN = c + 1 - leftN;
    const left = new Leaf(Math.min(max, Math.max(this.minCap, Math.ceil(leftN * GROWTH))));
    const right = new Leaf(Math.min(max, Math.max(this.minCap, Math.ceil(rightN * GROWTH))));
    if (r <= hl) {
      left.copyFrom(leaf, s, r, 0);
      left.write(r, a, n, h, epoch);
      left.copyFrom(leaf, s + r, hl - r, r + 1);
      right.copyFrom(leaf, s + hl, c - hl, 0);
    } else {
      left.copyFrom(leaf, s, hl, 0);
      const rr = r - hl;
      right.copyFrom(leaf, s + hl, rr, 0);
      right.write(rr, a, n, h, epoch);
      right.copyFrom(leaf, s + r, c - r, rr + 1);
    }
    left.count = leftN;
    right.count = rightN;
    leaves[li] = left;
    leaves.splice(li + 1, 0, right);
    this.keys.splice(li + 1, 0, right.iova[0] as number);
  }

  // ------------------------------------------------------------------ remove

  /**
   * Remove every mapping lying entirely inside `[iova, iova+size)` (bytes;
   * need not be aligned). Mappings that only partly overlap are left alone.
   * Returns the number of mappings and bytes removed.
   */
  removeContained(iova: number, size: number): { count: number; bytes: number } {
    checkQuery(iova, size);
    const ps = this.pageSize;
    const a = Math.ceil(iova / ps);
    const b = Math.floor((iova + size) / ps);
    if (size === 0 || b <= a || this.total === 0) return { count: 0, bytes: 0 };
    const leaves = this.leaves;
    // First mapping with iova page >= a.
    let li = this.findLeaf(a);
    let j: number;
    if (li < 0) {
      li = 0;
      j = (leaves[0] as Leaf).start;
    } else {
      const leaf = leaves[li] as Leaf;
      j = leaf.lastAtOrBelow(a);
      if ((leaf.iova[j] as number) < a) j++;
      if (j === leaf.start + leaf.count) {
        li++;
        if (li === leaves.length) return { count: 0, bytes: 0 };
        j = (leaves[li] as Leaf).start;
      }
    }
    // Count the contained run: entries with iova < b, all ending <= b
    // (only the last one with iova < b can end past b).
    let k = 0;
    let pages = 0;
    scan: for (let L = li, jj = j; L < leaves.length; L++) {
      const leaf = leaves[L] as Leaf;
      const end = leaf.start + leaf.count;
      for (; jj < end; jj++) {
        const x = leaf.iova[jj] as number;
        const sz = leaf.size[jj] as number;
        if (x >= b || x + sz > b) break scan;
        k++;
        pages += sz;
      }
      jj = L + 1 < leaves.length ? (leaves[L + 1] as Leaf).start : 0;
    }
    if (k === 0) return { count: 0, bytes: 0 };
    this.deleteRun(li, j, k);
    return { count: k, bytes: pages * ps };
  }

  /** Delete `k` consecutive entries starting at leaf `li0`, slot `j0`. */
  private deleteRun(li0: number, j0: number, k: number): void {
    const leaves = this.leaves;
    this.total -= k;
    let li = li0;
    let rel = j0 - (leaves[li0] as Leaf).start;
    let left = k;
    let firstEmpty = -1;
    let nEmpty = 0;
    let lastTouched = li0;
    while (left > 0) {
      const leaf = leaves[li] as Leaf;
      const m = Math.min(left, leaf.count - rel);
      leaf.deleteAt(rel, m);
      left -= m;
      if (leaf.count === 0) {
        if (firstEmpty < 0) firstEmpty = li;
        nEmpty++;
      } else if (rel === 0) {
        this.keys[li] = leaf.first();
      }
      lastTouched = li;
      li++;
      rel = 0;
    }
    if (nEmpty > 0) {
      leaves.splice(firstEmpty, nEmpty);
      this.keys.splice(firstEmpty, nEmpty);
    }
    // Surviving touched leaves: li0 (if not emptied) and lastTouched (if not emptied).
    const firstSurvives = firstEmpty !== li0;
    const lastSurvives = lastTouched !== li0 && !(firstEmpty >= 0 && firstEmpty + nEmpty - 1 === lastTouched);
    const lastIdx = lastTouched - nEmpty;
    if (lastSurvives && lastIdx < leaves.length) this.rebalance(lastIdx);
    if (firstSurvives && li0 < leaves.length) this.rebalance(li0);
    this.hint = Math.max(0, Math.min(li0, leaves.length - 1));
  }

  /** Merge an under-full leaf into a neighbour, or shrink a sparse one. */
  private rebalance(i: number): void {
    const leaves = this.leaves;
    const leaf = leaves[i] as Leaf;
    const max = this.maxLeaf;
    if (leaf.count * 4 < max) {
      const prev = i > 0 ? (leaves[i - 1] as Leaf) : undefined;
      const next = i + 1 < leaves.length ? (leaves[i + 1] as Leaf) : undefined;
      const limit = Math.floor((max * 3) / 4);
      let lo = -1;
      if (prev !== undefined && prev.count + leaf.count <= limit) lo = i - 1;
      if (next !== undefined && next.count + leaf.count <= limit && (lo < 0 || next.count < (prev as Leaf).count)) lo = i;
      if (lo >= 0) {
        const x = leaves[lo] as Leaf;
        const y = leaves[lo + 1] as Leaf;
        const c = x.count + y.count;
        const m = new Leaf(Math.min(max, Math.max(this.minCap, Math.ceil(c * GROWTH))));
        m.copyFrom(x, x.start, x.count, 0);
        m.copyFrom(y, y.start, y.count, x.count);
        m.count = c;
        leaves[lo] = m;
        leaves.splice(lo + 1, 1);
        this.keys.splice(lo + 1, 1);
        return;
      }
    }
    if (leaf.cap > this.minCap && leaf.count * 2 < leaf.cap) {
      const m = new Leaf(Math.max(this.minCap, Math.ceil(leaf.count * GROWTH)));
      m.copyFrom(leaf, leaf.start, leaf.count, 0);
      m.count = leaf.count;
      leaves[i] = m;
    }
  }

  // ------------------------------------------------------------------- misc

  /** Bytes of typed-array storage currently allocated (28 per leaf slot). */
  bytesAllocated(): number {
    let slots = 0;
    for (const leaf of this.leaves) slots += leaf.cap;
    return slots * BYTES_PER_SLOT;
  }

  clear(): void {
    this.leaves = [];
    this.keys = [];
    this.total = 0;
    this.hint = 0;
  }

  /** Check internal invariants (for tests); throws Error describing the first violation. */
  checkInvariants(): void {
    let total = 0;
    let prevEnd = -1;
    for (let li = 0; li < this.leaves.length; li++) {
      const leaf = this.leaves[li] as Leaf;
      if (leaf.count <= 0) throw new Error(`leaf ${li} is empty`);
      if (this.keys[li] !== leaf.first()) throw new Error(`leaf ${li}: key ${this.keys[li]} != first ${leaf.first()}`);
      if (leaf.start < 0 || leaf.start + leaf.count > leaf.cap) throw new Error(`leaf ${li} window out of bounds`);
      if (leaf.cap > this.maxLeaf) throw new Error(`leaf ${li} capacity ${leaf.cap} > ${this.maxLeaf}`);
      for (let j = leaf.start; j < leaf.start + leaf.count; j++) {
        const a = leaf.iova[j] as number;
        const n = leaf.size[j] as number;
        if (!(n > 0)) throw new Error(`leaf ${li} slot ${j}: size ${n}`);
        if (a < prevEnd) throw new Error(`leaf ${li} slot ${j}: iova page ${a} < previous end ${prevEnd}`);
        prevEnd = a + n;
      }
      total += leaf.count;
    }
    if (this.keys.length !== this.leaves.length) throw new Error('keys/leaves length mismatch');
    if (total !== this.total) throw new Error(`count ${this.total} != stored ${total}`);
  }
}
