// DELLA (Deep et al. 2024): DARE's drop with keep probabilities that rise with an entry's
// magnitude rank in its row, then TIES.
import { defineMethod } from './method.ts';

export const dellaSvd = defineMethod({
  name: 'della_svd',
  label: 'DELLA',
  summary:
    'DELLA: keep with probability density ± epsilon by magnitude rank in each row, rescale by 1/p, then TIES.',
  family: 'dense',
  peft: false,
  parameters: ['density', 'epsilon', 'majoritySign', 'tiesDivisor', 'seed', 'rank'],
  // Every keep probability must be one.
  check: ({ density, epsilon }) =>
    density - epsilon > 0 && density + epsilon <= 1
      ? null
      : `della needs 0 < density ± epsilon ≤ 1, got ${density} ± ${epsilon}`,
  defaultRank: 'largest',
  mergekit: ['della'],
  implementation: { entrywise: { sparsify: 'della', consensus: 'ties' } },
});
