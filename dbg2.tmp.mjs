import { runThreaded } from './dist/runtime/threaded-run.js';
const gm = 1024*1024*1024;
const cfg = { vcpus: 4, containers: [{backend:'type1', dmaEntryLimit: gm/4096+1024},{backend:'iommufd', dmaEntryLimit:0}], guestMem: gm, blockSize: 4096, gpaBase: 0, mode: process.argv[2]??'legacy', order: process.argv[3]??'explicit', rollback:'none', inFlight: +(process.argv[5]??1), conversions: +(process.argv[4]??20000), seed: 1, workload: process.argv[6]??'storm', checkEvery: 2000, maxMemslots: 512 };
const r = await runThreaded(cfg);
console.log(r.elapsedMs.toFixed(0), 'ms', r.conversionsPerSec.toFixed(0), '/s', 'viol', r.violations.length, r.vmStopped, r.stopReason);
console.log(r.violations.slice(0,3));
for (const [k,v] of Object.entries(r.stats)) console.log(k, JSON.stringify(v));
