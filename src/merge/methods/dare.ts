// DARE (Yu et al. 2024): drop entries at random with probability 1 − density and rescale the rest
// by 1/density, then sum (dare_linear) or elect signs as TIES does (dare_ties); PEFT's names on A
// and B, the _svd forms on ΔW.
import { defineMethod, type EntrywisePlan } from './method.ts';

const DARE_LINEAR: EntrywisePlan = { sparsify: 'random', consensus: 'sum' };
const DARE_TIES: EntrywisePlan = { sparsify: 'random', consensus: 'ties' };

export const dareLinear = defineMethod({
  name: 'dare_linear',
  label: 'DARE',
  summary: 'PEFT-compatible DARE on A and B separately. Approximate: cross terms.',
  family: 'factor',
  peft: true,
  parameters: ['density', 'seed'],
  implementation: { entrywise: DARE_LINEAR },
});

export const dareTies = defineMethod({
  name: 'dare_ties',
  label: 'DARE + TIES',
  summary: 'PEFT-compatible DARE + TIES on A and B separately. Approximate: cross terms.',
  family: 'factor',
  peft: true,
  parameters: ['density', 'majoritySign', 'tiesDivisor', 'seed'],
  implementation: { entrywise: DARE_TIES },
});

export const dareLinearSvd = defineMethod({
  name: 'dare_linear_svd',
  label: 'DARE',
  summary: 'DARE on ΔW: keep each entry with probability density, rescale by 1/density, sum.',
  family: 'dense',
  peft: true,
  parameters: ['density', 'seed', 'rank'],
  defaultRank: 'largest',
  mergekit: ['dare_linear'],
  implementation: { entrywise: DARE_LINEAR },
});

export const dareTiesSvd = defineMethod({
  name: 'dare_ties_svd',
  label: 'DARE + TIES',
  summary: 'DARE on ΔW, then TIES sign election and disjoint mean.',
  family: 'dense',
  peft: true,
  parameters: ['density', 'majoritySign', 'tiesDivisor', 'seed', 'rank'],
  defaultRank: 'largest',
  mergekit: ['dare_ties'],
  implementation: { entrywise: DARE_TIES },
});
