// Task arithmetic (Ilharco et al. 2023): the weighted sum with any real weights, exact unless a
// rank is asked.
import { defineMethod } from './method.ts';

export const taskArithmetic = defineMethod({
  name: 'task_arithmetic',
  label: 'Task arithmetic',
  summary:
    'Σ wᵢΔWᵢ with any real weights (negative ones remove a behaviour); exact at rank Σ rᵢ, or SVD to k.',
  family: 'exact',
  peft: false,
  parameters: ['rank'],
  // mergekit's linear is the same sum, with its weights normalised (mergekit.ts).
  mergekit: ['linear', 'task_arithmetic'],
  implementation: { combine: 'sum' },
});
