import { exploreConfig, runCase, encodeToken, decodeToken } from './dist/explore/explore-case.js';
import { shrinkCase } from './dist/explore/shrink.js';
import { story } from './dist/explore/story.js';
import { MUTANTS } from './dist/explore/mutants.js';
const only = process.argv[2];
for (const m of MUTANTS) {
  if (only && m.name !== only) continue;
  const t0 = performance.now();
  let failing;
  for (let seed = 1; seed < 200 && !failing; seed++) {
    const c = { config: exploreConfig({ workload: 'storm', seed, mutant: m.name }), strategy: 'random', depth: 2, expectedSteps: 2000, scheduleSeed: seed, mutant: m.name };
    const r = runCase(c);
    if (r.violations.length) failing = c;
  }
  const t1 = performance.now();
  const s = shrinkCase(failing);
  const lines = story(s.result);
  const tok = encodeToken(s.shrunk);
  const again = runCase(decodeToken(tok), { recordTrace: true });
  console.log(`${m.name}: find ${(t1-t0).toFixed(0)}ms shrink ${(performance.now()-t1).toFixed(0)}ms attempts ${s.attempts} story ${lines.length} lines; conv ${s.shrunk.config.conversions} vcpus ${s.shrunk.config.vcpus} cont ${s.shrunk.config.containers.length} dev ${s.shrunk.deviations.length} inv ${s.invariant} hash ${s.result.traceHash}=${again.traceHash}`);
  if (only) console.log(lines.join('\n'));
}
