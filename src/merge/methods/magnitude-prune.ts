// Magnitude pruning as PEFT's `magnitude_prune` does it: on A and on B separately.
import { defineMethod } from './method.ts';

export const magnitudePrune = defineMethod({
  name: 'magnitude_prune',
  label: 'Magnitude pruning',
  summary: 'PEFT-compatible magnitude pruning on A and B separately. Approximate: cross terms.',
  family: 'factor',
  peft: true,
  parameters: ['density'],
  implementation: { entrywise: { sparsify: 'magnitude', consensus: 'sum' } },
});
