import { runDeterministic } from './dist/runtime/deterministic/deterministic-run.js';
import { RandomStrategy, PctStrategy } from './dist/runtime/deterministic/strategy.js';
const gm = 64*1024*1024;
const mk = (o={}) => ({ vcpus: 2, containers: [{backend:'type1', dmaEntryLimit: gm/4096+1024},{backend:'iommufd', dmaEntryLimit:0}], guestMem: gm, blockSize: 4096, gpaBase: 0, mode: 'legacy', order: 'explicit', rollback:'none', inFlight: 1, conversions: 50, seed: 1, workload: 'storm', checkEvery: 1000000, maxMemslots: 512, registrationOrder: 'serialized', ...o });
for (const [name, o] of [['legacy',{}], ['inflight4',{inFlight:4}], ['v6',{mode:'inplace',order:'v6'}], ['prio',{mode:'inplace',order:'priority'}], ['selftest',{workload:'selftest'}], ['hotplug',{workload:'hotplug'}], ['racy-hotplug',{workload:'hotplug', registrationOrder:'racy'}]]) {
  let found = 0, steps = 0; const t0 = performance.now(); let first;
  for (let seed = 1; seed <= 50; seed++) {
    const r = runDeterministic(mk({...o, seed}), { strategy: new RandomStrategy(seed), maxSteps: 1e6, recordTrace: false, stopAtViolation: true });
    steps += r.steps; if (r.outcome !== 'completed') { found++; first ??= [seed, r.outcome, r.violations[0]?.invariant, r.violations[0]?.message, r.violationStep]; }
  }
  const ms = performance.now() - t0;
  console.log(name, 'found', found, '/50', 'deliveries/s', Math.round(steps / ms * 1000), first ? JSON.stringify(first) : '');
}
