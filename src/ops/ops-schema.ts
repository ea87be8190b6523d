/**
 * The `convsim ops` input format: a VM config and a script of QEMU
 * operations. Parsing validates everything before anything runs, and
 * rejects with one line naming the file, the op index and the field.
 */
import { DEFAULT_VM_CONFIG, type VmConfig } from '../core/confidential-vm.js';
import { BACKING_MODES } from '../core/guest-memory.js';
import { INPLACE_ORDERS } from '../core/kvm-convert-memory.js';
import { ROLLBACK_POLICIES } from '../core/ram-block-attributes.js';
import { SHARED_BACKINGS } from '../core/shared-backing.js';
import { isAligned, isOffset, isPowerOfTwo } from '../core/units.js';
import { VFIO_BACKENDS, type VfioBackend } from '../core/vfio/container.js';
import { showValue } from '../cli/show-value.js';

export type Op =
  | { op: 'addContainer'; id: string; backend: VfioBackend; dmaEntryLimit?: number }
  | { op: 'register'; container: string; section: { offset: number; size: number; iova: number }; listener?: string }
  | { op: 'unregister'; container: string; listener?: string }
  | { op: 'stateChange'; offset: number; size: number; toDiscard: boolean }
  | { op: 'convert'; gpa: number; size: number; toPrivate: boolean }
  | { op: 'isPopulated'; offset: number; size: number }
  | { op: 'replayPopulated'; offset: number; size: number }
  | { op: 'replayDiscarded'; offset: number; size: number }
  | { op: 'dmaMap'; container: string; iova: number; size: number; offset: number }
  | { op: 'dmaUnmap'; container: string; iova: number; size: number }
  | { op: 'failNextMaps'; container: string; count: number; errno: number }
  | { op: 'dma'; container: string; iova: number; size: number; write: boolean };

export type OpName = Op['op'];

export interface OpsScript {
  readonly config: VmConfig;
  readonly ops: readonly Op[];
}

/** Bad input: the message is the one line the CLI prints. */
export class OpsInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OpsInputError';
  }
}

type FieldKind = 'int' | 'bool' | 'string' | 'section' | readonly string[];

/** Fields of each op: name -> [kind, required]. */
const OP_FIELDS: Record<OpName, Record<string, readonly [FieldKind, boolean]>> = {
  addContainer: { id: ['string', true], backend: [VFIO_BACKENDS, true], dmaEntryLimit: ['int', false] },
  register: { container: ['string', true], section: ['section', true], listener: ['string', false] },
  unregister: { container: ['string', true], listener: ['string', false] },
  stateChange: { offset: ['int', true], size: ['int', true], toDiscard: ['bool', true] },
  convert: { gpa: ['int', true], size: ['int', true], toPrivate: ['bool', true] },
  isPopulated: { offset: ['int', true], size: ['int', true] },
  replayPopulated: { offset: ['int', true], size: ['int', true] },
  replayDiscarded: { offset: ['int', true], size: ['int', true] },
  dmaMap: { container: ['string', true], iova: ['int', true], size: ['int', true], offset: ['int', true] },
  dmaUnmap: { container: ['string', true], iova: ['int', true], size: ['int', true] },
  failNextMaps: { container: ['string', true], count: ['int', true], errno: ['int', true] },
  dma: { container: ['string', true], iova: ['int', true], size: ['int', true], write: ['bool', true] },
};

const CONFIG_FIELDS: Record<string, FieldKind> = {
  regionSize: 'int',
  blockSize: 'int',
  gpaBase: 'int',
  rollback: ROLLBACK_POLICIES,
  mode: BACKING_MODES,
  inplaceOrder: INPLACE_ORDERS,
  maxMemslots: 'int',
  dmaLimitCheck: ['error', 'warn'],
  sharedBacking: SHARED_BACKINGS,
};

/**
 * Most blocks a region may have (2^20: 4 GiB of 4 KiB blocks, 2 TiB of
 * 2 MiB blocks). A whole-region conversion walks every block, so this bounds
 * the time and memory of any one op (about 1 s per 2^20 blocks here).
 */
export const MAX_REGION_BLOCKS = 2 ** 20;

/** Most events `convsim ops` prints; beyond it they are counted, not kept (see `eventsOmitted`). */
export const MAX_PRINTED_EVENTS = 100_000;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Own properties only: an op named `toString` or a field named `__proto__` is not inherited from Object.prototype. */
const has = (record: object, key: string): boolean => Object.hasOwn(record, key);

