/**
 * Linux's `tools/testing/selftests/kvm/x86/private_mem_conversions_test.c`
 * as a guest workload, step for step: `guest_code` runs
 * `guest_test_explicit_conversion` without and with fallocate, then
 * `guest_test_punch_hole` not precise and precise. The host side of the
 * selftest's `UCALL_SYNC` (check the shared view, then write the new
 * pattern for SYNC_SHARED) is done by the same vCPU, in the same order, as
 * host actions.
 *
 * Expectations. `kvm`: the selftest's own (its host never frees shared
 * memory, so the host still sees p1 while the range is private). `qemu`:
 * QEMU frees the shared page on a conversion to private (anonymous shared
 * memory; hugetlb is kept), so the host sees zeroes there. In place, a
 * private page cannot be read by the host at all, so that check is not
 * made (the guest's own checks are).
 *
 * Not in the C test: each pass starts by converting the chunk to shared
 * (`setup`), because a confidential VM's memory starts private where the
 * selftest's SW_PROTECTED VM starts shared.
 */
import { formatSize, KiB, MiB } from '../../core/units.js';
import type { ActionResult, GuestAction, Workload, WorkloadContext } from './guest-actions.js';

const PAGE = 4 * KiB;
/** `PER_CPU_DATA_SIZE`: 2 MiB + one page per vCPU. */
export const PER_CPU_DATA_SIZE = 2 * MiB + PAGE;
/** `align_up(PER_CPU_DATA_SIZE, max(SZ_2M, backing page size))`: chunks 4 MiB apart. */
export const PER_CPU_SPACING = 4 * MiB;

/** `test_ranges`: the (offset, size) cases, in the C test's order. */
export const SELFTEST_CASES: ReadonlyArray<readonly [number, number]> = [
  [0, PAGE], [0, 2 * MiB], [PAGE, PAGE], [PAGE, 2 * MiB], [2 * MiB, PAGE],
];

const DEF_P = 0xaa;
const INIT_P = 0xcc;
const P1 = 0x11;
const P2 = 0x22;
const P3 = 0x33;
const P4 = 0x44;

/** A case's label: the pass and the range, e.g. `explicit fallocate 4K+2M`. */
export function caseLabel(pass: string, offset: number, size: number): string {
  return `${pass} ${offset === 0 ? '0' : formatSize(offset)}+${formatSize(size)}`;
}

type Steps = Generator<GuestAction, boolean, ActionResult>;

export function* selftest(ctx: WorkloadContext): Workload {
  const base = ctx.gpaBase + ctx.vcpu * PER_CPU_SPACING;
  if (base + PER_CPU_DATA_SIZE > ctx.gpaBase + ctx.guestMem) throw new RangeError(`selftest needs ${formatSize(PER_CPU_SPACING)} per vCPU`);
  let conversions = 0;
  /** Perform an action; false when a conversion failed (the VM stopped): the workload ends. */
  const run = function* (action: GuestAction): Steps {
    // Each vCPU owns its chunk: the result of every conversion can be checked against the request.
    const result = yield action.kind === 'mapGpa' || action.kind === 'access' ? { ...action, owned: true } : action;
    conversions += result.exits;
    return result.ret === 0;
  };
  // Runs of guest_code, as often as the conversion budget asks (at least once).
  do {
    if (!(yield* run({ kind: 'mapGpa', gpa: base, size: PER_CPU_DATA_SIZE, toPrivate: false, label: 'setup' }))) return;
    for (const fallocate of [false, true]) if (!(yield* explicitConversion(ctx, run, base, fallocate))) return;
    for (const precise of [false, true]) if (!(yield* punchHole(run, base, precise))) return;
  } while (conversions < ctx.budget);
}

/**
 * What the host reads through the shared view of a range the guest wrote
 * `written` to and then made private: the selftest's expectation is
 * `written`; QEMU's is zeroes when it freed the shared page. Undefined: the
 * host cannot read it (in place, the page is private).
 */
function hostViewWhilePrivate(ctx: WorkloadContext, written: number): number | undefined {
  if (ctx.mode === 'inplace') return undefined;
  return ctx.sharedFreedOnPrivate ? 0 : written;
}

