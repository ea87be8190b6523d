/**
 * Fixed binary encoding of {@link Message}s into 8 Float64 words (one
 * 64-byte mailbox slot): word 0 the type code, word 1 `from`, words 2..7
 * the fields in a fixed order per type (at most 5, so word 7 stays free for
 * the transport's flow id). Float64 words carry byte offsets up to 2^53
 * exactly.
 */
import type { Message, MessageType } from './protocol.js';

/** Words per message: one mailbox slot. */
export const MESSAGE_WORDS = 8;

/** Field order per type (after `type` and `from`). Booleans are 0/1. */
const FIELDS: { readonly [T in MessageType]: readonly string[] } = {
  exit: ['tag', 'reason', 'gpa', 'size', 'toPrivate'],
  exitDone: ['tag', 'ret'],
  stateChange: ['tag', 'offset', 'size', 'toDiscard', 'vcpu'],
  stateChangeDone: ['tag', 'ret'],
  notifyPopulate: ['tag', 'offset', 'size', 'iova', 'replay'],
  notifyDiscard: ['tag', 'offset', 'size', 'iova', 'replay'],
  notifyDone: ['tag', 'ret'],
  bitmapStep: ['tag', 'op', 'index', 'a', 'b'],
  bitmapStepDone: ['tag', 'ret'],
  register: ['tag', 'offset', 'size', 'iova', 'priority'],
  unregister: ['tag', 'offset', 'iova'],
  registerDone: ['tag', 'ret'],
  dmaRequest: ['tag', 'iova', 'size', 'pattern', 'write'],
  dmaDone: ['tag', 'outcome'],
  check: ['tag'],
  checkDone: ['tag', 'violations'],
  deviceAccess: ['tag', 'iova', 'size', 'outcome'],
  hotplug: ['tag', 'listeners', 'sections'],
  start: ['tag'],
};

const BOOLEAN_FIELDS = new Set(['toPrivate', 'toDiscard', 'write', 'replay']);

export const MESSAGE_TYPES = Object.keys(FIELDS) as MessageType[];
const CODE = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]));

/** The type code of a message type (also used to name "what an actor was doing"). */
export function messageCode(type: MessageType): number {
  return CODE.get(type)!;
}

export function messageTypeOf(code: number): MessageType | undefined {
  return MESSAGE_TYPES[code];
}

/** Words `encodeMessage` writes for this type: 2 + its fields. */
export function encodedWords(type: MessageType): number {
  return 2 + FIELDS[type].length;
}

/** Write `message` into `slot[offset .. offset + 8)`. */
export function encodeMessage(message: Message, slot: Float64Array, offset: number): void {
  const fields = FIELDS[message.type];
  const record = message as unknown as Record<string, number | boolean>;
  slot[offset] = CODE.get(message.type)!;
  slot[offset + 1] = message.from;
  for (let i = 0; i < fields.length; i++) {
    const value = record[fields[i]!]!;
    slot[offset + 2 + i] = typeof value === 'boolean' ? (value ? 1 : 0) : value;
  }
}

/** Read a message from `slot[offset .. offset + 8)`. */
export function decodeMessage(slot: Float64Array, offset: number): Message {
  const type = MESSAGE_TYPES[slot[offset]!];
  if (type === undefined) throw new RangeError(`unknown message code ${slot[offset]}`);
  const fields = FIELDS[type];
  const message: Record<string, number | boolean | string> = { type, from: slot[offset + 1]! };
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i]!;
    const word = slot[offset + 2 + i]!;
    message[name] = BOOLEAN_FIELDS.has(name) ? word !== 0 : word;
  }
  return message as unknown as Message;
}
