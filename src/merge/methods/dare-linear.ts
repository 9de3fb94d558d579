// DARE (Yu et al. 2024) as PEFT's `dare_linear` does it: on A and on B separately.
import { defineMethod } from './method.ts';

export const dareLinear = defineMethod({
  name: 'dare_linear',
  label: 'DARE',
  summary: 'PEFT-compatible DARE on A and B separately. Approximate: cross terms.',
  family: 'factor',
  peft: true,
  parameters: ['density', 'seed'],
  implementation: { entrywise: { sparsify: 'random', consensus: 'sum' } },
});