/** A field name as it appears in a message (truncated, one line). */
function showKey(key: string): string {
  return /^[A-Za-z_$][\w$]{0,40}$/.test(key) ? key : showValue(key);
}

function describe(kind: FieldKind): string {
  if (Array.isArray(kind)) return `one of ${kind.map((k) => JSON.stringify(k)).join(', ')}`;
  switch (kind) {
    case 'int': return 'a non-negative safe integer';
    case 'bool': return 'true or false';
    case 'string': return 'a non-empty string';
    default: return 'an object {offset, size, iova}';
  }
}

function checkValue(value: unknown, kind: FieldKind, where: string): void {
  const bad = (): never => {
    throw new OpsInputError(`${where}: ${showValue(value)} is not ${describe(kind)}`);
  };
  if (Array.isArray(kind)) {
    if (typeof value !== 'string' || !kind.includes(value)) bad();
    return;
  }
  switch (kind) {
    case 'int': if (!isOffset(value)) bad(); return;
    case 'bool': if (typeof value !== 'boolean') bad(); return;
    case 'string': if (typeof value !== 'string' || value.length === 0) bad(); return;
    default: {
      if (!isRecord(value)) bad();
      const section = value as Record<string, unknown>;
      for (const key of Object.keys(section)) {
        if (!['offset', 'size', 'iova'].includes(key)) {
          throw new OpsInputError(`${where}.${showKey(key)}: unknown field (allowed: offset, size, iova)`);
        }
      }
      for (const key of ['offset', 'size', 'iova']) {
        if (!has(section, key)) throw new OpsInputError(`${where}.${key}: missing`);
        checkValue(section[key], 'int', `${where}.${key}`);
      }
    }
  }
}

function parseConfig(raw: unknown, file: string): VmConfig {
  if (!isRecord(raw)) throw new OpsInputError(`${file}: config: must be an object`);
  for (const [key, value] of Object.entries(raw)) {
    const kind = has(CONFIG_FIELDS, key) ? CONFIG_FIELDS[key] : undefined;
    if (kind === undefined) {
      throw new OpsInputError(`${file}: config.${showKey(key)}: unknown field (allowed: ${Object.keys(CONFIG_FIELDS).join(', ')})`);
    }
    checkValue(value, kind, `${file}: config.${key}`);
  }
  if (!has(raw, 'regionSize')) throw new OpsInputError(`${file}: config.regionSize: missing`);
  const config = { ...DEFAULT_VM_CONFIG, ...raw } as VmConfig;
  if (config.regionSize / config.blockSize > MAX_REGION_BLOCKS) {
    throw new OpsInputError(`${file}: config.regionSize: ${config.regionSize} is more than ${MAX_REGION_BLOCKS} blocks of ${config.blockSize} bytes (the limit; raise blockSize for a larger region)`);
  }
  if (!isPowerOfTwo(config.blockSize) || config.blockSize < 4096) {
    throw new OpsInputError(`${file}: config.blockSize: ${config.blockSize} must be a power of two >= 4096`);
  }
  if (config.regionSize === 0 || !isAligned(config.regionSize, config.blockSize)) {
    throw new OpsInputError(`${file}: config.regionSize: ${config.regionSize} must be a positive multiple of blockSize ${config.blockSize}`);
  }
  if (config.gpaBase + config.regionSize > Number.MAX_SAFE_INTEGER) {
    throw new OpsInputError(`${file}: config.gpaBase: region end exceeds 2^53`);
  }
  return config;
}

/**
 * Validate a parsed JSON document. Checks types and fields, and the
 * references a script can get wrong statically: unknown or duplicate
 * containers, unregistering a listener that is not registered, sections outside
 * the region.
 */
