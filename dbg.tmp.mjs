import { runDeterministic } from './dist/runtime/deterministic/deterministic-run.js';
import { RandomStrategy, PctStrategy } from './dist/runtime/deterministic/strategy.js';
import { MUTANTS } from './dist/explore/mutants.js';
const gm = 64*1024*1024;
const base = (seed) => ({ vcpus: 2, containers: [{backend:'type1', dmaEntryLimit: gm/4096+1024},{backend:'iommufd', dmaEntryLimit:0}], guestMem: gm, blockSize: 4096, gpaBase: 0, mode: 'legacy', order: 'explicit', rollback:'none', inFlight: 1, conversions: 40, seed, workload: 'storm', checkEvery: 1000000, maxMemslots: 512, registrationOrder: 'serialized' });
for (const m of MUTANTS) {
  let found = 0, steps = 0; const t0 = performance.now(); let first; const inv = {};
  const N = 40;
  for (let seed = 1; seed <= N; seed++) {
    const cfg = m.apply(base(seed));
    const strat = process.argv[2] === 'pct' ? new PctStrategy(seed, 2+cfg.containers.length+cfg.vcpus, 2, 2000) : new RandomStrategy(seed);
    const r = runDeterministic(cfg, { strategy: strat, maxSteps: 1e6, recordTrace: false, stopAtViolation: true });
    steps += r.steps; if (r.outcome !== 'completed') { found++; const i = r.violations[0]?.invariant ?? r.outcome; inv[i] = (inv[i]??0)+1; first ??= [seed, r.violations[0]?.message, r.violationStep]; }
  }
  const ms = performance.now() - t0;
  console.log(m.name, 'expect', m.expected, 'found', found, '/', N, JSON.stringify(inv), 'dps', Math.round(steps/ms*1000), first ? JSON.stringify(first).slice(0,200) : '');
}
