// TIES (Yadav et al. 2023) as PEFT's `ties` does it: on A and on B separately.
import { defineMethod } from './method.ts';

export const ties = defineMethod({
  name: 'ties',
  label: 'TIES',
  summary: 'PEFT-compatible TIES on A and B separately. Approximate: cross terms.',
  family: 'factor',
  peft: true,
  parameters: ['density', 'majoritySign', 'tiesDivisor'],
  implementation: { entrywise: { sparsify: 'magnitude', consensus: 'ties' } },
});
