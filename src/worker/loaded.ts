import type { AdaptedModel } from '../adapters/adapted-model.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';

/** The loaded model as the parts of the Studio API see it: on the GPU, or on the CPU. */
export interface LoadedModel {
  name: string;
  /** The Hub repo of the weights where `name` is not it (LoadedModelFiles.hubId). */
  hubId?: string;
  model: AdaptedModel;
  tokenizer: TextTokenizer;
}
