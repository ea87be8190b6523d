/**
 * Per-phase latency of conversions, recorded by each actor into its own
 * histograms (keyed by phase and conversion size class) and merged by the
 * host. Times come from the actor context's clock (nanoseconds on threads,
 * steps under the deterministic scheduler).
 */
import { LatencyHistogram, type LatencySummary, type SparseHistogram } from '../core/latency-histogram.js';

/** Conversion size classes of the report: single pages, MapGPA's 2 MiB chunks, everything else. */
export type SizeClass = '4K' | '2M' | 'other';

export function sizeClass(size: number): SizeClass {
  if (size === 4096) return '4K';
  if (size === 2 * 1024 * 1024) return '2M';
  return 'other';
}

/** `phase|sizeClass` -> histogram, in a form that crosses threads. */
export type PhaseHistograms = Record<string, SparseHistogram>;

export class PhaseProfile {
  readonly #histograms = new Map<string, LatencyHistogram>();
  readonly #enabled: boolean;

  /** Disabled (exploration), recording is a no-op. */
  constructor(enabled = true) {
    this.#enabled = enabled;
  }

  record(phase: string, size: number, nanoseconds: number): void {
    if (!this.#enabled) return;
    const key = `${phase}|${sizeClass(size)}`;
    let h = this.#histograms.get(key);
    if (h === undefined) {
      h = new LatencyHistogram();
      this.#histograms.set(key, h);
    }
    h.record(nanoseconds);
  }

  toJSON(): PhaseHistograms {
    const out: PhaseHistograms = {};
    for (const [key, h] of this.#histograms) out[key] = h.toSparse();
    return out;
  }
}

/** One row of the merged report (nanoseconds). */
export interface PhaseRow extends LatencySummary {
  readonly phase: string;
  readonly sizeClass: string;
}

function mergeAll(all: readonly PhaseHistograms[]): Map<string, LatencyHistogram> {
  const merged = new Map<string, LatencyHistogram>();
  for (const histograms of all) {
    for (const [key, sparse] of Object.entries(histograms)) {
      const h = LatencyHistogram.fromSparse(sparse);
      const into = merged.get(key);
      if (into === undefined) merged.set(key, h);
      else into.merge(h);
    }
  }
  return merged;
}

/** Merge every actor's histograms, keeping the buckets (`phase|sizeClass` -> sparse histogram). */
export function mergePhaseHistograms(all: readonly PhaseHistograms[]): PhaseHistograms {
  const out: PhaseHistograms = {};
  for (const [key, h] of mergeAll(all)) out[key] = h.toSparse();
  return out;
}

/** Merge every actor's histograms into rows (nanoseconds), in a stable order. */
export function mergePhases(all: readonly PhaseHistograms[]): PhaseRow[] {
  const merged = mergeAll(all);
  return [...merged.entries()]
    .map(([key, h]) => {
      const [phase = key, cls = ''] = key.split('|');
      return { phase, sizeClass: cls, ...h.summary() };
    })
    .sort((a, b) => (PHASE_ORDER.indexOf(a.phase) - PHASE_ORDER.indexOf(b.phase)) || a.sizeClass.localeCompare(b.sizeClass));
}

/** The order phases happen in, for reports. */
export const PHASE_ORDER = [
  'exit-to-resume', 'queue', 'kvm-attributes', 'state-change', 'state-change-in-owner', 'map', 'unmap', 'discard-or-convert', 'reply', 'dma',
];
