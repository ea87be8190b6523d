/**
 * Over random layouts (sections that do not cover the region, with holes,
 * IOVA != region offset) and random state changes, the VFIO listener maps
 * exactly the shared blocks inside each registered section, one 4 KiB
 * mapping per block, at IOVA = offset - section offset + section IOVA and
 * host address = the block's offset in the RAMBlock; nothing outside.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfidentialVm, DEFAULT_VM_CONFIG } from '../../src/core/confidential-vm.js';
import { buildLayout } from '../../src/core/machine-layout.js';
import { Prng } from '../../src/core/prng.js';
import { propertyParams } from './seed.js';

const BLOCK = 4096;
const BLOCKS = 96;
const REGION = BLOCKS * BLOCK;

const stateChange = fc.record({
  first: fc.nat(BLOCKS - 1),
  blocks: fc.integer({ min: 1, max: 24 }),
  toDiscard: fc.boolean(),
});

describe('VFIO listener over random layouts', () => {
  it('maps exactly the shared blocks of each section at the right IOVA and host address', () => {
    fc.assert(fc.property(fc.nat(1_000_000), fc.integer({ min: 1, max: 3 }), fc.array(stateChange, { maxLength: 30 }), (seed, containers, changes) => {
      const layout = buildLayout('random', { guestMem: REGION, blockSize: BLOCK, gpaBase: 0, containers }, new Prng(seed));
      const vm = new ConfidentialVm({ ...DEFAULT_VM_CONFIG, regionSize: REGION, blockSize: BLOCK });
      layout.vfio.forEach((sections, i) => {
        vm.addContainer(`c${i}`, i % 2 === 0 ? 'iommufd' : 'type1', 1_000_000);
        for (const s of sections) expect(vm.register(`c${i}`, s)).toBe(0);
      });
      for (const c of changes) {
        const blocks = Math.min(c.blocks, BLOCKS - c.first);
        expect(vm.stateChange(c.first * BLOCK, blocks * BLOCK, c.toDiscard)).toBe(0);
      }
      layout.vfio.forEach((sections, i) => {
        const expected: string[] = [];
        for (const s of sections) {
          for (let offset = s.offset; offset < s.offset + s.size; offset += BLOCK) {
            if (vm.rba.bitmap.test(offset / BLOCK)) expected.push(`${offset - s.offset + s.iova}:${BLOCK}:${offset}`);
          }
        }
        const actual: string[] = [];
        vm.container(`c${i}`).mappings.forEach((iova, size, host) => {
          actual.push(`${iova}:${size}:${host}`);
          return true;
        });
        expect(actual.sort()).toEqual(expected.sort());
      });
    }), propertyParams());
  });
});
