// DARE, then TIES's sign election and disjoint mean, on the dense ΔW.
import { dareTies } from './dare-ties.ts';
import { defineMethod } from './method.ts';

export const dareTiesSvd = defineMethod({
  name: 'dare_ties_svd',
  label: 'DARE + TIES',
  summary: 'DARE on ΔW, then TIES sign election and disjoint mean.',
  family: 'dense',
  peft: true,
  parameters: ['density', 'majoritySign', 'tiesDivisor', 'seed', 'rank'],
  defaultRank: 'largest',
  mergekit: ['dare_ties'],
  implementation: dareTies.implementation,
});
