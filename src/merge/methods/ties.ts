// TIES (Yadav et al. 2023): trim each task to its largest entries, elect a sign per entry,
// average the agreeing ones. PEFT's `ties` does it on A and B, `ties_svd` on ΔW.
import { defineMethod, type EntrywisePlan } from './method.ts';

const TIES: EntrywisePlan = { sparsify: 'magnitude', consensus: 'ties' };

export const ties = defineMethod({
  name: 'ties',
  label: 'TIES',
  summary: 'PEFT-compatible TIES on A and B separately. Approximate: cross terms.',
  family: 'factor',
  peft: true,
  parameters: ['density', 'majoritySign', 'tiesDivisor'],
  implementation: { entrywise: TIES },
});

export const tiesSvd = defineMethod({
  name: 'ties_svd',
  label: 'TIES',
  summary:
    'TIES on ΔW: keep the top density share by magnitude, elect a sign per entry, average the agreeing entries.',
  family: 'dense',
  peft: true,
  parameters: ['density', 'majoritySign', 'tiesDivisor', 'rank'],
  defaultRank: 'largest',
  mergekit: ['ties'],
  implementation: { entrywise: TIES },
});
