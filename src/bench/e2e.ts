/**
 * End-to-end benchmark: conversions per second of the threaded runtime for
 * 1, 2, 4 and 8 vCPUs (and 1, 2 containers), same workload and seed.
 */
import { MERGED_PROTOCOL } from '../core/protocol-policy.js';
import { autoDmaEntryLimit } from '../actors/device-realize.js';
import { KVM_X86_MAX_MEMSLOTS } from '../core/vfio/dma-mapping-estimate.js';
import type { RunConfig } from '../actors/run-config.js';
import { MiB } from '../core/units.js';
import { runThreaded } from '../runtime/threaded-run.js';
import { runMailboxBench } from './mailbox.js';
import { median } from './median.js';

export interface E2eRow {
  readonly vcpus: number;
  readonly containers: number;
  readonly conversions: number;
  readonly medianConversionsPerSec: number;
  readonly runs: number[];
  readonly violations: number;
  /** Mailbox hops (messages handled by any actor) per conversion, median run. */
  readonly hopsPerConversion: number;
  /** Conversions/s if every hop took the spin-path one-way time: hops x (round trip / 2). */
  readonly spinBoundPerSec: number;
  /** The same with the blocking-path one-way time. */
  readonly blockingBoundPerSec: number;
  /** Measured / spin bound, and measured / blocking bound: how close the runtime is to its own limit. */
  readonly ofSpinBound: number;
  readonly ofBlockingBound: number;
}

export interface E2eBenchResult {
  /** One-way mailbox hop times measured in the same run (half the median round trip), ns. */
  readonly hopNs: { readonly spin: number; readonly blocking: number };
  readonly guestMem: number;
  readonly conversionsPerRun: number;
  readonly repetitions: number;
  readonly rows: E2eRow[];
}


export async function runE2eBench(options: { conversions?: number; repetitions?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<E2eBenchResult> {
  const conversions = options.conversions ?? 2000;
  const repetitions = options.repetitions ?? 3;
  const guestMem = 256 * MiB;
  const mailbox = await runMailboxBench({ messages: 200_000, roundTrips: 2000, repetitions: 3 });
  const hopNs = { spin: mailbox.roundTripNs.sabSpin / 2, blocking: mailbox.roundTripNs.sabBlocking / 2 };
  const rows: E2eRow[] = [];
  for (const containers of [1, 2, 4]) {
    for (const vcpus of [1, 2, 4, 8]) {
      const config: RunConfig = {
        vcpus,
        containers: Array.from({ length: containers }, (_, i) => (i % 2 === 0 // alternate type1 and iommufd
          ? { backend: 'type1' as const, dmaEntryLimit: autoDmaEntryLimit({ guestMem, gpaBase: 0, blockSize: 4096, maxMemslots: KVM_X86_MAX_MEMSLOTS }), limitSource: 'auto' as const }
          : { backend: 'iommufd' as const, dmaEntryLimit: 0 })),
        guestMem, blockSize: 4096, gpaBase: 0, mode: 'legacy', order: 'explicit', rollback: 'none',
        inFlight: vcpus, conversions, seed: 1, workload: 'storm', checkEvery: 1_000_000, maxMemslots: KVM_X86_MAX_MEMSLOTS,
        protocol: MERGED_PROTOCOL,
      };
      const runs: number[] = [];
      const hops: number[] = [];
      let violations = 0;
      for (let r = 0; r < repetitions; r++) {
        const report = await runThreaded(config);
        runs.push(Math.round(report.conversionsPerSec));
        const messages = Object.values(report.stats).reduce((sum, s) => sum + (s['messagesHandled'] ?? 0), 0);
        hops.push(messages / Math.max(1, report.conversions));
        violations += report.violations.length;
      }
      const measured = median(runs);
      const hopsPerConversion = median(hops);
      const spinBoundPerSec = 1e9 / (hopsPerConversion * hopNs.spin);
      const blockingBoundPerSec = 1e9 / (hopsPerConversion * hopNs.blocking);
      options.onProgress?.(rows.length + 1, 12);
      rows.push({
        vcpus, containers, conversions, medianConversionsPerSec: measured, runs, violations,
        hopsPerConversion: Math.round(hopsPerConversion * 10) / 10,
        spinBoundPerSec: Math.round(spinBoundPerSec),
        blockingBoundPerSec: Math.round(blockingBoundPerSec),
        ofSpinBound: Math.round((measured / spinBoundPerSec) * 1000) / 1000,
        ofBlockingBound: Math.round((measured / blockingBoundPerSec) * 1000) / 1000,
      });
    }
  }
  return { hopNs, guestMem, conversionsPerRun: conversions, repetitions, rows };
}
