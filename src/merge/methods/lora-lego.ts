// LoRA-LEGO: k-means over the adapters' rank-1 units (lego.ts).
import { defineMethod } from './method.ts';

export const loraLego = defineMethod({
  name: 'lora_lego',
  label: 'LoRA-LEGO',
  summary:
    'LoRA-LEGO: k-means over all rank-1 units (bⱼ, aⱼ) into k clusters; the centroids form a rank-k adapter, rescaled to the sum’s norm.',
  family: 'exact',
  peft: false,
  parameters: ['rank', 'seed'],
  // k clusters: the asked rank, or the largest source rank.
  defaultRank: 'largest',
  implementation: { combine: 'lora_lego' },
});
