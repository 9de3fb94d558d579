// Magnitude pruning on the dense ΔW: each adapter keeps its largest entries, then the plain sum.
import { magnitudePrune } from './magnitude-prune.ts';
import { defineMethod } from './method.ts';

export const magnitudePruneSvd = defineMethod({
  name: 'magnitude_prune_svd',
  label: 'Magnitude pruning',
  summary: 'Keep the top density share of each ΔW by magnitude, sum.',
  family: 'dense',
  peft: true,
  parameters: ['density', 'rank'],
  defaultRank: 'largest',
  implementation: magnitudePrune.implementation,
});
