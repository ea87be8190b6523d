/**
 * How a run ends where QEMU would exit, abort or refuse the device: the
 * start-up estimate check of `run`, `type1` / `type1:N` / `type1:auto`, and
 * the fatal outcomes of the deterministic runtime and of exploration.
 */
import { ALL_FIXES_PROTOCOL } from '../../src/core/protocol-policy.js';
import { describe, expect, it } from 'vitest';
import { autoDmaEntryLimit, describeAutoLimit, refusedAtStartup } from '../../src/actors/device-realize.js';
import type { RunConfig } from '../../src/actors/run-config.js';
import { parseRunOptions } from '../../src/cli/commands/run.js';
import { parseContainers } from '../../src/cli/machine-options.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { isFatal, registerOutcome } from '../../src/core/qemu-outcome.js';
import { describeEstimate, KVM_X86_MAX_MEMSLOTS } from '../../src/core/vfio/dma-mapping-estimate.js';
import { TYPE1_DEFAULT_DMA_ENTRY_LIMIT } from '../../src/core/vfio/type1-container.js';
import { exploreConfig, runCase, type ExploreCase } from '../../src/explore/explore-case.js';
import { story } from '../../src/explore/story.js';

const P = 4096;
const M = 1024 * 1024;

describe('registerOutcome: how QEMU ends on a failed registration', () => {
  it('a failed replay exits (ram_block_attributes_rdm_register_listener), set up or not', () => {
    expect(registerOutcome('replay', false)).toBe('qemu-exit');
    expect(registerOutcome('replay', true)).toBe('qemu-exit');
  });
  it('the estimate fails realize while the container is set up, and aborts (hw_error) once it is initialized', () => {
    expect(registerOutcome('estimate', false)).toBe('realize-failed');
    expect(registerOutcome('estimate', true)).toBe('qemu-abort');
    expect(registerOutcome('none', true)).toBeUndefined();
  });
  it('running and vm-stopped are not fatal; the other three are', () => {
    expect(['running', 'vm-stopped', 'qemu-exit', 'realize-failed', 'qemu-abort'].map((o) => isFatal(o as never)))
      .toEqual([false, false, true, true, true]);
  });
});

describe('run: --containers and --memslots', () => {
  const sizing = { guestMem: 1024 * M, gpaBase: 0, blockSize: P, maxMemslots: KVM_X86_MAX_MEMSLOTS };

  it('type1 is the kernel default 65535, type1:N sets it, type1:auto raises it to blocks + memslots - listeners', () => {
    const [plain, set, auto, fd] = parseContainers('type1,type1:100000,type1:auto,iommufd', sizing);
    expect(plain).toEqual({ backend: 'type1', dmaEntryLimit: TYPE1_DEFAULT_DMA_ENTRY_LIMIT, limitSource: 'default' });
    expect(set).toEqual({ backend: 'type1', dmaEntryLimit: 100000, limitSource: 'set' });
    expect(auto).toEqual({ backend: 'type1', dmaEntryLimit: 262144 + 32764 - 1, limitSource: 'auto' });
    expect(fd).toEqual({ backend: 'iommufd', dmaEntryLimit: 0 });
  });

  it('type1:auto keeps the default when the guest fits (64 MiB: 16384 + 32763 < 65535)', () => {
    expect(autoDmaEntryLimit({ ...sizing, guestMem: 64 * M })).toBe(TYPE1_DEFAULT_DMA_ENTRY_LIMIT);
  });

  it('the default container list is type1:auto,iommufd with 32764 memslots, and the summary line says what auto raised', () => {
    const { config } = parseRunOptions([]);
    expect(config.maxMemslots).toBe(32764);
    expect(config.containers.map((c) => c.limitSource ?? c.backend)).toEqual(['auto', 'iommufd']);
    // run's default layout is x86: ram-below-4g and ram-above-4g, one listener each.
    expect(describeAutoLimit(config, 0, config.containers[0]!)).toBe(
      'c0: type1:auto raised dma_entry_limit from the kernel default 65535 to 294906: 262144 blocks + 32764 memslots - 2 listeners ' +
      '= 294906 possible DMA mappings, which QEMU would refuse with the default');
    expect(parseRunOptions(['--memslots', '512']).config.containers[0]!.dmaEntryLimit).toBe(262144 + 510);
    expect(parseRunOptions(['--memslots', '512', '--layout', 'flat']).config.containers[0]!.dmaEntryLimit).toBe(262144 + 511);
  });

  it.each([
    [['--containers', 'type1:0'], /--containers: "0" must be an integer/],
    [['--containers', 'type1:auto:1'], /--containers: "type1:auto:1" is not type1, type1:N, type1:auto or iommufd/],
    [['--containers', 'iommufd:auto'], /--containers: only type1 takes a limit/],
    [['--memslots', 'many'], /--memslots: "many" must be an integer from 1 to 32767/],
  ])('bad %j: a one-line UsageError', (argv, message) => {
    expect(() => parseRunOptions(argv)).toThrow(UsageError);
    expect(() => parseRunOptions(argv)).toThrow(message);
  });

  it('a device QEMU would refuse is found before anything runs, with the numbers and the smallest limit that fits', () => {
    // One listener per container (the flat layout), as the numbers of the issue.
    const { config } = parseRunOptions(['--layout', 'flat', '--guest-mem', '256M', '--containers', 'iommufd,type1']);
    const refused = refusedAtStartup(config);
    expect(refused?.index).toBe(1);
    expect(refused?.estimate).toMatchObject({ blocks: 65536, maxMemslots: 32764, listeners: 1, limit: 65535, worstCase: 98299, smallestLimit: 98299 });
    expect(describeEstimate('c1', refused!.estimate)).toBe(
      'c1: QEMU refuses the device: 65536 blocks in its sections + 32764 memslots - 1 listener = 98299 possible DMA mappings > ' +
      'dma_entry_limit 65535; the smallest limit that fits is 98299 (type1:98299, or type1:auto)');
    // 128 MiB (32768 blocks) fits the default: 32768 + 32764 - 1 = 65531.
    expect(refusedAtStartup(parseRunOptions(['--layout', 'flat', '--guest-mem', '128M', '--containers', 'type1']).config)).toBeUndefined();
    expect(refusedAtStartup(parseRunOptions(['--layout', 'flat', '--guest-mem', '256M', '--containers', 'type1:98299']).config)).toBeUndefined();
    // The x86 layout (run's default): two listeners per container, so the threshold moves by one.
    expect(refusedAtStartup(parseRunOptions(['--guest-mem', '256M', '--containers', 'type1:98298']).config)).toBeUndefined();
    expect(refusedAtStartup(parseRunOptions(['--guest-mem', '256M', '--containers', 'type1:98297']).config)?.estimate.listeners).toBe(2);
  });
});

