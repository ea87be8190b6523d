/**
 * One VFIO container on its own thread: the kernel back-end (type1 or
 * iommufd) with its mapping table and pins, the VFIO RamDiscardListener
 * that turns notifications into maps and unmaps, and the device behind the
 * container that performs DMA concurrently with conversions.
 */
import { ENOSPC } from '../../core/errno.js';
import { FaultPlan } from '../../core/fault-plan.js';
import type { VfioSectionSpec } from '../../core/machine-layout.js';
import type { RegisterFailure } from '../../core/qemu-outcome.js';
import { EventBus } from '../../core/events.js';
import {
  accessViolation, checkEntryLimit, checkMapAfterConvertShared, checkMapOfSharedBlock, checkPartialUnmaps, checkSectionAgreement,
  checkStaleMappings, type Violation,
} from '../../core/invariants.js';
import type { MemoryRegionSection } from '../../core/memory-region-section.js';
import { RAM_DISCARD_LISTENER_PRIORITY_COMMON } from '../../core/ram-discard-manager.js';
import type { VfioContainer } from '../../core/vfio/container.js';
import { IommufdContainer } from '../../core/vfio/iommufd-container.js';
import { Type1Container } from '../../core/vfio/type1-container.js';
import { VfioRamDiscardListener, vfioDmaMappingsExceeded } from '../../core/vfio/vfio-ram-discard-listener.js';
import { GUEST_MR } from '../../core/confidential-vm.js';
import { PendingReplies, type ActorContext, type ActorLogic, type Topology } from '../actor.js';
import { DMA_OUTCOMES, type Message } from '../protocol.js';
import { PhaseProfile, type PhaseHistograms } from '../phase-profile.js';
import { layoutOf, type ActorSetup, type RunConfig } from '../run-config.js';
import { sharedViews, type SharedViews } from '../shared-views.js';

