/**
 * Linux errno values used by the simulated kernel and QEMU paths.
 * Functions return `0` on success or a negative errno, as the C code does.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;

/** 0 on success, a negative errno (or QEMU's bare -1) on failure. */
export type Ret = number;

const NAMES: Readonly<Record<number, string>> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [EIO]: 'EIO',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
};

/** `-28` -> `"-ENOSPC (-28)"`, `0` -> `"0"`: the name and the number, everywhere a ret is printed. */
export function retName(ret: Ret): string {
  if (ret === 0) return '0';
  const name = Object.hasOwn(NAMES, -ret) ? NAMES[-ret] : undefined;
  return name === undefined ? String(ret) : `-${name} (${ret})`;
}
