/**
 * What an exploration covered, in words: the machines it drew, the faults
 * it injected, what the devices reached, and how often each invariant was
 * checked, so a clean result is visibly not a vacuous one.
 */

/** Entries of `coverage` whose key starts with `prefix`, as `name count` pairs. */
function group(coverage: Readonly<Record<string, number>>, prefix: string): string {
  const items = Object.entries(coverage)
    .filter(([k, v]) => k.startsWith(prefix) && v > 0)
    .map(([k, v]) => `${k.slice(prefix.length)} ${v}`);
  return items.length === 0 ? 'none' : items.join(', ');
}

/** Coverage as text lines (`explore`'s report). */
export function coverageLines(coverage: Readonly<Record<string, number>>, iterations: number): string[] {
  const n = (k: string): number => coverage[k] ?? 0;
  return [
    `coverage over ${iterations} iteration(s):`,
    `  machines: layouts ${group(coverage, 'layout:')}; VFIO sections per machine ${group(coverage, 'sections:')}; ` +
      `IOVA != region offset in ${n('iova-differs-from-offset')}, IOVA != GPA in ${n('iova-differs-from-gpa')}`,
    `  vCPUs ${group(coverage, 'vcpus:')}; containers ${group(coverage, 'container:')}; rollback ${group(coverage, 'rollback:')}; ` +
      `backing ${group(coverage, 'mode:')}; hot-plug ${group(coverage, 'hotplug:')}`,
    `  fault rates ${group(coverage, 'faults:')}; faults injected: ${group(coverage, 'faultsInjected:')}; ` +
      `map errors ${n('dmaMapErrors')}, unmap errors ${n('dmaUnmapErrors')}, conversions failed ${n('failedConversions')} of ${n('conversions')}`,
    `  device accesses on their own ${n('deviceAccesses')}: ok ${n('deviceOk')}, IOMMU fault ${n('deviceFault')}, ` +
      `freed page ${n('deviceToStale')}, private page ${n('deviceToPrivate')}, ` +
      `shared page of a block KVM already holds private (legacy, not a violation) ${n('deviceSharedPageOfPrivateBlock')}`,
    `  invariant checks: ${group(coverage, 'checked:')}`,
    `  iteration outcomes: ${group(coverage, 'outcome:')}`,
  ];
}