/** `guest_test_explicit_conversion(base_gpa, do_fallocate)`. */
function* explicitConversion(ctx: WorkloadContext, run: (a: GuestAction) => Steps, base: number, fallocate: boolean): Steps {
  const pass = fallocate ? 'explicit fallocate' : 'explicit';
  const init = `${pass} init`;
  let current = init;
  /** Every step carries its case's label, for the counts by case. */
  const step = (action: GuestAction): Steps => run({ label: current, ...action });
  const guestCheck = (gpa: number, size: number, expect: number, label: string, what: string, view: 'shared' | 'private' = 'shared'): GuestAction =>
    ({ kind: 'check', gpa, size, view, expect, what, who: 'guest', label });
  const hostCheck = (gpa: number, size: number, expect: number, label: string, what: string): GuestAction =>
    ({ kind: 'check', gpa, size, view: 'shared', expect, what, who: 'host', label });
  /** The host side of guest_sync_private: check the shared view (when it can be read). */
  const syncPrivate = function* (gpa: number, size: number, written: number, label: string): Steps {
    const expect = hostViewWhilePrivate(ctx, written);
    if (expect !== undefined) yield* step(hostCheck(gpa, size, expect, label, 'sync_private: shared view while private'));
    return true;
  };

  // Memory should be shared by default.
  if (!(yield* step({ kind: 'access', gpa: base, size: PER_CPU_DATA_SIZE, private: false, write: DEF_P }))) return false;
  yield* step(guestCheck(base, PER_CPU_DATA_SIZE, DEF_P, init, 'memset def_p'));
  yield* step(hostCheck(base, PER_CPU_DATA_SIZE, DEF_P, init, 'sync_shared: def_p'));
  yield* step({ kind: 'hostWrite', gpa: base, size: PER_CPU_DATA_SIZE, pattern: INIT_P });
  yield* step(guestCheck(base, PER_CPU_DATA_SIZE, INIT_P, init, 'host wrote init_p'));

  for (const [offset, size] of SELFTEST_CASES) {
    const gpa = base + offset;
    const label = caseLabel(pass, offset, size);
    current = label;
    if (!(yield* step({ kind: 'access', gpa, size, private: false, write: P1 }))) return false;
    if (!(yield* step({ kind: 'mapGpa', gpa, size, toPrivate: true, fallocate, label }))) return false;
    if (size > PAGE) {
      // Only the first page gets p2, and the C test jumps straight to the shared phase.
      if (!(yield* step({ kind: 'access', gpa, size: PAGE, private: true, write: P2 }))) return false;
    } else {
      if (!(yield* step({ kind: 'access', gpa, size, private: true, write: P2 }))) return false;
      yield* syncPrivate(gpa, size, P1, label);
      yield* step(guestCheck(gpa, size, P2, label, 'private data p2', 'private'));
      if (gpa > base) yield* step(guestCheck(base, gpa - base, INIT_P, label, 'init_p before the range'));
      const end = base + PER_CPU_DATA_SIZE;
      if (gpa + size < end) yield* step(guestCheck(gpa + size, end - (gpa + size), INIT_P, label, 'init_p after the range'));
      // Odd pages back to shared, even pages checked by the host (one page: the even branch only).
      for (let j = 0; j < size; j += PAGE) {
        if ((j / PAGE) % 2 === 1) {
          if (!(yield* step({ kind: 'mapGpa', gpa: gpa + j, size: PAGE, toPrivate: false, fallocate, label }))) return false;
          const expect = hostViewWhilePrivate(ctx, P1) ?? P2; // in place the page kept the guest's p2
          yield* step(hostCheck(gpa + j, PAGE, expect, label, 'sync_shared: odd page back to shared'));
          yield* step({ kind: 'hostWrite', gpa: gpa + j, size: PAGE, pattern: P3 });
          yield* step(guestCheck(gpa + j, PAGE, P3, label, 'host wrote p3'));
        } else {
          yield* syncPrivate(gpa + j, PAGE, P1, label);
        }
      }
    }
    // skip: the whole range back to shared; p3 from the guest, p4 from the host.
    if (!(yield* step({ kind: 'mapGpa', gpa, size, toPrivate: false, fallocate, label }))) return false;
    if (!(yield* step({ kind: 'access', gpa, size, private: false, write: P3 }))) return false;
    yield* step(hostCheck(gpa, size, P3, label, 'sync_shared: guest wrote p3'));
    yield* step({ kind: 'hostWrite', gpa, size, pattern: P4 });
    yield* step(guestCheck(gpa, size, P4, label, 'host wrote p4'));
    if (!(yield* step({ kind: 'access', gpa, size, private: false, write: INIT_P }))) return false;
    // Free all private memory: the whole chunk to shared, with fallocate (PUNCH_HOLE), always.
    if (!(yield* step({ kind: 'mapGpa', gpa: base, size: PER_CPU_DATA_SIZE, toPrivate: false, fallocate: true, label }))) return false;
  }
  return true;
}

/** `guest_test_punch_hole(base_gpa, precise)`. */
function* punchHole(run: (a: GuestAction) => Steps, base: number, precise: boolean): Steps {
  const pass = precise ? 'punch hole precise' : 'punch hole';
  let current = `${pass} init`;
  const step = (action: GuestAction): Steps => run({ label: current, ...action });
  if (!(yield* step({ kind: 'mapGpa', gpa: base, size: PER_CPU_DATA_SIZE, toPrivate: true, label: `${pass} init` }))) return false;
  for (const [offset, size] of SELFTEST_CASES) {
    const gpa = base + offset;
    const label = caseLabel(pass, offset, size);
    current = label;
    if (!(yield* step({ kind: 'mapGpa', gpa: base, size: PER_CPU_DATA_SIZE, toPrivate: false, punchHole: true, label }))) return false;
    const [at, length] = precise ? [gpa, size] : [base, PER_CPU_DATA_SIZE];
    if (!(yield* step({ kind: 'access', gpa: at, size: length, private: true, write: INIT_P }))) return false;
    yield* step({ kind: 'check', gpa: at, size: length, view: 'private', expect: INIT_P, what: 'init_p faulted in', who: 'guest', label });
    if (!(yield* step({ kind: 'mapGpa', gpa, size, toPrivate: false, punchHole: true, label }))) return false;
    yield* step({ kind: 'check', gpa, size, view: 'private', expect: 0, what: 'zeroes after PUNCH_HOLE', who: 'guest', label });
  }
  return true;
}
