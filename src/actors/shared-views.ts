/** Views of the run's SharedArrayBuffers, built the same way in every thread. */
import type { BitmapExecutorState } from '../core/bitmap-executor.js';
import { GuestMemory } from '../core/guest-memory.js';
import type { StateView } from '../core/invariants.js';
import { KvmMemoryAttributes } from '../core/kvm-memory-attributes.js';
import { SharedBitmap } from '../core/shared-bitmap.js';
import { physMapOf } from '../core/machine-layout.js';
import { layoutOf, type ActorSetup, type RunConfig, type SharedState } from './run-config.js';

export interface SharedViews extends StateView {
  readonly kvm: KvmMemoryAttributes;
}

export function blocksOf(config: RunConfig): number {
  return Math.ceil(config.guestMem / config.blockSize);
}

/** Allocate the shared state of a run (on the host thread). */
export function allocateSharedState(config: RunConfig): SharedState {
  const blocks = blocksOf(config);
  return {
    bitmap: new SharedArrayBuffer(SharedBitmap.byteLengthFor(blocks)),
    intended: new SharedArrayBuffer(SharedBitmap.byteLengthFor(blocks)),
    bitmapCheckLock: new SharedArrayBuffer(4),
    kvmShared: new SharedArrayBuffer(SharedBitmap.byteLengthFor(blocks)),
    memory: GuestMemory.allocateBuffers(config.guestMem, config.blockSize),
  };
}

/** What a vCPU's bitmap executor works on (the bitmap, the intended writes, the check lock). */
export function bitmapExecutorState(setup: ActorSetup, bitmap: SharedBitmap): BitmapExecutorState {
  const blocks = blocksOf(setup.config);
  return { bitmap, intended: new SharedBitmap(blocks, setup.shared.intended), lock: new Int32Array(setup.shared.bitmapCheckLock), blockSize: setup.config.blockSize };
}

export function sharedViews(setup: ActorSetup): SharedViews {
  const { config, shared } = setup;
  const blocks = blocksOf(config);
  const kvm = new KvmMemoryAttributes(physMapOf(layoutOf(config)), config.guestMem, config.blockSize, new SharedBitmap(blocks, shared.kvmShared));
  return {
    blockSize: config.blockSize,
    regionSize: config.guestMem,
    mode: config.mode,
    bitmap: new SharedBitmap(blocks, shared.bitmap),
    kvmShared: kvm.shared,
    kvm,
    memory: new GuestMemory(config.mode, config.guestMem, config.blockSize, kvm, shared.memory),
  };
}
