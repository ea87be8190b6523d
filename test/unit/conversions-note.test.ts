/** `--conversions N`: what ran and why, when it is not N. */
import { describe, expect, it } from 'vitest';
import { parseRunOptions } from '../../src/cli/commands/run.js';
import { workloadConversionCap } from '../../src/actors/vcpu/workloads.js';
import { conversionsNote } from '../../src/cli/run-results.js';
import { MiB } from '../../src/core/units.js';

const runConfig = (args: string[]): ReturnType<typeof parseRunOptions>['config'] => parseRunOptions(args).config;

describe('conversionsNote', () => {
  const complete = { status: 'complete' } as const;
  const running = { vmStopped: false, outcome: 'running' } as const;

  it('says nothing when exactly what was asked ran', () => {
    const config = runConfig(['--conversions', '300']);
    expect(conversionsNote(config, { ...running, conversions: 300 }, complete)).toBeUndefined();
  });

  it('swiotlb: the pool bounds the conversions, and the note gives the bound', () => {
    const config = runConfig(['--workload', 'swiotlb', '--guest-mem', '64M', '--vcpus', '4', '--conversions', '500']);
    const cap = workloadConversionCap('swiotlb', 64 * MiB, 4);
    expect(cap).toBe(16);
    expect(conversionsNote(config, { ...running, conversions: 16 }, complete)).toMatch(/^asked for 500: the swiotlb guest converts its bounce-buffer pool to shared once, .* 16 conversion\(s\) on this guest/);
    expect(workloadConversionCap('storm', 64 * MiB, 4)).toBeUndefined();
  });

  it('an early end, and a last action past the share, each say so', () => {
    const config = runConfig(['--conversions', '500']);
    expect(conversionsNote(config, { vmStopped: true, outcome: 'vm-stopped', conversions: 120 }, complete)).toBe('asked for 500: the run ended early (the VM stopped)');
    expect(conversionsNote(config, { ...running, conversions: 120 }, { status: 'interrupted', reason: 'SIGINT' })).toBe('asked for 500: the run was interrupted before the end');
    expect(conversionsNote(config, { ...running, conversions: 503 }, complete)).toMatch(/^asked for 500: each vCPU stops after the guest action that reaches its share/);
  });
});
