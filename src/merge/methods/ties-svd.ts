// TIES on the dense ΔW: trim each adapter to its largest entries, elect a sign per entry, average
// the agreeing ones.
import { defineMethod } from './method.ts';
import { ties } from './ties.ts';

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
  implementation: ties.implementation,
});
