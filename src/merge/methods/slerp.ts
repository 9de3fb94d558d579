// SLERP between two adapters' ΔW, as mergekit does it, exact on the factors (merge.ts).
import { defineMethod } from './method.ts';

export const slerp = defineMethod({
  name: 'slerp',
  label: 'SLERP',
  summary:
    'Spherical interpolation between two adapters’ ΔW per module (t = 0 → first, 1 → second); exact.',
  family: 'exact',
  peft: false,
  adapters: { min: 2, max: 2 },
  parameters: ['t', 'rank'],
  mergekit: ['slerp'],
  implementation: { combine: 'slerp' },
});
