// Magnitude pruning: each adapter keeps its largest entries, then the plain weighted sum; PEFT's
// `magnitude_prune` on A and B, `magnitude_prune_svd` on ΔW.
import { defineMethod, type EntrywisePlan } from './method.ts';

const MAGNITUDE_PRUNE: EntrywisePlan = { sparsify: 'magnitude', consensus: 'sum' };

export const magnitudePrune = defineMethod({
  name: 'magnitude_prune',
  label: 'Magnitude pruning',
  summary: 'PEFT-compatible magnitude pruning on A and B separately. Approximate: cross terms.',
  family: 'factor',
  peft: true,
  parameters: ['density'],
  implementation: { entrywise: MAGNITUDE_PRUNE },
});

export const magnitudePruneSvd = defineMethod({
  name: 'magnitude_prune_svd',
  label: 'Magnitude pruning',
  summary: 'Keep the top density share of each ΔW by magnitude, sum.',
  family: 'dense',
  peft: true,
  parameters: ['density', 'rank'],
  defaultRank: 'largest',
  implementation: { entrywise: MAGNITUDE_PRUNE },
});
