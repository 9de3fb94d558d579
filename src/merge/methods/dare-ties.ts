// DARE's random drop, then TIES's sign election, as PEFT's `dare_ties` does it: on A and on B.
import { defineMethod } from './method.ts';

export const dareTies = defineMethod({
  name: 'dare_ties',
  label: 'DARE + TIES',
  summary: 'PEFT-compatible DARE + TIES on A and B separately. Approximate: cross terms.',
  family: 'factor',
  peft: true,
  parameters: ['density', 'majoritySign', 'tiesDivisor', 'seed'],
  implementation: { entrywise: { sparsify: 'random', consensus: 'ties' } },
});
