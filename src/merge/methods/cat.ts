// The adapters' factors side by side: their weighted sum, exact, at the sum of their ranks.
import { defineMethod } from './method.ts';

export const cat = defineMethod({
  name: 'cat',
  label: 'Concatenation',
  summary: 'Factors side by side: ΔW = Σ wᵢΔWᵢ exactly, at rank Σ rᵢ.',
  family: 'exact',
  peft: true,
  parameters: [],
  check: (spec) =>
    spec.rank === undefined ? null : 'cat keeps every rank; ask task_arithmetic or svd for a rank',
  implementation: { combine: 'sum' },
});
