// The weighted sum Σ wᵢ·sᵢ·Bᵢ·Aᵢ, exact on the factors: whole (cat), or brought to a rank by its SVD.
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
