/** bench's text output: aligned tables for lists of records, indented key: value otherwise. */
import { describe, expect, it } from 'vitest';
import { formatNumber, renderTable, renderTree } from '../../src/cli/text-table.js';

describe('text tables', () => {
  it('aligns columns: the first left, numbers right, with thousands separators', () => {
    expect(renderTable([{ suite: 'storm', perSec: 450000 }, { suite: 'selftest-long', perSec: 790123.5 }])).toEqual([
      'suite           perSec',
      'storm          450,000',
      'selftest-long  790,124',
    ]);
  });

  it('renders nested objects as indented lines and lists of records as tables', () => {
    expect(renderTree({ machine: { cores: 2 }, runs: [{ n: 1, ms: 0.12345 }, { n: 2, ms: 12 }] })).toEqual([
      'machine:', '  cores: 2', 'runs:', '  n     ms', '  1  0.123', '  2     12',
    ]);
    expect(formatNumber(1234567)).toBe('1,234,567');
  });
});
