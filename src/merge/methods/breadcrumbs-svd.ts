// Model Breadcrumbs (Davari & Belilovsky 2024): drop both tails of each ΔW's magnitudes.
import { defineMethod } from './method.ts';

export const breadcrumbsSvd = defineMethod({
  name: 'breadcrumbs_svd',
  label: 'Model Breadcrumbs',
  summary:
    'Model Breadcrumbs: drop the gamma share of largest entries (outliers) and the smallest, keeping density; sum.',
  family: 'dense',
  peft: false,
  parameters: ['density', 'gamma', 'rank'],
  defaultRank: 'largest',
  mergekit: ['breadcrumbs'],
  implementation: { entrywise: { sparsify: 'outliers', consensus: 'sum' } },
});
