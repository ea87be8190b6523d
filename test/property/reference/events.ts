/**
 * The effect events the reference model produces, in the shape the property
 * tests compare against the real core's event bus.
 *
 * `bits` on a notification is the state of the notified range in the
 * bitmap at the moment the listener is told ('1' shared, '0' private, one
 * character per block): it checks "the bitmap is always updated before
 * listeners are told" (spec section 3, step 5).
 */
export type RefEvent =
  | { kind: 'notifyPopulate'; listener: string; offset: number; size: number; bits: string }
  | { kind: 'notifyDiscard'; listener: string; offset: number; size: number; bits: string }
  | { kind: 'dmaMap'; container: string; iova: number; size: number; ret: number }
  | { kind: 'dmaUnmap'; container: string; iova: number; size: number; ret: number };

/** Linux errno values, written out here so the reference shares nothing with src/. */
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;

export const PAGE = 4096;

/** A section as VFIO sees it: region offset, size, and the IOVA of its first byte. */
export interface RefSection {
  readonly offset: number;
  readonly size: number;
  readonly iova: number;
}

/**
 * `memory_region_section_intersect_range`: narrow to `[offset, offset+size)`;
 * the IOVA moves by the same amount as the region offset. Undefined if empty.
 */
export function intersect(section: RefSection, offset: number, size: number): RefSection | undefined {
  const start = Math.max(section.offset, offset);
  const end = Math.min(section.offset + section.size, offset + size);
  if (end <= start) return undefined;
  return { offset: start, size: end - start, iova: section.iova + (start - section.offset) };
}
