import { exploreConfig, runCase } from './dist/explore/explore-case.js';
import { shrinkCase } from './dist/explore/shrink.js';
const m='iommufd-enoent-swallowed';
let failing;
for (let seed = 1; seed < 200 && !failing; seed++) {
  const c = { config: exploreConfig({ workload: 'storm', seed, mutant: m }), strategy: 'random', depth: 2, expectedSteps: 2000, scheduleSeed: seed, mutant: m };
  if (runCase(c).violations.length) failing = c;
}
const s = shrinkCase(failing);
console.log(JSON.stringify({lim: s.shrunk.config.actionLimit, skip: s.shrunk.config.skipActions, conv: s.shrunk.config.conversions}));
const r = runCase(s.shrunk); console.log(r.stats.map(x=>x.actions));
