// OPCM: adapters merged one after another, each projected off what is already merged (opcm.ts).
import { defineMethod } from './method.ts';

export const opcm = defineMethod({
  name: 'opcm',
  label: 'OPCM',
  summary:
    'OPCM: adapters added in order, each projected off the subspaces already merged, norm-rescaled; exact.',
  family: 'exact',
  peft: false,
  parameters: ['opcmAlpha', 'rank'],
  implementation: { sequence: 'opcm' },
});
