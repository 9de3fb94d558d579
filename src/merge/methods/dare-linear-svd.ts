// DARE on the dense ΔW: drop entries at random, rescale the rest by 1/density, sum.
import { dareLinear } from './dare-linear.ts';
import { defineMethod } from './method.ts';

export const dareLinearSvd = defineMethod({
  name: 'dare_linear_svd',
  label: 'DARE',
  summary: 'DARE on ΔW: keep each entry with probability density, rescale by 1/density, sum.',
  family: 'dense',
  peft: true,
  parameters: ['density', 'seed', 'rank'],
  defaultRank: 'largest',
  mergekit: ['dare_linear'],
  implementation: dareLinear.implementation,
});
