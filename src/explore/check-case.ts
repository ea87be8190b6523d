/**
 * Validation of a decoded replay token: every field of the case is held to
 * the bounds the command line enforces (`RUN_LIMITS`, the option choices),
 * unknown fields are refused, and lookups are own-property only, so a
 * hand-edited or damaged token is refused with one line instead of running
 * away or crashing.
 */
import { BITMAP_OPS, CONVERSION_LOCKS, LISTENER_LISTS, REGISTRATION_ORDERS } from '../core/protocol-policy.js';
import { GUEST_MEM_ALIGNMENT, MAX_GUEST_MEM, RUN_LIMITS, workloadFitProblem } from '../actors/run-limits.js';
import { WORKLOADS } from '../actors/run-config.js';
import { BACKING_MODES } from '../core/guest-memory.js';
import { INPLACE_ORDERS } from '../core/kvm-convert-memory.js';
import { ROLLBACK_POLICIES } from '../core/ram-block-attributes.js';
import { isPowerOfTwo } from '../core/units.js';
import { VFIO_BACKENDS } from '../core/vfio/container.js';
import { STRATEGIES } from '../runtime/deterministic/strategy.js';
import { showValue } from '../cli/show-value.js';
import { MUTANTS } from './mutants.js';
import { FAULT_KINDS } from '../core/fault-plan.js';
import { LAYOUTS } from '../core/machine-layout.js';
import { SELFTEST_EXPECTS } from '../actors/run-config.js';
import { PLATFORMS } from '../actors/vcpu/conversion-exits.js';
import { SHARED_BACKINGS } from '../core/shared-backing.js';

/** Most conversions a token may ask for (as `convsim explore --conversions`). */
export const MAX_CASE_CONVERSIONS = 1e6;
/** Most schedule deviations a token may carry. */
export const MAX_DEVIATIONS = 100_000;

type Check = (value: unknown, where: string) => void;

const fail = (where: string, value: unknown, what: string): never => {
  throw new RangeError(`replay token field ${where}: ${showValue(value)} is not ${what}`);
};

const int = (min: number, max: number): Check => (value, where) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) fail(where, value, `an integer from ${min} to ${max}`);
};
const oneOf = (allowed: readonly string[]): Check => (value, where) => {
  if (typeof value !== 'string' || !allowed.includes(value)) fail(where, value, `one of ${allowed.join(', ')}`);
};
const bool: Check = (value, where) => {
  if (typeof value !== 'boolean') fail(where, value, 'true or false');
};
const arrayOf = (item: Check, maxLength: number): Check => (value, where) => {
  if (!Array.isArray(value) || value.length > maxLength) fail(where, value, `an array of at most ${maxLength} items`);
  (value as unknown[]).forEach((v, i) => item(v, `${where}[${i}]`));
};
const tuple = (...items: Check[]): Check => (value, where) => {
  if (!Array.isArray(value) || value.length !== items.length) fail(where, value, `a list of ${items.length}`);
  items.forEach((check, i) => check((value as unknown[])[i], `${where}[${i}]`));
};

/** An object with exactly these fields (`?` marks optional ones). */
const record = (fields: Readonly<Record<string, Check>>): Check => (value, where) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, value, 'an object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (!Object.hasOwn(fields, key) && !Object.hasOwn(fields, `${key}?`)) {
      throw new RangeError(`replay token field ${where}.${showValue(key)}: unknown (from another convsim version?)`);
    }
  }
  for (const [spec, check] of Object.entries(fields)) {
    const optional = spec.endsWith('?');
    const key = optional ? spec.slice(0, -1) : spec;
    if (!Object.hasOwn(v, key)) {
      if (!optional) throw new RangeError(`replay token field ${where}.${key}: missing`);
      continue;
    }
    check(v[key], `${where}.${key}`);
  }
};

const limit = (l: { readonly min: number; readonly max: number }): Check => int(l.min, l.max);

const CONTAINER = record({
  backend: oneOf(VFIO_BACKENDS), dmaEntryLimit: int(0, RUN_LIMITS.dmaEntryLimit.max), 'limitSource?': oneOf(['default', 'set', 'auto']),
});

/** Byte offsets and sizes inside the model's limits, 4 KiB aligned. */
const aligned = (min: number): Check => (value, where) => {
  int(min, 2 ** 52)(value, where);
  if ((value as number) % 4096 !== 0) fail(where, value, 'a multiple of 4096');
};

/** The machine layout: RAM sections of the guest-physical map, and each container's VFIO sections. */
const LAYOUT = record({
  name: oneOf(LAYOUTS),
  ram: arrayOf(record({ name: oneOf(['ram', 'ram-below-4g', 'ram-above-4g']), gpa: aligned(0), offset: aligned(0), size: aligned(4096) }), 8),
  vfio: arrayOf(arrayOf(record({ offset: aligned(0), size: aligned(4096), iova: aligned(0) }), 64), RUN_LIMITS.containers.max),
});