describe('deterministic runtime and exploration: fatal outcomes end the run', () => {
  const caseOf = (config: RunConfig): ExploreCase => ({ config, strategy: 'random', depth: 1, expectedSteps: 1, scheduleSeed: 1 });

  it('realize-failed: a type1 limit below the estimate ends the run at start-up, before any conversion', () => {
    const base = exploreConfig({ workload: 'storm', seed: 1, protocol: ALL_FIXES_PROTOCOL });
    const config: RunConfig = { ...base, containers: [{ backend: 'type1', dmaEntryLimit: TYPE1_DEFAULT_DMA_ENTRY_LIMIT }], maxMemslots: 65535 - 16384 + 2 };
    const r = runCase(caseOf(config), { stopAtViolation: false });
    expect(r.outcome).toBe('realize-failed');
    expect(r.qemuOutcome).toBe('realize-failed');
    expect(r.conversions).toBe(0);
    expect(r.fatal?.message).toMatch(/^c0: vfio_ram_discard_register_listener: possibly running out of DMA mappings \(-ENOSPC \(-28\)\)/);
    // One fewer memslot and it fits.
    expect(runCase(caseOf({ ...config, maxMemslots: 65535 - 16384 + 1 }), { stopAtViolation: false }).qemuOutcome).toBe('running');
  });

  it('qemu-exit: a hot-plug re-registration whose replay fails ends the run there, and its story ends with it', () => {
    const base = exploreConfig({ workload: 'hotplug', seed: 1, protocol: ALL_FIXES_PROTOCOL });
    const fd = base.containers[1]!;
    // Maps start failing late (-ENOMEM) in c0: the failing map is a replay to a re-registered listener.
    const config: RunConfig = { ...base, containers: [fd, fd], variant: { failMaps: { container: 0, afterMaps: 20, errno: 12 } } };
    const full = runCase(caseOf(config), { stopAtViolation: false, recordTrace: true });
    expect(full.qemuOutcome).toBe('qemu-exit');
    expect(full.fatal?.message).toMatch(/^c0: ram_block_attributes_rdm_register_listener: replay failed \(-ENOMEM \(-12\)\): exit\(1\)$/);
    expect(full.conversions).toBeLessThan(config.conversions);
    // The last delivery of the story is the registration reply that carried the failure.
    const lines = story(full);
    expect(lines.at(-1)).toBe(`=> qemu-exit: ${full.fatal!.message}`);
    expect(full.trace[full.fatal!.step]!.message.type).toBe('registerDone');
  });
});