export class VfioContainerActor implements ActorLogic {
  readonly role = 'vfio-container' as const;
  readonly container: VfioContainer;
  readonly #config: RunConfig;
  readonly #topology: Topology;
  readonly #views: SharedViews;
  readonly #bus = new EventBus();
  readonly #found: Violation[] = [];
  /** Registered sections (`vrdl_list`), newest first. */
  readonly #listeners: VfioRamDiscardListener[] = [];
  readonly #pending = new PendingReplies<(ret: number) => void>();
  #partialSeen = 0;
  readonly #profile: PhaseProfile;
  /** The VFIO listener's granularity: the manager's block size, unless a variant says coarser. */
  readonly #granularity: number;
  #mapsLeftBeforeFailure = Infinity;
  /** The listener call being handled is part of a (un)registration replay. */
  #replaying = false;
  readonly #faults: FaultPlan;
  /** The sections this container registers (`vfio_listener_region_add`, one listener each). */
  readonly sections: readonly VfioSectionSpec[];
  readonly #counters = {
    notifyPopulate: 0, notifyDiscard: 0, dmaAccesses: 0, dmaOk: 0, dmaFault: 0, dmaToPrivate: 0, dmaToStale: 0, checks: 0,
    deviceAccesses: 0, deviceOk: 0, deviceFault: 0, deviceSharedPageOfPrivateBlock: 0, deviceToPrivate: 0, deviceToStale: 0,
    'checked:stale-mapping': 0, 'checked:dma-to-stale': 0, 'checked:dma-to-private': 0, 'checked:inplace-order': 0,
    'checked:partial-unmap': 0, 'checked:disagreement': 0, 'checked:entry-limit': 0,
  };

  constructor(setup: ActorSetup) {
    this.#profile = new PhaseProfile(setup.config.profile !== false);
    this.#config = setup.config;
    this.#topology = setup.topology;
    this.#views = sharedViews(setup);
    const spec = setup.config.containers[setup.index]!;
    const id = `c${setup.index}`;
    this.container = spec.backend === 'type1'
      ? new Type1Container(id, this.#views.memory, spec.dmaEntryLimit, this.#bus)
      : new IommufdContainer(id, this.#views.memory, this.#bus);
    this.#granularity = setup.config.variant?.vfioGranularity ?? setup.config.blockSize;
    this.sections = layoutOf(setup.config).vfio[setup.index] ?? [];
    this.#faults = new FaultPlan(setup.config.faults, setup.config.seed, 1 + setup.index);
    this.container.injectFaults(this.#faults);
    const failMaps = setup.config.variant?.failMaps;
    if (failMaps !== undefined && failMaps.container === setup.index) this.#mapsLeftBeforeFailure = failMaps.afterMaps;
    const replayView = { ...this.#views, kvmShared: this.#views.bitmap };
    // Checked at every map attempt: in-place order (6, to shared) against guest_memfd's state, and
    // that the block is shared in the bitmap the map is for (a mapped-but-private block, spec 9).
    this.#bus.subscribe((event) => {
      // Whole-mapping unmaps (5): checked right after each unmap, from the cuts the container recorded.
      if (event.kind === 'dmaUnmap') {
        this.#counters['checked:partial-unmap']++;
        this.#partialSeen = checkPartialUnmaps(this.container, this.#partialSeen, this.#found);
      }
      if (event.kind !== 'dmaMapAttempt') return;
      if (this.#config.mode === 'inplace') this.#counters['checked:inplace-order']++;
      this.#counters['checked:stale-mapping']++;
      checkMapAfterConvertShared(this.#views, event.container, event.iova, event.size, event.hostOffset, this.#found);
      // A registration replays what the bitmap holds shared; a block a conversion to private has
      // made private in KVM but not yet in the bitmap is replayed too, and that conversion's
      // discard unmaps it again (checked when the page is freed). State changes map only what
      // KVM holds shared already.
      checkMapOfSharedBlock(this.#replaying ? replayView : this.#views,
        event.container, event.iova, event.size, event.hostOffset, this.#found);
      if (failMaps !== undefined && this.#mapsLeftBeforeFailure-- === 0) this.container.failNextMaps(Infinity, failMaps.errno);
    });
  }

  /**
   * `vfio_ram_discard_register_listener` for one section: register with the
   * RamBlockAttributes owner (which replays shared runs to us), then the
   * mapping estimate. Resolves with 0 or an error (and calls `onDone` with
   * it, synchronously, when the reply is handled).
   */
  attach(section: VfioSectionSpec, ctx: ActorContext, onDone?: (ret: number) => void): Promise<number> {
    const mrs: MemoryRegionSection = { mr: GUEST_MR, offsetWithinRegion: section.offset, size: section.size, offsetWithinAddressSpace: section.iova, readonly: false };
    const listener = new VfioRamDiscardListener(this.container, mrs, this.#granularity);
    return new Promise<number>((resolve) => {
      const tag = this.#pending.add((ret) => {
        this.#listeners.unshift(listener);
        // Current QEMU fails the region add when the worst-case mapping estimate exceeds
        // the limit; older QEMU (the variant) only warned.
        const exceeded = ret === 0 && vfioDmaMappingsExceeded(this.container, this.#listeners, this.#config.maxMemslots);
        const refused = exceeded && this.#config.variant?.dmaLimitWarnOnly !== true;
        this.lastAttachRet = ret !== 0 ? ret : refused ? -ENOSPC : 0;
        this.lastAttachFailure = ret !== 0 ? 'replay' : refused ? 'estimate' : 'none';
        // Synchronously, for the deterministic runtime (a promise continuation would run after its loop).
        onDone?.(this.lastAttachRet);
        resolve(this.lastAttachRet);
      });
      ctx.send(this.#topology.rba, { type: 'register', from: ctx.self, tag, offset: section.offset, size: section.size, iova: section.iova, priority: RAM_DISCARD_LISTENER_PRIORITY_COMMON });
    });
  }

  /** The result of the last completed `attach` (0, or why QEMU would refuse the device). */
  lastAttachRet = 0;
  /** Which step of the last completed `attach` failed (decides how QEMU ends: see `registerOutcome`). */
  lastAttachFailure: RegisterFailure = 'none';

  /** A registration or unregistration of this container is waiting for its reply. */
  get registering(): boolean {
    return this.#pending.size > 0;
  }

  /** Registered sections (listeners) now. */
  get listenerCount(): number {
    return this.#listeners.length;
  }

  /** `vfio_ram_discard_unregister_listener` for the newest section. */
  detach(ctx: ActorContext): Promise<number> {
    const listener = this.#listeners.shift();
    if (listener === undefined) return Promise.resolve(0);
    return new Promise<number>((resolve) => {
      const tag = this.#pending.add(resolve);
      ctx.send(this.#topology.rba, { type: 'unregister', from: ctx.self, tag, offset: listener.section.offsetWithinRegion, iova: listener.section.offsetWithinAddressSpace });
    });
  }

  receive(message: Message, ctx: ActorContext): void {
    switch (message.type) {
      case 'notifyPopulate':
      case 'notifyDiscard': {
        const section: MemoryRegionSection = { mr: GUEST_MR, offsetWithinRegion: message.offset, size: message.size, offsetWithinAddressSpace: message.iova, readonly: false };
        // The VFIO listener only needs the (intersected) section and the granularity.
        const listener = new VfioRamDiscardListener(this.container, section, this.#granularity);
        let ret = 0;
        const started = ctx.now();
        this.#replaying = message.replay;
        if (message.type === 'notifyPopulate') {
          this.#counters.notifyPopulate++;
          ret = listener.notifyPopulate(section);
          this.#profile.record('map', message.size, ctx.now() - started);
        } else {
          this.#counters.notifyDiscard++;
          listener.notifyDiscard(section);
          this.#profile.record('unmap', message.size, ctx.now() - started);
        }
        ctx.send(message.from, { type: 'notifyDone', from: ctx.self, tag: message.tag, ret });
        return;
      }
      case 'dmaRequest': {
        const outcome = this.container.deviceAccess(message.iova, message.size);
        this.#counters.dmaAccesses++;
        if (outcome === 'ok') {
          this.#counters.dmaOk++;
          if (message.write) this.#writeThroughIommu(message.iova, message.size, message.pattern);
        } else if (outcome === 'fault') this.#counters.dmaFault++;
        else if (outcome === 'dma-to-private') this.#counters.dmaToPrivate++;
        else this.#counters.dmaToStale++;
        const violation = accessViolation(this.container.id, message.iova, message.size, outcome);
        if (violation !== undefined) this.#found.push(violation);
        ctx.send(message.from, { type: 'dmaDone', from: ctx.self, tag: message.tag, outcome: DMA_OUTCOMES.indexOf(outcome) });
        return;
      }
      case 'check':
        ctx.send(message.from, { type: 'checkDone', from: ctx.self, tag: message.tag, violations: this.quiescentCheck() });
        return;
      case 'registerDone':
        this.#pending.take(message.tag)(message.ret);
        return;
      default:
        throw new Error(`VFIO container cannot handle ${message.type}`);
    }
  }

  /**
   * The device behind the container, between any two steps of anything:
   * one DMA read of a block at an IOVA it has mapped now (seven times in
   * eight the first mapping at or after a random IOVA of a registered
   * section; else that random IOVA, mapped or not). Reaching a page freed
   * since it was mapped (`dma-to-stale`) is a violation in both modes; in
   * place, reaching a page guest_memfd holds private (`dma-to-private`) is
   * too. In legacy mode a mapping points at the *shared* backing page,
   * which stays allocated until QEMU discards it: a read while KVM already
   * holds the block private reaches that shared page, not private memory,
   * and is counted apart, not reported (the freed page is what matters).
   */
  background(ctx: ActorContext): Message {
    const listeners = this.#listeners;
    // Nothing registered (between an unplug and a plug): the device has no IOVA to use.
    if (listeners.length === 0) return { type: 'deviceAccess', from: ctx.self, tag: 0, iova: 0, size: 0, outcome: DMA_OUTCOMES.indexOf('fault') };
    const section = listeners[Math.floor(ctx.random() * listeners.length)]!.section;
    const blockSize = this.#config.blockSize;
    const blocks = section.size / blockSize;
    let iova = section.offsetWithinAddressSpace + Math.floor(ctx.random() * blocks) * blockSize;
    if (ctx.random() < 0.875) {
      const end = section.offsetWithinAddressSpace + section.size;
      let mapped: number | undefined;
      this.container.mappings.forEachIntersecting(iova, end - iova, (mIova) => {
        mapped = Math.max(mIova, iova);
        return false;
      });
      if (mapped !== undefined) iova = mapped;
    }
    const outcome = this.container.deviceAccess(iova, blockSize);
    const c = this.#counters;
    c.deviceAccesses++;
    c['checked:dma-to-stale']++;
    if (outcome === 'ok') c.deviceOk++;
    else if (outcome === 'fault') c.deviceFault++;
    else if (outcome === 'dma-to-stale') c.deviceToStale++;
    else if (this.#config.mode === 'legacy') c.deviceSharedPageOfPrivateBlock++;
    else c.deviceToPrivate++;
    if (this.#config.mode === 'inplace') c['checked:dma-to-private']++;
    const violation = outcome === 'dma-to-private' && this.#config.mode === 'legacy' ? undefined : accessViolation(this.container.id, iova, blockSize, outcome);
    if (violation !== undefined) this.#found.push({ ...violation, message: `${violation.message} (device DMA on its own)` });
    return { type: 'deviceAccess', from: ctx.self, tag: 0, iova, size: blockSize, outcome: DMA_OUTCOMES.indexOf(outcome) };
  }

  /**
   * Invariants this container can check from its own table and the shared
   * bitmaps, valid when no conversion is in flight. Returns how many were found.
   */
  quiescentCheck(): number {
    const before = this.#found.length;
    this.#counters.checks++;
    this.#counters['checked:stale-mapping']++;
    this.#counters['checked:entry-limit']++;
    this.#counters['checked:disagreement'] += this.#listeners.length;
    checkStaleMappings(this.container, this.#views, this.#found);
    checkEntryLimit(this.container, this.#found);
    this.#partialSeen = checkPartialUnmaps(this.container, this.#partialSeen, this.#found);
    for (const listener of this.#listeners) {
      checkSectionAgreement(this.container, listener.section, this.#views.bitmap, this.#config.blockSize, this.#found);
    }
    return this.#found.length - before;
  }

  /** A device write lands in the host pages behind the IOMMU mappings. */
  #writeThroughIommu(iova: number, size: number, pattern: number): void {
    this.container.mappings.forEachIntersecting(iova, size, (mIova, mSize, hostOffset) => {
      const start = Math.max(iova, mIova);
      const end = Math.min(iova + size, mIova + mSize);
      this.#views.memory.writeShared(hostOffset + (start - mIova), end - start, pattern);
    });
  }

  gauges(): Record<string, number> {
    return { [`live mappings ${this.container.id}`]: this.container.mappings.count };
  }

  profile(): PhaseHistograms {
    return this.#profile.toJSON();
  }

  stats(): Record<string, number> {
    const s = this.container.stats;
    return {
      ...this.#counters,
      dmaMaps: s.maps, dmaUnmaps: s.unmaps, dmaMapErrors: s.mapErrors, dmaUnmapErrors: s.unmapErrors,
      liveMappings: this.container.mappings.count, peakMappings: s.peakMappings, pinnedPages: s.pinnedBytes / this.#config.blockSize,
      'faultsInjected:map': this.#faults.injected.map, 'faultsInjected:unmap': this.#faults.injected.unmap,
    };
  }

  violations(): Violation[] {
    return [...this.#found];
  }

  violationCount(): number {
    return this.#found.length;
  }
}