export function parseOpsScript(doc: unknown, file: string): OpsScript {
  if (!isRecord(doc)) throw new OpsInputError(`${file}: top level must be an object {config, ops}`);
  for (const key of Object.keys(doc)) {
    if (key !== 'config' && key !== 'ops') throw new OpsInputError(`${file}: ${showKey(key)}: unknown field (allowed: config, ops)`);
  }
  const config = parseConfig(doc['config'], file);
  const rawOps = doc['ops'];
  if (!Array.isArray(rawOps)) throw new OpsInputError(`${file}: ops: must be an array`);
  const containers = new Set<string>();
  /** Per container, its listener names registered now. */
  const registered = new Map<string, Set<string>>();
  const ops = rawOps.map((raw: unknown, index): Op => {
    const where = `${file}: ops[${index}]`;
    if (!isRecord(raw)) throw new OpsInputError(`${where}: must be an object`);
    const name = raw['op'];
    if (typeof name !== 'string' || !has(OP_FIELDS, name)) {
      throw new OpsInputError(`${where}.op: ${showValue(name)} is not one of ${Object.keys(OP_FIELDS).join(', ')}`);
    }
    const fields = OP_FIELDS[name as OpName];
    for (const [key, value] of Object.entries(raw)) {
      if (key === 'op') continue;
      const spec = has(fields, key) ? fields[key] : undefined;
      if (spec === undefined) {
        throw new OpsInputError(`${where}.${showKey(key)}: unknown field for ${name} (allowed: ${Object.keys(fields).join(', ')})`);
      }
      checkValue(value, spec[0], `${where}.${key}`);
    }
    for (const [key, [, required]] of Object.entries(fields)) {
      if (required && !has(raw, key)) throw new OpsInputError(`${where}.${key}: missing (required by ${name})`);
    }
    const op = raw as Op;
    checkReferences(op, where, config, containers, registered);
    return op;
  });
  return { config, ops };
}

function checkReferences(op: Op, where: string, config: VmConfig, containers: Set<string>, registered: Map<string, Set<string>>): void {
  if (op.op === 'addContainer') {
    if (containers.has(op.id)) throw new OpsInputError(`${where}.id: container ${showValue(op.id)} already added`);
    if (op.dmaEntryLimit !== undefined && op.backend !== 'type1') {
      throw new OpsInputError(`${where}.dmaEntryLimit: only type1 containers have a DMA entry limit`);
    }
    containers.add(op.id);
    registered.set(op.id, new Set());
    return;
  }
  for (const start of ['gpa', 'offset', 'iova'] as const) {
    const range = op as Partial<Record<typeof start | 'size', number>>;
    if (has(op, start) && has(op, 'size') && range[start]! + range.size! > Number.MAX_SAFE_INTEGER) {
      throw new OpsInputError(`${where}.${start}: ${start} + size = ${range[start]! + range.size!} passes 2^53 - 1, the largest address convsim models`);
    }
  }
  if (op.op === 'register' && op.section.iova + op.section.size > Number.MAX_SAFE_INTEGER) {
    throw new OpsInputError(`${where}.section: iova + size passes 2^53 - 1, the largest address convsim models`);
  }
  if (has(op, 'container') && !containers.has((op as { container: string }).container)) {
    throw new OpsInputError(`${where}.container: ${showValue((op as { container: string }).container)} is not a container added before (known: ${showValue([...containers].join(', ') || 'none')})`);
  }
  const inRegion = (offset: number, size: number, field: string): void => {
    if (size === 0 || !isAligned(offset, config.blockSize) || !isAligned(size, config.blockSize) || offset + size > config.regionSize) {
      throw new OpsInputError(`${where}.${field}: [${offset}, +${size}) must be a non-empty, block-aligned range inside the region (size ${config.regionSize})`);
    }
  };
  switch (op.op) {
    case 'register':
      inRegion(op.section.offset, op.section.size, 'section');
      registered.get(op.container)!.add(op.listener ?? op.container);
      return;
    case 'unregister': {
      // Without a name, the listener(s) named after the container, as `register` names them.
      const names = registered.get(op.container)!;
      const name = op.listener ?? op.container;
      if (!names.has(name)) {
        const field = op.listener === undefined ? 'container' : 'listener';
        throw new OpsInputError(`${where}.${field}: container ${showValue(op.container)} has no registered listener ${showValue(name)}` +
          ` (registered: ${[...names].join(', ') || 'none'})`);
      }
      names.delete(name);
      return;
    }
    case 'isPopulated':
    case 'replayPopulated':
    case 'replayDiscarded':
      inRegion(op.offset, op.size, 'size');
      return;
    case 'failNextMaps':
      if (op.errno === 0) throw new OpsInputError(`${where}.errno: must be a positive errno (e.g. 28 for ENOSPC)`);
      return;
    case 'dma':
      if (op.size === 0) throw new OpsInputError(`${where}.size: a device access needs at least one byte`);
      return;
    default:
      return;
  }
}
