/**
 * End-to-end benchmark: conversions per second of the threaded runtime for
 * 1, 2, 4 and 8 vCPUs (and 1, 2 containers), same workload and seed.
 */
import type { RunConfig } from '../actors/run-config.js';
import { MiB } from '../core/units.js';
import { runThreaded } from '../runtime/threaded-run.js';

export interface E2eRow {
  readonly vcpus: number;
  readonly containers: number;
  readonly conversions: number;
  readonly medianConversionsPerSec: number;
  readonly runs: number[];
  readonly violations: number;
}

export interface E2eBenchResult {
  readonly guestMem: number;
  readonly conversionsPerRun: number;
  readonly repetitions: number;
  readonly rows: E2eRow[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function runE2eBench(options: { conversions?: number; repetitions?: number } = {}): Promise<E2eBenchResult> {
  const conversions = options.conversions ?? 2000;
  const repetitions = options.repetitions ?? 3;
  const guestMem = 256 * MiB;
  const rows: E2eRow[] = [];
  for (const containers of [1, 2]) {
    for (const vcpus of [1, 2, 4, 8]) {
      const config: RunConfig = {
        vcpus,
        containers: Array.from({ length: containers }, (_, i) => (i % 2 === 0
          ? { backend: 'type1' as const, dmaEntryLimit: guestMem / 4096 + 1024 }
          : { backend: 'iommufd' as const, dmaEntryLimit: 0 })),
        guestMem, blockSize: 4096, gpaBase: 0, mode: 'legacy', order: 'explicit', rollback: 'none',
        inFlight: 1, conversions, seed: 1, workload: 'storm', checkEvery: 1_000_000, maxMemslots: 512,
        registrationOrder: 'serialized',
      };
      const runs: number[] = [];
      let violations = 0;
      for (let r = 0; r < repetitions; r++) {
        const report = await runThreaded(config);
        runs.push(Math.round(report.conversionsPerSec));
        violations += report.violations.length;
      }
      rows.push({ vcpus, containers, conversions, medianConversionsPerSec: median(runs), runs, violations });
    }
  }
  return { guestMem, conversionsPerRun: conversions, repetitions, rows };
}