const FAULTS = record({
  rate: (value, where) => {
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) fail(where, value, 'a number from 0 to 1');
  },
  kinds: arrayOf(oneOf(FAULT_KINDS), FAULT_KINDS.length),
});

const VARIANT = record({
  'vfioGranularity?': (value, where) => {
    if (typeof value !== 'number' || !isPowerOfTwo(value) || value < 4096 || value > 2 ** 30) fail(where, value, 'a power of two from 4096 to 1G');
  },
  'notifyBeforeBitmap?': bool,
  'invertPriorityWalk?': bool,
  'failMaps?': record({ container: int(0, RUN_LIMITS.containers.max - 1), afterMaps: int(0, 1e9), errno: int(1, 4095) }),
  'dmaLimitWarnOnly?': bool,
});

/* The protocol's policies: see protocol-policy.ts. */
const RUN_CONFIG = record({
  vcpus: limit(RUN_LIMITS.vcpus),
  containers: (value, where) => {
    arrayOf(CONTAINER, RUN_LIMITS.containers.max)(value, where);
    if ((value as unknown[]).length === 0) fail(where, value, 'a non-empty array');
  },
  guestMem: (value, where) => {
    int(GUEST_MEM_ALIGNMENT, MAX_GUEST_MEM)(value, where);
    if ((value as number) % GUEST_MEM_ALIGNMENT !== 0) fail(where, value, 'a multiple of 2M');
  },
  blockSize: int(4096, 4096),
  gpaBase: (value, where) => {
    int(0, 2 ** 52)(value, where);
    if ((value as number) % 4096 !== 0) fail(where, value, 'a multiple of 4096');
  },
  mode: oneOf(BACKING_MODES),
  order: oneOf(INPLACE_ORDERS),
  rollback: oneOf(ROLLBACK_POLICIES),
  inFlight: limit(RUN_LIMITS.inFlight),
  conversions: int(1, MAX_CASE_CONVERSIONS),
  seed: limit(RUN_LIMITS.seed),
  workload: oneOf(WORKLOADS),
  checkEvery: limit(RUN_LIMITS.checkEvery),
  maxMemslots: int(1, 65536),
  protocol: record({
    conversionLock: oneOf(CONVERSION_LOCKS),
    bitmapOps: oneOf(BITMAP_OPS),
    registration: oneOf(REGISTRATION_ORDERS),
    listenerList: oneOf(LISTENER_LISTS),
  }),
  'variant?': VARIANT,
  'profile?': bool,
  'skipActions?': arrayOf(arrayOf(int(0, 1e9), 1e6), RUN_LIMITS.vcpus.max),
  'hotplugEvery?': int(1, 1e6),
  'scheduledEvents?': record({ hotplugs: int(0, 64), deviceAccesses: int(0, 64) }),
  'actionLimit?': arrayOf(int(0, 1e9), RUN_LIMITS.vcpus.max),
  'layout?': LAYOUT,
  'faults?': FAULTS,
  'hotplug?': bool,
  'platform?': oneOf(PLATFORMS),
  'sharedBacking?': oneOf(SHARED_BACKINGS),
  'selftestExpect?': oneOf(SELFTEST_EXPECTS),
});

const CASE = record({
  config: RUN_CONFIG,
  strategy: oneOf([...STRATEGIES, 'replay']),
  depth: int(1, 16),
  expectedSteps: int(1, 1e9),
  scheduleSeed: int(0, 2 ** 32),
  'deviations?': arrayOf(tuple(int(0, 1e9), int(0, 1e6)), MAX_DEVIATIONS),
  'mutant?': oneOf(MUTANTS.map((m) => m.name)),
});

/**
 * Check a decoded case field by field.
 * @throws RangeError with one line naming the field, the value and what is allowed.
 */
export function checkCase(value: unknown): void {
  CASE(value, 'case');
  const config = (value as { config: { workload: (typeof WORKLOADS)[number]; vcpus: number; guestMem: number; containers: unknown[]; variant?: { failMaps?: { container: number } } } }).config;
  const misfit = workloadFitProblem(config);
  if (misfit !== undefined) throw new RangeError(`replay token field case.config: ${misfit}`);
  const layout = (value as { config: { layout?: { ram: Array<{ offset: number; size: number }>; vfio: Array<Array<{ offset: number; size: number }>> } } }).config.layout;
  if (layout !== undefined) {
    if (layout.vfio.length !== config.containers.length) {
      throw new RangeError(`replay token field case.config.layout.vfio: ${layout.vfio.length} section lists for ${config.containers.length} containers`);
    }
    const inside = (s: { offset: number; size: number }): boolean => s.offset + s.size <= config.guestMem;
    if (!layout.ram.every(inside) || !layout.vfio.every((sections) => sections.every(inside))) {
      throw new RangeError('replay token field case.config.layout: a section reaches past the guest memory');
    }
  }
  const failing = config.variant?.failMaps?.container;
  if (failing !== undefined && failing >= config.containers.length) {
    throw new RangeError(`replay token field case.config.variant.failMaps.container: ${failing} names no container (there are ${config.containers.length})`);
  }
}
