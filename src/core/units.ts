/** Sizes and integer-safe arithmetic on byte offsets (which reach 2^40 and beyond). */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;
/** The host page size and the tracking unit of RamBlockAttributes. */
export const PAGE_SIZE = 4 * KiB;
/** 2^64: the u64 limit QEMU's `offset + size < offset` overflow check guards. */
export const U64_LIMIT = 2 ** 64;

/** `QEMU_IS_ALIGNED`: modulo, never 32-bit bit operators (offsets exceed 2^32). */
export function isAligned(value: number, alignment: number): boolean {
  return value % alignment === 0;
}

/** `ROUND_UP(value, alignment)` for positive integers. */
export function roundUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** `QEMU_ALIGN_DOWN(value, alignment)`. */
export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

/** True for a non-negative safe integer: the only numbers accepted as offsets and sizes. */
export function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A power of two (as a JS number, which may exceed 2^31). */
export function isPowerOfTwo(value: number): boolean {
  return value > 0 && Number.isSafeInteger(value) && 2 ** Math.round(Math.log2(value)) === value;
}

/** Human-readable size: 4096 -> "4K", 2097152 -> "2M". */
export function formatSize(bytes: number): string {
  for (const [unit, scale] of [['T', TiB], ['G', GiB], ['M', MiB], ['K', KiB]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}
