/**
 * A {@link BitmapStep} as the numbers of a `bitmapStep` message, and back:
 * the RamBlockAttributes owner sends each bitmap access of a state change
 * to the converting vCPU's actor, which makes it on its own thread.
 */
import type { BitmapStep } from '../core/bitmap-ops.js';
import type { MessageOf } from './protocol.js';

/** `op` codes of a `bitmapStep` message. */
export const BITMAP_STEP_OPS = ['find-set', 'find-zero', 'load', 'store-or', 'store-andnot', 'atomic-or', 'atomic-andnot'] as const;

type StepFields = Pick<MessageOf<'bitmapStep'>, 'op' | 'index' | 'a' | 'b'>;

export function encodeBitmapStep(step: BitmapStep): StepFields {
  switch (step.kind) {
    case 'find': return { op: step.zero ? 1 : 0, index: step.from, a: step.limit, b: 0 };
    case 'load': return { op: 2, index: step.word, a: 0, b: 0 };
    case 'store': return { op: step.set ? 3 : 4, index: step.word, a: step.lo, b: step.hi };
    case 'atomic': return { op: step.set ? 5 : 6, index: step.word, a: step.lo, b: step.hi };
    default: {
      const unreachable: never = step;
      throw new Error(`unknown bitmap step ${String(unreachable)}`);
    }
  }
}

export function decodeBitmapStep(m: StepFields): BitmapStep {
  switch (m.op) {
    case 0: case 1: return { kind: 'find', zero: m.op === 1, from: m.index, limit: m.a };
    case 2: return { kind: 'load', word: m.index };
    case 3: case 4: return { kind: 'store', word: m.index, set: m.op === 3, lo: m.a, hi: m.b };
    case 5: case 6: return { kind: 'atomic', word: m.index, set: m.op === 5, lo: m.a, hi: m.b };
    default: throw new RangeError(`unknown bitmap step op ${m.op}`);
  }
}
