// PEFT's `linear`: A and B combined separately, kept for compatibility.
import { defineMethod } from './method.ts';

export const linear = defineMethod({
  name: 'linear',
  label: 'Linear',
  summary: 'PEFT-compatible: A and B averaged separately. Approximate: cross terms Bᵢ·Aⱼ.',
  family: 'factor',
  peft: true,
  parameters: [],
  implementation: { combine: 'linear' },
});
