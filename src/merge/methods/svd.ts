// The weighted sum brought to a rank by its SVD: PEFT's `svd`.
import { defineMethod } from './method.ts';

export const svd = defineMethod({
  name: 'svd',
  label: 'SVD of the sum',
  summary: 'Σ wᵢΔWᵢ brought to rank k by its SVD (the best rank-k approximation).',
  family: 'exact',
  peft: true,
  parameters: ['rank'],
  defaultRank: 'largest',
  implementation: { combine: 'sum' },
});
